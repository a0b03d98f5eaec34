"""The weight-matrix nodes (Affine, Linear): shapes and connection lists."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConversionError
from .graph import _kind
from .synapses import _Synapses


def _affine_shapes(name: str, node: Any) -> tuple[int, int]:
    w = np.asarray(node.weight)
    if w.ndim != 2 or 0 in w.shape:
        raise ConversionError(f"node {name!r}: {_kind(node)} weight has shape {w.shape}; expected a non-empty "
                              "(out, in)")
    if _kind(node) == "Affine":
        b = np.asarray(node.bias)
        if b.size != w.shape[0]:
            raise ConversionError(f"node {name!r}: bias has {b.size} values, weight has {w.shape[0]} outputs")
    return int(w.shape[1]), int(w.shape[0])


def _affine_synapses(node: Any) -> _Synapses:
    w = np.asarray(node.weight, dtype=np.float64)
    n_out, n_in = w.shape
    bias = np.asarray(node.bias, dtype=np.float64).ravel() if _kind(node) == "Affine" else np.zeros(n_out)
    pre = np.repeat(np.arange(n_in, dtype=np.int64), n_out)
    post = np.tile(np.arange(n_out, dtype=np.int64), n_in)
    return _Synapses(pre, post, w.T.ravel().copy(), n_in, n_out, bias)
