"""NIR graph -> s2sim network, following py-spinnaker2's ``s2_nir.from_nir`` and fixing where it is weak.

Parameter mapping (docs: spinnaker2-datapath.md section 6; ``k``/``alpha`` from the integrator):

* FORWARD: ``k = dt/tau``, ``alpha = 1 - dt/tau``; EXPONENTIAL: ``k = 1 - exp(-dt/tau)``, ``alpha = exp(-dt/tau)``.
* ``w_scale = 1``, or with ``scale_weights`` ``limit / max|W|`` (``limit / percentile(|W|, p)``) over every weight
  feeding the population; ``limit`` is the target model's weight limit (127 for the no-delay and conv models,
  15 for the models with a delay field; py-spinnaker2 hard-codes 127).
* LIF: ``alpha_decay = alpha``, ``S = w_scale / (k r)``, ``threshold = v_threshold S``,
  ``i_offset = k v_leak S + bias w_scale``.  IF: ``alpha_decay = 1``, ``S = w_scale / r``, ``i_offset = bias w_scale``.
  CubaLIF: ``exc_decay = inh_decay = alpha(tau_syn)``, ``S = w_scale / (k_mem r k_syn w_in)``,
  ``i_offset = k_mem v_leak S + bias w_scale / k_syn`` (the bias enters V instead of the synaptic current: exact
  in steady state, not during the first ticks).  ``V_nir = V_chip / S`` (``Population.voltage_scale``).
* NIR ``v_reset`` maps to ``v_reset = v_reset_nir S`` (py-spinnaker2 ignores it).
* Weights stay float (``W w_scale``); ChipProfile.weight_rounding makes them integers at simulation.

Where s2sim differs from py-spinnaker2 (each is also written into the ConversionReport):

* conv ``stride_y = stride[0]`` (NIR/torch H axis), ``stride_x = stride[1]``; py-spinnaker2 swaps them.
* AvgPool2d = sum-pool whose ``1/(kH kW)`` factor is multiplied into the next weights (the conv kernel, the affine
  matrix, or the pool's own unit weights when it feeds a neuron); exact only where the scaled weight is an integer.
* Two weight layers in a row are fused (``fuse_weight_layers``) when the product fits the chip range.
* ``conn_delay > 0`` selects the models with a delay field (``lif``, ``lif_curr_exp``), since the no-delay models
  cannot hold one; conv projections need ``conn_delay = 0``.
* Missing shapes are inferred; scalar or size-1 neuron parameters are broadcast; nested subgraphs (snnTorch's
  RLeaky) are flattened.
* Graph metadata ``dt``, ``reset_mechanism`` (or ``reset``) and ``integrator`` override the config when
  ``use_metadata`` is set; graphs written by :func:`s2sim.nir_export.to_nir` are restored exactly.
"""
from __future__ import annotations

import enum
import math
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable, Literal, Mapping, NamedTuple

import numpy as np

from . import memory, snn
from .conversion_report import (REPORTED_ROUNDINGS, ConversionReport, ParameterMapping, PopulationReport,
                                ProjectionReport, WeightRounding)
from .errors import ConversionError, MetadataWarning, ResourceError, TimeConstantWarning, TraceError, warn
from .lowering import check_weight_loss
from .models import CONV_WEIGHT_MAX, CONV_WEIGHT_MIN, MODELS
from .spec import DIAGNOSTIC_RECORDABLES, MAX_POPULATION_SIZE, RECORDABLES, numeric_array

__all__ = ["Integrator", "Reset", "ConversionConfig", "Conversion", "convert", "from_nir"]

#: Metadata key that marks a graph written by s2sim.nir_export (value: format version).
S2SIM_FORMAT_KEY = "s2sim_format"
S2SIM_FORMAT_VERSION = 1


class Integrator(str, enum.Enum):
    """How NIR's continuous time constants become per-tick decays."""

    FORWARD = "forward"
    EXPONENTIAL = "exponential"


class Reset(str, enum.Enum):
    """Reset mechanism of the chip populations."""

    SUBTRACT = "subtract"
    ZERO = "zero"


CHIP_RESET = {Reset.SUBTRACT: "reset_by_subtraction", Reset.ZERO: "reset_to_v_reset"}
_RESET_ALIASES = {"subtract": Reset.SUBTRACT, "zero": Reset.ZERO, "reset_by_subtraction": Reset.SUBTRACT,
                  "reset_to_v_reset": Reset.ZERO}


@dataclass(frozen=True)
class ConversionConfig:
    """NIR -> SpiNNaker2 conversion settings (py-spinnaker2's fields and defaults, plus s2sim's own).

    Parameters
    ----------
    dt : float or None
        Discretisation step in the graph's time unit (seconds for snnTorch graphs: 1e-4). None (the default):
        the graph's ``dt`` metadata, else py-spinnaker2's default 1.0 with a MetadataWarning.
    output_record : tuple of str
        What output populations record ("spikes", "v", "v_last", "counts").
    conn_delay : int
        Delay field of every connection-list projection. 0 selects the no-delay models (weights -127..127),
        1..7 the models with a delay field (weights -15..15). Conv projections need 0.
    scale_weights : bool
        Scale the weights feeding each population to its weight limit.
    weight_scale_percentile : float
        With ``scale_weights``: scale so that this percentile of ``|W|`` maps to the limit (100 = max).
        Below 100 some weights exceed the range: use ``on_overflow="clip"``.
    integrator : Integrator
        FORWARD (exact for snnTorch graphs) or EXPONENTIAL (py-spinnaker2's default).
    reset : Reset
        SUBTRACT -> "reset_by_subtraction", ZERO -> "reset_to_v_reset".
    on_overflow : {"error", "clip"}
        A weight whose magnitude exceeds the chip range even when truncated: "error" raises ConversionError,
        "clip" clips it into the range and counts it in the report. Nothing ever wraps.
    fuse_weight_layers : bool
        Fuse two weight layers in a row into one projection when the product fits the chip range.
    use_metadata : bool
        Let graph metadata (``dt``, ``reset_mechanism``/``reset``, ``integrator``) override the fields above.
    strict : bool
        Raise ConversionError instead of warning (WeightLossWarning, TimeConstantWarning, MetadataWarning): no
        graph converts with weights that all round to zero, a time constant shorter than ``dt`` or an assumed
        ``dt``.
    """

    dt: float | None = None
    output_record: tuple[str, ...] = ("spikes",)
    conn_delay: int = 1
    scale_weights: bool = False
    weight_scale_percentile: float = 100.0
    integrator: Integrator = Integrator.EXPONENTIAL
    reset: Reset = Reset.SUBTRACT
    on_overflow: Literal["error", "clip"] = "error"
    fuse_weight_layers: bool = True
    use_metadata: bool = True
    strict: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for flag in ("scale_weights", "fuse_weight_layers", "use_metadata", "strict"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise ConversionError(f"ConversionConfig.{flag} = {getattr(self, flag)!r} must be True or False")
        try:
            # py-spinnaker2 users write the enum name ("FORWARD"); accept it in any case
            name = self.integrator.lower() if isinstance(self.integrator, str) else self.integrator
            set_(self, "integrator", Integrator(name))
        except ValueError:
            raise ConversionError(f"ConversionConfig.integrator = {self.integrator!r} is not one of "
                                  f"{[i.value for i in Integrator]}") from None
        reset = _RESET_ALIASES.get(self.reset.value if isinstance(self.reset, Reset) else str(self.reset).lower())
        if reset is None:
            raise ConversionError(f"ConversionConfig.reset = {self.reset!r} is not one of {[r.value for r in Reset]}")
        set_(self, "reset", reset)
        record = (self.output_record,) if isinstance(self.output_record, str) else tuple(self.output_record)
        known = RECORDABLES + DIAGNOSTIC_RECORDABLES
        bad = [r for r in record if r not in known]
        if bad:
            raise ConversionError(f"ConversionConfig.output_record: unknown {bad}; known {known}")
        set_(self, "output_record", record)
        if self.dt is not None and not _positive_real(self.dt):
            raise ConversionError(f"ConversionConfig.dt = {self.dt!r} must be a positive finite number or None")
        if isinstance(self.conn_delay, bool) or not isinstance(self.conn_delay, (int, np.integer)) \
                or not 0 <= self.conn_delay <= 7:
            raise ConversionError(f"ConversionConfig.conn_delay = {self.conn_delay!r} must be an int 0..7")
        if not _real(self.weight_scale_percentile) or not 0 < self.weight_scale_percentile <= 100:
            raise ConversionError(f"ConversionConfig.weight_scale_percentile = {self.weight_scale_percentile!r} "
                                  "must be in (0, 100]")
        if self.on_overflow not in ("error", "clip"):
            raise ConversionError(f"ConversionConfig.on_overflow = {self.on_overflow!r} is not 'error' or 'clip'")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        out = asdict(self)
        out["integrator"] = self.integrator.value
        out["reset"] = self.reset.value
        out["output_record"] = list(self.output_record)
        return out


def _real(value: Any) -> bool:
    """A real number given as a number (not a bool, a string or a complex)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) \
        and math.isfinite(value)


def _positive_real(value: Any) -> bool:
    return _real(value) and value > 0


class Conversion(NamedTuple):
    """Result of :func:`convert`."""

    net: snn.Network
    input_pops: dict[str, snn.Population]
    output_pops: dict[str, snn.Population]
    report: ConversionReport


def from_nir(graph_or_path: Any, config: ConversionConfig | None = None, *, isolate: bool = False):
    """Convert a NIR graph (or a NIR HDF5 file) into an s2sim network.

    ``isolate=True`` reads a file in a child process (:mod:`s2sim.isolation`): a file that crashes or hangs the
    HDF5 library then raises TraceError instead of taking the interpreter down. Use it for files from elsewhere.

    Returns
    -------
    (net, input_pops, output_pops)
        ``input_pops`` / ``output_pops``: population name (= NIR node name) -> Population.
        The ConversionReport is attached as ``net.conversion_report``; every population carries
        ``voltage_scale`` (per-neuron S, ``V_nir = V_chip / S``; None for spike sources).

    Raises
    ------
    ConversionError
        The graph cannot be expressed on the chip (message names the node).
    TraceError
        The file is missing, truncated or not a NIR graph.
    ResourceError
        Reading or converting the graph would exceed the memory budget (:mod:`s2sim.memory`).

    Warns
    -----
    WeightLossWarning, TimeConstantWarning, MetadataWarning
        Weights that all round to zero, time constants shorter than dt, a graph without ``dt`` (errors with
        ``ConversionConfig(strict=True)``).
    """
    conv = convert(graph_or_path, config, isolate=isolate)
    return conv.net, conv.input_pops, conv.output_pops


def convert(graph_or_path: Any, config: ConversionConfig | None = None, *, isolate: bool = False) -> Conversion:
    """Like :func:`from_nir`, also returning the :class:`~s2sim.conversion_report.ConversionReport`."""
    config = ConversionConfig() if config is None else config
    if not isinstance(config, ConversionConfig):
        raise ConversionError(f"config must be a ConversionConfig, got {type(config).__name__}")
    graph, source = _load(graph_or_path, isolate)
    return _Converter(graph, source, config).run()


# ---------------------------------------------------------------------------------------------------------------
# loading and normalising the graph
# ---------------------------------------------------------------------------------------------------------------
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
            from .isolation import call_isolated

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


# ---------------------------------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------------------------------
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


def _neuron_param_arrays(name: str, node: Any) -> dict[str, np.ndarray]:
    keys = NUMERIC_ATTRIBUTES[_kind(node)]
    out = {}
    for key in keys:
        value = getattr(node, key, None)
        if value is None:
            if key in ("v_reset", "v_leak"):
                value = 0.0
            elif key == "w_in":
                value = 1.0
            else:
                raise ConversionError(f"node {name!r}: {_kind(node)} parameter {key!r} is missing")
        out[key] = np.asarray(value, dtype=np.float64)  # checked by _check_values
    return out


def _neuron_shape(name: str, node: Any, in_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    params = _neuron_param_arrays(name, node)
    if in_shape is not None:
        n = int(np.prod(in_shape))
        for key, arr in params.items():
            if arr.size not in (1, n):
                raise ConversionError(f"node {name!r}: parameter {key!r} has {arr.size} values but the node's input "
                                      f"has shape {tuple(in_shape)} ({n} values)")
        return tuple(in_shape)
    shapes = {arr.shape for arr in params.values() if arr.size > 1}
    if not shapes:
        raise ConversionError(f"node {name!r}: cannot infer its size: every parameter is a scalar and no input "
                              "with a known shape feeds it")
    sizes = {int(np.prod(s)) for s in shapes}
    if len(sizes) > 1:
        raise ConversionError(f"node {name!r}: parameters have different sizes {sorted(sizes)}")
    return max(shapes, key=len)


def _conv_geometry(name: str, node: Any) -> dict[str, Any]:
    w = np.asarray(node.weight)
    if w.ndim != 4 or 0 in w.shape:
        raise ConversionError(f"node {name!r}: Conv2d weight has shape {w.shape}; expected a non-empty "
                              "(C_out, C_in, kH, kW)")
    stride = _pair(node.stride, name, "stride", 1)
    dilation = _pair(getattr(node, "dilation", 1), name, "dilation", 1)
    groups = _count(getattr(node, "groups", 1), name, "groups")
    if w.shape[0] % groups:
        raise ConversionError(f"node {name!r}: Conv2d has {w.shape[0]} output channels, not a multiple of its "
                              f"{groups} groups")
    bias = getattr(node, "bias", None)
    if bias is not None and np.size(bias) not in (1, w.shape[0]):
        raise ConversionError(f"node {name!r}: Conv2d bias has {np.size(bias)} values for {w.shape[0]} output "
                              "channels")
    pad = node.padding
    kh, kw = w.shape[2:]
    if isinstance(pad, bytes):
        pad = pad.decode(errors="replace")
    if isinstance(pad, str) and pad == "valid":
        pads = (0, 0, 0, 0)
    elif isinstance(pad, str) and pad == "same":
        th, tw = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
        pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    else:
        ph, pw = _pair(pad, name, "padding")
        pads = (ph, ph, pw, pw)
    return {"stride": stride, "dilation": dilation, "groups": groups, "pads": pads}


def _conv_in_shape(name: str, node: Any, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
    c_in = np.asarray(node.weight).shape[1] * _count(getattr(node, "groups", 1), name, "groups")
    if len(in_shape) == 3:
        if in_shape[0] != c_in:
            raise ConversionError(f"node {name!r}: input has {in_shape[0]} channels, the Conv2d weight expects {c_in}")
        return tuple(int(x) for x in in_shape)
    spatial = getattr(node, "input_shape", None)
    if spatial is not None:
        h, w = _pair(spatial, name, "input_shape", 1)
        if int(np.prod(in_shape)) == c_in * h * w:
            return (c_in, h, w)
    raise ConversionError(f"node {name!r}: Conv2d needs a (C, H, W) input, got shape {tuple(in_shape)}")


def _conv_out_shape(name: str, node: Any, in_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    g = _conv_geometry(name, node)
    c_out, _, kh, kw = np.asarray(node.weight).shape
    _, h, w = in_shape
    oh = (h + g["pads"][0] + g["pads"][1] - g["dilation"][0] * (kh - 1) - 1) // g["stride"][0] + 1
    ow = (w + g["pads"][2] + g["pads"][3] - g["dilation"][1] * (kw - 1) - 1) // g["stride"][1] + 1
    if oh < 1 or ow < 1:
        raise ConversionError(f"node {name!r}: kernel {kh}x{kw} does not fit the padded input {h}x{w}")
    return (int(c_out), int(oh), int(ow))


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


# ---------------------------------------------------------------------------------------------------------------
# linear maps between populations (connection lists)
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class _Synapses:
    """A linear map on flat vectors as a list of (pre, post, weight) entries plus a bias; entries may be zero."""

    pre: np.ndarray
    post: np.ndarray
    w: np.ndarray
    n_in: int
    n_out: int
    bias: np.ndarray

    def linear(self, vec: np.ndarray) -> np.ndarray:
        """The map without its bias."""
        return np.bincount(self.post, weights=self.w * vec[self.pre], minlength=self.n_out)

    def apply(self, vec: np.ndarray) -> np.ndarray:
        return self.linear(vec) + self.bias


#: Peak bytes per neuron while converting: float64 NIR and chip parameters, biases, scales and their temporaries.
_NEURON_BYTES = 8 * 40
#: Peak bytes per synapse entry while building connection lists (index and weight arrays with their temporaries).
_ENTRY_BYTES = 128


def _compose(a: _Synapses, b: _Synapses, what: str = "composing two weight layers") -> _Synapses:
    """``b after a``; entries (i, k) exist where some path i -> j -> k exists; listed pre-major like py-spinnaker2."""
    order = np.argsort(b.pre, kind="stable")
    b_pre, b_post, b_w = b.pre[order], b.post[order], b.w[order]
    counts = np.bincount(b_pre, minlength=b.n_in)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    reps = counts[a.post]
    total = int(reps.sum())
    memory.check(total * _ENTRY_BYTES, f"{what} ({total} synapse entries)",
                 "Use fewer or smaller layers, or a conv geometry that converts without unrolling")
    offsets = np.arange(total) - np.repeat(np.cumsum(reps) - reps, reps)
    idx = np.repeat(starts[a.post], reps) + offsets
    pre = np.repeat(a.pre, reps)
    post = b_post[idx]
    w = np.repeat(a.w, reps) * b_w[idx]
    key = pre.astype(np.int64) * b.n_out + post
    uniq, inv = np.unique(key, return_inverse=True)
    merged = np.bincount(inv, weights=w, minlength=uniq.size)
    return _Synapses(uniq // b.n_out, uniq % b.n_out, merged, a.n_in, b.n_out,
                     b.apply(a.bias) if a.bias.any() else b.bias.copy())


def _identity(n: int) -> _Synapses:
    idx = np.arange(n, dtype=np.int64)
    return _Synapses(idx, idx.copy(), np.ones(n), n, n, np.zeros(n))


def _affine_synapses(node: Any) -> _Synapses:
    w = np.asarray(node.weight, dtype=np.float64)
    n_out, n_in = w.shape
    bias = np.asarray(node.bias, dtype=np.float64).ravel() if _kind(node) == "Affine" else np.zeros(n_out)
    pre = np.repeat(np.arange(n_in, dtype=np.int64), n_out)
    post = np.tile(np.arange(n_out, dtype=np.int64), n_in)
    return _Synapses(pre, post, w.T.ravel().copy(), n_in, n_out, bias)


def _pool_synapses(name: str, node: Any, in_shape: tuple[int, int, int]) -> _Synapses:
    (kh, kw), _ = _pool_geometry(name, node)
    c, h, w = in_shape
    oh, ow = h // kh, w // kw
    cc, yy, xx = np.meshgrid(np.arange(c), np.arange(oh * kh), np.arange(ow * kw), indexing="ij")
    pre = (cc * h * w + yy * w + xx).ravel().astype(np.int64)
    post = (cc * oh * ow + (yy // kh) * ow + xx // kw).ravel().astype(np.int64)
    factor = 1.0 / (kh * kw) if _kind(node) == "AvgPool2d" else 1.0
    return _Synapses(pre, post, np.full(pre.size, factor), c * h * w, c * oh * ow, np.zeros(c * oh * ow))


def _conv_synapses(name: str, node: Any, in_shape: tuple[int, int, int]) -> _Synapses:
    g = _conv_geometry(name, node)
    weight = np.asarray(node.weight, dtype=np.float64)
    c_out, c_in_g, kh, kw = weight.shape
    c_in, h, w = in_shape
    _, oh, ow = _conv_out_shape(name, node, in_shape)
    out_per_group = c_out // g["groups"]
    co, ci, ky, kx, oy, ox = np.meshgrid(np.arange(c_out), np.arange(c_in_g), np.arange(kh), np.arange(kw),
                                         np.arange(oh), np.arange(ow), indexing="ij")
    iy = oy * g["stride"][0] - g["pads"][0] + ky * g["dilation"][0]
    ix = ox * g["stride"][1] - g["pads"][2] + kx * g["dilation"][1]
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    cin_abs = (co // out_per_group) * c_in_g + ci
    pre = (cin_abs * h * w + iy * w + ix)[ok].astype(np.int64)
    post = (co * oh * ow + oy * ow + ox)[ok].astype(np.int64)
    wv = weight[co, ci, ky, kx][ok]
    order = np.lexsort((post, pre))
    bias = getattr(node, "bias", None)
    bias = np.zeros(c_out) if bias is None else np.broadcast_to(np.asarray(bias, np.float64).ravel(), (c_out,))
    return _Synapses(pre[order], post[order], wv[order], c_in * h * w, c_out * oh * ow, np.repeat(bias, oh * ow))


# ---------------------------------------------------------------------------------------------------------------
# the converter
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class _Chain:
    """A path source population -> ops -> target population (or an Output node when target is None)."""

    source: str
    ops: tuple[str, ...]
    target: str | None
    output: str | None = None


@dataclass
class _Plan:
    """One projection to build into a target population."""

    chain: _Chain
    kind: str  # "conv2d" or "connection_list"
    weights: np.ndarray  # NIR units: conv kernel [C_in, C_out, kH, kW] or connection weights
    pre_idx: np.ndarray | None = None
    post_idx: np.ndarray | None = None
    delays: np.ndarray | None = None
    conv_params: dict[str, int] | None = None
    bias_terms: list[tuple[tuple[str, ...], np.ndarray]] = field(default_factory=list)
    weight_nodes: tuple[str, ...] = ()
    name: str = ""
    notes: list[str] = field(default_factory=list)
    w_scale: float = 1.0


_META_ONLY_PARAMS = ("v_init", "t_refrac", "inh_decay")


class _Converter:
    def __init__(self, graph: Any, source: str, config: ConversionConfig) -> None:
        self.source = source
        self.notes: list[str] = []
        self.metadata = _clean_metadata(getattr(graph, "metadata", None) or {})
        self.s2sim_format = self.metadata.get(S2SIM_FORMAT_KEY) is not None
        self.config = self._effective_config(config)
        self.nodes, self.edges = _flatten(graph)
        if any("." in n for n in self.nodes) and any(_kind(n) == "NIRGraph" for n in graph.nodes.values()):
            self.notes.append("nested subgraphs were flattened; their nodes are named 'outer.inner'")
        _check_edges(self.nodes, self.edges)
        _check_supported(self.nodes)
        _check_values(self.nodes)
        self.in_shape, self.out_shape = _infer_shapes(self.nodes, self.edges)
        self.succ: dict[str, list[str]] = {n: [] for n in self.nodes}
        for a, b in self.edges:
            self.succ[a].append(b)
        self.order = {n: i for i, n in enumerate(self.nodes)}
        self.depth = _depths(self.nodes, self.succ)

    # -- configuration ------------------------------------------------------------------------------------
    def _effective_config(self, config: ConversionConfig) -> ConversionConfig:
        md = self.metadata if config.use_metadata else {}
        changes: dict[str, Any] = {}
        if "dt" in md:
            if not _positive_real(md["dt"]):
                raise ConversionError(f"graph metadata dt = {md['dt']!r} must be a positive finite number")
            changes["dt"] = float(md["dt"])
        reset = md.get("reset_mechanism", md.get("reset"))
        if reset is not None:
            if not isinstance(reset, str) or reset not in _RESET_ALIASES:
                raise ConversionError(f"graph metadata reset = {reset!r} is not one of {sorted(_RESET_ALIASES)}")
            changes["reset"] = _RESET_ALIASES[reset]
        if "integrator" in md:
            if md["integrator"] not in [i.value for i in Integrator]:
                raise ConversionError(f"graph metadata integrator = {md['integrator']!r} is not one of "
                                      f"{[i.value for i in Integrator]}")
            changes["integrator"] = Integrator(md["integrator"])
        if self.s2sim_format and config.use_metadata:
            delay = md.get("conn_delay", 0)
            if not _real(delay) or delay != int(delay):
                raise ConversionError(f"graph metadata conn_delay = {delay!r} must be an int 0..7")
            changes["conn_delay"] = int(delay)
            changes["scale_weights"] = False
        new = replace(config, **changes)
        for key, value in changes.items():
            if getattr(config, key) != value:
                self.notes.append(f"{key} = {_plain(getattr(new, key))!r} taken from the graph metadata (config had "
                                  f"{_plain(getattr(config, key))!r}); set use_metadata=False to keep the config")
        if new.dt is None:
            where = "has no 'dt' metadata" if config.use_metadata else "is read with use_metadata=False"
            warn(MetadataWarning, f"NIR graph {self.source} {where} and ConversionConfig.dt is not set: dt = 1.0 "
                 "(py-spinnaker2's default) is assumed, so every time constant is read in ticks; set "
                 "ConversionConfig(dt=...) or --dt to the graph's time step (snnTorch graphs: 1e-4)", self.source,
                 strict=config.strict, error=ConversionError)
            new = replace(new, dt=1.0)
        return new

    # -- driver -------------------------------------------------------------------------------------------
    def run(self) -> Conversion:
        cfg = self.config
        report = ConversionReport(config=cfg.to_dict(), notes=self.notes)
        report.notes.append("conv stride: stride_y = NIR stride[0] (H axis), stride_x = NIR stride[1] (W axis); "
                            "py-spinnaker2 maps stride[0] to stride_x")
        pop_names = [n for n, node in self.nodes.items() if _kind(node) in _NEURON_TYPES + ("Input",)]
        neurons = sum(int(np.prod(self.out_shape[n], dtype=np.float64)) for n in pop_names)
        memory.check(neurons * _NEURON_BYTES, f"converting NIR graph {self.source}: parameters, biases and scales of "
                     f"{neurons} neurons")
        pop_names.sort(key=self._rank)
        chains = [c for p in pop_names for c in self._chains_from(p, p, (), set())]
        outputs = {c.source for c in chains if c.target is None}
        pops: dict[str, snn.Population] = {}
        plans_by_target: dict[str, list[_Plan]] = {p: [] for p in pop_names}
        for chain in chains:
            if chain.target is not None:
                plans_by_target[chain.target].append(self._plan(chain))
        pop_reports: dict[str, PopulationReport] = {}
        for name in pop_names:
            pop, prep = self._population(name, plans_by_target[name], name in outputs)
            pops[name] = pop
            pop_reports[name] = prep
        projections, proj_reports = self._projections(plans_by_target, pops)
        net = snn.Network(str(self.metadata.get("s2sim_network_name", "nir")))
        net.add(*pops.values(), *projections)
        _set_latencies(pop_reports, projections, pops)
        report.populations = [pop_reports[n] for n in pop_names]
        report.projections = proj_reports
        net.conversion_report = report
        inputs = {n: pops[n] for n in pop_names if _kind(self.nodes[n]) == "Input"}
        outs = {n: pops[n] for n in pop_names if n in outputs}
        return Conversion(net, inputs, outs, report)

    def _rank(self, name: str) -> tuple[int, int]:
        """Sort key: graph order, or the network order an s2sim export recorded (HDF5 sorts names)."""
        md = _clean_metadata(getattr(self.nodes[name], "metadata", None) or {})
        if self.s2sim_format and "s2sim_index" in md:
            return (_meta_int(md, "s2sim_index", f"node {name!r}"), self.order[name])
        return (self.depth.get(name, 1 << 30), self.order[name])

    def _chains_from(self, source: str, node: str, ops: tuple[str, ...], seen: set) -> Iterable[_Chain]:
        for nxt in self.succ[node]:
            kind = _kind(self.nodes[nxt])
            if kind in _NEURON_TYPES:
                yield _Chain(source, ops, nxt)
            elif kind == "Output":
                between = [o for o in ops if _kind(self.nodes[o]) != "Flatten"]
                if between:
                    raise ConversionError(f"Output node {nxt!r} is fed by {source!r} through {between} without a "
                                          "neuron; the chip only outputs spikes or voltages of neurons: add a neuron "
                                          "node (e.g. IF with r = 1) before the Output")
                yield _Chain(source, ops, None, nxt)
            elif kind == "Input":
                continue
            else:
                if nxt in seen:
                    raise ConversionError(f"node {nxt!r} is on a cycle without a neuron ({' -> '.join(ops + (nxt,))})")
                yield from self._chains_from(source, nxt, ops + (nxt,), seen | {nxt})

    # -- projections plans --------------------------------------------------------------------------------
    def _plan(self, chain: _Chain) -> _Plan:
        weight_nodes = tuple(o for o in chain.ops if _kind(self.nodes[o]) in _WEIGHT_TYPES)
        if len(weight_nodes) > 1 and not self.config.fuse_weight_layers:
            raise ConversionError(f"weight nodes {weight_nodes[0]!r} and {weight_nodes[1]!r} follow each other "
                                  f"without a neuron between {chain.source!r} and {chain.target!r}; the chip has one "
                                  "weight layer per projection (set fuse_weight_layers=True to fuse them)")
        core = [o for o in chain.ops if _kind(self.nodes[o]) != "Flatten"]
        kinds = [_kind(self.nodes[o]) for o in core]
        if kinds and kinds[-1] == "Conv2d" and len(kinds) <= 2 and (len(kinds) == 1 or kinds[0] in
                                                                      ("SumPool2d", "AvgPool2d")):
            plan = self._conv_plan(chain, core)
            if plan is not None:
                return plan
        return self._list_plan(chain, weight_nodes)

    def _conv_plan(self, chain: _Chain, core: list[str]) -> _Plan | None:
        conv_name = core[-1]
        conv = self.nodes[conv_name]
        if _kind(self.nodes[chain.target]) == "CubaLIF":
            return None  # lif_curr_exp is no conv target: unrolled into a connection list
        g = _conv_geometry(conv_name, conv)
        if g["groups"] != 1 or g["dilation"] != (1, 1):
            return None
        pool_name = core[0] if len(core) == 2 else None
        in_shape = self.in_shape[pool_name or conv_name]
        if len(in_shape) != 3:
            in_shape = _conv_in_shape(conv_name, conv, in_shape)
        pool_y = pool_x = 1
        factor = 1.0
        if pool_name is not None:
            (pool_y, pool_x), _ = _pool_geometry(pool_name, self.nodes[pool_name])
            if in_shape[1] % pool_y or in_shape[2] % pool_x:
                return None
            if _kind(self.nodes[pool_name]) == "AvgPool2d":
                factor = 1.0 / (pool_y * pool_x)
        if self.config.conn_delay != 0:
            raise ConversionError(f"node {conv_name!r}: conv projections have no delay field but conn_delay = "
                                  f"{self.config.conn_delay}; use ConversionConfig(conn_delay=0)")
        kernel = np.asarray(conv.weight, dtype=np.float64).swapaxes(0, 1) * factor
        params = {"in_height": int(in_shape[1]), "in_width": int(in_shape[2]),
                  "stride_y": g["stride"][0], "stride_x": g["stride"][1], "pool_y": pool_y, "pool_x": pool_x,
                  "pad_top": g["pads"][0], "pad_bottom": g["pads"][1], "pad_left": g["pads"][2],
                  "pad_right": g["pads"][3]}
        c_out = kernel.shape[1]
        _, oh, ow = self.out_shape[conv_name]
        bias = getattr(conv, "bias", None)
        bias = np.zeros(c_out) if bias is None else np.broadcast_to(np.asarray(bias, np.float64).ravel(), (c_out,))
        notes = []
        if factor != 1.0:
            notes.append(f"AvgPool2d {pool_name!r} fused as a sum-pool; its factor 1/{pool_y * pool_x} is multiplied "
                         f"into the kernel of {conv_name!r} (exact where the scaled kernel is an integer)")
        return _Plan(chain, "conv2d", kernel, conv_params=params,
                     bias_terms=[(chain.ops[chain.ops.index(conv_name):] + (chain.target,), np.repeat(bias, oh * ow))],
                     weight_nodes=(conv_name,), notes=notes)

    def _list_plan(self, chain: _Chain, weight_nodes: tuple[str, ...]) -> _Plan:
        syn = _identity(int(np.prod(self.out_shape[chain.source])))
        suffix_bias: list[tuple[tuple[str, ...], np.ndarray]] = []
        ops = [o for o in chain.ops if _kind(self.nodes[o]) != "Flatten"]
        stages = [self._op_synapses(o) for o in ops]
        for i, stage in enumerate(stages):
            syn = _compose(syn, stage, f"path {chain.source!r} -> {' -> '.join(ops[:i + 1])}")
            if stage.bias.any():
                vec = stage.bias
                for later in stages[i + 1:]:
                    vec = later.linear(vec)
                suffix_bias.append((tuple(ops[i:]) + (chain.target,), vec))
        syn.bias = np.zeros(syn.n_out)
        target_n = int(np.prod(self.in_shape[chain.target]))
        if syn.n_out != target_n:
            raise ConversionError(f"shape mismatch: path {chain.source!r} -> {' -> '.join(chain.ops)} -> "
                                  f"{chain.target!r} delivers {syn.n_out} values, {chain.target!r} has {target_n}")
        notes = []
        kinds = {_kind(self.nodes[o]) for o in ops}
        if "Conv2d" in kinds:
            notes.append(f"conv {[o for o in ops if _kind(self.nodes[o]) == 'Conv2d']} unrolled into a connection "
                         "list (no lif_conv2d path for this target, pooling or conv geometry)")
        if "AvgPool2d" in kinds:
            notes.append("AvgPool2d: sum-pool with its factor 1/(kH*kW) multiplied into the following weights "
                         "(exact where the scaled weight is an integer)")
        if len(weight_nodes) > 1:
            notes.append(f"weight layers {list(weight_nodes)} fused into one projection (product of the matrices)")
        delays = np.full(syn.w.size, self.config.conn_delay, dtype=np.int64)
        return _Plan(chain, "connection_list", syn.w, syn.pre, syn.post, delays, bias_terms=suffix_bias,
                     weight_nodes=weight_nodes, notes=notes)

    def _op_synapses(self, name: str) -> _Synapses:
        node = self.nodes[name]
        kind = _kind(node)
        entries = int(np.prod(self.in_shape[name], dtype=np.float64))  # a pool: one entry per input
        if kind in ("Affine", "Linear", "Conv2d"):
            weight = np.asarray(node.weight)
            entries = weight.size * (int(np.prod(self.out_shape[name][1:], dtype=np.float64)) if kind == "Conv2d"
                                     else 1)
        memory.check(entries * _ENTRY_BYTES, f"node {name!r}: {kind} as a connection list ({entries} entries)",
                     "A conv feeding a neuron population directly converts without unrolling")
        if kind in ("Affine", "Linear"):
            return _affine_synapses(node)
        in_shape = self.in_shape[name]
        if kind == "Conv2d":
            return _conv_synapses(name, node, _conv_in_shape(name, node, in_shape))
        return _pool_synapses(name, node, in_shape)

    # -- populations --------------------------------------------------------------------------------------
    def _population(self, name: str, plans: list[_Plan], is_output: bool) -> tuple[snn.Population, PopulationReport]:
        node = self.nodes[name]
        kind = _kind(node)
        shape = tuple(self.out_shape[name])
        size = int(np.prod(shape))
        record = list(self.config.output_record) if is_output else []
        md = _clean_metadata(getattr(node, "metadata", None) or {})
        if kind == "Input":
            record = [r for r in record if r in ("spikes", "counts", *DIAGNOSTIC_RECORDABLES)]
            spikes = _meta_spike_times(md, name) if self.s2sim_format else {}
            if self.s2sim_format and "s2sim_record" in md:
                record = [r for r in _meta_text(md, "s2sim_record", f"node {name!r}").split(",") if r]
            pop = snn.Population(size, "spike_list", spikes, name=name, record=record)
            self._restore_atoms(pop, md)
            pop.voltage_scale = None
            pop.nir_shape = shape
            return pop, PopulationReport(name, kind, "spike_list", size, shape, None, None, None, is_input=True,
                                         is_output=is_output)
        model = self._model_for(name, plans)
        w_scale = self._weight_scale(name, plans, model)
        bias = self._bias(plans, size)
        params, scale, mappings = _neuron_params(name, node, size, w_scale, bias, self.config)
        notes: list[str] = []
        if kind == "CubaLIF" and np.any(bias != 0):
            notes.append("bias enters V as i_offset = bias*w_scale/k_syn instead of the synaptic current: exact in "
                         "steady state, not in the first ticks")
        reset = CHIP_RESET[self.config.reset]
        if self.s2sim_format and md.get("s2sim_model") is not None:
            model, reset, params, scale, record = self._restore_population(name, md, model, reset, params, scale,
                                                                           record, notes)
        for plan in plans:
            notes.extend(plan.notes)
        pop = snn.Population(size, model, {**params, "reset": reset}, name=name, record=record)
        self._restore_atoms(pop, md)
        pop.voltage_scale = np.asarray(scale, dtype=np.float64)
        pop.weight_scale = w_scale
        pop.nir_shape = shape
        for m in mappings:
            m.chip_value = pop.param(m.chip_param).astype(np.float32)
            m.effective = None if m.effective is None else m.effective(m.chip_value.astype(np.float64))
        prep = PopulationReport(name, kind, model, size, shape, reset, w_scale, pop.voltage_scale, mappings,
                                is_output=is_output, notes=notes)
        for plan in plans:
            plan.w_scale = w_scale
        return pop, prep

    def _restore_atoms(self, pop: snn.Population, md: dict[str, Any]) -> None:
        if self.s2sim_format and "s2sim_max_atoms_per_core" in md:
            atoms = _meta_int(md, "s2sim_max_atoms_per_core", f"node {pop.name!r}")
            if atoms > 0:
                pop.set_max_atoms_per_core(atoms)

    def _model_for(self, name: str, plans: list[_Plan]) -> str:
        has_conv = any(p.kind == "conv2d" for p in plans)
        if _kind(self.nodes[name]) == "CubaLIF":
            return "lif_curr_exp_no_delay" if self.config.conn_delay == 0 else "lif_curr_exp"
        if has_conv:
            return "lif_conv2d"
        return "lif_no_delay" if self.config.conn_delay == 0 else "lif"

    def _weight_scale(self, name: str, plans: list[_Plan], model: str) -> float:
        if not self.config.scale_weights or not plans:
            return 1.0
        mags = np.abs(np.concatenate([p.weights.ravel() for p in plans]))
        ref = float(np.percentile(mags, self.config.weight_scale_percentile)) if mags.size else 0.0
        if ref == 0.0:
            return 1.0
        limit = CONV_WEIGHT_MAX if model == "lif_conv2d" else MODELS[model].weight_limit
        return limit / ref

    @staticmethod
    def _bias(plans: list[_Plan], size: int) -> np.ndarray:
        terms: dict[tuple[str, ...], np.ndarray] = {}
        for plan in plans:
            for key, vec in plan.bias_terms:
                terms[key] = vec  # paths that share the same biased node and suffix count its bias once
        total = np.zeros(size)
        for vec in terms.values():
            total = total + vec
        return total

    def _restore_population(self, name, md, model, reset, params, scale, record, notes):
        """For graphs written by s2sim.nir_export: take the exact host values when the NIR still describes them."""
        where = f"node {name!r}"
        meta_model = _meta_text(md, "s2sim_model", where)
        if meta_model not in MODELS or MODELS[meta_model].kind != MODELS[model].kind:
            raise ConversionError(f"node {name!r}: s2sim metadata model {meta_model!r} does not match the NIR node "
                                  f"(converted as {model!r})")
        size = len(next(iter(params.values())))
        exact = {k[len("s2sim_param_"):]: _meta_array(md, k, where, size=size, exact_size=True) for k in md
                 if k.startswith("s2sim_param_")}
        consistent = all(
            np.allclose(params[k], exact[k], rtol=1e-6, atol=1e-6 * max(1.0, float(np.max(np.abs(exact[k])))))
            for k in params if k in exact and k not in _META_ONLY_PARAMS)
        if not consistent:
            notes.append("NIR parameters differ from the s2sim metadata (graph edited?); the NIR values were used")
            return model, reset, params, scale, record
        params = {k: exact.get(k, v) for k, v in params.items()}
        params.update({k: exact[k] for k in _META_ONLY_PARAMS if k in exact and k in MODELS[meta_model].defaults})
        if "s2sim_voltage_scale" in md:
            scale = _meta_array(md, "s2sim_voltage_scale", where, size=size)
        rec = _meta_text(md, "s2sim_record", where, "")
        notes.append("exact host parameters restored from s2sim metadata")
        return meta_model, _meta_text(md, "s2sim_reset", where, reset), params, scale, [r for r in rec.split(",") if r]

    # -- projections --------------------------------------------------------------------------------------
    def _projections(self, plans_by_target, pops):
        out, reports = [], []
        all_plans = [p for plans in plans_by_target.values() for p in plans]
        all_plans.sort(key=lambda p: self._rank(p.chain.ops[-1] if p.chain.ops else p.chain.source))
        names: dict[str, int] = {}
        for plan in all_plans:
            base = f"{plan.chain.source}->{plan.chain.target}"
            names[base] = names.get(base, 0) + 1
        used: set[str] = set()
        for plan in all_plans:
            base = f"{plan.chain.source}->{plan.chain.target}"
            plan.name = base if names[base] == 1 else f"{base}:{'/'.join(plan.chain.ops) or 'direct'}"
            if self.s2sim_format:
                self._restore_projection(plan)
            if plan.name in used:
                raise ConversionError(f"two projections are both named {plan.name!r}")
            used.add(plan.name)
            proj, rep = self._build_projection(plan, pops)
            out.append(proj)
            reports.append(rep)
        return out, reports

    def _restore_projection(self, plan: _Plan) -> None:
        if not plan.weight_nodes:
            return
        md = _clean_metadata(getattr(self.nodes[plan.weight_nodes[-1]], "metadata", None) or {})
        if "s2sim_weights" not in md:
            return
        where = f"node {plan.weight_nodes[-1]!r}"
        plan.name = _meta_text(md, "s2sim_name", where, plan.name)
        exact = _meta_array(md, "s2sim_weights", where)
        if plan.kind == "conv2d":
            if exact.shape == plan.weights.shape and np.allclose(exact, plan.weights, rtol=1e-6, atol=1e-9):
                plan.weights = exact
                for key in plan.conv_params:
                    if f"s2sim_conv_{key}" in md:
                        plan.conv_params[key] = _meta_int(md, f"s2sim_conv_{key}", where)
            return
        size = exact.size
        pre = _meta_array(md, "s2sim_pre_idx", where, integer=True, size=size, exact_size=True)
        post = _meta_array(md, "s2sim_post_idx", where, integer=True, size=size, exact_size=True)
        delays = _meta_array(md, "s2sim_delays", where, integer=True, size=size, exact_size=True)
        n_pre, n_post = int(plan.pre_idx.max(initial=-1)) + 1, int(plan.post_idx.max(initial=-1)) + 1
        if pre.size and (pre.min() < 0 or post.min() < 0 or pre.max() >= n_pre or post.max() >= n_post):
            return
        if _same_matrix((plan.pre_idx, plan.post_idx, plan.weights), (pre, post, exact.ravel()), n_post):
            plan.pre_idx, plan.post_idx, plan.weights, plan.delays = pre, post, exact.ravel(), delays

    def _build_projection(self, plan: _Plan, pops):
        pre, post = pops[plan.chain.source], pops[plan.chain.target]
        w_scale = plan.w_scale
        chip = _snap_to_integers(plan.weights * w_scale)
        if plan.kind == "conv2d":
            lo, hi = CONV_WEIGHT_MIN, CONV_WEIGHT_MAX
        else:
            lo, hi = -post.model.weight_limit, post.model.weight_limit
        over = (np.trunc(chip) < lo) | (np.trunc(chip) > hi)
        clipped = int(over.sum())
        where = (f"node(s) {', '.join(repr(n) for n in plan.weight_nodes or (plan.chain.source,))} -> population "
                 f"{plan.chain.target!r}")
        if clipped and (self.config.on_overflow == "error" or len(plan.weight_nodes) > 1):
            worst = float(chip.ravel()[np.argmax(np.abs(chip).ravel())])
            what = (f"fused weight nodes {' and '.join(repr(n) for n in plan.weight_nodes)}"
                    if len(plan.weight_nodes) > 1 else f"weights of {where}")
            raise ConversionError(f"{what}: {clipped} weight(s) outside the chip range {lo}..{hi} after scaling by "
                                  f"{w_scale:.6g} (largest {worst:.6g}) for population {post.name!r} "
                                  f"({post.neuron_model}); use ConversionConfig(on_overflow='clip') or "
                                  "scale_weights=True")
        if clipped:
            chip = np.clip(chip, lo, hi)
        if plan.kind == "conv2d":
            proj = snn.Conv2DProjection(pre, post, chip, plan.conv_params, name=plan.name)
            synapses = int(chip.size)
        else:
            conns = np.stack([plan.pre_idx, plan.post_idx, chip, plan.delays], axis=1)
            proj = snn.Projection(pre, post, conns, name=plan.name)
            synapses = int(chip.size)
        rounding = {mode: _rounding(chip, w_scale, mode, lo, hi) for mode in REPORTED_ROUNDINGS}
        kept = min((np.trunc(chip) if mode == "trunc" else np.rint(chip) for mode in REPORTED_ROUNDINGS),
                   key=lambda ints: float(np.abs(chip - ints).sum()))
        check_weight_loss(chip, kept, f"{where} (projection {plan.name!r})", plan.name,
                          f"either rounding the conversion report shows ({' or '.join(REPORTED_ROUNDINGS)}) at weight "
                          f"scale {w_scale:.6g}", strict=self.config.strict, error=ConversionError)
        delay = 0 if plan.kind == "conv2d" else int(plan.delays.max(initial=0))
        rep = ProjectionReport(plan.name, pre.name, post.name, plan.kind, plan.chain.ops, synapses, float(w_scale),
                               (lo, hi), float(np.max(np.abs(plan.weights), initial=0.0)),
                               float(np.max(np.abs(chip), initial=0.0)), clipped, delay, rounding)
        return proj, rep


def _snap_to_integers(chip: np.ndarray) -> np.ndarray:
    """Weights within a few float64 ulps of an integer become that integer.

    ``W * (127 / max|W|)`` lands on 127.00000000000001 for some W; such products are integers up to the rounding of
    the scale itself, and leaving them off-grid would make ``weight_rounding="exact"`` reject them.
    """
    near = np.rint(chip)
    close = np.abs(chip - near) <= 4 * np.finfo(np.float64).eps * np.maximum(np.abs(chip), 1.0)
    return np.where(close, near, chip)


def _rounding(chip: np.ndarray, w_scale: float, mode: str, lo: int, hi: int) -> WeightRounding:
    ints = np.trunc(chip) if mode == "trunc" else np.rint(chip)
    err = float(np.max(np.abs(ints - chip), initial=0.0)) / w_scale
    zeroed = int(np.count_nonzero((chip != 0) & (ints == 0)))
    overflow = int(np.count_nonzero((ints < lo) | (ints > hi)))
    return WeightRounding(err, zeroed, overflow)


# ---------------------------------------------------------------------------------------------------------------
# neuron parameters
# ---------------------------------------------------------------------------------------------------------------
def _discretize(tau: np.ndarray, dt: float, integrator: Integrator) -> tuple[np.ndarray, np.ndarray]:
    """(k, alpha) for time constant tau."""
    if integrator == Integrator.FORWARD:
        return dt / tau, 1.0 - dt / tau
    return 1.0 - np.exp(-dt / tau), np.exp(-dt / tau)


def _tau_from_alpha(alpha: np.ndarray, dt: float, integrator: Integrator) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if integrator == Integrator.FORWARD:
            return dt / (1.0 - alpha)
        return -dt / np.log(alpha)


def _check_time_constants(name: str, kind: str, p: dict[str, np.ndarray], cfg: ConversionConfig) -> None:
    """Time constants and r must be positive (errors); a time constant shorter than dt makes the per-tick decay
    meaningless (a TimeConstantWarning, a ConversionError under strict)."""
    for key in ("tau", "tau_mem", "tau_syn", "r", "w_in"):
        if key not in p:
            continue
        bad = np.flatnonzero(p[key] == 0 if key == "w_in" else p[key] <= 0)
        if bad.size:
            i = int(bad[0])
            raise ConversionError(f"node {name!r}: {kind} parameter {key!r} of neuron {i} is {p[key][i]:g}; it must "
                                  f"{'not be 0' if key == 'w_in' else 'be positive'} (the chip mapping divides by it)")
    for key in ("tau", "tau_mem", "tau_syn"):
        if key not in p:
            continue
        short = np.flatnonzero(p[key] < cfg.dt)
        if short.size:
            i = int(short[0])
            _, alpha = _discretize(p[key][i:i + 1], cfg.dt, cfg.integrator)
            warn(TimeConstantWarning, f"node {name!r}: {kind} {key} of neuron {i} is {p[key][i]:g}, shorter than dt = "
                 f"{cfg.dt:g} ({short.size} neuron(s)); the {cfg.integrator.value} integrator gives a per-tick decay "
                 f"of {float(alpha[0]):.4g}, so the state forgets its input within a tick. Is dt in the graph's time "
                 "unit (snnTorch graphs: 1e-4)?", name, strict=cfg.strict, error=ConversionError)


def _neuron_params(name: str, node: Any, size: int, w_scale: float, bias: np.ndarray, cfg: ConversionConfig):
    """Chip parameters (float64 host values), voltage scale S and the report's parameter mappings.

    A mapping's ``effective`` is filled later with a function chip_value -> NIR units (applied to the float32).
    """
    p = {k: np.broadcast_to(v.ravel() if v.size > 1 else v.reshape(1), (size,)).astype(np.float64)
         for k, v in _neuron_param_arrays(name, node).items()}
    kind = _kind(node)
    dt, integ = cfg.dt, cfg.integrator
    _check_time_constants(name, kind, p, cfg)
    mappings: list[ParameterMapping] = []
    if kind == "IF":
        scale = w_scale / p["r"]
        params = {"alpha_decay": np.ones(size), "i_offset": bias * w_scale}
        mappings.append(ParameterMapping("alpha_decay", "IF: 1 (no leak)", None, None, None))
        mappings.append(ParameterMapping("i_offset", "bias*w_scale (NIR: bias*r per tick)", bias * p["r"], None,
                                         lambda c, s=scale: c / s))
    elif kind == "LIF":
        k, alpha = _discretize(p["tau"], dt, integ)
        scale = w_scale / (k * p["r"])
        params = {"alpha_decay": alpha, "i_offset": k * p["v_leak"] * scale + bias * w_scale}
        mappings.append(ParameterMapping("alpha_decay", f"tau ({integ.value}: alpha from dt/tau)", p["tau"], None,
                                         lambda c: _tau_from_alpha(c, dt, integ)))
        mappings.append(ParameterMapping("i_offset", "k*v_leak*S + bias*w_scale", params["i_offset"] / scale, None,
                                         lambda c, s=scale: c / s))
    else:
        k_mem, alpha_mem = _discretize(p["tau_mem"], dt, integ)
        k_syn, alpha_syn = _discretize(p["tau_syn"], dt, integ)
        scale = w_scale / (k_mem * p["r"] * k_syn * p["w_in"])
        params = {"alpha_decay": alpha_mem, "exc_decay": alpha_syn, "inh_decay": alpha_syn.copy(),
                  "i_offset": k_mem * p["v_leak"] * scale + bias * w_scale / k_syn, "t_refrac": np.zeros(size)}
        mappings.append(ParameterMapping("alpha_decay", f"tau_mem ({integ.value})", p["tau_mem"], None,
                                         lambda c: _tau_from_alpha(c, dt, integ)))
        mappings.append(ParameterMapping("exc_decay", f"tau_syn ({integ.value}); inh_decay the same", p["tau_syn"],
                                         None, lambda c: _tau_from_alpha(c, dt, integ)))
        mappings.append(ParameterMapping("i_offset", "k_mem*v_leak*S + bias*w_scale/k_syn",
                                         params["i_offset"] / scale, None, lambda c, s=scale: c / s))
    params["threshold"] = p["v_threshold"] * scale
    params["v_reset"] = p["v_reset"] * scale
    mappings.append(ParameterMapping("threshold", "v_threshold*S", p["v_threshold"], None, lambda c, s=scale: c / s))
    mappings.append(ParameterMapping("v_reset", "v_reset*S (used by reset_to_v_reset)", p["v_reset"], None,
                                     lambda c, s=scale: c / s))
    return params, scale, mappings


# ---------------------------------------------------------------------------------------------------------------
# latency and metadata helpers
# ---------------------------------------------------------------------------------------------------------------
def _set_latencies(reports: dict[str, PopulationReport], projections: list, pops: dict) -> None:
    """Fewest hops and fewest ticks from any input: a hop costs 1 tick plus the connection's smallest delay."""
    edges = []
    for proj in projections:
        delay = 0 if isinstance(proj, snn.Conv2DProjection) or not proj.delays.size else int(proj.delays.min())
        edges.append((proj.pre.name, proj.post.name, 1 + delay))
    hops = {n: 0 for n, r in reports.items() if r.is_input}
    ticks = dict(hops)
    for _ in range(len(reports)):
        changed = False
        for a, b, cost in edges:
            if a in ticks and (b not in ticks or ticks[a] + cost < ticks[b]):
                ticks[b] = ticks[a] + cost
                changed = True
            if a in hops and (b not in hops or hops[a] + 1 < hops[b]):
                hops[b] = hops[a] + 1
                changed = True
        if not changed:
            break
    for name, rep in reports.items():
        rep.hops = hops.get(name)
        rep.latency_ticks = ticks.get(name)


def _depths(nodes: dict[str, Any], succ: dict[str, list[str]]) -> dict[str, int]:
    """Edges from the nearest Input (breadth first): populations are created in this order, since a graph read
    from HDF5 lists its nodes alphabetically."""
    depth = {n: 0 for n, node in nodes.items() if _kind(node) == "Input"}
    frontier = list(depth)
    while frontier:
        nxt = []
        for a in frontier:
            for b in succ[a]:
                if b not in depth:
                    depth[b] = depth[a] + 1
                    nxt.append(b)
        frontier = nxt
    return depth


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _clean_metadata(md: Any) -> dict[str, Any]:
    """Metadata with bytes decoded and 0-d arrays unwrapped (what nir.read returns differs from what was written)."""
    if not isinstance(md, Mapping):
        raise ConversionError(f"graph or node metadata must be a dict, got {type(md).__name__}")
    out = {}
    for key, value in md.items():
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        elif isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
            value = value.decode(errors="replace") if isinstance(value, bytes) else value
        elif isinstance(value, np.generic):
            value = value.item()
        out[_edge_name(key)] = value
    return out


def _meta_spike_times(md: dict[str, Any], name: str) -> dict[int, list[int]]:
    where = f"node {name!r}"
    neurons = _meta_array(md, "s2sim_spike_neurons", where, integer=True, default=())
    ticks = _meta_array(md, "s2sim_spike_ticks", where, integer=True, size=neurons.size, exact_size=True, default=())
    out: dict[int, list[int]] = {}
    for n, t in zip(neurons.tolist(), ticks.tolist()):
        out.setdefault(n, []).append(t)
    return out


_REQUIRED = object()


def _meta_array(md: dict[str, Any], key: str, where: str, *, integer: bool = False, size: int | None = None,
                exact_size: bool = False, default: Any = _REQUIRED) -> np.ndarray:
    """An s2sim metadata entry as a finite float64 (or int64) array of ``size`` values (or one to broadcast)."""
    if key not in md:
        if default is _REQUIRED:
            raise ConversionError(f"{where}: the s2sim metadata lacks {key!r} (the file was edited or damaged; "
                                  "export it again)")
        return np.asarray(default, dtype=np.int64 if integer else np.float64)
    label = f"{where}: s2sim metadata {key!r}"
    arr = numeric_array(md[key], label, "integers" if integer else "real numbers", ConversionError)
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)) or (integer and np.any((arr != np.round(arr)) | (np.abs(arr) >= 2**62))):
        raise ConversionError(f"{label} holds values that are not finite{' integers' if integer else ''}")
    if size is not None and arr.size != size and (exact_size or arr.size != 1):
        raise ConversionError(f"{label} has {arr.size} values; expected {size}")
    return arr.astype(np.int64) if integer else arr


def _meta_int(md: dict[str, Any], key: str, where: str) -> int:
    return int(_meta_array(md, key, where, integer=True, size=1, exact_size=True).ravel()[0])


def _meta_text(md: dict[str, Any], key: str, where: str, default: Any = _REQUIRED) -> str:
    value = md.get(key, default)
    if value is _REQUIRED:
        raise ConversionError(f"{where}: the s2sim metadata lacks {key!r} (the file was edited or damaged; export it "
                              "again)")
    if not isinstance(value, str):
        raise ConversionError(f"{where}: s2sim metadata {key!r} = {value!r} must be a string")
    return value


def _same_matrix(a: tuple[np.ndarray, np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray, np.ndarray],
                 n_post: int) -> bool:
    """Whether two (pre, post, weight) lists sum to the same matrix (within float rounding), without building
    the dense matrix."""
    keys = np.concatenate([a[0] * n_post + a[1], b[0] * n_post + b[1]])
    uniq, inv = np.unique(keys, return_inverse=True)
    m = a[0].size
    sum_a = np.bincount(inv[:m], weights=a[2], minlength=uniq.size)
    sum_b = np.bincount(inv[m:], weights=b[2], minlength=uniq.size)
    return bool(np.allclose(sum_a, sum_b, rtol=1e-6, atol=1e-9))
