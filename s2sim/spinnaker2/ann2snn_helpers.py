"""``spinnaker2.ann2snn_helpers``: connection lists from dense weights and pooling layers.

Index conventions as py-spinnaker2's: a dense matrix is ``W[pre, post]`` (NIR's and torch's weights are
``[out, in]``: pass ``W.T``); neurons of a ``(C, H, W)`` layer are numbered ``c*H*W + h*W + w``
(``data_order="torch"``) or ``h*W*C + w*C + c`` (``"tf"``). Every list row is ``[pre, post, weight, delay]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..spec import as_index

DATA_ORDERS = ("torch", "tf")


def connection_list_from_dense_weights(dense_weights: Any, delay: int) -> list[list]:
    """Every entry of ``W[pre, post]``, zeros included (a zero weight is still a synapse word on the chip)."""
    w = _matrix(dense_weights, "connection_list_from_dense_weights")
    pre, post = np.indices(w.shape).reshape(2, -1)
    return _rows(pre, post, w.ravel(), delay)


def sparse_connection_list_from_dense_weights(dense_weights: Any, delay: int) -> list[list]:
    """Return the connection list of the non-zero entries of ``W[pre, post]`` only."""
    w = _matrix(dense_weights, "sparse_connection_list_from_dense_weights")
    pre, post = np.nonzero(w)
    return _rows(pre, post, w[pre, post], delay)


def connection_list_for_sumpool2d(
    input_shape: Sequence[int],
    stride: Any,
    kernel_size: Any,
    padding: Any = 0,
    delay: int = 0,
    data_order: str = "torch",
) -> tuple[list[list], tuple[int, int, int]]:
    """Return a sum-pool as weight-1 connections: input ``(C, H, W)`` -> output ``(C, OH, OW)``.

    ``OH = (H + 2*pad_h - k_h) // stride_h + 1`` (likewise OW); a padded position connects nowhere.

    Returns
    -------
    (connections, output_shape)
    """
    c, h, w = _shape3(input_shape)
    (kh, kw), (sh, sw), (ph, pw) = (
        _pair(v, n) for v, n in ((kernel_size, "kernel_size"), (stride, "stride"), (padding, "padding"))
    )
    if data_order not in DATA_ORDERS:
        raise ConfigError(f"connection_list_for_sumpool2d: data_order {data_order!r} is not one of {DATA_ORDERS}")
    if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
        raise ConfigError(
            f"connection_list_for_sumpool2d: kernel {kh}x{kw} and stride {sh}x{sw} must be at least "
            f"1, padding {ph}x{pw} at least 0"
        )
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise ConfigError(
            f"connection_list_for_sumpool2d: kernel {kh}x{kw} does not fit the padded input {h + 2 * ph}x{w + 2 * pw}"
        )
    ch, oy, ox, ky, kx = np.meshgrid(
        np.arange(c), np.arange(oh), np.arange(ow), np.arange(kh), np.arange(kw), indexing="ij"
    )
    y, x = oy * sh - ph + ky, ox * sw - pw + kx
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    ch, y, x, oy, ox = ch[inside], y[inside], x[inside], oy[inside], ox[inside]
    pre = _flat(ch, y, x, (c, h, w), data_order)
    post = _flat(ch, oy, ox, (c, oh, ow), data_order)
    return _rows(pre, post, np.ones(pre.size, dtype=np.int64), delay), (c, oh, ow)


def join_conn_lists(conns_a: Any, conns_b: Any) -> list[list]:
    """Compose ``a`` (pre -> mid) and ``b`` (mid -> post) into one list pre -> post.

    The weight of a pair is the sum over mid neurons of ``w_a * w_b`` (a sum-pool followed by a dense layer
    becomes one projection); its delay is ``b``'s. Pairs ``b`` reaches through different delays are an error.
    """
    a, b = _conns(conns_a, "join_conn_lists: conns_a"), _conns(conns_b, "join_conn_lists: conns_b")
    b = b[np.argsort(b[:, 0], kind="stable")]
    starts = np.searchsorted(b[:, 0], a[:, 1], side="left")
    counts = np.searchsorted(b[:, 0], a[:, 1], side="right") - starts
    rows_a = np.repeat(np.arange(len(a)), counts)  # every (a row, b row) pair meeting at a mid neuron
    rows_b = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts - starts, counts)
    pre, post = a[rows_a, 0].astype(np.int64), b[rows_b, 1].astype(np.int64)
    delay = b[rows_b, 3].astype(np.int64)
    keys, inverse = np.unique(np.stack([pre, post], axis=1).reshape(-1, 2), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    first = np.empty(len(keys), dtype=np.int64)
    first[inverse[::-1]] = delay[::-1]
    clash = np.flatnonzero(first[inverse] != delay)
    if clash.size:
        k = int(clash[0])
        raise ConfigError(
            f"join_conn_lists: pre {pre[k]} reaches post {post[k]} through connections of different "
            "delays; one synapse has one delay"
        )
    summed = np.bincount(inverse, weights=a[rows_a, 2] * b[rows_b, 2], minlength=len(keys))
    return _rows(keys[:, 0], keys[:, 1], summed, first)


def _matrix(weights: Any, where: str) -> np.ndarray:
    w = np.asarray(weights)
    if w.ndim != 2 or w.dtype.kind not in "iuf":
        raise ConfigError(f"{where}: expected a 2-D numeric matrix W[pre, post], got shape {w.shape} of {w.dtype}")
    return w


def _conns(conns: Any, where: str) -> np.ndarray:
    arr = np.asarray(conns, dtype=np.float64) if len(conns) else np.zeros((0, 4))
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ConfigError(f"{where}: expected rows [pre, post, weight, delay], got shape {arr.shape}")
    return arr


def _rows(pre: np.ndarray, post: np.ndarray, weight: np.ndarray, delay: Any) -> list[list]:
    if np.ndim(delay) == 0:
        delay = np.full(len(pre), as_index(delay, "delay"), dtype=np.int64)
    return [
        [int(i), int(j), w.item() if hasattr(w, "item") else w, int(d)]
        for i, j, w, d in zip(pre, post, weight, delay, strict=True)
    ]


def _shape3(shape: Sequence[int]) -> tuple[int, int, int]:
    dims = [as_index(d, "input_shape entry") for d in np.ravel(shape)]
    if len(dims) != 3 or min(dims) < 1:
        raise ConfigError(f"input_shape must be (C, H, W) of positive sizes, got {tuple(dims)}")
    return dims[0], dims[1], dims[2]


def _pair(value: Any, name: str) -> tuple[int, int]:
    vals = [as_index(v, name) for v in np.ravel(value)]
    if len(vals) == 1:
        return vals[0], vals[0]
    if len(vals) != 2:
        raise ConfigError(f"{name} must be an int or a pair, got {value!r}")
    return vals[0], vals[1]


def _flat(c: np.ndarray, y: np.ndarray, x: np.ndarray, shape: tuple[int, int, int], order: str) -> np.ndarray:
    nc, h, w = shape
    return c * h * w + y * w + x if order == "torch" else y * w * nc + x * nc + c
