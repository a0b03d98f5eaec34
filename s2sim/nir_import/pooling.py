"""The pooling nodes (SumPool2d, AvgPool2d): geometry, shapes, and the pool as a connection list."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConversionError
from .graph import _kind, _pair
from .synapses import _Synapses


def _pool_geometry(name: str, node: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    kernel = _pair(node.kernel_size, name, "kernel_size", 1)
    stride = _pair(kernel if getattr(node, "stride", None) is None else node.stride, name, "stride", 1)
    padding = _pair(getattr(node, "padding", 0) if getattr(node, "padding", None) is not None else 0, name, "padding")
    if kernel != stride:
        raise ConversionError(f"node {name!r}: {_kind(node)} with kernel_size {kernel} != stride {stride} is not "
                              "supported; SpiNNaker2 pools non-overlapping windows (use stride == kernel_size)")
    if padding != (0, 0):
        raise ConversionError(f"node {name!r}: {_kind(node)} with padding {padding} is not supported; use padding 0")
    return kernel, stride


def _pool_out_shape(name: str, node: Any, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise ConversionError(f"node {name!r}: {_kind(node)} needs a (C, H, W) input, got shape {tuple(in_shape)}")
    (kh, kw), _ = _pool_geometry(name, node)
    c, h, w = in_shape
    if h < kh or w < kw:
        raise ConversionError(f"node {name!r}: pool kernel {kh}x{kw} is larger than its input {h}x{w}")
    return (int(c), h // kh, w // kw)


def _pool_synapses(name: str, node: Any, in_shape: tuple[int, int, int]) -> _Synapses:
    (kh, kw), _ = _pool_geometry(name, node)
    c, h, w = in_shape
    oh, ow = h // kh, w // kw
    cc, yy, xx = np.meshgrid(np.arange(c), np.arange(oh * kh), np.arange(ow * kw), indexing="ij")
    pre = (cc * h * w + yy * w + xx).ravel().astype(np.int64)
    post = (cc * oh * ow + (yy // kh) * ow + xx // kw).ravel().astype(np.int64)
    factor = 1.0 / (kh * kw) if _kind(node) == "AvgPool2d" else 1.0
    return _Synapses(pre, post, np.full(pre.size, factor), c * h * w, c * oh * ow, np.zeros(c * oh * ow))
