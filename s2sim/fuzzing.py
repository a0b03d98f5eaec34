"""Mutation fuzzing of what s2sim reads: NIR graphs and files, trace files, API calls and the command line.

A *case* mutates one valid input and feeds it to one entry point. Its outcome is one of

* ``error``: an s2sim error (:class:`~s2sim.errors.S2SimError`) refused it with a message;
* ``accepted``: it went through (warnings allowed);
* ``other``: anything else: a builtin exception, an exit status other than 0, 1 or 2 from the command line.

Files are read in a child process (:mod:`s2sim.isolation`), so a file that crashes or hangs the HDF5 library is an
``error`` whose detail says so, and the fuzzing process survives to count it. Some mutations make an input invalid
under every reading (a NaN weight, a string or a boolean where a number belongs, a missing required dataset): such a
case is marked ``must_fail``, and its acceptance is counted as *silent*, a failure like ``other``.

The test suite drives these generators with hypothesis (tests/test_fuzz.py, a few seconds); ``tools/fuzz.py
--minutes N`` runs them with plain seeds for as long as asked and prints the tally.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import random
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import memory, snn
from .errors import RunTimeout, S2SimError
from .nir_import import NUMERIC_ATTRIBUTES

#: Seconds a child process may spend reading one fuzzed file (a hang costs this much, then counts as an error).
READ_TIMEOUT = 5.0
#: Memory budget while fuzzing: small enough that "declared huge" inputs must be refused, not attempted.
BUDGET = "1G"


@dataclass
class Case:
    """One mutated input and the call that consumes it."""

    category: str
    mutation: str
    run: Callable[[], Any]
    must_fail: bool = False
    #: ``run`` returns a command line exit status (0 or 1: accepted, 2: error, anything else: other).
    exit_status: bool = False


@dataclass
class Outcome:
    """What running a case did: ``kind`` "error", "accepted" or "other", with a ``detail``."""

    kind: str  # "error", "accepted" or "other"
    detail: str = ""


def classify(case: Case) -> Outcome:
    """Run ``case`` and name its outcome (see the module docstring)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = case.run()
        except S2SimError as exc:
            return Outcome("error", _error_detail(exc))
        except Exception as exc:  # the point of fuzzing: report, never raise
            return Outcome("other", f"{type(exc).__name__}: {exc}")
    if case.exit_status:
        if code == 2:
            return Outcome("error", "exit 2")
        if code not in (0, 1):
            return Outcome("other", f"exit status {code}")
    return Outcome("accepted")


def _error_detail(exc: S2SimError) -> str:
    text = str(exc)
    if "reader process died" in text:
        return "contained crash"
    if isinstance(exc, RunTimeout):
        return "contained hang"
    return type(exc).__name__


@dataclass
class Tally:
    """Cases and outcomes per category, with the failing cases kept for the report."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, case: Case, outcome: Outcome) -> None:
        """Count ``outcome`` under the case's category; keep the case when it failed (other, or accepted silently)."""
        row = self.counts.setdefault(
            case.category,
            {"cases": 0, "error": 0, "accepted": 0, "other": 0, "silent": 0, "contained crash": 0, "contained hang": 0},
        )
        row["cases"] += 1
        row[outcome.kind] += 1
        if outcome.detail in ("contained crash", "contained hang"):
            row[outcome.detail] += 1
        silent = case.must_fail and outcome.kind == "accepted"
        row["silent"] += silent
        if outcome.kind == "other" or silent:
            self.failures.append(
                f"{case.category}: {case.mutation}: {'accepted silently' if silent else outcome.detail}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the counts per category and the failures as JSON-able data."""
        return {"categories": self.counts, "failures": self.failures}


# -- poison values ---------------------------------------------------------------------------------------------


def _one_element(like: Any, value: Any) -> Any:
    arr = np.array(like, dtype=np.float64, copy=True)
    if arr.ndim == 0:
        return value
    arr.ravel()[0] = value
    return arr


def _bool_inside(like: Any) -> list:
    flat = np.asarray(like, dtype=np.float64).ravel().tolist() or [0.0]
    return [True, *flat[1:]] if len(flat) > 1 else [True, 1.0]


#: (label, maker(like) -> value, refused wherever a real number or an index is expected)
POISONS: list[tuple[str, Callable[[Any], Any], bool]] = [
    ("nan", lambda like: _one_element(like, np.nan), True),
    ("inf", lambda like: _one_element(like, np.inf), True),
    ("-inf", lambda like: _one_element(like, -np.inf), True),
    ("text", lambda like: "abc", True),
    ("numeric text", lambda like: "1.5", True),
    ("bytes", lambda like: b"2", True),
    ("complex", lambda like: np.asarray(like, dtype=np.float64) + 1j, True),
    ("bool", lambda like: True, True),
    ("bool array", lambda like: np.ones(np.shape(like), dtype=bool), True),
    ("bool in a list", _bool_inside, True),
    ("ragged list", lambda like: [[1.0], [1.0, 2.0]], True),
    ("object", lambda like: object(), True),
    ("dict", lambda like: {"a": 1}, True),
    ("None", lambda like: None, False),
    ("zero", lambda like: np.zeros_like(np.asarray(like, dtype=np.float64)), False),
    ("negative", lambda like: -np.abs(np.asarray(like, dtype=np.float64)) - 1.0, False),
    ("huge", lambda like: np.full_like(np.asarray(like, dtype=np.float64), 1e30), False),
    ("empty", lambda like: np.zeros(0), False),
    ("one more element", lambda like: np.ones(np.size(like) + 1), False),
    ("scalar", lambda like: 0.5, False),
    ("2^63", lambda like: 2**63, False),
    ("fraction", lambda like: np.asarray(like, dtype=np.float64) + 0.5, False),
]


def poison(rng: random.Random, like: Any) -> tuple[str, Any, bool]:
    """Return a bad value shaped after ``like``: (label, value, whether a numeric slot must refuse it)."""
    label, make, invalid = rng.choice(POISONS)
    try:
        np.asarray(like, dtype=np.float64)
    except (TypeError, ValueError):
        like = 1.0  # a text slot: shape the poison after a number
    return label, make(like), invalid


# -- base inputs -------------------------------------------------------------------------------------------------


def _nir() -> Any:
    import nir

    return nir


def _lif(n: int, tau: float = 5e-3) -> Any:
    return _nir().LIF(
        tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n)
    )


@functools.cache
def base_graphs() -> tuple[tuple[str, Any, dict[str, Any]], ...]:
    """Small valid NIR graphs covering every node type s2sim converts: (name, graph, ConversionConfig fields).

    Shared: copy a graph before changing it.
    """
    nir = _nir()
    rng = np.random.default_rng(1)
    dense = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([4])}),
            "fc": nir.Affine(weight=rng.uniform(-3, 3, (3, 4)), bias=rng.uniform(0, 0.1, 3)),
            "lif": _lif(3),
            "out": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")],
        type_check=False,
        metadata={"dt": 1e-4},
    )
    cuba = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([3])}),
            "w1": nir.Linear(weight=rng.uniform(-20, 20, (2, 3))),
            "cuba": nir.CubaLIF(
                tau_syn=np.full(2, 2e-3),
                tau_mem=np.full(2, 5e-3),
                r=np.ones(2),
                v_leak=np.zeros(2),
                v_threshold=np.ones(2),
                v_reset=np.zeros(2),
                w_in=np.ones(2),
            ),
            "w2": nir.Affine(weight=rng.uniform(-5, 5, (2, 2)), bias=np.zeros(2)),
            "if": nir.IF(r=np.ones(2), v_threshold=np.full(2, 2.0), v_reset=np.zeros(2)),
            "out": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("in", "w1"), ("w1", "cuba"), ("cuba", "w2"), ("w2", "if"), ("if", "out")],
        type_check=False,
        metadata={"dt": 1e-4},
    )
    conv = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([1, 6, 6])}),
            "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            "conv": nir.Conv2d(
                input_shape=np.array([3, 3]),
                weight=rng.uniform(-9, 9, (2, 1, 3, 3)),
                stride=1,
                padding=1,
                dilation=1,
                groups=1,
                bias=np.zeros(2),
            ),
            "lif": _lif(18),
            "flat": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0, end_dim=-1),
            "avg": nir.AvgPool2d(kernel_size=np.array([3, 3]), stride=np.array([3, 3]), padding=np.array([0, 0])),
            "fc": nir.Affine(weight=rng.uniform(-30, 30, (2, 2)), bias=np.zeros(2)),
            "lif2": _lif(2),
            "out": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[
            ("in", "pool"),
            ("pool", "conv"),
            ("conv", "lif"),
            ("lif", "avg"),
            ("avg", "flat"),
            ("flat", "fc"),
            ("fc", "lif2"),
            ("lif2", "out"),
        ],
        type_check=False,
        metadata={"dt": 1e-4},
    )
    return (
        ("dense", dense, {}),
        ("cuba", cuba, {"conn_delay": 0}),
        ("conv", conv, {"conn_delay": 0}),
        ("exported", _exported_graph(), {}),
    )


def base_network() -> snn.Network:
    """Build a small network with every kind of projection and recordable, for traces and API cases."""
    stim = snn.Population(4, "spike_list", {0: [1, 3], 2: [2], 3: [0, 5]}, name="stim", record=["spikes"])
    lif = snn.Population(3, "lif", {"threshold": 4.0, "alpha_decay": 0.9}, name="lif", record=["spikes", "v"])
    cur = snn.Population(
        2,
        "lif_curr_exp_no_delay",
        {"threshold": 3.0, "exc_decay": 0.8, "inh_decay": 0.8},
        name="cur",
        record=["spikes", "v_last"],
    )
    net = snn.Network("fuzz").add(stim, lif, cur)
    net.add(snn.Projection(stim, lif, [[0, 0, 5, 0], [1, 1, 7, 2], [2, 2, -3, 1], [3, 0, 9, 0]]))
    net.add(snn.Projection(lif, cur, [[0, 0, 40, 0], [1, 1, 60, 0], [2, 0, -20, 0]]))
    return net


def _exported_graph() -> Any:
    from .nir_export import to_nir

    return to_nir(base_network())


# -- NIR graphs in memory ------------------------------------------------------------------------------------------

#: Node attributes s2sim reads, per node type (a mutation elsewhere would be ignored, rightly).
READ_FIELDS = {
    **NUMERIC_ATTRIBUTES,
    "Conv2d": NUMERIC_ATTRIBUTES["Conv2d"] + ("stride", "padding", "dilation", "groups"),
    "SumPool2d": ("kernel_size", "stride", "padding"),
    "AvgPool2d": ("kernel_size", "stride", "padding"),
}
#: Fields that must hold positive values (a zero or negative one is an error too).
POSITIVE_FIELDS = {"tau", "tau_syn", "tau_mem", "r", "stride", "dilation", "groups", "kernel_size"}


def _convert_and_run(graph_or_path: Any, config: dict[str, Any], isolate: bool = False) -> None:
    from .nir_import import ConversionConfig, from_nir
    from .simulator import Simulator

    net, _, _ = from_nir(graph_or_path, ConversionConfig(**config), isolate=isolate)
    Simulator(num_threads=1).run_batch(net, timesteps=6)


def nir_graph_case(rng: random.Random, workdir: Path) -> Case:
    """Make a case: a base graph with one node attribute, metadata entry or edge replaced by a bad value."""
    import copy

    name, graph, config = rng.choice(base_graphs())
    graph = copy.deepcopy(graph)
    what = rng.random()
    if what < 0.7:
        nodes = [(n, node) for n, node in graph.nodes.items() if type(node).__name__ in READ_FIELDS]
        node_name, node = rng.choice(nodes)
        key = rng.choice(READ_FIELDS[type(node).__name__])
        label, value, invalid = poison(rng, getattr(node, key))
        must_fail = invalid or (key in POSITIVE_FIELDS and label in ("zero", "negative"))
        if key == "padding" and label in ("zero",):
            must_fail = False
        object.__setattr__(node, key, value)
        mutation = f"{name}: node {node_name!r} {key} := {label}"
    elif what < 0.85:
        if name == "exported":
            return _exported_metadata_case(rng, graph, config)
        label, value, invalid = poison(rng, 1e-4)
        graph.metadata["dt"] = value
        must_fail = invalid or label in ("zero", "negative", "empty", "one more element")
        mutation = f"{name}: metadata dt := {label}"
    else:
        edges = list(graph.edges)
        choice = rng.randrange(3)
        if choice == 0:
            edges.append((rng.choice(list(graph.nodes)), "nowhere"))
            mutation, must_fail = f"{name}: edge to a missing node", True
        elif choice == 1:
            edges.append((rng.choice(list(graph.nodes)), 7))
            mutation, must_fail = f"{name}: edge with a non-name end", True
        else:
            edges = [*edges, ("in", "in")]
            mutation, must_fail = f"{name}: edge into an Input node", True
        graph.edges = edges
    return Case("nir-graph", mutation, lambda: _convert_and_run(graph, config), must_fail)


#: Metadata an export writes for people and other tools; the importer does not read it.
_UNREAD_METADATA = ("s2sim_max_delay", "s2sim_weight_limit")
#: Node fields nir.read itself converts to float arrays (a boolean stored there arrives as 1.0).
_CAST_BY_NIR = {("CubaLIF", "w_in")}


def _exported_metadata_case(rng: random.Random, graph: Any, config: dict[str, Any]) -> Case:
    """Damage the s2sim metadata an exported graph carries (it is trusted only once checked)."""
    candidates = [
        (n, k)
        for n, node in graph.nodes.items()
        for k in (node.metadata or {})
        if k.startswith("s2sim_") and k not in _UNREAD_METADATA
    ]
    node_name, key = rng.choice(candidates)
    md = graph.nodes[node_name].metadata
    if rng.random() < 0.3:
        del md[key]
        label = "deleted"
        # without s2sim_model the NIR values are used (a plain NIR graph); the index lists have no such fallback
        must_fail = key in ("s2sim_pre_idx", "s2sim_post_idx", "s2sim_delays")
    else:
        label, md[key], invalid = poison(rng, md[key])
        text_keys = ("s2sim_model", "s2sim_reset", "s2sim_record", "s2sim_name")
        must_fail = invalid and key not in text_keys and key != "s2sim_format" and label != "dict"
    return Case(
        "nir-graph",
        f"exported: node {node_name!r} metadata {key} := {label}",
        lambda: _convert_and_run(graph, config),
        must_fail,
    )


# -- files ---------------------------------------------------------------------------------------------------------


def _nir_file(workdir: Path, rng: random.Random) -> tuple[str, Path, dict[str, Any]]:
    name, graph, config = rng.choice(base_graphs())
    path = workdir / f"base-{name}.nir"
    if not path.exists():
        _nir().write(str(path), graph)
    return name, path, config


def _trace_file(workdir: Path) -> Path:
    path = workdir / "base-trace.h5"
    if not path.exists():
        from .simulator import Simulator
        from .traces import from_result, write_trace

        net = base_network()
        write_trace(path, from_result(net, Simulator(num_threads=1).run_batch(net, timesteps=8)))
    return path


def corrupt_bytes(rng: random.Random, data: bytes) -> tuple[str, bytes, bool]:
    """Corrupt ``data``: return (description, corrupted bytes, whether no reader may accept them)."""
    buf = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:
        n = rng.randint(1, 8)
        for _ in range(n):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        return f"{n} byte(s) overwritten", bytes(buf), False
    if kind == 1:
        cut = rng.randrange(len(buf))
        return f"truncated to {cut} of {len(buf)} bytes", bytes(buf[:cut]), True
    if kind == 2:
        start = rng.randrange(len(buf))
        size = rng.randint(1, 256)
        buf[start : start + size] = bytes(min(size, len(buf) - start))
        return f"{size} bytes zeroed at {start}", bytes(buf), False
    start = rng.randrange(len(buf))
    size = rng.randint(1, 64)
    chunk = bytes(rng.randrange(256) for _ in range(size))
    return f"{size} random bytes inserted at {start}", bytes(buf[:start] + chunk + buf[start:]), False


def _read_nir_isolated(path: Path, config: dict[str, Any]) -> None:
    from .isolation import call_isolated
    from .nir_import import read_nir_file

    graph = call_isolated(read_nir_file, str(path), what=f"NIR file {str(path)!r}")
    _convert_and_run(graph, config)


def _read_trace_isolated(path: Path) -> None:
    from .traces import read_trace

    read_trace(path, isolate=True)


def nir_bytes_case(rng: random.Random, workdir: Path) -> Case:
    """Make a case: a NIR file with bytes overwritten, zeroed, inserted or cut off."""
    name, base, config = _nir_file(workdir, rng)
    label, data, must_fail = corrupt_bytes(rng, base.read_bytes())
    path = workdir / "case.nir"
    path.write_bytes(data)
    return Case("nir-file-bytes", f"{name}: {label}", lambda: _read_nir_isolated(path, config), must_fail)


def trace_bytes_case(rng: random.Random, workdir: Path) -> Case:
    """Make a case: a trace file with bytes overwritten, zeroed, inserted or cut off."""
    label, data, must_fail = corrupt_bytes(rng, _trace_file(workdir).read_bytes())
    path = workdir / "case-trace.h5"
    path.write_bytes(data)
    return Case("trace-file-bytes", label, lambda: _read_trace_isolated(path), must_fail)


def _replace_dataset(f: Any, key: str, value: Any) -> None:
    """Rewrite dataset ``key`` with ``value`` (any type h5py can store; others become their repr)."""
    del f[key]
    if value is None:
        return
    try:
        f[key] = value
    except (TypeError, ValueError):
        f[key] = repr(value)


def nir_structure_case(rng: random.Random, workdir: Path) -> Case:
    """Make a case: a NIR file whose datasets are deleted or rewritten with bad values.

    The edit is made at the h5py level, then the result is read as a file.
    """
    import h5py

    name, base, config = _nir_file(workdir, rng)
    path = workdir / "case-structure.nir"
    path.write_bytes(base.read_bytes())
    with h5py.File(path, "r+") as f:
        nodes = f["node/nodes"]
        node_name = rng.choice(
            [n for n in nodes if "type" in nodes[n] and nodes[n]["type"][()].decode() in READ_FIELDS]
        )
        group = nodes[node_name]
        kind = group["type"][()].decode()
        fields = [k for k in READ_FIELDS[kind] if k in group]
        key = rng.choice(fields)
        if rng.random() < 0.2:
            del group[key]
            label, must_fail = (
                "deleted",
                key in ("weight", "tau", "tau_mem", "tau_syn", "r", "v_threshold", "kernel_size"),
            )
        else:
            label, value, invalid = poison(rng, group[key][()])
            _replace_dataset(group, key, value)
            # storing in HDF5 turns [True, 2.0] into [1.0, 2.0]: that one no longer differs from a number
            cast = label == "bool in a list" or (label in ("bool", "bool array") and (kind, key) in _CAST_BY_NIR)
            must_fail = (invalid and not cast) or (key in POSITIVE_FIELDS and label in ("zero", "negative"))
    return Case(
        "nir-file-structure",
        f"{name}: node {node_name!r} {key} := {label}",
        lambda: _read_nir_isolated(path, config),
        must_fail,
    )


def trace_structure_case(rng: random.Random, workdir: Path) -> Case:
    """Make a case: a trace whose attributes, JSON parts or arrays are deleted or rewritten with bad values."""
    import h5py

    path = workdir / "case-trace-structure.h5"
    path.write_bytes(_trace_file(workdir).read_bytes())
    with h5py.File(path, "r+") as f:
        what = rng.randrange(5)
        if what == 0:
            key = rng.choice(["network", "metadata", "inputs", "populations"])
            del f[key]
            label, must_fail = f"/{key} deleted", True
        elif what == 1:
            key = rng.choice(["format", "version", "timesteps", "tick_offset", "latency_per_hop", "source"])
            label, value, _invalid = poison(rng, f.attrs[key])
            if value is None:
                del f.attrs[key]
            else:
                try:
                    f.attrs[key] = value
                except (TypeError, ValueError):
                    f.attrs[key] = repr(value)
            if key == "source":  # any text will do; what h5py cannot store as a number is written as its repr
                must_fail = value is None or label not in _STORED_AS_TEXT
            else:
                must_fail = not (label == "zero" and key in ("tick_offset", "latency_per_hop"))
            label = f"attribute {key} := {label}"
        elif what == 2:
            label, must_fail = _mutate_network_json(rng, f)
        else:
            arrays = []
            f.visititems(
                lambda n, o: (
                    arrays.append(n)
                    if isinstance(o, h5py.Dataset) and n.startswith(("inputs/", "populations/"))
                    else None
                )
            )
            key = rng.choice(arrays)
            label, value, _invalid = poison(rng, f[key][()])
            _replace_dataset(f, key, value)
            must_fail = (value is None and key.startswith("inputs/")) or label in _REFUSED_IN_RECORDS
            label = f"/{key} := {label}"
    return Case("trace-file-structure", label, lambda: _read_trace_isolated(path), must_fail)


#: Poisons no recorded array survives: spikes must be 0/1 uint8 of the right shape, voltages exact bit patterns.
_REFUSED_IN_RECORDS = (
    "text",
    "numeric text",
    "bytes",
    "complex",
    "one more element",
    "empty",
    "huge",
    "negative",
    "nan",
    "inf",
    "-inf",
    "fraction",
    "ragged list",
    "dict",
    "object",
)
_STORED_AS_TEXT = ("text", "numeric text", "bytes", "object", "dict", "ragged list")


def _mutate_network_json(rng: random.Random, f: Any) -> tuple[str, bool]:
    data = json.loads(f["network"][()])
    choice = rng.randrange(4)
    if choice == 0:
        text = json.dumps(data)[: rng.randrange(1, 40)]
        label, must_fail = "network JSON cut short", True
    elif choice == 1:
        pop = rng.choice(data["populations"])
        key = rng.choice(sorted(pop))
        pop[key] = rng.choice(["abc", None, -1, True, 1.5, [1], {"x": 1}])
        text = json.dumps(data)
        label, must_fail = f"network population {key} := {pop[key]!r}", key in ("name", "size", "neuron_model")
    elif choice == 2:
        template = data["populations"][0]
        data["populations"] = [dict(template, name=f"p{i}", size=1 << 24) for i in range(30)]
        text = json.dumps(data)
        label, must_fail = "network of 30 populations of 2^24 neurons", True
    else:
        proj = rng.choice(data["projections"])
        row = rng.choice(proj["connections"])
        row[rng.randrange(4)] = rng.choice(["1", None, 1e300, -5, 0.5, True])
        text = json.dumps(data)
        label, must_fail = "network connection entry mutated", False
    del f["network"]
    f["network"] = text
    return label, must_fail


# -- API calls -----------------------------------------------------------------------------------------------------


def api_case(rng: random.Random, workdir: Path) -> Case:
    """One public call with one argument replaced by a bad value."""
    from .nir_import import ConversionConfig
    from .profile import ChipProfile
    from .simulator import Simulator

    calls: list[tuple[str, dict[str, Any], Callable[..., Any], set[str]]] = [
        (
            "Population",
            {"size": 3, "neuron_model": "lif", "params": {"threshold": 2.0}, "record": ["spikes"]},
            lambda **a: snn.Population(**a),
            {"size"},
        ),
        (
            "Population params",
            {"threshold": 2.0, "alpha_decay": 0.9, "v_init": 0.0},
            lambda **a: snn.Population(3, "lif_curr_exp", a),
            {"threshold", "alpha_decay", "v_init"},
        ),
        ("spike_list", {"ticks": [1, 2, 5]}, lambda ticks: snn.Population(2, "spike_list", {1: ticks}), {"ticks"}),
        ("Projection", {"connections": [[0, 0, 3, 1], [1, 2, -4, 0]]}, _projection, {"connections"}),
        (
            "Conv2DProjection",
            {"weights": np.ones((1, 2, 2, 2)), "stride_x": 1, "pad_top": 0},
            _conv,
            {"weights", "stride_x", "pad_top"},
        ),
        (
            "run_batch",
            {"timesteps": 5, "inputs": np.zeros((2, 5, 4), np.uint8), "timeout": 10.0},
            lambda timesteps, inputs, timeout: Simulator(num_threads=1).run_batch(
                base_network(), {"stim": inputs}, timesteps, timeout=timeout
            ),
            {"timesteps", "inputs", "timeout"},
        ),
        ("Simulator", {"num_threads": 2}, lambda num_threads: Simulator(num_threads=num_threads), {"num_threads"}),
        (
            "ConversionConfig",
            {"dt": 1e-4, "conn_delay": 1, "weight_scale_percentile": 99.0},
            lambda **a: ConversionConfig(**a),
            {"dt", "conn_delay", "weight_scale_percentile"},
        ),
        (
            "ChipProfile",
            {"max_atoms_per_core": 100, "max_targets_per_core": 256},
            lambda **a: ChipProfile(**a),
            {"max_atoms_per_core", "max_targets_per_core"},
        ),
        ("memory budget", {"size": "2G"}, lambda size: memory.parse_size(size), set()),
    ]
    name, kwargs, call, numeric = rng.choice(calls)
    key = rng.choice(sorted(kwargs))
    label, value, invalid = poison(rng, kwargs[key])
    kwargs = {**kwargs, key: value}
    must_fail = invalid and key in numeric and not (label == "bool array" and key == "inputs")
    return Case("api", f"{name}({key}={label})", lambda: call(**kwargs), must_fail)


def _projection(connections: Any) -> None:
    pre = snn.Population(2, "spike_list", {}, name="a")
    post = snn.Population(3, "lif", {}, name="b")
    snn.Projection(pre, post, connections)


def _conv(weights: Any, stride_x: Any, pad_top: Any) -> None:
    pre = snn.Population(9, "spike_list", {}, name="img")
    post = snn.Population(8, "lif_conv2d", {}, name="fmap")
    snn.Conv2DProjection(pre, post, weights, {"in_height": 3, "in_width": 3, "stride_x": stride_x, "pad_top": pad_top})


# -- the command line ----------------------------------------------------------------------------------------------


def cli_case(rng: random.Random, workdir: Path) -> Case:
    """``s2sim conform`` on a damaged trace, or ``s2sim run`` with a bad input file or output path."""
    from .cli import main

    trace = _trace_file(workdir)
    if rng.random() < 0.5:
        label, data, must_fail = corrupt_bytes(rng, trace.read_bytes())
        bad = workdir / "cli-trace.h5"
        bad.write_bytes(data)
        argv = ["conform", str(trace), str(bad)]
        mutation = f"conform with a trace: {label}"
    else:
        name, model, _ = _nir_file(workdir, rng)
        inputs = workdir / "cli-input.npz"
        n_in = {"dense": 4, "cuba": 3, "conv": 36, "exported": 4}[name]
        samples, ticks = rng.choice([(0, 5), (1, 0), (2, 5), (1, 5)])
        arrays: dict[str, Any] = {"in" if name != "exported" else "stim": np.zeros((samples, ticks, n_in), np.uint8)}
        np.savez(inputs, **arrays)
        out = rng.choice([str(workdir / "cli-out.h5"), str(workdir / "missing" / "out.h5")])
        argv = ["run", str(model), "--input", str(inputs), "-o", out, "--conn-delay", "0"]
        if rng.random() < 0.3:
            argv += ["--trace", str(workdir / "missing" / "t.h5")]
        mutation = f"run {name}: {samples} sample(s) x {ticks} tick(s), -o {Path(out).parent.name}/, {argv[-2:]}"
        must_fail = samples == 0 or ticks == 0 or "missing" in " ".join(argv)
    quiet = io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            return main(argv)

    return Case("cli", mutation, run, must_fail, exit_status=True)


#: Category name -> case generator (rng, workdir) -> Case.
CATEGORIES: dict[str, Callable[[random.Random, Path], Case]] = {
    "nir-graph": nir_graph_case,
    "nir-file-bytes": nir_bytes_case,
    "nir-file-structure": nir_structure_case,
    "trace-file-bytes": trace_bytes_case,
    "trace-file-structure": trace_structure_case,
    "api": api_case,
    "cli": cli_case,
}


@contextlib.contextmanager
def fuzzing_limits() -> Iterator[None]:
    """Run the block under fuzzing's small memory budget (BUDGET) and short read timeout (READ_TIMEOUT).

    Both are restored afterwards.
    """
    from . import isolation

    previous, timeout = memory.set_budget(BUDGET), isolation.DEFAULT_TIMEOUT
    isolation.DEFAULT_TIMEOUT = READ_TIMEOUT
    try:
        yield
    finally:
        memory.set_budget(previous)
        isolation.DEFAULT_TIMEOUT = timeout
