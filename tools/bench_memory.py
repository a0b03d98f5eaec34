#!/usr/bin/env python3
"""Set-up time and peak memory of s2sim, measured from the user's first call, in a fresh process (tools/bench.py
runs it). Prints JSON.

The user's own data (a connection list as an [n, 4] float64 array, what py-spinnaker2 scripts build) exists before
the first s2sim call and is not counted. From that call on (building the Projection, then Simulator.load and one
short run), the peak resident set size above the level before it is divided by the synapses (or neurons). The
kernel's share is what the loaded network keeps for its projections.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def _status(key: str) -> int:
    """A VmRSS / VmHWM line of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _reset_peak() -> int:
    """Reset the peak RSS to the current RSS (Linux: write 5 to clear_refs); returns the current RSS."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def synapses(n: int) -> dict:
    from s2sim import snn
    from s2sim.simulator import Simulator

    rng = np.random.default_rng(0)
    conns = np.zeros((n * n, 4))  # the user's list: every pair, integer weights, delay 0
    conns[:, 0] = np.repeat(np.arange(n), n)
    conns[:, 1] = np.tile(np.arange(n), n)
    conns[:, 2] = rng.integers(-127, 128, n * n)
    base = _reset_peak()
    t0 = time.perf_counter()
    stim = snn.Population(n, "spike_list", {}, name="stim", record=[])
    post = snn.Population(n, "lif_no_delay", {"threshold": 1e6, "alpha_decay": 0.9}, name="post", record=[])
    proj = snn.Projection(stim, post, conns)
    t1 = time.perf_counter()
    loaded = Simulator(num_threads=1).load(snn.Network("dense").add(stim, post, proj))
    t2 = time.perf_counter()
    loaded.run_batch({"stim": np.zeros((1, 10, n), np.uint8)})
    peak = _status("VmHWM") - base
    kept = sum(a.nbytes for p in loaded.lowered.projections for a in p.arrays.values())
    return {
        "dense_projection_seconds": t1 - t0,
        "dense_load_seconds": t2 - t1,
        "peak_bytes_per_synapse": peak / n**2,
        "kernel_bytes_per_synapse": kept / n**2,
        "projection_kind": loaded.lowered.projections[0].kind,
        "synapses": n * n,
    }


def neurons(n: int) -> dict:
    from s2sim import snn
    from s2sim.simulator import Simulator

    base = _reset_peak()
    pop = snn.Population(
        n,
        "lif_no_delay",
        {"threshold": 10.0, "alpha_decay": 0.95, "i_offset": np.linspace(0.1, 1.0, n)},
        name="pop",
        record=[],
    )
    Simulator(num_threads=1).load(snn.Network("neurons").add(pop)).run_batch(None, 10)
    return {"peak_bytes_per_neuron": (_status("VmHWM") - base) / n, "neurons": n}


if __name__ == "__main__":
    what, size = sys.argv[1], int(sys.argv[2])
    print(json.dumps({"synapses": synapses, "neurons": neurons}[what](size)))
