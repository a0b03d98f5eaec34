"""How the C core runs a network.

Which representation and delivery path each projection gets, and whether a sample is split over threads, chosen by a
cost model.

Every choice here changes speed only, never results: each representation and path computes the same integer sums
and a split sample the same updates (the kernel-vs-oracle tests run every one of them). :class:`KernelTuning` lets
a caller force a choice (the tests do, to exercise each one); the defaults follow the cost model below, whose
constants were measured on the project's machine (timings and instruction counts, tools/bench.py) and are
written next to each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .errors import ConfigError

#: The largest int32, the kernel's "never" for ``dense_from``.
NEVER = 2**31 - 1
#: A pooled cell may collect at most this many spikes per tick on the dense conv path (uint8 counts; the plain
#: AVX2 dot product is exact up to 127, see csrc/kernel.c).
MAX_POOL_COUNT = 127
#: A connection list becomes dense int8 rows from this fraction of connected pairs on. Measured (2048 inputs at 5 %
#: activity, median of 7 runs, tools/bench.py's synapse layer): with 4096 targets dense rows win from 12-14 %
#: (sparse/dense time 0.96 at 12 %, 1.21 at 14 %), with 512 targets from about 10 %. A sparse synapse costs about
#: 8x a dense one (a scattered add against one vector lane), dense rows also pay for the unconnected pairs.
DENSE_MIN_DENSITY = 0.125
#: Dense rows at most this large (bytes): beyond it the matrix would cost more memory than it saves time.
DENSE_MAX_BYTES = 1 << 28

_PATHS = ("auto", "events", "dense")
_SPLITS = ("auto", "never", "always")
#: A sample is split over threads (when the batch has fewer samples than threads) from this many neurons plus
#: synapses on, and only while the machine has a core to spare: the threads meet once per tick (about 1-2 us when
#: both run), and a thread waiting for a descheduled partner loses the whole gain. Measured here on a quiet moment:
#: 100k neurons gained 1.37x, 30k neurons and the DVS net (one sample) lost (13.9 against 3.9 and 22 against 11 us
#: per tick) when the second core was busy with other work.
SPLIT_MIN_SIZE = 200_000


@dataclass(frozen=True)
class KernelTuning:
    """Path choices of the kernel (speed only; every path gives bit-identical results).

    Attributes
    ----------
    conv : str
        ``"auto"`` (per tick, the cheaper path for that tick's spike count), ``"events"`` (spike by spike
        always) or ``"dense"`` (the dense integer product in every tick with a spike, where the pool allows it).
    lists : str
        Connection lists: ``"auto"`` (dense int8 rows from DENSE_MIN_DENSITY on), ``"events"`` (always sparse
        rows) or ``"dense"`` (dense rows wherever they are possible: one delay, no repeated pair, size limit).
    matrix_unit : bool
        Run the dense conv product on the CPU's AMX tile unit where the core has it and the OS grants it
        (False: the SIMD dot products).
    stacked_map : bool
        On AMX, give layers whose whole kernel window fits one tile row (stride 1, ``k_h * k_w * c_in <= 64``:
        input layers with few channels) the stacked product: the map's rows interleaved each tick so that one
        multiply covers a window instead of one kernel row (False: one multiply per kernel row).
    split : str
        Samples of a batch smaller than the thread count: ``"auto"`` (split each sample over the threads, each
        updating and delivering into its share of every population, when the network is large enough and the
        machine is not busy, see SPLIT_MIN_SIZE), ``"never"`` or ``"always"``.
    """

    conv: str = "auto"
    lists: str = "auto"
    matrix_unit: bool = True
    stacked_map: bool = True
    split: str = "auto"

    def __post_init__(self) -> None:
        for name, allowed in (("conv", _PATHS), ("lists", _PATHS), ("split", _SPLITS)):
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"KernelTuning.{name} = {value!r}; expected one of {allowed}")


@lru_cache(maxsize=1)
def simd_level() -> str:
    """Return the SIMD level the core was built for ("avx512", "avx2", "sse2", "portable")."""
    from ._core import ffi, lib

    return ffi.string(lib.s2_simd_level()).decode()


@lru_cache(maxsize=1)
def amx_available() -> bool:
    """Whether the core has the AMX conv product and the OS granted this process the tile state (asked once)."""
    from ._core import lib

    return bool(lib.s2_amx_enable())


def amx_multiply_ns(n: int = 100_000) -> float:
    """Return what one AMX multiply costs on the calling thread now, in nanoseconds (0.0 without AMX).

    Parameters
    ----------
    n : int
        Multiplies to time (16 rows x 64 bytes each, four independent accumulators).

    Notes
    -----
    A probe of the machine for benchmarks, not of s2sim: on a shared virtual machine the same multiply has cost
    5.6 ns and 14.5 ns from one second to the next, and the conv products follow it.
    """
    from ._core import lib

    if not 1 <= n < 2**31:
        raise ConfigError(f"amx_multiply_ns: n = {n}; expected 1 .. 2**31 - 1")
    return float(lib.s2_amx_multiply_ns(n)) if amx_available() else 0.0


def uses_amx(tuning: KernelTuning) -> bool:
    """Whether networks lowered with ``tuning`` run their dense conv products on AMX."""
    return tuning.matrix_unit and amx_available()


def stack_quads(tuning: KernelTuning, geometry: dict) -> int:
    """Quads (4 bytes) of the stacked product's window for a conv geometry; 0 when it does not get one."""
    from ._core import lib

    g = geometry
    if not (tuning.stacked_map and uses_amx(tuning)):
        return 0
    return int(lib.s2_stack_quads(g["c_in"], g["ow"], g["k_h"], g["k_w"], g["stride_x"], g["stride_y"]))


# Conv cost model, in nanoseconds per tick, measured on this project's machine. The event path costs about 0.1 ns
# per int32 add (synaptic event) plus 5 ns per spike, and, since it updates its target band by band from a zeroed
# ring of output rows (csrc/kernel.c, deliver_conv_fused), 0.075 ns per output neuron whenever a spike arrives. The
# dense path costs about 0.25 ns per SIMD dot-product step (4 taps x 16 or 8 channels), or on AMX 5.7 ns per tile
# multiply plus 0.0148 ns per byte of its map tile (positions x chunk bytes: with the small tiles of conv layers the
# tile loads cost more than the multiplies), and 4 ns per spike counted into the map. The AMX and event figures
# were fitted (2026-12-02) to the five conv layers of tools/bench.py's nets alone, each forced onto each path at
# 0-320 random spikes per tick: the cut-overs they give, 43 / 50 / 159 / 202 / 71 spikes, against the measured
# 55 / 40 / 140 / 160 / 65. The cut-over matters only near it: both paths give the same sums.
_EVENT_NS, _EVENT_SPIKE_NS, _EVENT_OUTPUT_NS = 0.1, 5.0, 0.075
_DOT_NS, _TILE_NS, _TILE_BYTE_NS, _MAP_SPIKE_NS = 0.25, 5.7, 0.0148, 4.0
# A stacked product's tile (tuning.stacked_map) costs about 35 ns with its share of building the stacked rows:
# its 52-byte map rows cross cache lines, so the load costs more than the multiply. Fitted (2026-12-03, since the
# dense path updates each band inside the next band's product) to the cut-overs of the two input layers of
# tools/bench.py's nets, measured alone against the event path in one process (paired runs): between 20 and 40
# spikes per tick (2x32x32) and about 120 (2x64x64); the model gives 33 and 113 (with the mean events per spike
# of those layers, edges included). It was 50 ns (cut-overs 59 and 213) before that change.
_STACK_TILE_NS = 35.0


def conv_dense_from(tuning: KernelTuning, pool_area: int, events_per_spike: float, geometry: dict, planes: int) -> int:
    """Spike count per tick from which the dense conv path is cheaper (the kernel's ``dense_from``).

    Parameters
    ----------
    pool_area : int
        pool_x * pool_y, the most spikes one pooled cell can collect in a tick.
    events_per_spike : float
        Mean synaptic events (int32 adds) one spike causes on the event path.
    geometry : dict
        The lowered conv geometry (c_in, c_out, oh, ow, k_h, k_w, stride_x).
    planes : int
        Ring planes of the target (the dense path computes each).
    """
    if tuning.conv == "events" or pool_area > MAX_POOL_COUNT:
        return NEVER
    if tuning.conv == "dense":
        return 1
    from ._core import lib

    g = geometry
    quads = int(lib.s2_conv_quads(g["c_in"], g["k_w"]))
    chunks = -(-quads // 16)
    outputs = g["oh"] * g["ow"] * g["c_out"]
    stacked = stack_quads(tuning, g)
    if stacked:  # one multiply per window
        dense = planes * g["oh"] * -(-g["ow"] // 16) * -(-g["c_out"] // 16) * _STACK_TILE_NS
    elif uses_amx(tuning):
        tiles_x = -(-g["ow"] // 16)
        per_tile = -(-g["ow"] // tiles_x)
        multiplies = g["oh"] * tiles_x * -(-g["c_out"] // 16) * g["k_h"] * chunks
        dense = planes * multiplies * (_TILE_NS + _TILE_BYTE_NS * per_tile * 4 * quads / chunks)
    else:
        lanes = 16 if simd_level() == "avx512" else 8
        dense = planes * g["oh"] * g["ow"] * -(-g["c_out"] // lanes) * g["k_h"] * quads * _DOT_NS * 16 / lanes
    dense -= outputs * _EVENT_OUTPUT_NS  # what the event path pays per tick with any spike
    per_spike = _EVENT_SPIKE_NS + _EVENT_NS * events_per_spike - _MAP_SPIKE_NS
    return max(1, int(np.ceil(dense / max(per_spike, 1e-9))))


def list_is_dense(tuning: KernelTuning, n_synapses: int, n_pre: int, n_post: int) -> bool:
    """Whether a connection list should be tried as dense rows (the caller checks they are possible)."""
    if tuning.lists == "events" or n_synapses == 0 or n_pre * n_post > DENSE_MAX_BYTES:
        return False
    return tuning.lists == "dense" or n_synapses >= DENSE_MIN_DENSITY * n_pre * n_post


def split_threads(tuning: KernelTuning, batch: int, threads: int, size: int) -> int:
    """Threads to run each sample on.

    1 (samples spread over the threads), or ``threads`` when the batch is smaller than the thread count, the network
    (``size``: neurons plus synapses) is large enough and the machine's load (one-minute average, this process's own
    work included) leaves the threads their cores.
    """
    from ._core import lib

    threads = min(threads, int(lib.S2_MAX_SPLIT))
    if threads < 2 or tuning.split == "never":
        return 1
    if tuning.split == "auto" and (
        batch >= threads or size < SPLIT_MIN_SIZE or os.getloadavg()[0] > (os.cpu_count() or 1) - 0.5
    ):
        return 1
    return threads
