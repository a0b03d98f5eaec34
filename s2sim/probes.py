"""Probe networks for board owners: small runs whose chip output settles the open points of docs/datapath.md.

Each probe isolates one point and is insensitive to the others (integer weights where rounding is not probed,
``alpha_decay = 0`` or ``1`` where arithmetic is not probed, thresholds no sum can equal unless equality is
probed), so :func:`s2sim.conformance.infer` can combine them: every combination of the points gives a different
set of traces.

    from s2sim import probes
    paths = probes.write_probe_suite("probes/")        # networks + inputs + the default profile's output
    # on a machine with a board: python tools/run_probes_on_board.py probes/ chip/
    # then: s2sim conform --infer chip/
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from .profile import ChipProfile
from .snn import Conv2DProjection, Network, Population, Projection
from .traces import Trace, write_trace

#: Threshold no probe value reaches (exactly representable in float32).
_NEVER = 1.0e9
_RECORD = ["spikes", "v"]


@dataclass(frozen=True)
class Probe:
    """One probe: a network run for ``timesteps`` ticks, and the open point it settles."""

    name: str
    settles: str
    network: Network
    timesteps: int


# -- float32 / float64 witnesses for the multiply-add ---------------------------------------------------------
def muladd_sequence(x0: float, a: float, c: float, ticks: int, precision: str, fused: bool, offset: float = 0.0,
                    leak_first: bool = False) -> list[float]:
    """``ticks`` values of ``x <- x * a + (syn + offset)`` (or ``(x * a + syn) + offset`` with ``leak_first``)
    in the given arithmetic, widened to float64; ``syn`` is 0 in the first tick and ``c`` after it.

    This is a neuron with v_init ``x0``, alpha_decay ``a``, i_offset ``offset`` fed weight ``c`` by a spike_list
    that spikes every tick from tick 0 (a spike acts one tick later), and with ``x0 = offset = 0`` the synaptic
    current ``I_exc`` of a lif_curr_exp neuron with exc_decay ``a``.
    """
    from .oracle import fma_float32, fma_float64

    dtype = np.float64 if precision == "float64" else np.float32
    fma = fma_float64 if precision == "float64" else fma_float32

    def muladd(x, y, z):
        return fma(x, y, z).astype(dtype) if fused else (x * y).astype(dtype) + z

    x, a_, c_, off = (np.asarray([v], dtype=dtype) for v in (np.float32(x0), np.float32(a), np.float32(c),
                                                                np.float32(offset)))
    out = []
    for tick in range(ticks):
        syn = c_ if tick else np.zeros(1, dtype)
        x = (muladd(x, a_, syn) + off) if leak_first else muladd(x, a_, syn + off)
        out.append(float(x[0]))
    return out


def distinguishes_arithmetic(x0: float, a: float, c: float, ticks: int, offset: float = 0.0,
                             groupings: tuple[bool, ...] = (False,)) -> bool:
    """True when every arithmetic (float32/float64 state x fused/unfused x the given input groupings) gives its
    own sequence."""
    seqs = {tuple(muladd_sequence(x0, a, c, ticks, p, f, offset, g))
            for p in ("float32", "float64") for f in (False, True) for g in groupings}
    return len(seqs) == 4 * len(groupings)


@lru_cache(maxsize=None)
def find_witness(draw: Callable[[np.random.Generator], tuple[float, float, float, float]], ticks: int = 6,
                 seed: int = 0, attempts: int = 10_000,
                 groupings: tuple[bool, ...] = (False,)) -> tuple[float, float, float, float]:
    """Search (seeded, so deterministic) for float32 ``(x0, a, c, offset)`` that :func:`distinguishes_arithmetic`."""
    rng = np.random.default_rng(seed)
    for _ in range(attempts):
        x0, a, c, off = (float(np.float32(v)) for v in draw(rng))
        if distinguishes_arithmetic(x0, a, c, ticks, off, groupings):
            return x0, a, c, off
    raise RuntimeError(f"no multiply-add witness found in {attempts} attempts (seed {seed})")


def _membrane_draw(rng: np.random.Generator) -> tuple[float, float, float, float]:
    # integer input and no i_offset: where i_offset joins cannot matter (input_grouping is probed separately)
    return rng.uniform(1.0, 100.0), rng.uniform(0.5, 0.95), float(rng.integers(1, 128)), 0.0


def _current_draw(rng: np.random.Generator) -> tuple[float, float, float, float]:
    return 0.0, rng.uniform(0.5, 0.95), float(rng.integers(1, 16)), 0.0


def _grouping_draw(rng: np.random.Generator) -> tuple[float, float, float, float]:
    return rng.uniform(1.0, 100.0), rng.uniform(0.5, 0.95), float(rng.integers(1, 128)), rng.uniform(0.1, 10.0)


# -- the probes -----------------------------------------------------------------------------------------------
def _lif(size: int, model: str, name: str, **params) -> Population:
    base = {"alpha_decay": 0.0, "threshold": _NEVER, "i_offset": 0.0, "v_init": 0.0}
    if model.startswith("lif_curr_exp"):
        base.update(exc_decay=0.0, inh_decay=0.0)
    base.update(params)
    return Population(size, model, base, name=name, record=_RECORD)


def threshold_probe() -> Probe:
    """V lands exactly on the threshold (3 == 3.0) in three models: ``>=`` spikes, ``>`` does not."""
    src = Population(1, "spike_list", {0: [1, 4]}, name="src")
    net = Network("probe_threshold_equality").add(src)
    for model in ("lif_no_delay", "lif", "lif_curr_exp"):
        pop = _lif(3, model, f"thr_{model}", threshold=3.0)
        # neuron 0 reaches the threshold exactly, 1 stays below, 2 goes above (controls)
        net.add(pop, Projection(src, pop, [[0, 0, 3, 0], [0, 1, 2, 0], [0, 2, 4, 0]]))
    return Probe("threshold_equality", "spike test V >= threshold or V > threshold (threshold_op)", net, 8)


def _driven_membranes(name: str, witnesses: list[tuple[float, float, float, float]], src: Population,
                      net: Network) -> None:
    """One lif_no_delay neuron per witness (v_init, alpha_decay, weight from ``src``, i_offset), added to ``net``."""
    pop = Population(len(witnesses), "lif_no_delay", {
        "v_init": [w[0] for w in witnesses], "alpha_decay": [w[1] for w in witnesses],
        "i_offset": [w[3] for w in witnesses], "threshold": _NEVER}, name=name, record=_RECORD)
    net.add(pop, Projection(src, pop, [[0, k, w[2], 0] for k, w in enumerate(witnesses)]))


def fma_probe(seed: int = 0) -> Probe:
    """Membrane and synaptic-current multiply-adds whose one- and two-rounding results differ, in float32 and
    float64 state alike (values found by :func:`find_witness`)."""
    ticks = 6
    src = Population(1, "spike_list", {0: list(range(ticks + 1))}, name="src")
    net = Network("probe_fma").add(src)
    _driven_membranes("fma_membrane", [find_witness(_membrane_draw, ticks, seed + k) for k in range(3)], src, net)
    _, decay, weight, _ = find_witness(_current_draw, ticks, seed + 100)
    # alpha_decay 0 makes the recorded V equal this tick's I_exc exactly, in every arithmetic
    cur = _lif(1, "lif_curr_exp", "fma_current", exc_decay=decay)
    net.add(cur, Projection(src, cur, [[0, 0, weight, 0]]))
    return Probe("fma", "V*alpha + input and I*decay + ring rounded once (fused) or twice, float32 or float64 "
                        "state (fused_multiply_add, state_precision)", net, ticks + 2)


def grouping_probe(seed: int = 0) -> Probe:
    """A non-zero i_offset beside a constant synaptic input, with values for which ``V*alpha + (syn + i_offset)``
    and ``(V*alpha + syn) + i_offset`` differ under every arithmetic (fused or not, float32 or float64)."""
    ticks = 6
    src = Population(1, "spike_list", {0: list(range(ticks + 1))}, name="src")
    net = Network("probe_input_grouping").add(src)
    witnesses = [find_witness(_grouping_draw, ticks, seed + 200, groupings=(False, True))]
    _driven_membranes("grouping_membrane", witnesses, src, net)
    return Probe("input_grouping", "where i_offset joins the membrane update (input_grouping)", net, ticks + 2)


#: Non-integer weights on which trunc, floor, nearest_even and nearest_away all give different integer vectors.
ROUNDING_WEIGHTS = (0.5, 1.5, 2.5, 1.7, -0.7, -1.5, -2.5)


def rounding_probe() -> Probe:
    """One spike through each non-integer weight, in a connection list and in a conv kernel; V shows the integer."""
    n = len(ROUNDING_WEIGHTS)
    src = Population(1, "spike_list", {0: [0]}, name="src")
    lst = _lif(n, "lif_no_delay", "round_list")
    conv = _lif(n, "lif_conv2d", "round_conv")
    kernel = np.asarray(ROUNDING_WEIGHTS, dtype=np.float64).reshape(1, n, 1, 1)
    net = Network("probe_weight_rounding").add(
        src, lst, conv, Projection(src, lst, [[0, i, w, 0] for i, w in enumerate(ROUNDING_WEIGHTS)]),
        Conv2DProjection(src, conv, kernel, {"in_height": 1, "in_width": 1}))
    return Probe("weight_rounding", "how non-integer float weights become integers (weight_rounding)", net, 4)


def delay_probe() -> Probe:
    """Neuron d of each population is reached through delay d (0..7): it must spike at tick 2 + 1 + d."""
    src = Population(1, "spike_list", {0: [2]}, name="src")
    net = Network("probe_delays").add(src)
    for model in ("lif", "lif_curr_exp"):
        pop = _lif(8, model, f"delay_{model}", threshold=1.5, reset="reset_to_v_reset")
        net.add(pop, Projection(src, pop, [[0, d, 2, d] for d in range(8)]))
    return Probe("delays", "delay field 0..7 takes effect at tick t + 1 + delay (timing model, no variant)", net, 14)


#: An asymmetric kernel: every tap has its own power of two, so V names the taps that were hit.
_CONV_KERNEL = np.array([[1.0, 2.0], [4.0, 8.0]]).reshape(1, 1, 2, 2)
_CONV_PIXELS = ((0, 0), (1, 3), (2, 5), (5, 1), (3, 2), (4, 4), (0, 5), (5, 0))


def conv_x_axis_probe() -> Probe:
    """Stride, padding and pooling that differ between x and y, on a 6x6 input whose pixels spike one per tick.

    The population sizes fit both readings of x/y (x along the width, or along the height), so the chip runs
    either way and the voltages tell which one it uses.
    """
    spikes = {y * 6 + x: [t] for t, (y, x) in enumerate(_CONV_PIXELS)}
    src = Population(36, "spike_list", spikes, name="src")
    strided = _lif(15, "lif_conv2d", "conv_stride_pad")
    pooled = _lif(10, "lif_conv2d", "conv_pool")
    net = Network("probe_conv_x_axis").add(
        src, strided, pooled,
        Conv2DProjection(src, strided, _CONV_KERNEL, {"in_height": 6, "in_width": 6, "stride_x": 1, "stride_y": 2,
                                                      "pad_top": 1}),
        Conv2DProjection(src, pooled, _CONV_KERNEL, {"in_height": 6, "in_width": 6, "pool_x": 2, "pool_y": 1}))
    return Probe("conv_x_axis", "conv stride / padding / pool x act along the width or the height (conv_x_axis)", net,
                 len(_CONV_PIXELS) + 2)


def refractory_probe() -> Probe:
    """lif_curr_exp with t_refrac 0..3 under a constant drive, plus input arriving while refractory."""
    src = Population(1, "spike_list", {0: [3, 9]}, name="src")
    pop = _lif(4, "lif_curr_exp", "refractory", alpha_decay=1.0, i_offset=1.0, threshold=2.7, exc_decay=0.5,
               reset="reset_to_v_reset", t_refrac=[0, 1, 2, 3])
    net = Network("probe_refractory").add(src, pop, Projection(src, pop, [[0, i, 1, 0] for i in range(4)]))
    return Probe("refractory", "refractory countdown, V held, current integrated meanwhile (model, no variant)",
                 net, 20)


def probe_suite(seed: int = 0) -> list[Probe]:
    """All probes, one per open point of docs/datapath.md."""
    return [threshold_probe(), fma_probe(seed), grouping_probe(seed), rounding_probe(), delay_probe(),
            conv_x_axis_probe(), refractory_probe()]


def probe_traces(profile: ChipProfile | None = None, seed: int = 0) -> list[Trace]:
    """The probe suite run in the simulator under ``profile`` (what a chip of that variant would record)."""
    from .conformance import simulate

    return [simulate(p.network, p.timesteps, profile, metadata={"probe": p.name, "settles": p.settles})
            for p in probe_suite(seed)]


def write_probe_suite(directory: str | Path, profile: ChipProfile | None = None, seed: int = 0) -> list[Path]:
    """Write one trace per probe to ``directory`` (created if needed): network, inputs and the simulator's output
    under ``profile`` (default ChipProfile()). Returns the paths, named ``<probe>.h5``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for trace in probe_traces(profile, seed=seed):
        path = out / f"{trace.metadata['probe']}.h5"
        write_trace(path, trace)
        paths.append(path)
    return paths
