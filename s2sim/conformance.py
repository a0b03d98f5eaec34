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
from .profile import ChipProfile
from .snn import Conv2DProjection, Network
from .traces import Trace, from_result
from .variants import (Point, allowed_values, combination_count, combinations, open_points, point_named, profile_of,
                       relevant_points)

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
    profile = "profile unknown" if trace.profile is None else profile_label(trace.profile)
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
    from .list_rows import round_weights

    net = expected.network
    post = net.population(div.population)
    if post.model.is_input:
        return None
    profile = expected.profile or ChipProfile()
    incoming = [p for p in net.projections if p.post is post]
    spikes, origin = _pre_spikes(expected, {p.pre.name for p in incoming}, profile, notes)
    rows = []
    settings = profile.model_settings(post.neuron_model)
    for proj in incoming:
        is_conv = isinstance(proj, Conv2DProjection)
        rounding = settings.conv_weight_rounding if is_conv else settings.weight_rounding
        w = round_weights(proj.weights, rounding, proj.name)
        summed = _conv_input if is_conv else _list_input
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
                 f"{profile_label(profile)}")
    return {n: rerun.inputs.get(n, rerun.spikes.get(n)) for n in names}, f"a re-run under {profile_label(profile)}"


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
#: Most combinations one population is searched over; a population with more (deep mixed-model networks) is only
#: checked against the combinations the searched ones leave.
MAX_SEARCH = 1024
#: Most consistent combinations inference verifies on every trace and lists.
MAX_CONSISTENT = 256
#: Most partial combinations the join of the populations' answers may hold.
_MAX_JOIN = 100_000


def hypotheses(trace: Trace | Network, restrict: Mapping[str, Sequence[Any]] | None = None,
               ) -> dict[str, list[dict[Point, Any]]]:
    """The hypotheses :func:`infer` considers, population by population.

    For each population that records spikes or voltages (in the trace, when a Trace is given): every combination
    of the open points that can change what it records (:func:`s2sim.variants.relevant_points`; values limited by ``restrict``, point or field name ->
    values), every other point at ChipProfile()'s value. Populations with more than :data:`MAX_SEARCH`
    combinations are left out: inference only checks them.
    """
    network = trace.network if isinstance(trace, Trace) else trace
    relevant = relevant_points(network)
    out = {}
    for pop in network.populations:
        points = sorted(relevant[pop.name])
        if points and _records(trace, pop) and combination_count(points, restrict) <= MAX_SEARCH:
            out[pop.name] = list(combinations(points, restrict))
    return out


def _records(trace: Trace | Network, pop) -> bool:
    """Whether ``pop`` has recorded spikes or voltages to compare (in the trace, or by its record list)."""
    if isinstance(trace, Trace):
        return any(pop.name in group for group in (trace.spikes, trace.voltages, trace.v_last))
    return any(v in pop.record for v in _VARIABLES)


@dataclass
class PopulationSearch:
    """One population of one trace searched over its own points."""

    trace: str
    population: str
    points: list[str]
    tried: int
    consistent: list[dict[str, Any]]
    #: When nothing is consistent: the first divergence under the default combination.
    failure: str | None = None


@dataclass
class Inference:
    """Result of :func:`infer`.

    ``consistent`` holds the assignments (point name -> value) of the searched points that reproduce every
    trace exactly; points no searched population depends on are absent from them (see :meth:`not_probed`).
    """

    traces: list[str]
    searches: list[PopulationSearch]
    consistent: list[dict[str, Any]]
    #: (trace, population) left out of the search (too many combinations) and only checked.
    checked_only: list[tuple[str, str]] = field(default_factory=list)
    #: Consistent combinations beyond MAX_CONSISTENT (not verified, not listed).
    unlisted: int = 0
    restrict: dict[str, list] = field(default_factory=dict)

    def settled(self) -> dict[str, Any]:
        """Point name -> value, for the searched points on which every consistent assignment agrees."""
        return {k: v[0] for k, v in self._values().items() if len(v) == 1 and not self.unlisted}

    def not_distinguished(self) -> dict[str, list]:
        """Point name -> the values still consistent, for searched points the traces cannot settle."""
        return {k: v for k, v in self._values().items() if len(v) > 1 or self.unlisted}

    def not_probed(self) -> list[str]:
        """Open points no searched population depends on: these traces say nothing about them."""
        probed = {name for s in self.searches for name in s.points}
        return [p.name for p in open_points() if p.name not in probed]

    def profiles(self) -> list[ChipProfile]:
        """The consistent assignments as profiles (points not probed at ChipProfile()'s value)."""
        return [profile_of({point_named(k): v for k, v in a.items()}) for a in self.consistent]

    def _values(self) -> dict[str, list]:
        if not self.consistent:
            return {}
        names = sorted({k for a in self.consistent for k in a})
        return {k: sorted({a[k] for a in self.consistent}, key=repr) for k in names}

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({
            "traces": self.traces, "consistent": self.consistent, "settled": self.settled(),
            "not_distinguished": self.not_distinguished(), "not_probed": self.not_probed(),
            "profiles": [p.to_dict() for p in self.profiles()],
            "searches": [asdict(s) for s in self.searches], "checked_only": self.checked_only,
            "unlisted": self.unlisted, "restrict": self.restrict})

    def report(self) -> str:
        tried = sum(s.tried for s in self.searches)
        lines = [f"variant inference over {len(self.traces)} trace(s): {', '.join(self.traces)}",
                 f"searched {len(self.searches)} population(s), each over the points it depends on ({tried} "
                 f"combinations in all)"]
        if self.restrict:
            lines.append("restricted to: " + ", ".join(f"{k} in {v}" for k, v in self.restrict.items()))
        if self.checked_only:
            lines.append("checked, not searched (too many combinations): " +
                         ", ".join(f"{t}:{p}" for t, p in self.checked_only))
        if not self.consistent:
            lines.append("NO combination of the chip variants reproduces these traces: the difference lies outside "
                         "the profile variants (docs/conformance.md). Populations nothing reproduces:")
            lines += [f"  {s.trace}:{s.population} over {', '.join(s.points)}: {s.failure}"
                      for s in self.searches if not s.consistent]
            return "\n".join(lines)
        count = f"{len(self.consistent)}{'+' + str(self.unlisted) if self.unlisted else ''}"
        lines.append(f"{count} combination(s) of the searched points reproduce every trace exactly")
        settled = self.settled()
        if settled:
            lines.append("settled: " + ", ".join(f"{k}={v}" for k, v in settled.items()))
        for name, values in self.not_distinguished().items():
            lines.append(f"NOT DISTINGUISHED by these traces: {name} (consistent: {', '.join(map(str, values))})")
        if self.not_probed():
            lines.append("not probed by these traces: " + ", ".join(self.not_probed()))
        if len(self.consistent) == 1:
            lines.append(f"as a profile (points not probed at their defaults): {profile_label(self.profiles()[0])}")
        return "\n".join(lines)


def infer(observed: Trace | Sequence[Trace], *, restrict: Mapping[str, Sequence[Any]] | None = None,
          labels: Sequence[str] | None = None, cache: dict | None = None) -> Inference:
    """Which chip variants reproduce ``observed`` exactly?

    Every population is searched over the combinations of the open points it depends on (:func:`hypotheses`):
    the trace's network is re-run with the trace's inputs under each and the population's recorded spikes and
    voltages are compared bit for bit. The populations' answers are then joined on their shared points, and
    every joined combination is verified by re-running every trace under it. A point on which the consistent
    combinations disagree is reported as not distinguished, never as settled.

    Parameters
    ----------
    observed : Trace or list of Trace
        Chip traces of known networks and inputs (e.g. the probe suite, :mod:`s2sim.probes`).
    restrict : dict, optional
        Point name (``"threshold_op[lif]"``) or field name (``"state_precision"``) -> the values to try.
    labels : list of str, optional
        Names of the traces in the report (default: metadata "probe", else "trace <i>").
    cache : dict, optional
        Simulator runs keyed by network, inputs and profile; pass the same dict to reuse runs across calls.
    """
    traces = [observed] if isinstance(observed, Trace) else list(observed)
    if not traces:
        raise ConfigError("infer: no traces given")
    if labels is None:
        labels = [str(t.metadata.get("probe", f"trace {i}")) for i, t in enumerate(traces)]
    for point in open_points():       # a bad restriction is an error before any run
        allowed_values(point, restrict)
    cache = {} if cache is None else cache
    searches, checked_only = [], []
    for trace, label in zip(traces, labels):
        found = hypotheses(trace, restrict)
        for pop in trace.network.populations:
            if pop.name in found:
                searches.append(_search(trace, label, pop.name, found[pop.name], cache))
            elif _records(trace, pop) and relevant_points(trace.network)[pop.name]:
                checked_only.append((label, pop.name))
    joined = _join([s.consistent for s in searches])
    unlisted = max(0, len(joined) - MAX_CONSISTENT)
    consistent = [a for a in joined[:MAX_CONSISTENT] if _reproduces_all(traces, a, cache)]
    return Inference(list(labels), searches, consistent, checked_only, unlisted,
                     {k: list(v) for k, v in (restrict or {}).items()})


def _search(trace: Trace, label: str, name: str, combos: list[dict[Point, Any]], cache: dict) -> PopulationSearch:
    """The combinations of one population's points under which it records what ``trace`` holds."""
    run_key, want = _run_key(trace), _signature(trace, name, trace)
    ok = [{p.name: v for p, v in c.items()} for c in combos
          if _signature_under(trace, run_key, _profile_of(c, cache), name, cache) == want]
    failure = None if ok else _first_failure(trace, name, profile_of(combos[0]), cache)
    return PopulationSearch(label, name, [p.name for p in sorted(combos[0])], len(combos), ok, failure)


def _reproduces_all(traces: Sequence[Trace], assignment: dict[str, Any], cache: dict) -> bool:
    profile = _profile_of({point_named(k): v for k, v in assignment.items()}, cache)
    for trace in traces:
        run_key = _run_key(trace)
        if any(_signature_under(trace, run_key, profile, pop.name, cache) != _signature(trace, pop.name, trace)
               for pop in trace.network.populations if pop.record):
            return False
    return True


def _profile_of(combo: dict[Point, Any], cache: dict) -> tuple[ChipProfile, str]:
    """profile_of(combo) and its JSON (the cache key of runs under it), memoised in ``cache``."""
    key = ("profile", frozenset(combo.items()))
    if key not in cache:
        profile = profile_of(combo)
        cache[key] = (profile, json.dumps(profile.to_dict(), sort_keys=True))
    return cache[key]


def _run(trace: Trace, run_key: str, profile: tuple[ChipProfile, str], cache: dict) -> Trace | S2SimError:
    key = (run_key, profile[1])
    if key not in cache:
        try:
            cache[key] = simulate(trace.network, trace.timesteps, profile[0], trace.inputs)
        except S2SimError as exc:   # e.g. a rounding that takes a weight out of range: this variant cannot run it
            cache[key] = exc
    return cache[key]


def _signature_under(trace: Trace, run_key: str, profile: tuple[ChipProfile, str], name: str,
                     cache: dict) -> bytes | None:
    """The signature of population ``name`` in a re-run of ``trace`` under ``profile`` (None: it cannot run)."""
    key = (run_key, profile[1], name, trace.tick_offset, trace.latency_per_hop, trace.rows)
    if key not in cache:
        run = _run(trace, run_key, profile, cache)
        cache[key] = None if isinstance(run, Exception) else _signature(run, name, trace)
    return cache[key]


def _signature(run: Trace, name: str, frame: Trace) -> bytes:
    """What population ``name`` recorded in ``run`` over the chip ticks ``frame`` covers, as bytes: spikes, and
    voltages as float64 bit patterns (a float32 value widened exactly, so equal values give equal bytes; any NaN
    as one pattern, see _compare_values)."""
    depth = population_depths(run.network)[name]
    lo, hi = _ticks(frame, depth)
    start = _ticks(run, depth)[0]
    parts = []
    for var, group in (("spikes", "spikes"), ("v", "voltages"), ("v_last", "v_last")):
        if name not in getattr(frame, group):
            continue
        values = getattr(run, group).get(name)
        if values is None:
            return b"missing " + var.encode()
        if var != "v_last":
            values = values[lo - start:hi - start]
        if var != "spikes":
            values = np.where(np.isnan(values), np.nan, values.astype(np.float64)).view(np.uint64)
        parts.append(var.encode() + np.ascontiguousarray(values).tobytes())
    return b"|".join(parts)


def _first_failure(trace: Trace, name: str, profile: ChipProfile, cache: dict) -> str:
    run = _run(trace, _run_key(trace), (profile, json.dumps(profile.to_dict(), sort_keys=True)), cache)
    if isinstance(run, Exception):
        return f"cannot run under {profile_label(profile)}: {run}"
    result = compare(replace(run, network=trace.network), trace, explain=False, max_listed=1)
    pop = next(p for p in result.populations if p.population == name)
    div = next((v.listed[0] for v in pop.variables if v.listed), None)
    return f"under {profile_label(profile)}: " + (div.describe() if div else "differs")


def _join(relations: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """All assignments that agree with one entry of every relation (a natural join on shared point names), after
    pruning each point to the values every relation mentioning it allows."""
    relations = [list(r) for r in relations]
    changed = True
    while changed:
        domains: dict[str, set] = {}
        for rel in relations:
            for key in (rel[0] if rel else {}):
                values = {a[key] for a in rel}
                domains[key] = domains[key] & values if key in domains else values
        changed = False
        for k, rel in enumerate(relations):
            kept = [a for a in rel if all(a[key] in domains[key] for key in a)]
            changed |= len(kept) != len(rel)
            relations[k] = kept
    if any(not rel for rel in relations):
        return []
    joined: list[dict[str, Any]] = [{}]
    for rel in sorted(relations, key=len):
        shared = sorted(set(rel[0]) & set(joined[0]))
        index: dict[tuple, list[dict]] = {}
        for a in rel:
            index.setdefault(tuple(a[k] for k in shared), []).append(a)
        joined = [{**left, **right} for left in joined for right in index.get(tuple(left[k] for k in shared), [])]
        if len(joined) > _MAX_JOIN:
            raise ConfigError(f"variant inference: more than {_MAX_JOIN} combinations stay consistent; these traces "
                              "settle too little (add the probe suite, s2sim.probes)")
        if not joined:
            return []
    return joined


def _run_key(trace: Trace) -> str:
    """Digest of what a re-run depends on besides the profile: the network, the inputs, the length."""
    digest = hashlib.sha1(json.dumps(network_to_dict(trace.network), sort_keys=True).encode())
    digest.update(str(trace.timesteps).encode())
    for name in sorted(trace.inputs):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(trace.inputs[name]).tobytes())
    return digest.hexdigest()


# -- helpers --------------------------------------------------------------------------------------------------
def profile_label(profile: ChipProfile) -> str:
    """The profile as code, naming only the fields that differ from ChipProfile()'s."""
    default = ChipProfile().to_dict()
    changed = {k: v for k, v in profile.to_dict().items() if v != default[k]}
    return "ChipProfile(" + ", ".join(f"{k}={v!r}" for k, v in changed.items()) + ")"


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
