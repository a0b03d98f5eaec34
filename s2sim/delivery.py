"""How the C core delivers spikes: which representation and which path each projection gets, from a cost model.

Every choice here changes speed only, never results: each representation and path computes the same integer sums
(the kernel-vs-oracle tests run every one of them). :class:`DeliveryTuning` lets a caller force a path (the tests
do, to exercise each one); the defaults follow the cost model below, whose constants were measured on the
project's machine (instruction counts under callgrind and timings, tools/bench.py) and are written next to each.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .errors import ConfigError

#: The largest int32, the kernel's "never" for ``dense_from``.
NEVER = 2**31 - 1
#: A pooled cell may collect at most this many spikes per tick on the dense conv path (uint8 counts; the plain
#: AVX2 dot product is exact up to 127, see csrc/kernel.c).
MAX_POOL_COUNT = 127
#: A connection list becomes dense int8 rows from this fraction of connected pairs on. Measured on the 2048 -> 4096
#: benchmark layer: a sparse synapse costs about 7x a dense one per event (a scattered add against a vector lane),
#: so dense rows win from about 1/7 of the pairs; the cut-over sits a little above that because dense rows also
#: take memory for the unconnected pairs.
DENSE_MIN_DENSITY = 0.15
#: Dense rows at most this large (bytes): beyond it the matrix would cost more memory than it saves time.
DENSE_MAX_BYTES = 1 << 28

_PATHS = ("auto", "events", "dense")


@dataclass(frozen=True)
class DeliveryTuning:
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
    """

    conv: str = "auto"
    lists: str = "auto"
    matrix_unit: bool = True

    def __post_init__(self) -> None:
        for name in ("conv", "lists"):
            value = getattr(self, name)
            if value not in _PATHS:
                raise ConfigError(f"DeliveryTuning.{name} = {value!r}; expected one of {_PATHS}")


@lru_cache(maxsize=1)
def simd_level() -> str:
    """The SIMD level the core was built for ("avx512", "avx2", "sse2", "portable")."""
    from ._core import ffi, lib

    return ffi.string(lib.s2_simd_level()).decode()


@lru_cache(maxsize=1)
def amx_available() -> bool:
    """Whether the core has the AMX conv product and the OS granted this process the tile state (asked once)."""
    from ._core import lib

    return bool(lib.s2_amx_enable())


def uses_amx(tuning: DeliveryTuning) -> bool:
    """Whether networks lowered with ``tuning`` run their dense conv products on AMX."""
    return tuning.matrix_unit and amx_available()


# Conv cost model, in instructions (callgrind, AVX2 build; the AVX-512 build scales both paths alike):
# event path: per spike a fixed set-up, per kernel row reached a row set-up, per 8 int32 adds about 3 instructions;
# dense path: per spike a count, per output block of 4 positions x lanes channels a fixed part, plus per 4 taps
# 1.5 instructions per position (a broadcast shared by the lanes, a dot product) and clearing the map.
_EVENT_SPIKE, _EVENT_ROW, _EVENT_VECTOR = 30.0, 14.0, 3.0
_DENSE_SPIKE, _DENSE_BLOCK, _DENSE_QUAD = 4.0, 40.0, 1.5


def conv_dense_from(tuning: DeliveryTuning, pool_area: int, rows_per_spike: float, events_per_spike: float,
                    geometry: dict, planes: int) -> int:
    """Spike count per tick from which the dense conv path is cheaper (the kernel's ``dense_from``).

    Parameters
    ----------
    pool_area : int
        pool_x * pool_y, the most spikes one pooled cell can collect in a tick.
    rows_per_spike, events_per_spike : float
        Mean kernel rows and synaptic events (int32 adds) one spike causes on the event path.
    geometry : dict
        The lowered conv geometry (c_in, c_out, oh, ow, k_h, k_w).
    planes : int
        Ring planes of the target (the dense path computes each).
    """
    if tuning.conv == "events" or pool_area > MAX_POOL_COUNT:
        return NEVER
    if tuning.conv == "dense":
        return 1
    lanes = 16 if simd_level() == "avx512" else 8
    g = geometry
    per_spike = _EVENT_SPIKE + _EVENT_ROW * rows_per_spike + _EVENT_VECTOR * events_per_spike / 8 - _DENSE_SPIKE
    quads = -(-g["k_w"] * g["c_in"] // 4)
    blocks = g["oh"] * -(-g["ow"] // 4) * -(-g["c_out"] // lanes) * planes
    fixed = blocks * (_DENSE_BLOCK + 4 * _DENSE_QUAD * g["k_h"] * quads) * 8 / lanes
    return max(1, int(np.ceil(fixed / max(per_spike, 1e-9))))


def list_is_dense(tuning: DeliveryTuning, n_synapses: int, n_pre: int, n_post: int) -> bool:
    """Whether a connection list should be tried as dense rows (the caller checks they are possible)."""
    if tuning.lists == "events" or n_synapses == 0 or n_pre * n_post > DENSE_MAX_BYTES:
        return False
    return tuning.lists == "dense" or n_synapses >= DENSE_MIN_DENSITY * n_pre * n_post
