"""Did the chip do exactly what the model says? Trace comparison and chip-variant inference.

    from s2sim import conformance, traces
    result = conformance.compare(traces.read_trace("sim.h5"), traces.read_trace("chip.h5"))
    print(result.report())                    # per-population agreement and the first divergence
    verdict = conformance.infer([traces.read_trace(p) for p in chip_files])
    print(verdict.report())                   # which chip variants reproduce the chip, which are ruled out

Ticks are compared in the chip's frame: row ``r`` of population ``p`` is tick
``r + tick_offset + depth(p) * (1 - latency_per_hop)``, where ``depth`` counts population hops from the nearest
spike_list source. A chip trace (latency 1) maps row to tick directly; a same-step framework (snnTorch, latency 0)
sees the input of tick ``t`` at layer ``k`` in step ``t``, which the chip reaches in tick ``t + k``.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import ConfigError, S2SimError, TraceError
from .network_io import network_from_dict, network_to_dict
from .profile import CONV_X_AXES, STATE_PRECISIONS, ChipProfile
from .snn import Conv2DProjection, Network
from .traces import Trace, from_result

_VARIABLES = ("spikes", "v", "v_last")
_MAX_LISTED = 10


# -- running the model ----------------------------------------------------------------------------------------
def simulate(network: Network, timesteps: int, profile: ChipProfile | None = None,
             inputs: Mapping[str, np.ndarray] | None = None,
             metadata: Mapping[str, Any] | None = None) -> Trace:
    """Run ``network`` in the simulator and return its Trace.

    Parameters
    ----------
    network : Network
    timesteps : int
    profile : ChipProfile, optional
        Default ChipProfile().
    inputs : dict, optional
        spike_list name -> uint8 [timesteps, size]; others replay their params.
    """
    from .simulator import Simulator

    profile = profile or ChipProfile()
    batch = {k: network.population(k).check_input(v)[None] for k, v in (inputs or {}).items()}
    result = Simulator(profile, num_threads=1).run_batch(network, batch, timesteps)
    return from_result(network, result, profile=profile, inputs=batch, metadata=dict(metadata or {}))


# -- comparison result types ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerance:
    """Tolerances for sources that are not float32-exact (Brian2's float64 state, snnTorch, Norse).

    Attributes
    ----------
    v_atol, v_rtol : float
        Voltages agree when ``|obs * v_scale - exp| <= v_atol + v_rtol * |exp|``.
    v_scale : float
        Factor applied to observed voltages first (e.g. the NIR-to-chip scale ``S`` for a framework trace).
    spike_ticks : int
        A spike is matched by a spike of the same neuron up to this many ticks earlier or later.
    """

    v_atol: float = 0.0
    v_rtol: float = 0.0
    v_scale: float = 1.0
    spike_ticks: int = 0

    def __post_init__(self) -> None:
        for name in ("v_atol", "v_rtol"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"Tolerance.{name} must be >= 0, got {getattr(self, name)!r}")
        if not (isinstance(self.v_scale, (int, float)) and math.isfinite(self.v_scale) and self.v_scale > 0):
            raise ConfigError(f"Tolerance.v_scale must be a finite number > 0, got {self.v_scale!r}")
        if isinstance(self.spike_ticks, bool) or not isinstance(self.spike_ticks, int) or self.spike_ticks < 0:
            raise ConfigError(f"Tolerance.spike_ticks must be an int >= 0, got {self.spike_ticks!r}")

    def describe(self) -> str:
        return (f"TOLERANCE mode (v_atol={self.v_atol:g}, v_rtol={self.v_rtol:g}, v_scale={self.v_scale:g}, "
                f"spike_ticks={self.spike_ticks}): NOT a bit-exact comparison")


@dataclass
class NeuronInputs:
    """What one neuron received in one tick, under the expected trace's network and profile.

    ``exc`` / ``inh`` are the integer ring-buffer sums (``I`` enters the membrane with a minus sign);
    ``by_projection`` lists ``(projection, pre population, exc, inh, spikes delivered)``.
    """

    tick: int
    exc: int
    inh: int
    by_projection: list[tuple[str, str, int, int, int]]
    params: dict[str, float]
    v_before_expected: float | None
    v_before_observed: float | None
    pre_spikes_from: str


@dataclass
class Divergence:
    """One disagreement between the two traces (tick in the chip's frame)."""

    population: str
    neuron: int
    tick: int
    variable: str
    expected: float
    observed: float
    expected_bits: str | None = None
    observed_bits: str | None = None
    inputs: NeuronInputs | None = None

    def describe(self) -> str:
        def show(value: float, bits: str | None) -> str:
            return f"{value!r}" + (f" ({bits})" if bits else "")

        if self.variable == "spikes":
            what = {1: "spike", 0: "no spike"}
            return (f"population {self.population!r}, neuron {self.neuron}, tick {self.tick}, spikes: expected "
                    f"{what[int(self.expected)]}, observed {what[int(self.observed)]}")
        return (f"population {self.population!r}, neuron {self.neuron}, tick {self.tick}, {self.variable}: "
                f"expected {show(self.expected, self.expected_bits)}, observed "
                f"{show(self.observed, self.observed_bits)}")


@dataclass
class VariableAgreement:
    """Agreement of one recorded variable of one population."""

    variable: str
    compared: int
    mismatches: int
    mismatch_ticks: tuple[int, int] | None  # first and last tick with a mismatch
    expected_events: int | None = None
    observed_events: int | None = None
    max_abs_diff: float | None = None
    listed: list[Divergence] = field(default_factory=list)


@dataclass
class PopulationAgreement:
    """Agreement of one population over the ticks both traces cover."""

    population: str
    size: int
    depth: int
    ticks: tuple[int, int]
    variables: list[VariableAgreement]

    @property
    def match(self) -> bool:
        return all(v.mismatches == 0 for v in self.variables)


@dataclass
class Comparison:
    """Result of :func:`compare`; ``match`` is True when every compared value agrees."""

    mode: str
    tolerance: Tolerance | None
    expected_source: str
    observed_source: str
    populations: list[PopulationAgreement]
    first_divergence: Divergence | None
    notes: list[str] = field(default_factory=list)

    @property
    def match(self) -> bool:
        return all(p.match for p in self.populations)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``json.dumps(result.to_dict())``)."""
        out = asdict(self)
        out["match"] = self.match
        return _jsonable(out)

    def report(self) -> str:
        """Human-readable report: mode, one line per population and variable, then the first divergence."""
        lines = [f"mode: {self.tolerance.describe() if self.tolerance else 'EXACT (bit patterns of every value)'}",
                 f"expected: {self.expected_source}   observed: {self.observed_source}"]
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"{'population':<24} {'ticks':>11} {'variable':>8}  result")
        for pop in self.populations:
            for var in pop.variables:
                lines.append(f"{pop.population:<24} {pop.ticks[0]:>5}..{pop.ticks[1]:<4} {var.variable:>8}  "
                             f"{_describe_variable(var)}")
        lines.append(f"RESULT: {'MATCH' if self.match else 'MISMATCH'}")
        if self.first_divergence is not None:
            lines.append("first divergence: " + self.first_divergence.describe())
            if self.first_divergence.inputs is not None:
                lines += ["  " + s for s in _describe_inputs(self.first_divergence.inputs)]
        return "\n".join(lines)


def _describe_variable(var: VariableAgreement) -> str:
    if var.mismatches == 0:
        extra = f" ({var.expected_events} spikes)" if var.expected_events is not None else ""
        return f"agree on {var.compared} values{extra}"
    text = f"{var.mismatches} of {var.compared} differ, first at tick {var.mismatch_ticks[0]}"
    if var.expected_events is not None:
        text += f" (spikes: expected {var.expected_events}, observed {var.observed_events})"
    if var.max_abs_diff is not None:
        text += f" (max |diff| {var.max_abs_diff:.6g})"
    return text


def _describe_inputs(inp: NeuronInputs) -> list[str]:
    lines = [f"synaptic input at tick {inp.tick} (pre spikes from {inp.pre_spikes_from}): exc {inp.exc}, "
             f"inh {inp.inh}"]
    for proj, pre, exc, inh, n in inp.by_projection:
        lines.append(f"  from {pre!r} via {proj!r}: {n} synapse event(s), exc {exc}, inh {inh}")
    lines.append("parameters (float32 as uploaded): " + ", ".join(f"{k} {v!r}" for k, v in inp.params.items()))
    if inp.v_before_expected is not None or inp.v_before_observed is not None:
        lines.append(f"V at tick {inp.tick - 1}: expected {inp.v_before_expected!r}, observed "
                     f"{inp.v_before_observed!r}")
    return lines


# -- compare --------------------------------------------------------------------------------------------------
def compare(expected: Trace, observed: Trace, *, tolerance: Tolerance | None = None, check_network: bool = True,
            allow_partial: bool = False, explain: bool = True, max_listed: int = _MAX_LISTED) -> Comparison:
    """Compare two traces of the same network and inputs, bit-exact unless ``tolerance`` is given.

    Parameters
    ----------
    expected, observed : Trace
        Usually the simulator's and the chip's. Populations are matched by name.
    tolerance : Tolerance, optional
        Compare voltages within tolerances (and spikes within a tick window) instead of bit for bit; the report
        says so. Exact mode compares float32 bit patterns (a float32 and a float64 trace are compared as float64).
    check_network : bool
        Refuse traces of different networks or inputs (default). Turn off only for hand-made traces.
    allow_partial : bool
        Compare over the common ticks when the traces end at different ticks (a different run length); by default
        that is an error. Different *start* ticks (tick offsets) are always handled and noted.
    explain : bool
        Add the neuron's synaptic inputs to the first divergence (may re-run the simulator once).
    max_listed : int
        Divergences listed per population and variable.

    Raises
    ------
    TraceError
        Different networks or inputs, a population or variable recorded in ``expected`` but not in ``observed``,
        different run lengths (unless ``allow_partial``), or no common ticks.
    """
    expected.validate("expected trace")
    observed.validate("observed trace")
    notes: list[str] = []
    if check_network:
        if expected.network is not observed.network:
            _check_same_network(expected.network, observed.network)
        _check_same_inputs(expected, observed, notes)
    depths = population_depths(expected.network)
    pops = []
    for pop in expected.network.populations:
        agreement = _compare_population(pop, depths[pop.name], expected, observed, tolerance, allow_partial,
                                        max_listed, notes)
        if agreement is not None:
            pops.append(agreement)
    if not pops:
        raise TraceError(f"expected trace ({expected.source}) records nothing to compare: no population of network "
                         f"{expected.network.name!r} has recorded spikes or voltages")
    first = _first_divergence(pops, expected.network)
    if first is not None and explain:
        first.inputs = _explain(first, expected, observed, notes)
    return Comparison(mode="tolerance" if tolerance else "exact", tolerance=tolerance,
                      expected_source=_source(expected), observed_source=_source(observed), populations=pops,
                      first_divergence=first, notes=notes)


def _source(trace: Trace) -> str:
    profile = "profile unknown" if trace.profile is None else _profile_label(trace.profile)
    text = f"{trace.source} ({profile}; {trace.timesteps} ticks"
    if trace.tick_offset:
        text += f", first {trace.tick_offset} dropped"
    if trace.latency_per_hop == 0:
        text += ", same-step propagation"
    return text + ")"


def population_depths(network: Network) -> dict[str, int]:
    """Population hops from the nearest spike_list source (0 for sources and unreachable populations)."""
    depth = {p.name: 0 for p in network.populations}
    queue = deque(p.name for p in network.populations if p.model.is_input)
    seen = set(queue)
    targets: dict[str, list[str]] = {}
    for proj in network.projections:
        targets.setdefault(proj.pre.name, []).append(proj.post.name)
    while queue:
        name = queue.popleft()
        for post in targets.get(name, []):
            if post not in seen:
                seen.add(post)
                depth[post] = depth[name] + 1
                queue.append(post)
    return depth


def _structure(network: Network) -> dict[str, Any]:
    """The network description without what may legitimately differ between two runs of it."""
    data = network_to_dict(network)
    data.pop("name")
    for pop in data["populations"]:
        pop.pop("record")
        pop.pop("spike_times", None)
    return data


def _check_same_network(a: Network, b: Network) -> None:
    diff = _first_difference(_structure(a), _structure(b), "network")
    if diff:
        raise TraceError(f"the traces record different networks ({a.name!r} and {b.name!r}): {diff}")


def _first_difference(a: Any, b: Any, path: str) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return f"{path}.{key} present in only one of them"
            found = _first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path} has {len(a)} entries in expected and {len(b)} in observed"
        for i, (x, y) in enumerate(zip(a, b)):
            name = x.get("name") if isinstance(x, dict) else None
            found = _first_difference(x, y, f"{path}[{name!r}]" if name else f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: expected {a!r}, observed {b!r}"


def _check_same_inputs(expected: Trace, observed: Trace, notes: list[str]) -> None:
    for name, exp in expected.inputs.items():
        obs = observed.inputs.get(name)
        if obs is None:
            raise TraceError(f"observed trace ({observed.source}) lacks the inputs of spike_list population {name!r}")
        n = min(len(exp), len(obs))
        diff = np.argwhere(exp[:n] != obs[:n])
        if diff.size:
            t, i = diff[0]
            raise TraceError(f"the traces had different inputs: spike_list {name!r}, neuron {i}, tick {t}: expected "
                             f"{'a spike' if exp[t, i] else 'none'}, observed {'a spike' if obs[t, i] else 'none'}")
        longer, extra = (exp, "expected") if len(exp) > n else (obs, "observed")
        if longer[n:].any():
            t = n + int(np.argwhere(longer[n:])[0][0])
            raise TraceError(f"the traces had different inputs: spike_list {name!r} sends a spike at tick {t} in the "
                             f"{extra} trace, beyond the other trace's {n} ticks")
        if len(exp) != len(obs):
            notes.append(f"inputs of {name!r} cover {len(exp)} ticks (expected) and {len(obs)} (observed); equal over "
                         "the common ticks, no spikes beyond")


def _ticks(trace: Trace, depth: int) -> tuple[int, int]:
    """Chip-frame tick of the first and of one past the last row."""
    start = trace.tick_offset + depth * (1 - trace.latency_per_hop)
    return start, start + trace.rows


def aligned_rows(expected: Trace, observed: Trace, population: str,
                 variable: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The common ticks of one population's ``variable`` ("spikes" or "v") and both traces' rows for them."""
    depth = population_depths(expected.network)[population]
    group = {"spikes": "spikes", "v": "voltages"}[variable]
    exp, obs = getattr(expected, group)[population], getattr(observed, group)[population]
    (e0, e1), (o0, o1) = _ticks(expected, depth), _ticks(observed, depth)
    lo, hi = max(e0, o0), min(e1, o1)
    return np.arange(lo, hi), exp[lo - e0:hi - e0], obs[lo - o0:hi - o0]


def _compare_population(pop, depth: int, expected: Trace, observed: Trace, tolerance: Tolerance | None,
                        allow_partial: bool, max_listed: int, notes: list[str]) -> PopulationAgreement | None:
    groups = (("spikes", expected.spikes, observed.spikes), ("v", expected.voltages, observed.voltages),
              ("v_last", expected.v_last, observed.v_last))
    present = [(var, e[pop.name], o.get(pop.name)) for var, e, o in groups if pop.name in e]
    if not present:
        return None
    e0, e1 = _ticks(expected, depth)
    o0, o1 = _ticks(observed, depth)
    lo, hi = max(e0, o0), min(e1, o1)
    if e1 != o1 and not allow_partial:
        raise TraceError(f"population {pop.name!r}: the traces end at different ticks (expected covers ticks "
                         f"{e0}..{e1 - 1}, observed {o0}..{o1 - 1}): different run lengths. Check timesteps, "
                         "tick_offset and latency_per_hop, or pass allow_partial=True to compare the common ticks")
    if hi <= lo:
        raise TraceError(f"population {pop.name!r}: no common ticks (expected {e0}..{e1 - 1}, observed "
                         f"{o0}..{o1 - 1})")
    if e0 != o0:
        notes.append(f"population {pop.name!r}: compared ticks {lo}..{hi - 1} (expected starts at tick {e0}, "
                     f"observed at {o0})")
    variables = []
    for var, exp, obs in present:
        if obs is None:
            raise TraceError(f"observed trace ({observed.source}) has no {var!r} for population {pop.name!r}, "
                             f"which the expected trace records")
        if var == "v_last":
            variables.append(_compare_values(pop.name, var, exp[None], obs[None], e1 - 1, tolerance, max_listed))
            continue
        exp_rows, obs_rows = exp[lo - e0:hi - e0], obs[lo - o0:hi - o0]
        compare_one = _compare_spikes if var == "spikes" else _compare_values
        variables.append(compare_one(pop.name, var, exp_rows, obs_rows, lo, tolerance, max_listed))
    return PopulationAgreement(pop.name, pop.size, depth, (lo, hi - 1), variables)


def _compare_spikes(name: str, var: str, exp: np.ndarray, obs: np.ndarray, t0: int, tolerance: Tolerance | None,
                    max_listed: int) -> VariableAgreement:
    window = tolerance.spike_ticks if tolerance else 0
    bad = (exp.astype(bool) & ~_dilate(obs, window)) | (obs.astype(bool) & ~_dilate(exp, window))
    listed = [Divergence(name, int(i), int(t) + t0, var, int(exp[t, i]), int(obs[t, i]))
              for t, i in np.argwhere(bad)[:max_listed]]
    return VariableAgreement(var, int(exp.size), int(bad.sum()), _mismatch_ticks(bad, t0),
                             expected_events=int(exp.sum()), observed_events=int(obs.sum()), listed=listed)


def _dilate(spikes: np.ndarray, window: int) -> np.ndarray:
    out = spikes.astype(bool)
    for shift in range(1, window + 1):
        out[shift:] |= spikes[:-shift].astype(bool)
        out[:-shift] |= spikes[shift:].astype(bool)
    return out


def _compare_values(name: str, var: str, exp: np.ndarray, obs: np.ndarray, t0: int, tolerance: Tolerance | None,
                    max_listed: int) -> VariableAgreement:
    if tolerance is not None:
        o64 = obs.astype(np.float64) * tolerance.v_scale
        e64 = exp.astype(np.float64)
        with np.errstate(invalid="ignore"):
            ok = np.abs(o64 - e64) <= tolerance.v_atol + tolerance.v_rtol * np.abs(e64)
        bad = ~(ok | (np.isnan(e64) & np.isnan(o64)))
    else:
        # every bit counts (-0.0 != 0.0), except that NaN is one class: x86 and the chip's ARM core generate
        # different default NaN encodings (docs/datapath.md, section 4)
        bad = (_bits(exp, obs.dtype) != _bits(obs, exp.dtype)) & ~(np.isnan(exp) & np.isnan(obs))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(obs.astype(np.float64) - exp.astype(np.float64))
    max_diff = float(np.nanmax(diff[bad])) if bad.any() and not np.isnan(diff[bad]).all() else (
        None if bad.any() else 0.0)
    listed = [Divergence(name, int(i), int(t) + t0, var, float(exp[t, i]), float(obs[t, i]),
                         _hex(exp[t, i]), _hex(obs[t, i])) for t, i in np.argwhere(bad)[:max_listed]]
    return VariableAgreement(var, int(exp.size), int(bad.sum()), _mismatch_ticks(bad, t0), max_abs_diff=max_diff,
                             listed=listed)


def _bits(arr: np.ndarray, other: np.dtype) -> np.ndarray:
    """Bit patterns for exact comparison; a float32 meeting a float64 is widened (exactly) first."""
    if arr.dtype == np.float32 and other == np.float64:
        arr = arr.astype(np.float64)
    return arr.view(np.uint64 if arr.dtype == np.float64 else np.uint32)


def _hex(value: np.generic) -> str:
    if value.dtype == np.float64:
        return f"0x{int(np.asarray(value).view(np.uint64)):016x}"
    return f"0x{int(np.asarray(value).view(np.uint32)):08x}"


def _mismatch_ticks(bad: np.ndarray, t0: int) -> tuple[int, int] | None:
    rows = np.flatnonzero(bad.any(axis=1))
    if rows.size == 0:
        return None
    return (int(rows[0]) + t0, int(rows[-1]) + t0)


def _first_divergence(pops: list[PopulationAgreement], network: Network) -> Divergence | None:
    order = {p.name: k for k, p in enumerate(network.populations)}
    candidates = []
    for pop in pops:
        for rank, var in enumerate(pop.variables):
            if var.listed:
                d = var.listed[0]
                candidates.append(((d.tick, pop.depth, order[pop.population], d.neuron, rank), d))
    return min(candidates, key=lambda c: c[0])[1] if candidates else None


# -- explaining a divergence ----------------------------------------------------------------------------------
def _explain(div: Divergence, expected: Trace, observed: Trace, notes: list[str]) -> NeuronInputs | None:
    """The diverging neuron's synaptic input at that tick, from pre spikes in expected (or a re-run of it)."""
    from .lowering import round_weights

    net = expected.network
    post = net.population(div.population)
    if post.model.is_input:
        return None
    profile = expected.profile or ChipProfile()
    incoming = [p for p in net.projections if p.post is post]
    spikes, origin = _pre_spikes(expected, {p.pre.name for p in incoming}, profile, notes)
    rows = []
    for proj in incoming:
        w = round_weights(proj.weights, profile.weight_rounding, proj.name)
        summed = _conv_input if isinstance(proj, Conv2DProjection) else _list_input
        exc, inh, n = summed(proj, w, spikes[proj.pre.name], div.tick, div.neuron, profile)
        rows.append((proj.name, proj.pre.name, exc, inh, n))
    post_params = post.validated().params
    params = {k: float(np.float32(v[div.neuron])) for k, v in post_params.items() if k != "t_refrac"}
    if "t_refrac" in post_params:
        params["t_refrac"] = float(post_params["t_refrac"][div.neuron])
    return NeuronInputs(div.tick, sum(r[2] for r in rows), sum(r[3] for r in rows), rows, params,
                        _v_at(expected, post.name, div.neuron, div.tick - 1),
                        _v_at(observed, post.name, div.neuron, div.tick - 1), origin)


def _pre_spikes(trace: Trace, names: set[str], profile: ChipProfile,
                notes: list[str]) -> tuple[dict[str, np.ndarray], str]:
    """Spikes of ``names`` in the chip frame, every tick from 0: from the trace when it has them all."""
    def from_trace(name: str) -> np.ndarray | None:
        if name in trace.inputs:
            return trace.inputs[name]
        if name in trace.spikes and trace.tick_offset == 0 and trace.latency_per_hop == 1:
            return trace.spikes[name]
        return None

    found = {n: from_trace(n) for n in names}
    if all(v is not None for v in found.values()):
        return found, "the expected trace"
    data = network_to_dict(trace.network)
    for pop in data["populations"]:
        if pop["name"] in names and "spikes" not in pop["record"]:
            pop["record"].append("spikes")
    rerun = simulate(network_from_dict(data), trace.timesteps, profile, trace.inputs)
    notes.append("pre-synaptic spikes for the divergence report come from a re-run of the expected network under "
                 f"{_profile_label(profile)}")
    return {n: rerun.inputs.get(n, rerun.spikes.get(n)) for n in names}, f"a re-run under {_profile_label(profile)}"


def _list_input(proj, weights: np.ndarray, pre: np.ndarray, tick: int, neuron: int,
                profile: ChipProfile) -> tuple[int, int, int]:
    sel = np.flatnonzero(proj.post_idx == neuron)
    ticks = tick - 1 - proj.delays[sel]
    ok = ticks >= 0
    fired = np.zeros(sel.size, dtype=bool)
    fired[ok] = pre[ticks[ok], proj.pre_idx[sel][ok]] == 1
    w = weights[sel][fired]
    return int(w[w > 0].sum()), int(-w[w < 0].sum()), int(fired.sum())


def _conv_input(proj: Conv2DProjection, weights: np.ndarray, pre: np.ndarray, tick: int,
                neuron: int, profile: ChipProfile) -> tuple[int, int, int]:
    if tick < 1:
        return 0, 0, 0
    geometry = proj.geometry(profile.conv_x_axis)   # the chip's reading of the x/y parameters
    c_in, h, w_in = geometry.in_shape
    p = geometry.params
    _, ph, pw = geometry.pooled_shape
    pooled = pre[tick - 1].reshape(c_in, ph, p["pool_y"], pw, p["pool_x"]).sum(axis=(2, 4)).astype(np.int64)
    _, oh, ow = geometry.out_shape
    co, rest = divmod(neuron, oh * ow)
    oy, ox = divmod(rest, ow)
    exc = inh = events = 0
    for ky in range(weights.shape[2]):
        for kx in range(weights.shape[3]):
            y = oy * p["stride_y"] - p["pad_top"] + ky
            x = ox * p["stride_x"] - p["pad_left"] + kx
            if 0 <= y < ph and 0 <= x < pw:
                contrib = weights[:, co, ky, kx].astype(np.int64) * pooled[:, y, x]
                exc += int(contrib[contrib > 0].sum())
                inh += int(-contrib[contrib < 0].sum())
                events += int(pooled[:, y, x].sum())
    return exc, inh, events


def _v_at(trace: Trace, name: str, neuron: int, tick: int) -> float | None:
    if name not in trace.voltages:
        return None
    depth = population_depths(trace.network)[name]
    row = tick - _ticks(trace, depth)[0]
    return float(trace.voltages[name][row, neuron]) if 0 <= row < trace.rows else None


# -- variant inference ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hypothesis:
    """One candidate chip: a ChipProfile."""

    profile: ChipProfile

    def settings(self) -> dict[str, Any]:
        """The open points this hypothesis fixes, by name."""
        p = self.profile
        return {"threshold_op": p.threshold_op, "fused_multiply_add": p.fused_multiply_add,
                "weight_rounding": p.weight_rounding, "state_precision": p.state_precision,
                "conv_x_axis": p.conv_x_axis, "input_grouping": p.input_grouping}

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.settings().items())


def hypotheses(state_precisions: Sequence[str] = STATE_PRECISIONS,
               conv_x_axes: Sequence[str] = CONV_X_AXES) -> list[Hypothesis]:
    """Every ChipProfile variant (:meth:`ChipProfile.variants`) at every state precision and conv x-axis reading."""
    return [Hypothesis(profile) for sp in state_precisions for axis in conv_x_axes
            for profile in ChipProfile.variants(state_precision=sp, conv_x_axis=axis)]


@dataclass
class Failure:
    """Why a hypothesis does not reproduce one trace: the first divergence, or an error running it."""

    trace: str
    tick: int | None
    population: str | None
    variable: str | None
    detail: str


@dataclass
class Verdict:
    """A hypothesis against every trace of the set."""

    hypothesis: Hypothesis
    failures: list[Failure]

    @property
    def consistent(self) -> bool:
        return not self.failures


@dataclass
class Inference:
    """Result of :func:`infer`."""

    traces: list[str]
    verdicts: list[Verdict]

    @property
    def consistent(self) -> list[Hypothesis]:
        """Hypotheses that reproduce every trace exactly."""
        return [v.hypothesis for v in self.verdicts if v.consistent]

    def settled(self) -> dict[str, Any]:
        """Open point -> value, for points on which every consistent hypothesis agrees (None: not settled)."""
        consistent = self.consistent
        if not consistent:
            return {}
        out = {}
        for key in consistent[0].settings():
            values = {h.settings()[key] for h in consistent}
            out[key] = values.pop() if len(values) == 1 else None
        return out

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({
            "traces": self.traces,
            "consistent": [h.settings() for h in self.consistent],
            "settled": self.settled(),
            "verdicts": [{"hypothesis": v.hypothesis.settings(), "consistent": v.consistent,
                          "failures": [asdict(f) for f in v.failures]} for v in self.verdicts],
        })

    def report(self) -> str:
        lines = [f"variant inference over {len(self.traces)} trace(s): {', '.join(self.traces)}",
                 f"{len(self.consistent)} of {len(self.verdicts)} hypotheses reproduce every trace exactly"]
        for h in self.consistent:
            lines.append(f"  REPRODUCES: {h.label}")
        settled = self.settled()
        if settled:
            lines.append("settled: " + ", ".join(f"{k}={v}" for k, v in settled.items() if v is not None))
            open_points = [k for k, v in settled.items() if v is None]
            if open_points:
                lines.append("not settled by these traces: " + ", ".join(open_points))
        else:
            lines.append("no hypothesis reproduces the chip: the difference lies outside the profile variants "
                         "(see the first failures below and docs/conformance.md)")
        lines.append("ruled out (each failing trace: first tick, population, variable):")
        for v in self.verdicts:
            if not v.consistent:
                lines.append(f"  {v.hypothesis.label}: " + "; ".join(_describe_failure(f) for f in v.failures))
        return "\n".join(lines)


def _describe_failure(f: Failure) -> str:
    if f.tick is None:
        return f"{f.trace}: {f.detail}"
    return f"{f.trace} at tick {f.tick} ({f.population!r} {f.variable})"


def infer(observed: Trace | Sequence[Trace], candidates: Sequence[Hypothesis] | None = None, *,
          labels: Sequence[str] | None = None, cache: dict | None = None) -> Inference:
    """Which chip variants reproduce ``observed`` exactly?

    Each trace's network is re-run with its recorded inputs under every candidate (default :func:`hypotheses`)
    and compared bit for bit with the trace. A candidate is consistent when it reproduces every trace.

    Parameters
    ----------
    observed : Trace or list of Trace
        Chip traces of known networks and inputs (e.g. the probe suite, :mod:`s2sim.probes`).
    candidates : list of Hypothesis, optional
    labels : list of str, optional
        Names of the traces in the report (default: metadata "probe", else "trace <i>").
    cache : dict, optional
        Simulator runs keyed by network, inputs and hypothesis; pass the same dict to reuse runs across calls.
    """
    traces = [observed] if isinstance(observed, Trace) else list(observed)
    if not traces:
        raise ConfigError("infer: no traces given")
    candidates = hypotheses() if candidates is None else list(candidates)
    if labels is None:
        labels = [str(t.metadata.get("probe", f"trace {i}")) for i, t in enumerate(traces)]
    cache = {} if cache is None else cache
    failures: list[list[Failure]] = [[] for _ in candidates]
    for trace, label in zip(traces, labels):
        key = _run_key(trace)
        for found, hyp in zip(failures, candidates):
            failure = _test(hyp, trace, label, key, cache)
            if failure is not None:
                found.append(failure)
    return Inference(list(labels), [Verdict(h, f) for h, f in zip(candidates, failures)])


def _run_key(trace: Trace) -> str:
    """Digest of what a re-run depends on besides the profile: the network, the inputs, the length."""
    digest = hashlib.sha1(json.dumps(network_to_dict(trace.network), sort_keys=True).encode())
    digest.update(str(trace.timesteps).encode())
    for name in sorted(trace.inputs):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(trace.inputs[name]).tobytes())
    return digest.hexdigest()


def _test(hyp: Hypothesis, trace: Trace, label: str, run_key: str, cache: dict) -> Failure | None:
    key = (run_key, json.dumps(hyp.profile.to_dict(), sort_keys=True))
    if key not in cache:
        try:
            cache[key] = simulate(trace.network, trace.timesteps, hyp.profile, trace.inputs)
        except S2SimError as exc:
            cache[key] = exc
    run = cache[key]
    if isinstance(run, Exception):
        return Failure(label, None, None, None, f"cannot run under this hypothesis: {run}")
    result = compare(replace(run, network=trace.network), trace, explain=False, max_listed=1)
    div = result.first_divergence
    if div is None:
        return None
    return Failure(label, div.tick, div.population, div.variable, div.describe())


# -- helpers --------------------------------------------------------------------------------------------------
def _profile_label(profile: ChipProfile) -> str:
    return Hypothesis(profile).label


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, ChipProfile):
        return value.to_dict()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)
    return value
