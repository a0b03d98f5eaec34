"""Shape inference over the graph: every node's input and output shape.

Shapes start from the Input nodes' declared shapes and follow each node family's rule.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConversionError
from ..spec import MAX_POPULATION_SIZE, numeric_array
from .affine import _affine_shapes
from .conv import _conv_in_shape, _conv_out_shape
from .graph import _INDEX_MAX, _NEURON_TYPES, _kind
from .neurons import _neuron_shape
from .pooling import _pool_out_shape


def _declared_input_shape(name: str, node: Any) -> tuple[int, ...] | None:
    types = getattr(node, "input_type", None) or {}
    if not isinstance(types, Mapping):
        raise ConversionError(f"node {name!r}: Input input_type must be a dict {{'input': shape}}, got "
                              f"{type(types).__name__}")
    shape = types.get("input")
    if shape is None:
        return None
    where = f"node {name!r}: Input shape"
    arr = numeric_array(shape, where, "a list of positive ints", ConversionError).ravel()
    if arr.size == 0:
        return None
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or np.any(arr < 1):
        raise ConversionError(f"{where} {arr.tolist()} must be a list of positive ints")
    return _checked_size(name, "Input", tuple(int(min(x, _INDEX_MAX)) for x in arr))


def _checked_size(name: str, kind: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A population's shape, refused when it holds more neurons than a population may (before anything is sized
    from it)."""
    n = int(np.prod(shape, dtype=np.float64))
    if n > MAX_POPULATION_SIZE:
        raise ConversionError(f"node {name!r}: {kind} of shape {tuple(shape)} has {n} neurons, more than s2sim's "
                              f"limit of {MAX_POPULATION_SIZE} per population")
    return shape


def _infer_shapes(nodes: dict[str, Any], edges: list[tuple[str, str]]) -> tuple[dict, dict]:
    """Input and output shape of every node, propagated from Input nodes (and neuron parameters)."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        preds[b].append(a)
    in_shape: dict[str, tuple[int, ...]] = {}
    out_shape: dict[str, tuple[int, ...]] = {}
    for name, node in nodes.items():
        if _kind(node) == "Input":
            shape = _declared_input_shape(name, node)
            if shape is None:
                raise ConversionError(f"node {name!r}: Input has no shape")
            in_shape[name] = out_shape[name] = shape
    for _ in range(len(nodes) + 1):
        progress = False
        for name, node in nodes.items():
            known = [out_shape[p] for p in preds[name] if p in out_shape]
            if name not in out_shape and known:
                in_shape[name] = known[0]
                out_shape[name] = _out_shape(name, node, known[0])
                progress = True
        if not progress:
            # a neuron fed only through a loop (or by nothing) takes its size from its parameters
            pending = [n for n, node in nodes.items() if n not in out_shape and _kind(node) in _NEURON_TYPES]
            if not pending:
                break
            first = pending[0]
            shape = _checked_size(first, _kind(nodes[first]), _neuron_shape(first, nodes[first], None))
            out_shape[first] = in_shape[first] = shape
    for name, node in nodes.items():
        if name not in out_shape:
            raise ConversionError(f"node {name!r}: not reachable from any Input node; its shape cannot be inferred")
    for a, b in edges:
        _check_edge_shape(a, b, nodes[b], out_shape[a], in_shape[b])
    return in_shape, out_shape


def _out_shape(name: str, node: Any, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    kind = _kind(node)
    if kind in _NEURON_TYPES:
        return _checked_size(name, kind, _neuron_shape(name, node, in_shape))
    if kind in ("Affine", "Linear"):
        n_in, n_out = _affine_shapes(name, node)
        if int(np.prod(in_shape)) != n_in:
            raise ConversionError(f"node {name!r}: {kind} takes {n_in} inputs but its input has shape "
                                  f"{tuple(in_shape)} ({int(np.prod(in_shape))} values)")
        return (n_out,)
    if kind == "Conv2d":
        return _conv_out_shape(name, node, _conv_in_shape(name, node, in_shape))
    if kind in ("SumPool2d", "AvgPool2d"):
        return _pool_out_shape(name, node, in_shape)
    if kind == "Flatten":
        return (int(np.prod(in_shape)),)
    return tuple(in_shape)  # Output


def _check_edge_shape(a: str, b: str, node_b: Any, out_a: tuple[int, ...], in_b: tuple[int, ...]) -> None:
    na, nb = int(np.prod(out_a)), int(np.prod(in_b))
    if na != nb or (_kind(node_b) in ("SumPool2d", "AvgPool2d") and tuple(out_a) != tuple(in_b)):
        raise ConversionError(f"shape mismatch on edge {a!r} -> {b!r}: {a!r} outputs shape {tuple(out_a)} ({na} "
                              f"values) but {b!r} takes shape {tuple(in_b)} ({nb} values)")
