"""Loading and normalising a NIR graph.

Reading a file, flattening nested subgraphs, the node types s2sim converts, and the checks of edges and node
attributes before any shape is inferred.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import memory
from ..errors import ConversionError, ResourceError, TraceError
from ..spec import numeric_array


def _nir():
    import nir  # noqa: PLC0415 - nir pulls in h5py; keep it out of `import s2sim`

    return nir


def _load(src: Any, isolate: bool = False) -> tuple[Any, str]:
    nir = _nir()
    if isinstance(src, nir.NIRGraph):
        return src, "<graph>"
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        if not os.path.isfile(path):
            raise TraceError(f"NIR file {path!r} does not exist")
        if isolate:
            from ..isolation import call_isolated

            return call_isolated(read_nir_file, path, what=f"NIR file {path!r}"), path
        return read_nir_file(path), path
    raise ConversionError(f"from_nir expects a nir.NIRGraph or a file path, got {type(src).__name__}")


def read_nir_file(path: str) -> Any:
    """``nir.read`` after checking the memory the file's arrays declare; any failure becomes a TraceError."""
    import h5py

    nir = _nir()
    try:
        with h5py.File(path, "r") as f:
            declared = memory.hdf5_bytes(f)
    except Exception as exc:  # h5py raises OSError, KeyError, RuntimeError, ... on damaged files
        raise TraceError(f"NIR file {path!r} cannot be read as HDF5 ({type(exc).__name__}: {exc}); it is "
                         "truncated or not HDF5") from None
    memory.check(declared, f"reading NIR file {path!r} (the arrays it declares)")
    try:
        return nir.read(path, type_check=False)
    except MemoryError:
        raise ResourceError(f"NIR file {path!r}: reading it needs more memory than is available") from None
    except Exception as exc:  # nir and h5py raise OSError, KeyError, ValueError, AssertionError, ... on bad files
        raise TraceError(f"NIR file {path!r} cannot be read ({type(exc).__name__}: {exc}); it is truncated, "
                         "damaged or not a NIR graph") from None


def _flatten(graph: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Inline nested NIRGraphs (children named ``outer.inner``) and splice out their Input/Output nodes."""
    nir = _nir()
    if not isinstance(getattr(graph, "nodes", None), Mapping):
        raise ConversionError(f"graph nodes must be a dict name -> node, got {type(graph.nodes).__name__}")
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    ports: dict[str, tuple[list[str], list[str]]] = {}
    for name, node in graph.nodes.items():
        name = _edge_name(name)
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = _flatten(node)
            nodes.update({f"{name}.{k}": n for k, n in sub_nodes.items()})
            edges.extend((f"{name}.{a}", f"{name}.{b}") for a, b in sub_edges)
            ports[name] = ([f"{name}.{k}" for k, n in sub_nodes.items() if isinstance(n, nir.Input)],
                           [f"{name}.{k}" for k, n in sub_nodes.items() if isinstance(n, nir.Output)])
        else:
            nodes[name] = node
    for a, b in _edge_pairs(graph):
        for src in (ports[a][1] if a in ports else [a]):
            for dst in (ports[b][0] if b in ports else [b]):
                edges.append((src, dst))
    for inner in [n for sub in ports.values() for n in sub[0] + sub[1]]:
        preds = [a for a, b in edges if b == inner]
        succs = [b for a, b in edges if a == inner]
        edges = [e for e in edges if inner not in e] + [(p, s) for p in preds for s in succs]
        del nodes[inner]
    return nodes, list(dict.fromkeys(edges))


def _edge_pairs(graph: Any) -> list[tuple[str, str]]:
    try:
        pairs = [tuple(edge) for edge in graph.edges]
    except TypeError:
        raise ConversionError(f"graph edges must be a list of (source, target) node names, got "
                              f"{type(graph.edges).__name__}") from None
    bad = next((e for e in pairs if len(e) != 2 or not all(isinstance(x, (str, bytes, np.str_, np.bytes_))
                                                            for x in e)), None)
    if bad is not None:
        raise ConversionError(f"graph edge {bad!r} is not a (source, target) pair of node names")
    return [(_edge_name(a), _edge_name(b)) for a, b in pairs]


def _edge_name(x: Any) -> str:
    return x.decode(errors="replace") if isinstance(x, bytes) else str(x)


_NEURON_TYPES = ("LIF", "IF", "CubaLIF")


_OP_TYPES = ("Affine", "Linear", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten")


_WEIGHT_TYPES = ("Affine", "Linear", "Conv2d")


_ALTERNATIVES = {
    "MaxPool2d": "max pooling has no SpiNNaker2 equivalent; retrain with AvgPool2d or SumPool2d",
    "MaxPool1d": "max pooling has no SpiNNaker2 equivalent; retrain with AvgPool2d or SumPool2d",
    "Conv1d": "express it as a Conv2d with a kernel of height 1",
    "Threshold": "use an IF neuron (r = 1, v_threshold = threshold) instead",
    "LI": "a leaky integrator without spikes cannot be read out; use LIF and record 'v'",
    "CubaLI": "a leaky integrator without spikes cannot be read out; use CubaLIF and record 'v'",
    "I": "an integrator without spikes cannot be read out; use IF and record 'v'",
    "Scale": "multiply the scale into the preceding weight layer",
    "Delay": "use ConversionConfig.conn_delay (one delay for every connection)",
}


def _kind(node: Any) -> str:
    return type(node).__name__


def _check_supported(nodes: dict[str, Any]) -> None:
    known = set(_NEURON_TYPES) | set(_OP_TYPES) | {"Input", "Output"}
    for name, node in nodes.items():
        kind = _kind(node)
        if kind not in known:
            advice = _ALTERNATIVES.get(kind, f"supported nodes are {sorted(known)}")
            raise ConversionError(f"node {name!r}: NIR {kind} is not supported on SpiNNaker2; {advice}")


def _check_edges(nodes: dict[str, Any], edges: list[tuple[str, str]]) -> None:
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise ConversionError(f"edge ({a!r}, {b!r}) refers to node {end!r}, which is not in the graph "
                                      f"(nodes: {sorted(nodes)})")
        if _kind(nodes[b]) == "Input":
            raise ConversionError(f"edge ({a!r}, {b!r}) leads into Input node {b!r}")
        if _kind(nodes[a]) == "Output":
            raise ConversionError(f"edge ({a!r}, {b!r}) leaves Output node {a!r}")


def _pair(value: Any, name: str, what: str, minimum: int = 0) -> tuple[int, int]:
    """An int or a pair of ints, each at least ``minimum`` (strings, booleans, NaN and fractions refused)."""
    where = f"node {name!r}: {what}"
    arr = numeric_array(value, where, "an int or a pair of ints", ConversionError).ravel()
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise ConversionError(f"{where} = {value!r} must be an int or a pair of ints")
    if np.any(arr < minimum) or np.any(arr > _INDEX_MAX):
        raise ConversionError(f"{where} = {value!r} must be between {minimum} and {_INDEX_MAX}")
    return int(arr[0]), int(arr[1])


def _count(value: Any, name: str, what: str) -> int:
    """A positive int attribute (Conv2d groups); None means 1."""
    return 1 if value is None else _pair(value, name, what, 1)[0]


#: Largest stride, padding or shape entry accepted in a graph (the C core indexes with int32).
_INDEX_MAX = 2**31 - 1


#: Numeric attributes of each node type, checked once before anything is computed from them.
NUMERIC_ATTRIBUTES = {
    "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
    "IF": ("r", "v_threshold", "v_reset"),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
    "Affine": ("weight", "bias"),
    "Linear": ("weight",),
    "Conv2d": ("weight", "bias"),
}


#: Dimensions of the weight of each weight node type.
_WEIGHT_NDIM = {"Affine": 2, "Linear": 2, "Conv2d": 4}


def _check_values(nodes: dict[str, Any]) -> None:
    """Every weight, bias and neuron parameter is a finite real array (no strings, booleans, complex numbers), and
    every weight a non-empty array of the right dimensions."""
    for name, node in nodes.items():
        kind = _kind(node)
        for key in NUMERIC_ATTRIBUTES.get(kind, ()):
            value = getattr(node, key, None)
            if value is None:
                continue
            arr = numeric_array(value, f"node {name!r}: {kind} parameter {key!r}", "an array of real numbers",
                                ConversionError)
            if not np.all(np.isfinite(arr)):
                raise ConversionError(f"node {name!r}: {kind} parameter {key!r} contains NaN or inf")
        if kind in _WEIGHT_NDIM:
            shape = np.shape(getattr(node, "weight", None))
            if getattr(node, "weight", None) is None or len(shape) != _WEIGHT_NDIM[kind] or 0 in shape:
                raise ConversionError(f"node {name!r}: {kind} weight has shape {shape}; expected a non-empty array "
                                      f"of {_WEIGHT_NDIM[kind]} dimensions")
