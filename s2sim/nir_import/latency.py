"""Latencies: each population's depth in ticks from the inputs, written into the conversion report."""
from __future__ import annotations

from typing import Any

from .. import snn
from ..conversion_report import PopulationReport
from .graph import _kind


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
