"""Chip-variant inference: which ChipProfile variants reproduce every chip trace, and which are ruled out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import ConfigError, S2SimError
from ..network_io import network_to_dict
from ..profile import ChipProfile
from ..snn import Network, Population
from ..traces import Trace
from ..variants import (
    Point,
    allowed_values,
    combination_count,
    combinations,
    open_points,
    point_named,
    profile_of,
    relevant_points,
)
from .agreement import _VARIABLES
from .alignment import _ticks, population_depths
from .comparison import compare
from .formatting import _jsonable, profile_label
from .reference import simulate

#: Most combinations one population is searched over; a population with more (deep mixed-model networks) is only
#: checked against the combinations the searched ones leave.
MAX_SEARCH = 1024


#: Most consistent combinations inference verifies on every trace and lists.
MAX_CONSISTENT = 256


#: Most partial combinations the join of the populations' answers may hold.
_MAX_JOIN = 100_000


def hypotheses(
    trace: Trace | Network,
    restrict: Mapping[str, Sequence[Any]] | None = None,
) -> dict[str, list[dict[Point, Any]]]:
    """Return the hypotheses :func:`infer` considers, population by population.

    For each population that records spikes or voltages (in the trace, when a Trace is given): every combination of the
    open points that can change what it records (:func:`s2sim.variants.relevant_points`; values limited by ``restrict``,
    point or field name -> values), every other point at ChipProfile()'s value. Populations with more than
    :data:`MAX_SEARCH` combinations are left out: inference only checks them.
    """
    network = trace.network if isinstance(trace, Trace) else trace
    relevant = relevant_points(network)
    out = {}
    for pop in network.populations:
        points = sorted(relevant[pop.name])
        if points and _records(trace, pop) and combination_count(points, restrict) <= MAX_SEARCH:
            out[pop.name] = list(combinations(points, restrict))
    return out


def _records(trace: Trace | Network, pop: Population) -> bool:
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
        """Return the consistent assignments as profiles (points not probed at ChipProfile()'s value)."""
        return [profile_of({point_named(k): v for k, v in a.items()}) for a in self.consistent]

    def _values(self) -> dict[str, list]:
        if not self.consistent:
            return {}
        names = sorted({k for a in self.consistent for k in a})
        return {k: sorted({a[k] for a in self.consistent}, key=repr) for k in names}

    def to_dict(self) -> dict[str, Any]:
        """Return the inference as JSON-able data (consistent assignments, settled and open points)."""
        return _jsonable(
            {
                "traces": self.traces,
                "consistent": self.consistent,
                "settled": self.settled(),
                "not_distinguished": self.not_distinguished(),
                "not_probed": self.not_probed(),
                "profiles": [p.to_dict() for p in self.profiles()],
                "searches": [asdict(s) for s in self.searches],
                "checked_only": self.checked_only,
                "unlisted": self.unlisted,
                "restrict": self.restrict,
            }
        )

    def report(self, max_items: int | None = None, more: str = "") -> str:
        """Return a text report: the searches, the settled points and the ones the traces do not settle.

        Parameters
        ----------
        max_items : int, optional
            Name at most this many entries of each list (traces, populations, points) and say how many more
            there are; None (default) names every entry.
        more : str
            Said after the count of entries left out (e.g. where to find them all).
        """

        def listed(items: list[str]) -> list[str]:
            if max_items is None or len(items) <= max_items:
                return items
            return [*items[:max_items], f"  ... and {len(items) - max_items} more{more}"]

        def joined(items: list[str]) -> str:
            return ", ".join(item.strip() for item in listed(items))

        tried = sum(s.tried for s in self.searches)
        lines = [
            f"variant inference over {len(self.traces)} trace(s): {joined(self.traces)}",
            (
                f"searched {len(self.searches)} population(s), each over the points it depends on ({tried} "
                f"combinations in all)"
            ),
        ]
        if self.restrict:
            lines.append("restricted to: " + ", ".join(f"{k} in {v}" for k, v in self.restrict.items()))
        if self.checked_only:
            lines.append(
                "checked, not searched (too many combinations): " + joined([f"{t}:{p}" for t, p in self.checked_only])
            )
        if not self.consistent:
            failed = [s for s in self.searches if not s.consistent]
            lines.append(
                "NO combination of the chip variants reproduces these traces: the difference lies outside "
                f"the profile variants (docs/conformance.md). {len(failed)} population(s) nothing reproduces:"
            )
            lines += listed([f"  {s.trace}:{s.population} over {', '.join(s.points)}: {s.failure}" for s in failed])
            return "\n".join(lines)
        count = f"{len(self.consistent)}{'+' + str(self.unlisted) if self.unlisted else ''}"
        lines.append(f"{count} combination(s) of the searched points reproduce every trace exactly")
        settled = self.settled()
        if settled:
            lines.append("settled: " + ", ".join(f"{k}={v}" for k, v in settled.items()))
        lines += listed(
            [
                f"NOT DISTINGUISHED by these traces: {name} (consistent: {', '.join(map(str, values))})"
                for name, values in self.not_distinguished().items()
            ]
        )
        if self.not_probed():
            lines.append("not probed by these traces: " + joined(self.not_probed()))
        if len(self.consistent) == 1:
            lines.append(f"as a profile (points not probed at their defaults): {profile_label(self.profiles()[0])}")
        return "\n".join(lines)


def infer(
    observed: Trace | Sequence[Trace],
    *,
    restrict: Mapping[str, Sequence[Any]] | None = None,
    labels: Sequence[str] | None = None,
    cache: dict | None = None,
) -> Inference:
    """Find the chip variants that reproduce ``observed`` exactly.

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
    elif len(labels) != len(traces):  # zip would drop the traces past the last label from the inference
        raise ConfigError(f"infer: {len(labels)} labels for {len(traces)} traces; give one label per trace")
    for point in open_points():  # a bad restriction is an error before any run
        allowed_values(point, restrict)
    cache = {} if cache is None else cache
    searches, checked_only = [], []
    from ..progress import bar

    # each trace re-runs its network once per combination of the points it depends on: seconds per trace
    for trace, label in bar(list(zip(traces, labels, strict=True)), desc="variant inference", unit="trace"):
        found = hypotheses(trace, restrict)
        for pop in trace.network.populations:
            if pop.name in found:
                searches.append(_search(trace, label, pop.name, found[pop.name], cache))
            elif _records(trace, pop) and relevant_points(trace.network)[pop.name]:
                checked_only.append((label, pop.name))
    joined = _join([s.consistent for s in searches])
    unlisted = max(0, len(joined) - MAX_CONSISTENT)
    consistent = [a for a in joined[:MAX_CONSISTENT] if _reproduces_all(traces, a, cache)]
    return Inference(
        list(labels), searches, consistent, checked_only, unlisted, {k: list(v) for k, v in (restrict or {}).items()}
    )


def _search(trace: Trace, label: str, name: str, combos: list[dict[Point, Any]], cache: dict) -> PopulationSearch:
    """Return the combinations of one population's points under which it records what ``trace`` holds."""
    run_key, want = _run_key(trace), _signature(trace, name, trace)
    ok = [
        {p.name: v for p, v in c.items()}
        for c in combos
        if _signature_under(trace, run_key, _profile_of(c, cache), name, cache) == want
    ]
    failure = None if ok else _first_failure(trace, name, profile_of(combos[0]), cache)
    return PopulationSearch(label, name, [p.name for p in sorted(combos[0])], len(combos), ok, failure)


def _reproduces_all(traces: Sequence[Trace], assignment: dict[str, Any], cache: dict) -> bool:
    profile = _profile_of({point_named(k): v for k, v in assignment.items()}, cache)
    for trace in traces:
        run_key = _run_key(trace)
        if any(
            _signature_under(trace, run_key, profile, pop.name, cache) != _signature(trace, pop.name, trace)
            for pop in trace.network.populations
            if pop.record
        ):
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
        except S2SimError as exc:  # e.g. a rounding that takes a weight out of range: this variant cannot run it
            cache[key] = exc
    return cache[key]


def _signature_under(
    trace: Trace, run_key: str, profile: tuple[ChipProfile, str], name: str, cache: dict
) -> bytes | None:
    """Return the signature of population ``name`` in a re-run of ``trace`` under ``profile`` (None: it cannot run)."""
    key = (run_key, profile[1], name, trace.tick_offset, trace.latency_per_hop, trace.rows)
    if key not in cache:
        run = _run(trace, run_key, profile, cache)
        cache[key] = None if isinstance(run, Exception) else _signature(run, name, trace)
    return cache[key]


def _signature(run: Trace, name: str, frame: Trace) -> bytes:
    """Return what population ``name`` recorded in ``run`` over the chip ticks ``frame`` covers, as bytes.

    Spikes, and voltages as float64 bit patterns (a float32 value widened exactly, so equal values give equal bytes; any
    NaN as one pattern, see _compare_values).
    """
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
            values = values[lo - start : hi - start]
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
    """Return all assignments that agree with one entry of every relation (a natural join on shared point names).

    Each point is first pruned to the values every relation mentioning it allows.
    """
    relations = [list(r) for r in relations]
    changed = True
    while changed:
        domains: dict[str, set] = {}
        for rel in relations:
            for key in rel[0] if rel else {}:
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
            raise ConfigError(
                f"variant inference: more than {_MAX_JOIN} combinations stay consistent; these traces "
                "settle too little (add the probe suite, s2sim.probes)"
            )
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
