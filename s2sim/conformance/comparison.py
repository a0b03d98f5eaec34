"""Trace comparison: :func:`compare` checks every population and variable, bit for bit or within a tolerance."""
from __future__ import annotations

import numpy as np

from ..errors import TraceError
from ..snn import Network
from ..traces import Trace
from .agreement import _MAX_LISTED, Comparison, Divergence, PopulationAgreement, Tolerance, VariableAgreement
from .alignment import _check_same_inputs, _check_same_network, _source, _ticks, population_depths
from .divergence import _explain


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
