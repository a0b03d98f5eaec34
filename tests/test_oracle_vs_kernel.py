"""The C core against the independent numpy oracle (s2sim.oracle), and both against cases worked by hand.

Property tests draw random networks (tests/strategies.py) over every model, delay, reset mode and ChipProfile
variant and require bit-identical spikes and voltages and identical counts. The hand cases derive their expected
values from SPEC arithmetic written out in the test (exact rationals where rounding matters), never from the code
under test, and run on both implementations.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from strategies import net_specs

from s2sim import oracle, snn
from s2sim.benchmarks import NIR_PAPER_INPUT_TICKS
from s2sim.errors import LimitError
from s2sim.profile import ChipProfile
from s2sim.simulator import Simulator  # no skip without a built core: a missing build must fail loudly

RUNNERS = ["oracle", "kernel"]
EVERY_PROFILE = [
    ChipProfile(threshold_op=op, fused_multiply_add=fma, state_precision=prec)
    for op in (">=", ">")
    for fma in (True, False)
    for prec in ("float32", "float64")
]


def profile_id(profile: ChipProfile) -> str:
    return f"{profile.threshold_op}-{'fma' if profile.fused_multiply_add else 'mul_add'}-{profile.state_precision}"


PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def run(runner: str, net: snn.Network, timesteps: int, profile: ChipProfile, inputs=None):
    if runner == "kernel":
        return Simulator(profile).run_batch(net, inputs, timesteps)
    return oracle.run_batch(net, inputs, timesteps, profile)


def bits(arr: np.ndarray) -> np.ndarray:
    """The raw bit patterns, so -0.0 != +0.0 and NaN payloads count."""
    return arr.view({1: np.uint8, 4: np.uint32, 8: np.uint64}[arr.dtype.itemsize])


def assert_identical(expected, actual) -> None:
    """Every recorded array of two BatchResults is bit-identical; on failure name population, sample, tick, neuron."""
    for group in ("spikes", "voltages", "v_last", "counts"):
        want, got = getattr(expected, group), getattr(actual, group)
        assert want.keys() == got.keys(), f"{group}: populations {sorted(want)} vs {sorted(got)}"
        for name in want:
            a, b = want[name], got[name]
            assert (a.dtype, a.shape) == (b.dtype, b.shape), (
                f"{group}[{name}]: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
            )
            differ = np.argwhere(bits(a) != bits(b))
            if differ.size:
                where = tuple(int(i) for i in differ[0])
                raise AssertionError(
                    f"{group}[{name!r}] first differs at index {where} (sample, tick, neuron): "
                    f"oracle {a[where]!r} vs kernel {b[where]!r}; {len(differ)} entries differ"
                )


# -- property tests -------------------------------------------------------------------------------------------
def _check_spec(spec) -> None:
    net, inputs = spec.build()
    want = oracle.run_batch(net, inputs, spec.timesteps, spec.profile)
    net, inputs = spec.build()
    got = Simulator(spec.profile, num_threads=spec.threads, tuning=spec.tuning).run_batch(net, inputs, spec.timesteps)
    assert_identical(want, got)


@settings(PROPERTY, max_examples=400)
@given(net_specs())
def test_kernel_matches_oracle_on_random_networks(spec):
    _check_spec(spec)


@settings(PROPERTY, max_examples=200)
@given(net_specs(conv=True, max_neuron_pops=1))
def test_kernel_matches_oracle_on_random_conv_networks(spec):
    _check_spec(spec)


@settings(PROPERTY, max_examples=60)
@given(net_specs(max_timesteps=60, max_batch=6))
def test_kernel_matches_oracle_on_longer_batched_runs(spec):
    _check_spec(spec)


@settings(PROPERTY, max_examples=60)
@given(net_specs(conv=True, max_neuron_pops=1, wide_conv=True, max_timesteps=8))
def test_kernel_matches_oracle_on_wide_conv_networks(spec):
    # up to 40 channels and 5x5 kernels: several channel groups and tap chunks in the dense conv product
    _check_spec(spec)


def test_generated_networks_spike_and_see_the_profile():
    """The strategy is only useful if its networks spike and their results depend on the open datapath points."""
    stats = {
        "cases": 0,
        "spiking": 0,
        "fma": 0,
        "threshold_op": 0,
        "grouping": 0,
        "left_to_right": 0,
        "ftz": 0,
        "refractory": 0,
        "override": 0,
    }

    def differs(spec, res, **change):
        profile = ChipProfile(**{**spec.profile.to_dict(), **change})
        other = oracle.run_batch(*spec.build(), spec.timesteps, profile)
        return any(
            not np.array_equal(bits(res.voltages[n]), bits(other.voltages[n]))
            or not np.array_equal(res.spikes[n], other.spikes[n])
            for n in spec.neuron_names()
        )

    @settings(
        max_examples=120,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(net_specs(precisions=("float32",)))
    def collect(spec):
        net, inputs = spec.build()
        res = oracle.run_batch(net, inputs, spec.timesteps, spec.profile)
        p = spec.profile
        stats["cases"] += 1
        stats["spiking"] += any(res.spikes[n].any() for n in spec.neuron_names())
        stats["fma"] += differs(spec, res, fused_multiply_add=not p.fused_multiply_add, overrides={})
        stats["threshold_op"] += differs(spec, res, threshold_op=">" if p.threshold_op == ">=" else ">=", overrides={})
        grouping = "leak_first" if p.input_grouping == "input_first" else "input_first"
        stats["grouping"] += differs(spec, res, input_grouping=grouping)
        if p.input_grouping != "left_to_right":
            stats["left_to_right"] += differs(spec, res, input_grouping="left_to_right")
        stats["ftz"] += differs(spec, res, flush_to_zero=not p.flush_to_zero)
        rule = "no_spike" if p.refractory_rule == "held_v_tested" else "held_v_tested"
        stats["refractory"] += differs(spec, res, refractory_rule=rule)
        if p.overrides:
            stats["override"] += differs(spec, res, overrides={})

    collect()
    assert stats["cases"] == 120
    assert stats["spiking"] >= 0.8 * stats["cases"], stats
    assert stats["fma"] >= 0.3 * stats["cases"], stats
    assert stats["grouping"] >= 0.2 * stats["cases"], stats
    for point in ("threshold_op", "left_to_right", "ftz", "refractory", "override"):
        assert stats[point] >= 3, stats


# -- the oracle's fused multiply-add --------------------------------------------------------------------------
def _is_correctly_rounded(exact: Fraction, result: np.floating) -> bool:
    """``result`` is a nearest float of its format to ``exact``, ties to an even significand."""
    kind = type(result)
    mine = abs(exact - Fraction(float(result)))
    for neighbour in (np.nextafter(result, kind(-np.inf)), np.nextafter(result, kind(np.inf))):
        if not np.isfinite(neighbour):
            continue
        theirs = abs(exact - Fraction(float(neighbour)))
        if theirs < mine or (theirs == mine and int(bits(np.array([result]))[0]) & 1):
            return False
    return True


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False, min_value=-(2.0**60), max_value=2.0**60)


@settings(max_examples=400, deadline=None)
@given(finite32, finite32, finite32)
def test_fma_float32_rounds_once(a, b, c):
    a, b, c = np.float32(a), np.float32(b), np.float32(c)
    result = oracle.fma_float32(np.array([a]), np.array([b]), np.array([c]))[0]
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    assert _is_correctly_rounded(exact, result)


def test_fma_float32_avoids_double_rounding():
    # a*b = 2**-24 * (1 + 2**-23) * (1 - 2**-23) = 2**-24 - 2**-70, so a*b + c lies just below the float32 midpoint
    # 1 + 3 * 2**-24 between 1 + 2**-23 and 1 + 2**-22. Rounding to float64 first lands exactly on that midpoint,
    # and ties-to-even then gives 1 + 2**-22; the single correct rounding is 1 + 2**-23.
    a, b, c = np.float32(2**-24 * (1 + 2**-23)), np.float32(1 - 2**-23), np.float32(1 + 2**-23)
    assert (np.float64(a) * np.float64(b) + np.float64(c)).astype(np.float32) == np.float32(1 + 2**-22)
    assert oracle.fma_float32(a, b, c) == np.float32(1 + 2**-23)


@settings(max_examples=150, deadline=None)
@given(*[st.floats(allow_nan=False, allow_infinity=False, min_value=-1e150, max_value=1e150)] * 3)
def test_fma_float64_rounds_once(a, b, c):
    result = oracle.fma_float64(np.array([a]), np.array([b]), np.array([c]))[0]
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    assert _is_correctly_rounded(exact, result)
    if exact == 0:
        assert math.copysign(1.0, result) == math.copysign(1.0, a * b + c)


# -- hand-worked cases ----------------------------------------------------------------------------------------
def _single_neuron(model: str, params: dict, stim_ticks=(), weight=1, delay=0, record=("spikes", "v", "counts")):
    stim = snn.Population(1, "spike_list", {0: list(stim_ticks)}, name="stim", record=["spikes", "counts"])
    pop = snn.Population(1, model, params, name="pop", record=list(record))
    net = snn.Network("hand").add(stim, pop, snn.Projection(stim, pop, [[0, 0, weight, delay]]))
    return net


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("profile", EVERY_PROFILE, ids=profile_id)
def test_threshold_op_decides_when_v_equals_threshold(runner, profile):
    # alpha 1, weight 1, spikes at ticks 0 and 1: V is 0, 1, 2 at ticks 0, 1, 2 (all exact). At tick 2 V == 2.0
    # == threshold: ">=" spikes and subtracts to 0; ">" keeps V = 2 and never spikes.
    net = _single_neuron("lif_no_delay", {"threshold": 2.0, "alpha_decay": 1.0}, stim_ticks=[0, 1])
    res = run(runner, net, 4, profile)
    if profile.threshold_op == ">=":
        want_v, want_s = [0.0, 1.0, 0.0, 0.0], [0, 0, 1, 0]
    else:
        want_v, want_s = [0.0, 1.0, 2.0, 2.0], [0, 0, 0, 0]
    assert res.voltages["pop"][0, :, 0].tolist() == want_v
    assert res.spikes["pop"][0, :, 0].tolist() == want_s


def _round_to_float32(exact: Fraction) -> np.float32:
    """Correct rounding of a rational to float32: via float64, valid unless that lands on a float32 midpoint."""
    wide = float(exact)
    lower = np.float32(wide)
    if Fraction(float(lower)) > Fraction(wide):
        lower = np.nextafter(lower, np.float32(-np.inf))
    upper = np.nextafter(lower, np.float32(np.inf))
    assert Fraction(wide) * 2 != Fraction(float(lower)) + Fraction(float(upper)), "double-rounding midpoint"
    return np.float32(wide)


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("fused", [True, False])
def test_fma_setting_changes_the_membrane_and_the_spike(runner, fused):
    # Tick 0 with no input: V = V0 * alpha + ((0 - 0) + i_offset). In float32, f(1.1) * f(0.9) + f(0.7) rounds once
    # to 1.6899999 but in two steps to 1.69 = f(1.69), the threshold: only the unfused neuron spikes (V -> 0).
    v0, alpha, i_off = np.float32(1.1), np.float32(0.9), np.float32(0.7)
    fused_v = _round_to_float32(Fraction(float(v0)) * Fraction(float(alpha)) + Fraction(float(i_off)))
    separate_v = (v0 * alpha) + i_off
    assert fused_v != separate_v and separate_v == np.float32(1.69)
    net = _single_neuron("lif_no_delay", {"threshold": 1.69, "alpha_decay": 0.9, "i_offset": 0.7, "v_init": 1.1})
    res = run(runner, net, 1, ChipProfile(fused_multiply_add=fused))
    v, spiked = res.voltages["pop"][0, 0, 0], res.spikes["pop"][0, 0, 0]
    if fused:
        assert (bits(np.array([v])), spiked) == (bits(np.array([fused_v])), 0)
    else:
        assert (v, spiked) == (np.float32(0.0), 1)


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("fused", [True, False])
def test_fma_is_not_emulated_by_rounding_through_float64(runner, fused):
    # Same double-rounding triple as test_fma_float32_avoids_double_rounding, set up as v_init, alpha, i_offset
    # (all exact in float32). Fused: 1 + 2**-23. Unfused: f32(a*b) = 2**-24, then 2**-24 + (1 + 2**-23) is the
    # midpoint 1 + 3 * 2**-24, which ties to the even 1 + 2**-22.
    params = {"v_init": 2**-24 * (1 + 2**-23), "alpha_decay": 1 - 2**-23, "i_offset": 1 + 2**-23, "threshold": 100.0}
    net = _single_neuron("lif_no_delay", params)
    res = run(runner, net, 1, ChipProfile(fused_multiply_add=fused))
    assert res.voltages["pop"][0, 0, 0] == np.float32(1 + 2**-23 if fused else 1 + 2**-22)


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("fused", [True, False])
def test_float64_state_uses_a_float64_fma(runner, fused):
    # float64 mode: parameters are float32 values widened. Tick 0: V1 = a*b + c (the product of two float32 is exact
    # in float64, so both settings agree). Tick 1: V1 * b has 77 significant bits; rounding it first changes the sum.
    a, b, c = (Fraction(float(np.float32(x))) for x in (1.1, 0.9, 0.1))
    v1 = float(a * b + c)
    fused_v2 = float(Fraction(v1) * b + c)
    separate_v2 = float(Fraction(float(Fraction(v1) * b)) + c)
    assert fused_v2 != separate_v2
    net = _single_neuron("lif_no_delay", {"threshold": 100.0, "alpha_decay": 0.9, "i_offset": 0.1, "v_init": 1.1})
    res = run(runner, net, 2, ChipProfile(fused_multiply_add=fused, state_precision="float64"))
    v = res.voltages["pop"][0, :, 0]
    assert v.dtype == np.float64
    assert v.tolist() == [v1, fused_v2 if fused else separate_v2]


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("delay", range(8))
def test_delay_d_spike_at_t_reaches_v_at_t_plus_1_plus_d(runner, delay):
    # stim spikes at tick 2 -> relay (lif_no_delay, weight 1 >= threshold 1) spikes at tick 3 -> target (lif, delay d,
    # weight 5, alpha 0.5) sees it at tick 3 + 1 + d: V = 5, then 2.5, 1.25 (exact). Every tick before is 0.
    stim = snn.Population(1, "spike_list", {0: [2]}, name="stim")
    relay = snn.Population(1, "lif_no_delay", {"threshold": 1.0}, name="relay", record=["spikes", "counts"])
    target = snn.Population(
        1, "lif", {"threshold": 100.0, "alpha_decay": 0.5}, name="target", record=["spikes", "v", "counts"]
    )
    net = snn.Network("delay").add(
        stim,
        relay,
        target,
        snn.Projection(stim, relay, [[0, 0, 1, 0]]),
        snn.Projection(relay, target, [[0, 0, 5, delay]]),
    )
    arrive = 3 + 1 + delay
    res = run(runner, net, arrive + 3, ChipProfile())
    assert np.flatnonzero(res.spikes["relay"][0, :, 0]).tolist() == [3]
    assert res.voltages["target"][0, :, 0].tolist() == [0.0] * arrive + [5.0, 2.5, 1.25]
    # The synaptic event is counted when the spike is delivered into the ring (tick 4), whatever the delay.
    assert np.flatnonzero(res.counts["target"][0, :, 1]).tolist() == [4]
    assert res.counts["relay"][0, :, 0].tolist() == res.spikes["relay"][0, :, 0].tolist()


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("profile", EVERY_PROFILE, ids=profile_id)
@pytest.mark.parametrize("t_refrac", [0, 2])
def test_curr_exp_refractory_period(runner, profile, t_refrac):
    # weight 4 at tick 0 -> ring E = 4 at tick 1. Decays 0.5, threshold 1, reset to 0, all values dyadic (exact).
    # tick 1: I = 4, V = 4 -> spike, V = 0, refrac = t_refrac.
    # t_refrac 2: ticks 2, 3 rest (I = 2, 1; V stays 0). tick 4: I = 0.5, V = 0.5. tick 5: I = .25, V = .5. tick 6: .375
    # t_refrac 0: tick 2: I = 2, V = 2 -> spike; tick 3: I = 1, V = 1 -> spike (">=" only); then as above from tick 4
    # (with ">" tick 3 keeps V = 1, so tick 4: V = 0.5 + 0.5 = 1.0, tick 5: 0.5 + 0.25, tick 6: 0.375 + 0.125).
    params = {
        "threshold": 1.0,
        "alpha_decay": 0.5,
        "exc_decay": 0.5,
        "inh_decay": 0.5,
        "t_refrac": t_refrac,
        "reset": "reset_to_v_reset",
        "v_reset": 0.0,
    }
    net = _single_neuron("lif_curr_exp", params, stim_ticks=[0], weight=4)
    res = run(runner, net, 7, profile)
    if t_refrac == 2:
        want_s, want_v = [0, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0.5, 0.5, 0.375]
    elif profile.threshold_op == ">=":
        want_s, want_v = [0, 1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0.5, 0.5, 0.375]
    else:
        want_s, want_v = [0, 1, 1, 0, 0, 0, 0], [0, 0, 0, 1.0, 1.0, 0.75, 0.5]
    assert res.spikes["pop"][0, :, 0].tolist() == want_s
    assert res.voltages["pop"][0, :, 0].tolist() == want_v


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize(
    "rounding, expected",
    [
        ("trunc", [2, -2, 3, 2, -2, 0, 0]),
        ("nearest_even", [2, -2, 4, 3, -3, 0, 0]),
        ("nearest_away", [3, -3, 4, 3, -3, 0, -1]),
        ("floor", [2, -3, 3, 2, -3, 0, -1]),
    ],
)
def test_weight_rounding_modes(runner, rounding, expected):
    # 0.49999999999999994 is the float just below 0.5: every mode gives 0 (|w| + 0.5 would round up to 1.0).
    weights = [2.5, -2.5, 3.5, 2.7, -2.7, 0.49999999999999994, -0.5]
    stim = snn.Population(1, "spike_list", {0: [0]}, name="stim")
    pop = snn.Population(
        len(weights), "lif_no_delay", {"threshold": 100.0, "alpha_decay": 1.0}, name="pop", record=["v"]
    )
    proj = snn.Projection(stim, pop, [[0, j, w, 0] for j, w in enumerate(weights)])
    net = snn.Network("rounding").add(stim, pop, proj)
    res = run(runner, net, 2, ChipProfile(weight_rounding=rounding))
    assert res.voltages["pop"][0, 1].tolist() == [float(e) for e in expected]


@pytest.mark.parametrize("runner", RUNNERS)
def test_conv_with_pool_stride_and_padding_by_hand(runner):
    # Input 1x4x4, sum-pool 2x2 -> pooled 1x2x2; kernel 1x1x2x2 = [[1, 2], [3, 4]]; pad_top = pad_left = 1;
    # stride 1 -> out 1 x 2 x 2 (out_h = (2 + 1 + 0 - 2) // 1 + 1). Spikes at tick 0 in input cells (0, 0), (0, 1)
    # (both pooled cell (0, 0), counted twice) and (3, 3) (pooled (1, 1)). At tick 1, out[oy, ox] = sum over taps
    # W[ky, kx] * pooled[oy - 1 + ky, ox - 1 + kx]:
    #   out[0,0] = W[1,1]*p[0,0] = 4*2 = 8;   out[0,1] = W[1,0]*p[0,0] = 3*2 = 6
    #   out[1,0] = W[0,1]*p[0,0] = 2*2 = 4;   out[1,1] = W[0,0]*p[0,0] + W[1,1]*p[1,1] = 2 + 4 = 6
    # Synaptic events: each spike times its in-range taps times C_out: (0,0)-cell spikes reach 4 outputs each,
    # the (1,1)-cell spike reaches out[1,1] only -> 4 + 4 + 1 = 9.
    stim = snn.Population(16, "spike_list", {0: [0], 1: [0], 15: [0]}, name="stim")
    conv = snn.Population(
        4, "lif_conv2d", {"threshold": 100.0, "alpha_decay": 1.0}, name="conv", record=["v", "counts"]
    )
    proj = snn.Conv2DProjection(
        stim,
        conv,
        np.array([[[[1, 2], [3, 4]]]]),
        {"in_height": 4, "in_width": 4, "pool_x": 2, "pool_y": 2, "pad_top": 1, "pad_left": 1},
    )
    res = run(runner, snn.Network("conv").add(stim, conv, proj), 2, ChipProfile())
    assert res.voltages["conv"][0, 1].tolist() == [8.0, 6.0, 4.0, 6.0]
    assert res.counts["conv"][0, :, 1].tolist() == [0, 9]


NIR_PAPER_INPUT = list(NIR_PAPER_INPUT_TICKS)


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("profile", EVERY_PROFILE, ids=profile_id)
def test_nir_paper_single_lif_benchmark(runner, profile):
    # Published (NIR paper, docs/datapath.md R§7): weight 102, threshold 255.05, alpha 0.96, zero reset,
    # 1001 ticks -> output spikes at 461, 511, 711, 761.
    params = {"threshold": 255.05, "alpha_decay": 0.96, "reset": "reset_to_v_reset", "v_reset": 0.0}
    net = _single_neuron("lif_no_delay", params, stim_ticks=NIR_PAPER_INPUT, weight=102)
    res = run(runner, net, 1001, profile)
    assert np.flatnonzero(res.spikes["pop"][0, :, 0]).tolist() == [461, 511, 711, 761]
    assert res.counts["pop"][0, :, 1].sum() == len(NIR_PAPER_INPUT)
    assert res.counts["stim"][0, :, 0].sum() == len(NIR_PAPER_INPUT)


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("profile", EVERY_PROFILE, ids=profile_id)
def test_subnormal_membrane_is_not_flushed(runner, profile):
    # The M4F runs with flush-to-zero off: V = 2**-126 (smallest normal float32) halves each tick into the
    # subnormals 2**-127, 2**-128, 2**-129, all exact; threshold 1 is never reached.
    net = _single_neuron("lif_no_delay", {"threshold": 1.0, "alpha_decay": 0.5, "v_init": 2.0**-126})
    res = run(runner, net, 3, profile)
    assert res.voltages["pop"][0, :, 0].tolist() == [2.0**-127, 2.0**-128, 2.0**-129]


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_ring_sum_up_to_2_24_is_exact_and_beyond_is_refused(runner, precision):
    # 2**24 = 64 * 2**18: one spike through 2**18 parallel synapses of weight 64 fills the ring to exactly 2**24,
    # the largest sum the spec admits (conversion to float32 still exact); with V = 0 that is V at tick 1.
    def wide(weight: float, n: int) -> snn.Network:
        stim = snn.Population(1, "spike_list", {0: [0]}, name="stim")
        pop = snn.Population(1, "lif_no_delay", {"threshold": 1e9}, name="pop", record=["v", "counts"])
        conns = np.tile([0.0, 0.0, weight, 0.0], (n, 1))
        return snn.Network("wide").add(stim, pop, snn.Projection(stim, pop, conns))

    profile = ChipProfile(state_precision=precision)
    res = run(runner, wide(64.0, 2**18), 2, profile)
    assert res.voltages["pop"][0, 1, 0] == 2.0**24
    assert res.counts["pop"][0, :, 1].tolist() == [0, 2**18]
    # 2**24 + 1 = 97 * 257 * 673: one more than the limit is refused, naming the population and the limit.
    with pytest.raises(LimitError, match=r"'pop'.*16777217.*16777216"):
        run(runner, wide(97.0, 257 * 673), 2, profile)


def test_conv_x_axis_reading_is_a_profile_setting():
    # Square input and kernel with asymmetric stride, pool and padding: both readings of the x/y parameters fit
    # the populations, but give different convolutions; kernel and oracle must agree on each.
    rng = np.random.default_rng(11)
    geom = {
        "in_height": 8,
        "in_width": 8,
        "stride_x": 2,
        "stride_y": 1,
        "pool_x": 2,
        "pool_y": 1,
        "pad_top": 1,
        "pad_bottom": 0,
        "pad_left": 0,
        "pad_right": 2,
    }
    pre = snn.Population(2 * 8 * 8, "spike_list", {}, name="pre")
    oh, ow = (8 + 1 - 3) // 1 + 1, (4 + 2 - 3) // 2 + 1
    post = snn.Population(3 * oh * ow, "lif_conv2d", {"threshold": 1e9, "alpha_decay": 0.0}, name="post", record=["v"])
    net = snn.Network("axes").add(pre, post, snn.Conv2DProjection(pre, post, rng.integers(-9, 10, (2, 3, 3, 3)), geom))
    x = (rng.random((2, 3, pre.size)) < 0.5).astype(np.uint8)
    results = {}
    for axis in ("width", "height"):
        profile = ChipProfile(conv_x_axis=axis)
        k = run("kernel", net, 3, profile, inputs={"pre": x})
        o = run("oracle", net, 3, profile, inputs={"pre": x})
        np.testing.assert_array_equal(k.voltages["post"].view(np.uint32), o.voltages["post"].view(np.uint32))
        results[axis] = k.voltages["post"]
    assert not np.array_equal(results["width"], results["height"])


@pytest.mark.parametrize("runner", RUNNERS)
def test_input_grouping_by_hand(runner):
    # lif_no_delay, v_init 0, alpha 0.5, one spike of weight 3 at tick 0 (arrives at tick 1), separate multiply-add.
    # input_first: V = V*a + (syn + off); leak_first: V = (V*a + syn) + off. Pick the first i_offset from a fixed
    # list for which the two float32 recipes differ at tick 2 (tick 1 is the same up to rounding of a small V).
    f = np.float32
    a = f(0.5)

    def trace(off, leak_first):
        v, out = f(0.0), []
        for syn in (f(0), f(3), f(0)):
            v = f(f(f(v * a) + syn) + off) if leak_first else f(f(v * a) + f(syn + off))
            out.append(v)
        return out

    offsets = [f(x) for x in (0.1, 0.3, 0.7, 1.1, 1.3, 2.9, 0.123, 0.377)]
    off = next(o for o in offsets if trace(o, False) != trace(o, True))
    stim = snn.Population(1, "spike_list", {0: [0]}, name="stim")
    pop = snn.Population(
        1, "lif_no_delay", {"alpha_decay": 0.5, "i_offset": float(off), "threshold": 1e9}, name="pop", record=["v"]
    )
    net = snn.Network("grouping").add(stim, pop, snn.Projection(stim, pop, [[0, 0, 3, 0]]))
    for grouping in ("input_first", "leak_first"):
        profile = ChipProfile(fused_multiply_add=False, input_grouping=grouping)
        got = run(runner, net, 3, profile).voltages["pop"][0, :, 0]
        expected = np.array(trace(off, grouping == "leak_first"), np.float32)
        np.testing.assert_array_equal(bits(got), bits(expected))


# -- refractory rule, third grouping, flush-to-zero, per-model settings: hand-worked ------------------------------
@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("rule", ["held_v_tested", "no_spike"])
@pytest.mark.parametrize("op", [">=", ">"])
def test_refractory_neuron_with_held_v_at_threshold(runner, rule, op):
    # lif_curr_exp, t_refrac 2, reset to v_reset = threshold = 1, alpha 1, exc_decay 0, weight 2 arriving at tick 1:
    # tick 1: I = 2, V = 0 + 2 = 2 -> spike (both ops), V = 1, refrac 2. No more input.
    # held_v_tested, ">=": every refractory tick counts down, holds V = 1 and tests it: 1 >= 1 spikes, resets to 1
    #   and restarts the counter, so the neuron spikes in every tick from 1 on.
    # no_spike, ">=": ticks 2, 3 held without a test; tick 4 updates V = 1*1 + 0 = 1 -> spike; then 7, 10, ...
    # ">": V = 1 is never above threshold 1 again: one spike, whatever the rule.
    params = {
        "threshold": 1.0,
        "alpha_decay": 1.0,
        "exc_decay": 0.0,
        "t_refrac": 2,
        "reset": "reset_to_v_reset",
        "v_reset": 1.0,
    }
    net = _single_neuron("lif_curr_exp", params, stim_ticks=[0], weight=2)
    res = run(runner, net, 11, ChipProfile(threshold_op=op, refractory_rule=rule))
    spikes = np.flatnonzero(res.spikes["pop"][0, :, 0]).tolist()
    if op == ">":
        assert spikes == [1]
    elif rule == "held_v_tested":
        assert spikes == list(range(1, 11))
    else:
        assert spikes == [1, 4, 7, 10]
    assert res.voltages["pop"][0, :, 0].tolist() == [0.0] + [1.0] * 10


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("model", ["lif_no_delay", "lif_curr_exp_no_delay"])
def test_left_to_right_grouping_by_hand(runner, model):
    # Excitatory w 5 and inhibitory w -3 arrive in the same tick (every tick from 1), alpha 0.75, i_offset 0.1,
    # separate multiply-add, written out in numpy float32: ((V*a + E) - I) + off against V*a + ((E - I) + off).
    # For curr_exp, decays 0 make I_exc = E and I_inh = I exactly.
    f = np.float32
    a, off = f(0.75), f(0.1)

    def trace(grouping):
        v, out = f(0.0), []
        for tick in range(6):
            e, i = (f(5), f(3)) if tick else (f(0), f(0))
            v = f(f(f(f(v * a) + e) - i) + off) if grouping == "left_to_right" else f(f(v * a) + f(f(e - i) + off))
            out.append(v)
        return np.array(out, np.float32)

    assert not np.array_equal(bits(trace("left_to_right")), bits(trace("input_first")))
    stim = snn.Population(1, "spike_list", {0: list(range(6))}, name="stim")
    params = {"alpha_decay": 0.75, "i_offset": 0.1, "threshold": 1e9}
    if model.startswith("lif_curr_exp"):
        params.update(exc_decay=0.0, inh_decay=0.0)
    pop = snn.Population(1, model, params, name="pop", record=["v"])
    net = snn.Network("ltr").add(stim, pop, snn.Projection(stim, pop, [[0, 0, 5, 0], [0, 0, -3, 0]]))
    for grouping in ("left_to_right", "input_first"):
        got = run(runner, net, 6, ChipProfile(fused_multiply_add=False, input_grouping=grouping))
        np.testing.assert_array_equal(bits(got.voltages["pop"][0, :, 0]), bits(trace(grouping)))


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("fused", [True, False])
def test_flush_to_zero_by_hand(runner, fused):
    # Neuron 0: v_init 1e-40 (float32 subnormal 0x000116c2), alpha 1, no input: V*1 + 0 keeps it, or flushes the
    # subnormal operand to 0. Neuron 1: V = 2**-100 * (1 - 2**-24), alpha 2**-26: the exact product
    # 2**-126 - 2**-150 lies below the smallest normal 2**-126 but rounds up to it (a tie, to even). Flush-to-zero
    # as the ARM FPU does it judges tininess before rounding: 0. (x86's FTZ, judging after rounding, keeps 2**-126.)
    # Neuron 2: v_init 0 against a subnormal threshold 1e-40: flushed, 0 >= 0 spikes (reset by subtraction of the
    # flushed threshold gives 0 - 0 = 0); unflushed, 0 < 1e-40.
    sub = float(np.float32(1e-40))
    params = {
        "v_init": [sub, 2.0**-100 * (1 - 2.0**-24), 0.0],
        "alpha_decay": [1.0, 2.0**-26, 1.0],
        "threshold": [1.0, 1.0, sub],
    }
    pop = snn.Population(3, "lif_no_delay", params, name="pop", record=["v", "spikes"])
    net = snn.Network("ftz").add(pop)
    for ftz in (False, True):
        res = run(runner, net, 1, ChipProfile(fused_multiply_add=fused, flush_to_zero=ftz))
        v = res.voltages["pop"][0, 0]
        if ftz:
            assert bits(v).tolist() == [0, 0, 0] and res.spikes["pop"][0, 0].tolist() == [0, 0, 1]
        else:
            assert v.tolist() == [sub, 2.0**-126, 0.0] and res.spikes["pop"][0, 0].tolist() == [0, 0, 0]


@pytest.mark.parametrize("runner", RUNNERS)
def test_current_fma_is_its_own_setting(runner):
    # lif_curr_exp_no_delay, alpha 0 (V equals I_exc), exc_decay 0.004 (0x3b83126f): w 15 arrives at tick 1 and
    # w 1 at tick 2, so I_exc(2) = 15 * 0.004f + 1: 0x3f87ae15 rounded once, 0x3f87ae14 rounded twice.
    stim = snn.Population(2, "spike_list", {0: [0], 1: [1]}, name="stim")
    pop = snn.Population(
        1, "lif_curr_exp_no_delay", {"alpha_decay": 0.0, "exc_decay": 0.004, "threshold": 1e9}, name="pop", record=["v"]
    )
    net = snn.Network("cur").add(stim, pop, snn.Projection(stim, pop, [[0, 0, 15, 0], [1, 0, 1, 0]]))
    f = np.float32
    assert bits(np.array([f(f(15) * f(0.004)) + f(1)]))[0] == 0x3F87AE14
    for v_fma in (True, False):
        for current_fma, want in ((True, 0x3F87AE15), (False, 0x3F87AE14)):
            profile = ChipProfile(fused_multiply_add=v_fma, current_fused_multiply_add=current_fma)
            assert bits(run(runner, net, 3, profile).voltages["pop"][0, 2])[0] == want


@pytest.mark.parametrize("runner", RUNNERS)
def test_per_model_overrides(runner):
    # The same input reaches threshold 3 exactly in a lif and a lif_no_delay population; only lif overrides the
    # spike test to ">". Weight 2.5 rounds by each model's own rule, conv kernels by the conv rule.
    stim = snn.Population(1, "spike_list", {0: [0]}, name="stim")
    params = {"threshold": 3.0, "alpha_decay": 0.0}
    lif = snn.Population(2, "lif", params, name="lif", record=["spikes", "v"])
    nodelay = snn.Population(2, "lif_no_delay", params, name="nodelay", record=["spikes", "v"])
    conv = snn.Population(1, "lif_conv2d", {"threshold": 1e9, "alpha_decay": 0.0}, name="conv", record=["v"])
    net = snn.Network("overrides").add(
        stim,
        lif,
        nodelay,
        conv,
        snn.Projection(stim, lif, [[0, 0, 3, 0], [0, 1, 2.5, 0]]),
        snn.Projection(stim, nodelay, [[0, 0, 3, 0], [0, 1, 2.5, 0]]),
        snn.Conv2DProjection(stim, conv, np.array([[[[2.5]]]]), {"in_height": 1, "in_width": 1}),
    )
    profile = ChipProfile(
        weight_rounding="floor",
        conv_weight_rounding="nearest_away",
        overrides={"lif": {"threshold_op": ">", "weight_rounding": "nearest_even"}},
    )
    res = run(runner, net, 2, profile)
    assert res.spikes["lif"][0, 1].tolist() == [0, 0] and res.voltages["lif"][0, 1].tolist() == [3.0, 2.0]
    assert res.spikes["nodelay"][0, 1].tolist() == [1, 0] and res.voltages["nodelay"][0, 1].tolist() == [0.0, 2.0]
    assert res.voltages["conv"][0, 1].tolist() == [3.0]
