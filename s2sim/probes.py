"""Probe networks for board owners: small runs whose chip output settles the open points of docs/datapath.md.

Each probe population isolates one or a few points and is insensitive to the others (integer weights where
rounding is not probed, ``alpha_decay = 0`` or ``1`` where arithmetic is not probed, thresholds no sum can equal
unless equality is probed), so :func:`s2sim.conformance.infer` settles each point on the population that isolates
it; tests/test_probes.py proves that every point is separated by some population of the suite.

    from s2sim import probes
    paths = probes.write_probe_suite("probes/")        # networks + inputs + the default profile's output
    # on a machine with a board: python tools/run_probes_on_board.py probes/ chip/
    # then: s2sim conform --infer chip/
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from .models import KIND_CURR_EXP, MODELS
from .profile import NEURON_MODELS, ChipProfile
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
def muladd_sequence(
    x0: float,
    a: float,
    exc: float,
    ticks: int,
    precision: str,
    fused: bool,
    offset: float = 0.0,
    grouping: str = "input_first",
    inh: float = 0.0,
) -> list[float]:
    """``ticks`` values of a membrane update in the given arithmetic, widened to float64.

    The neuron has v_init ``x0``, alpha_decay ``a`` and i_offset ``offset``, and receives excitatory input ``exc``
    and inhibitory input ``inh`` in every tick from tick 1 (a spike_list spiking every tick from tick 0 through
    weights ``exc`` and ``-inh``). ``grouping`` is ChipProfile.input_grouping: ``V*a + ((E - I) + offset)``,
    ``(V*a + (E - I)) + offset`` or ``((V*a + E) - I) + offset``. With ``x0 = offset = inh = 0`` this is also the
    current ``I_exc`` of a lif_curr_exp neuron with exc_decay ``a``.
    """
    from .oracle import fma_float32, fma_float64

    dtype = np.float64 if precision == "float64" else np.float32
    fma = fma_float64 if precision == "float64" else fma_float32

    def muladd(x: Any, y: Any, z: Any) -> Any:
        return fma(x, y, z).astype(dtype) if fused else (x * y).astype(dtype) + z

    x, a_, e_, i_, off = (
        np.asarray([v], dtype=dtype)
        for v in (np.float32(x0), np.float32(a), np.float32(exc), np.float32(inh), np.float32(offset))
    )
    zero = np.zeros(1, dtype)
    out = []
    for tick in range(ticks):
        e, i = (e_, i_) if tick else (zero, zero)
        if grouping == "left_to_right":
            x = (muladd(x, a_, e) - i) + off
        elif grouping == "leak_first":
            x = muladd(x, a_, e - i) + off
        else:
            x = muladd(x, a_, (e - i) + off)
        out.append(float(x[0]))
    return out


def distinguishes_arithmetic(
    witness: tuple[float, ...],
    ticks: int,
    groupings: tuple[str, ...] = ("input_first",),
) -> bool:
    """Tell whether every arithmetic gives its own sequence for ``witness = (x0, a, exc, offset, inh)``.

    The arithmetics: float32/float64 state x fused/unfused x the given input groupings.
    """
    x0, a, exc, off, inh = witness
    seqs = {
        tuple(muladd_sequence(x0, a, exc, ticks, p, f, off, g, inh))
        for p in ("float32", "float64")
        for f in (False, True)
        for g in groupings
    }
    return len(seqs) == 4 * len(groupings)


def _membrane_draw(rng: np.random.Generator, limit: int) -> tuple[float, ...]:
    # integer excitatory input only, no i_offset: where i_offset and I join cannot matter (probed separately)
    return rng.uniform(1.0, 100.0), rng.uniform(0.5, 0.95), float(rng.integers(1, limit + 1)), 0.0, 0.0


def _current_draw(rng: np.random.Generator, limit: int) -> tuple[float, ...]:
    return 0.0, rng.uniform(0.5, 0.95), float(rng.integers(1, min(limit, 15) + 1)), 0.0, 0.0


def _grouping_draw(rng: np.random.Generator, limit: int) -> tuple[float, ...]:
    # excitatory and inhibitory input in the same tick, and an inexact i_offset
    return (
        rng.uniform(1.0, 100.0),
        rng.uniform(0.5, 0.95),
        float(rng.integers(1, limit + 1)),
        rng.uniform(0.1, 10.0),
        float(rng.integers(1, limit + 1)),
    )


_DRAWS = {
    "membrane": (_membrane_draw, ("input_first",)),
    "current": (_current_draw, ("input_first",)),
    "grouping": (_grouping_draw, ("input_first", "leak_first", "left_to_right")),
}


@cache
def find_witness(kind: str, limit: int, ticks: int = 6, seed: int = 0, attempts: int = 10_000) -> tuple[float, ...]:
    """Search for float32 ``(x0, a, exc, offset, inh)`` that :func:`distinguishes_arithmetic`.

    The search is seeded, so deterministic. ``kind`` is "membrane", "current" or "grouping" (for "grouping": under all
    three input groupings); weights go up to ``limit``.
    """
    draw, groupings = _DRAWS[kind]
    rng = np.random.default_rng(seed)
    for _ in range(attempts):
        witness = tuple(float(np.float32(v)) for v in draw(rng, limit))
        if distinguishes_arithmetic(witness, ticks, groupings):
            return witness
    raise RuntimeError(f"no {kind} witness found in {attempts} attempts (seed {seed})")


# -- the probes -----------------------------------------------------------------------------------------------
def _lif(size: int, model: str, name: str, **params: Any) -> Population:
    base = {"alpha_decay": 0.0, "threshold": _NEVER, "i_offset": 0.0, "v_init": 0.0}
    if model.startswith("lif_curr_exp"):
        base.update(exc_decay=0.0, inh_decay=0.0)
    base.update(params)
    return Population(size, model, base, name=name, record=_RECORD)


def threshold_probe() -> Probe:
    """V lands exactly on the threshold (3 == 3.0) in every model: ``>=`` spikes, ``>`` does not."""
    src = Population(1, "spike_list", {0: [1, 4]}, name="src")
    net = Network("probe_threshold_equality").add(src)
    for model in NEURON_MODELS:
        pop = _lif(3, model, f"thr_{model}", threshold=3.0)
        # neuron 0 reaches the threshold exactly, 1 stays below, 2 goes above (controls)
        net.add(pop, Projection(src, pop, [[0, 0, 3, 0], [0, 1, 2, 0], [0, 2, 4, 0]]))
    return Probe("threshold_equality", "spike test V >= threshold or V > threshold, per model (threshold_op)", net, 8)


def _driven_membranes(model: str, name: str, witnesses: list[tuple[float, ...]], src: Population, net: Network) -> None:
    """Add a ``model`` population fed by ``src`` to ``net``, with one neuron per witness.

    A witness is (v_init, alpha_decay, exc weight, i_offset, inh weight).
    """
    pop = _lif(
        len(witnesses),
        model,
        name,
        v_init=[w[0] for w in witnesses],
        alpha_decay=[w[1] for w in witnesses],
        i_offset=[w[3] for w in witnesses],
    )
    conns = [[0, n, w[2], 0] for n, w in enumerate(witnesses)]
    conns += [[0, n, -w[4], 0] for n, w in enumerate(witnesses) if w[4]]
    net.add(pop, Projection(src, pop, conns))


def fma_probe(seed: int = 0) -> Probe:
    """Return the probe of membrane multiply-adds whose one- and two-rounding results differ, per model.

    They differ in float32 and float64 state alike; per curr_exp model there is also a synaptic-current decay that does
    the same (values by :func:`find_witness`).
    """
    ticks = 6
    src = Population(1, "spike_list", {0: list(range(ticks + 1))}, name="src")
    net = Network("probe_fma").add(src)
    for k, model in enumerate(NEURON_MODELS):
        limit = MODELS[model].weight_limit
        witnesses = [find_witness("membrane", limit, ticks, seed + 10 * k + j) for j in range(3)]
        _driven_membranes(model, f"fma_membrane_{model}", witnesses, src, net)
    for k, model in enumerate(m for m in NEURON_MODELS if MODELS[m].kind == KIND_CURR_EXP):
        _, decay, weight, _, _ = find_witness("current", MODELS[model].weight_limit, ticks, seed + 100 + k)
        # alpha_decay 0 makes the recorded V equal this tick's I_exc exactly, in every arithmetic
        cur = _lif(1, model, f"fma_current_{model}", exc_decay=decay)
        net.add(cur, Projection(src, cur, [[0, 0, weight, 0]]))
    return Probe(
        "fma",
        "V*alpha + input (per model) and I*decay + ring (per curr_exp model) rounded once or twice, "
        "float32 or float64 state (fused_multiply_add, current_fused_multiply_add, state_precision)",
        net,
        ticks + 2,
    )


def grouping_probe(seed: int = 0) -> Probe:
    """Return the probe of excitatory and inhibitory input in the same tick beside an inexact i_offset.

    The values are ones for which the three input groupings differ under every arithmetic (fused or not, float32 or
    float64), in a lif and a curr_exp model (decays 0, so the currents equal the tick's input).
    """
    ticks = 6
    src = Population(1, "spike_list", {0: list(range(ticks + 1))}, name="src")
    net = Network("probe_input_grouping").add(src)
    for k, model in enumerate(("lif_no_delay", "lif_curr_exp_no_delay")):
        witness = find_witness("grouping", MODELS[model].weight_limit, ticks, seed + 200 + k)
        _driven_membranes(model, f"grouping_{model}", [witness], src, net)
    return Probe(
        "input_grouping",
        "where i_offset and the inhibitory input join the membrane update (input_grouping)",
        net,
        ticks + 2,
    )


#: Non-integer weights on which trunc, floor, nearest_even and nearest_away all give different integer vectors.
ROUNDING_WEIGHTS = (0.5, 1.5, 2.5, 1.7, -0.7, -1.5, -2.5)


def rounding_probe() -> Probe:
    """One spike through each non-integer weight, in a connection list into every model and in a conv kernel.

    V shows the integer.
    """
    n = len(ROUNDING_WEIGHTS)
    src = Population(1, "spike_list", {0: [0]}, name="src")
    net = Network("probe_weight_rounding").add(src)
    for model in NEURON_MODELS:
        pop = _lif(n, model, f"round_list_{model}")
        net.add(pop, Projection(src, pop, [[0, i, w, 0] for i, w in enumerate(ROUNDING_WEIGHTS)]))
    conv = _lif(n, "lif_conv2d", "round_conv")
    kernel = np.asarray(ROUNDING_WEIGHTS, dtype=np.float64).reshape(1, n, 1, 1)
    net.add(conv, Conv2DProjection(src, conv, kernel, {"in_height": 1, "in_width": 1}))
    return Probe(
        "weight_rounding",
        "how non-integer float weights become integers, per model and for conv kernels "
        "(weight_rounding, conv_weight_rounding)",
        net,
        4,
    )


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
        src,
        strided,
        pooled,
        Conv2DProjection(
            src, strided, _CONV_KERNEL, {"in_height": 6, "in_width": 6, "stride_x": 1, "stride_y": 2, "pad_top": 1}
        ),
        Conv2DProjection(src, pooled, _CONV_KERNEL, {"in_height": 6, "in_width": 6, "pool_x": 2, "pool_y": 1}),
    )
    return Probe(
        "conv_x_axis",
        "conv stride / padding / pool x act along the width or the height (conv_x_axis)",
        net,
        len(_CONV_PIXELS) + 2,
    )


def refractory_probe() -> Probe:
    """lif_curr_exp with t_refrac 0..3 under a constant drive, plus input arriving while refractory."""
    src = Population(1, "spike_list", {0: [3, 9]}, name="src")
    pop = _lif(
        4,
        "lif_curr_exp",
        "refractory",
        alpha_decay=1.0,
        i_offset=1.0,
        threshold=2.7,
        exc_decay=0.5,
        reset="reset_to_v_reset",
        t_refrac=[0, 1, 2, 3],
    )
    net = Network("probe_refractory").add(src, pop, Projection(src, pop, [[0, i, 1, 0] for i in range(4)]))
    return Probe(
        "refractory", "refractory countdown, V held, current integrated meanwhile (model, no variant)", net, 20
    )


def refractory_held_v_probe() -> Probe:
    """t_refrac 2 with a held V at or above threshold, in both curr_exp models.

    One spike (w 2 at tick 1, alpha 1) resets neuron 0 to v_reset = threshold = 1 and neuron 1 to v_reset 2. Testing the
    held V spikes in every refractory tick (neuron 0 only under ``>=``); not testing it spikes every third tick.
    """
    src = Population(1, "spike_list", {0: [0]}, name="src")
    net = Network("probe_refractory_held_v").add(src)
    for model in (m for m in NEURON_MODELS if MODELS[m].kind == KIND_CURR_EXP):
        pop = _lif(
            2,
            model,
            f"held_v_{model}",
            alpha_decay=1.0,
            threshold=1.0,
            t_refrac=2,
            reset="reset_to_v_reset",
            v_reset=[1.0, 2.0],
        )
        net.add(pop, Projection(src, pop, [[0, 0, 2, 0], [0, 1, 2, 0]]))
    return Probe(
        "refractory_held_v",
        "whether a refractory neuron whose held V is at or above threshold spikes (refractory_rule)",
        net,
        10,
    )


#: float32 values around the smallest normal 2**-126 (v_init, alpha_decay) and what each neuron shows.
_SUBNORMAL_NEURONS = (
    (1e-40, 1.0),  # a subnormal V, multiplied by 1: kept, or read as 0
    (2.0**-100 * (1 - 2.0**-24), 2.0**-26),  # a product tiny before rounding that rounds up to 2**-126
    (1e-30, 1e-10),  # a product deep in the subnormals (float64 state: not rounded)
    (2.0**-124, 0.5),  # halving into the subnormals, tick by tick
)


def subnormal_probe() -> Probe:
    """V near and below float32's smallest normal value, no input.

    flush-to-zero reads subnormal operands as zero and flushes results that are tiny before rounding (neuron 1 separates
    that from flushing after rounding).
    """
    pop = _lif(
        len(_SUBNORMAL_NEURONS),
        "lif_no_delay",
        "subnormal",
        v_init=[v for v, _ in _SUBNORMAL_NEURONS],
        alpha_decay=[a for _, a in _SUBNORMAL_NEURONS],
        threshold=1.0,
    )
    return Probe(
        "subnormal",
        "flush-to-zero of subnormal operands and tiny results (flush_to_zero)",
        Network("probe_subnormal").add(pop),
        6,
    )


def probe_suite(seed: int = 0) -> list[Probe]:
    """All probes, one per open point of docs/datapath.md."""
    return [
        threshold_probe(),
        fma_probe(seed),
        grouping_probe(seed),
        rounding_probe(),
        delay_probe(),
        conv_x_axis_probe(),
        refractory_probe(),
        refractory_held_v_probe(),
        subnormal_probe(),
    ]


def probe_traces(profile: ChipProfile | None = None, seed: int = 0) -> list[Trace]:
    """Run the probe suite in the simulator under ``profile`` (what a chip of that variant would record)."""
    from .conformance import simulate

    return [
        simulate(p.network, p.timesteps, profile, metadata={"probe": p.name, "settles": p.settles})
        for p in probe_suite(seed)
    ]


def write_probe_suite(directory: str | Path, profile: ChipProfile | None = None, seed: int = 0) -> list[Path]:
    """Write one trace per probe to ``directory`` (created if needed).

    Network, inputs and the simulator's output under ``profile`` (default ChipProfile()). Returns the paths, named
    ``<probe>.h5``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for trace in probe_traces(profile, seed=seed):
        path = out / f"{trace.metadata['probe']}.h5"
        write_trace(path, trace)
        paths.append(path)
    return paths
