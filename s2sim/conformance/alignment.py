"""Putting two traces side by side: same network, same inputs, rows mapped to the chip's ticks.

The mapping uses population depths and the latency per hop (see :mod:`s2sim.conformance`).
"""
from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from ..errors import TraceError
from ..network_io import network_to_dict
from ..snn import Network
from ..traces import Trace
from .formatting import profile_label


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
