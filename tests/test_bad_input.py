"""Bad input gives a clear s2sim error (naming population / projection, parameter, value and limit), never a crash.

Malformed objects are refused when they are built (s2sim.snn); values that are only wrong for a ChipProfile or a
run (weight range after rounding, spike ticks past the run, input arrays) are refused by the run, by the C core's
Simulator and by the numpy oracle alike.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s2sim import oracle, snn
from s2sim.errors import ConfigError, LimitError, S2SimError
from s2sim.models import MODELS
from s2sim.profile import ChipProfile
from s2sim.simulator import Simulator  # no skip without a built core: a missing build must fail loudly

RUNNERS = ["oracle", "kernel"]


def run(runner: str, net, timesteps: int, profile: ChipProfile | None = None, inputs=None):
    profile = profile or ChipProfile()
    if runner == "kernel":
        return Simulator(profile).run_batch(net, inputs, timesteps)
    return oracle.run_batch(net, inputs, timesteps, profile)


def raises(kind, *fragments: str):
    """pytest.raises(kind) whose message must contain every fragment (regex-escaped)."""
    return pytest.raises(kind, match="(?s)" + "".join(f"(?=.*{re.escape(f)})" for f in fragments))


# -- populations ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, shown", [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")])
@pytest.mark.parametrize("param", ["threshold", "alpha_decay", "i_offset", "v_init", "v_reset"])
def test_non_finite_parameter(param, value, shown):
    with raises(ConfigError, "'exc'", repr(param), shown):
        snn.Population(3, "lif_curr_exp", {param: value}, name="exc")


def test_non_finite_parameter_names_the_neuron():
    with raises(ConfigError, "'p'", "'threshold'", "neuron 2", "nan"):
        snn.Population(4, "lif", {"threshold": [1.0, 2.0, math.nan, 1.0]}, name="p")


def test_parameter_beyond_float32():
    with raises(LimitError, "'p'", "'threshold'", "1e+39"):
        snn.Population(2, "lif", {"threshold": 1e39}, name="p")


def test_parameter_vector_of_wrong_length():
    with raises(ConfigError, "'p'", "'alpha_decay'", "(3,)", "(2,)"):
        snn.Population(2, "lif", {"alpha_decay": [0.9, 0.9, 0.9]}, name="p")


def test_non_numeric_parameter():
    with raises(ConfigError, "'p'", "'threshold'", "'high'"):
        snn.Population(2, "lif", {"threshold": "high"}, name="p")


@pytest.mark.parametrize("value", [-1, 1.5, 2**31])
def test_bad_refractory_period(value):
    with raises(ConfigError, "'p'", "'t_refrac'", str(float(value))):
        snn.Population(2, "lif_curr_exp", {"t_refrac": value}, name="p")


def test_unknown_parameter():
    with raises(ConfigError, "'p'", "'tau_m'", "'lif'", "threshold"):
        snn.Population(2, "lif", {"tau_m": 0.01}, name="p")


def test_curr_exp_parameter_on_plain_lif():
    with raises(ConfigError, "'p'", "'exc_decay'", "'lif_no_delay'"):
        snn.Population(2, "lif_no_delay", {"exc_decay": 0.5}, name="p")


def test_unknown_reset_mode():
    with raises(ConfigError, "'p'", "'reset_to_zero'", "reset_by_subtraction"):
        snn.Population(2, "lif", {"reset": "reset_to_zero"}, name="p")


def test_unknown_model():
    with raises(ConfigError, "'p'", "'izhikevich'", "lif_curr_exp"):
        snn.Population(2, "izhikevich", {}, name="p")


def test_negative_population_size():
    with raises(ConfigError, "'p'", "size", "-3"):
        snn.Population(-3, "lif", {}, name="p")


def test_population_of_size_zero_is_accepted_until_it_runs():
    # py-spinnaker2 scripts create empty populations and grow them (pop.size += 1)
    pop = snn.Population(0, "lif", {"threshold": 2.0}, name="p")
    net = snn.Network().add(pop)
    with raises(ConfigError, "'p'", "size", "0"):
        Simulator().run(net, 3)
    pop.size += 2
    Simulator().run(net, 3)
    assert pop.param("threshold").tolist() == [2.0, 2.0]


@pytest.mark.parametrize("size", [2.5, "4", True])
def test_population_size_not_an_int(size):
    with raises(ConfigError, "'p'", "size", repr(size)):
        snn.Population(size, "lif", {}, name="p")


def test_unknown_recordable():
    with raises(ConfigError, "'p'", "'voltage'"):
        snn.Population(2, "lif", {}, name="p", record=["voltage"])


def test_spike_list_has_no_membrane():
    with raises(ConfigError, "'src'", "'v'"):
        snn.Population(2, "spike_list", {}, name="src", record=["v"])


@pytest.mark.parametrize(
    "params, fragments",
    [
        ({5: [1]}, ["'src'", "index 5", "0..1"]),
        ({-1: [1]}, ["'src'", "index -1"]),
        ({0: [3, -2]}, ["'src'", "neuron 0", "-2"]),
        ({0: [4, 4]}, ["'src'", "neuron 0", "tick 4", "twice"]),
        ({0: [1.5]}, ["'src'", "neuron 0", "1.5"]),
        ({"a": [1]}, ["'src'", "'a'"]),
    ],
)
def test_bad_spike_list(params, fragments):
    with raises(ConfigError, *fragments):
        snn.Population(2, "spike_list", params, name="src")


# -- projections ----------------------------------------------------------------------------------------------
def _pair(post_model="lif", pre_size=2, post_size=3):
    pre = snn.Population(pre_size, "spike_list", {}, name="src")
    post = snn.Population(post_size, post_model, {}, name="dst")
    return pre, post


@pytest.mark.parametrize(
    "row, kind, fragments",
    [
        ([2, 0, 1, 0], ConfigError, ["pre index 2", "0..1"]),
        ([0, 3, 1, 0], ConfigError, ["post index 3", "0..2"]),
        ([-1, 0, 1, 0], ConfigError, ["pre index -1"]),
        ([0.5, 0, 1, 0], ConfigError, ["pre index 0.5"]),
        ([0, 0, 1, 8], LimitError, ["delay 8", "0..7", "'lif'", "'dst'"]),
        ([0, 0, 1, -1], LimitError, ["delay -1", "0..7"]),
        ([0, 0, 1, 1.5], ConfigError, ["delay 1.5"]),
        ([0, 0, math.nan, 0], ConfigError, ["connection 1", "nan"]),
        ([0, 0, math.inf, 0], ConfigError, ["connection 1", "inf"]),
    ],
)
def test_bad_connection(row, kind, fragments):
    pre, post = _pair()
    with raises(kind, "'src->dst'", *fragments):
        snn.Projection(pre, post, [[0, 0, 1, 0], row])


def test_delay_into_a_no_delay_model():
    pre, post = _pair("lif_no_delay")
    with raises(LimitError, "delay 1", "0..0", "'lif_no_delay'"):
        snn.Projection(pre, post, [[0, 0, 1, 1]])


@pytest.mark.parametrize("connections", [[[0, 0, 1]], [0, 0, 1, 0], [[[0, 0, 1, 0]]]])
def test_connection_list_of_wrong_shape(connections):
    pre, post = _pair()
    with raises(ConfigError, "'src->dst'", "shape", "[pre_idx, post_idx, weight, delay]"):
        snn.Projection(pre, post, connections)


def test_non_numeric_connections():
    pre, post = _pair()
    with raises(ConfigError, "'src->dst'", "numbers"):
        snn.Projection(pre, post, [[0, 0, "heavy", 0]])


def test_projection_into_a_spike_list():
    pre, _ = _pair()
    other = snn.Population(2, "spike_list", {}, name="other")
    with raises(ConfigError, "'other'", "spike_list"):
        snn.Projection(pre, other, [[0, 0, 1, 0]])


def test_projection_between_non_populations():
    pre, _ = _pair()
    with raises(ConfigError, "Population", "str"):
        snn.Projection(pre, "dst", [[0, 0, 1, 0]])


def test_duplicate_population_names():
    a = snn.Population(1, "lif", {}, name="same")
    b = snn.Population(2, "lif", {}, name="same")
    net = snn.Network("n").add(a)
    with raises(ConfigError, "'n'", "'same'"):
        net.add(b)


def test_adding_something_else_to_a_network():
    with raises(ConfigError, "'n'", "dict"):
        snn.Network("n").add({"size": 3})


# -- conv projections -----------------------------------------------------------------------------------------
CONV = {"in_height": 4, "in_width": 4}


def _conv_pops(pre_size=16, post_size=9, post_model="lif_conv2d"):
    return (
        snn.Population(pre_size, "spike_list", {}, name="img"),
        snn.Population(post_size, post_model, {}, name="fmap"),
    )


@pytest.mark.parametrize(
    "pre_size, post_size, weights, params, fragments",
    [
        (15, 9, np.ones((1, 1, 2, 2)), CONV, ["'img'", "15", "1*4*4 = 16"]),
        (16, 8, np.ones((1, 1, 2, 2)), CONV, ["'fmap'", "8", "1*3*3 = 9"]),
        (16, 9, np.ones((1, 2, 2)), CONV, ["shape (1, 2, 2)", "[C_in, C_out, kH, kW]"]),
        (16, 9, np.ones((0, 1, 2, 2)), CONV, ["shape (0, 1, 2, 2)"]),
        (16, 9, np.ones((1, 1, 5, 5)), CONV, ["5x5", "4x4"]),
        (16, 9, np.ones((1, 1, 2, 2)), {**CONV, "pool_x": 3}, ["in_width = 4", "pool size 3"]),
        (16, 9, np.ones((1, 1, 2, 2)), {**CONV, "stride_x": 0}, ["'stride_x'", "0", "at least 1"]),
        (16, 9, np.ones((1, 1, 2, 2)), {**CONV, "pad_top": -1}, ["'pad_top'", "-1", "at least 0"]),
        (16, 9, np.ones((1, 1, 2, 2)), {**CONV, "dilation": 2}, ["'dilation'"]),
        (16, 9, np.ones((1, 1, 2, 2)), {"in_height": 4}, ["'in_width'"]),
        (16, 9, np.ones((1, 1, 2, 2)), {**CONV, "stride_y": 1.5}, ["'stride_y'", "1.5"]),
        (16, 9, np.full((1, 1, 2, 2), np.nan), CONV, ["NaN"]),
    ],
)
def test_conv_geometry_and_kernel_mismatch(pre_size, post_size, weights, params, fragments):
    pre, post = _conv_pops(pre_size, post_size)
    with raises(ConfigError, "'img->fmap'", *fragments):
        snn.Conv2DProjection(pre, post, weights, params)


def test_conv_onto_a_non_conv_model():
    pre, post = _conv_pops(post_model="lif")
    with raises(ConfigError, "'fmap'", "'lif'", "lif_conv2d"):
        snn.Conv2DProjection(pre, post, np.ones((1, 1, 2, 2)), CONV)


# -- run-time checks: both the C core's Simulator and the oracle ---------------------------------------------
def _weighted_net(model: str, weight: float):
    pre, post = _pair(model)
    return snn.Network("w").add(pre, post, snn.Projection(pre, post, [[0, 0, 1, 0], [1, 2, weight, 0]]))


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize(
    "model, weight, rounding, shown, limit",
    [
        ("lif", 16, "trunc", "16", "-15..15"),
        ("lif_curr_exp", -16, "trunc", "-16", "-15..15"),
        ("lif", 15.5, "nearest_even", "16", "-15..15"),
        ("lif", -15.2, "floor", "-16", "-15..15"),
        ("lif_no_delay", 128, "trunc", "128", "-127..127"),
        ("lif_curr_exp_no_delay", -127.5, "nearest_away", "-128", "-127..127"),
        ("lif_conv2d", 300, "trunc", "300", "-127..127"),
    ],
)
def test_projection_weight_out_of_range(runner, model, weight, rounding, shown, limit):
    net = _weighted_net(model, weight)
    with raises(LimitError, "'src->dst'", shown, limit):
        run(runner, net, 3, ChipProfile(weight_rounding=rounding))


@pytest.mark.parametrize("runner", RUNNERS)
def test_weight_on_the_limit_is_accepted(runner):
    res = run(runner, _weighted_net("lif", -15.9), 2, ChipProfile(weight_rounding="trunc"))
    assert res.spikes["dst"].shape == (1, 2, 3)


@pytest.mark.parametrize("runner", RUNNERS)
def test_non_integer_weight_under_exact_rounding(runner):
    with raises(ConfigError, "'src->dst'", "2.5", "exact"):
        run(runner, _weighted_net("lif", 2.5), 3, ChipProfile(weight_rounding="exact"))


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize(
    "value, rounding, shown", [(128, "trunc", "128"), (-128.5, "floor", "-129"), (127.5, "nearest_even", "128")]
)
def test_conv_kernel_out_of_range(runner, value, rounding, shown):
    pre, post = _conv_pops()
    kernel = np.array([[[[1.0, -128.0], [2.0, value]]]])
    net = snn.Network("c").add(pre, post, snn.Conv2DProjection(pre, post, kernel, CONV))
    with raises(LimitError, "'img->fmap'", shown, "-128..127"):
        run(runner, net, 3, ChipProfile(weight_rounding=rounding))


@pytest.mark.parametrize("runner", RUNNERS)
def test_spike_tick_beyond_the_run(runner):
    src = snn.Population(2, "spike_list", {1: [2, 9]}, name="src", record=["counts"])
    dst = snn.Population(1, "lif", {}, name="dst")
    net = snn.Network("late").add(src, dst, snn.Projection(src, dst, [[1, 0, 1, 0]]))
    with raises(LimitError, "'src'", "neuron 1", "tick 9", "5 ticks"):
        run(runner, net, 5)
    assert run(runner, net, 10).counts["src"][0, :, 0].tolist() == [0, 0, 1] + [0] * 6 + [1]


def _input_net():
    src = snn.Population(3, "spike_list", {}, name="src")
    dst = snn.Population(2, "lif", {}, name="dst")
    return snn.Network("in").add(src, dst, snn.Projection(src, dst, [[0, 0, 1, 0]]))


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize(
    "inputs, fragments",
    [
        ({"src": np.zeros((2, 5, 4), np.uint8)}, ["'src'", "(2, 5, 4)"]),
        ({"src": np.zeros((5, 3), np.uint8)}, ["'src'", "(5, 3)"]),
        ({"src": np.full((1, 5, 3), 2, np.uint8)}, ["'src'", "0", "1"]),
        ({"dst": np.zeros((1, 5, 2), np.uint8)}, ["'dst'", "'lif'", "spike_list"]),
        ({"nowhere": np.zeros((1, 5, 3), np.uint8)}, ["'nowhere'"]),
    ],
)
def test_bad_input_arrays(runner, inputs, fragments):
    with raises(ConfigError, *fragments):
        run(runner, _input_net(), 5, inputs=inputs)


@pytest.mark.parametrize("runner", RUNNERS)
def test_batch_of_zero_samples(runner):
    with raises(ConfigError, "batch", "'src'"):
        run(runner, _input_net(), 5, inputs={"src": np.zeros((0, 5, 3), np.uint8)})


@pytest.mark.parametrize("runner", RUNNERS)
def test_empty_network(runner):
    with raises(ConfigError, "'void'", "no populations"):
        run(runner, snn.Network("void"), 5)


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("timesteps", [0, -4, 2.5])
def test_bad_timesteps(runner, timesteps):
    with raises(ConfigError, "timesteps", str(timesteps)):
        run(runner, _input_net(), timesteps)


@pytest.mark.parametrize("runner", RUNNERS)
def test_projection_to_a_population_outside_the_network(runner):
    src = snn.Population(1, "spike_list", {}, name="src")
    dst = snn.Population(1, "lif", {}, name="dst")
    net = snn.Network("half").add(src, snn.Projection(src, dst, [[0, 0, 1, 0]]))
    with raises(ConfigError, "'src->dst'", "'dst'", "'half'"):
        run(runner, net, 3)


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_refused_run_leaves_the_simulator_usable(runner):
    with pytest.raises(LimitError):
        run(runner, _weighted_net("lif", 99), 3)
    res = run(runner, _weighted_net("lif", 3), 3)
    assert res.spikes["dst"].shape == (1, 3, 3)


def test_bad_profile_fields():
    with raises(ConfigError, "threshold_op", "'=>'"):
        ChipProfile(threshold_op="=>")
    with raises(ConfigError, "weight_rounding", "'ceil'"):
        ChipProfile(weight_rounding="ceil")
    with raises(ConfigError, "state_precision", "'float16'"):
        ChipProfile(state_precision="float16")
    with raises(ConfigError, "fused_multiply_add", "1"):
        ChipProfile(fused_multiply_add=1)
    with raises(ConfigError, "refractory_rule", "'never'"):
        ChipProfile(refractory_rule="never")
    with raises(ConfigError, "input_grouping", "'right_to_left'"):
        ChipProfile(input_grouping="right_to_left")
    with raises(ConfigError, "flush_to_zero", "float64"):
        ChipProfile(flush_to_zero=True, state_precision="float64")


@pytest.mark.parametrize(
    "overrides, fragments",
    [
        ({"spike_list": {"threshold_op": ">"}}, ["'spike_list'", "not a neuron model"]),
        ({"lif_fast": {"threshold_op": ">"}}, ["'lif_fast'", "not a neuron model"]),
        ({"lif": {"state_precision": "float64"}}, ["'state_precision'", "not a per-model field"]),
        ({"lif": {"threshold_op": "=>"}}, ["'=>'", "threshold_op"]),
        ({"lif": {"current_fused_multiply_add": False}}, ["'lif'", "no effect", "refused"]),
        ({"lif_no_delay": {"conv_weight_rounding": "floor"}}, ["'lif_no_delay'", "no effect"]),
        ({"lif": {"fused_multiply_add": "yes"}}, ["'yes'", "bool"]),
        ({"lif": ">"}, ["overrides['lif']", "dict"]),
        ("lif", ["overrides", "dict"]),
    ],
)
def test_bad_profile_overrides(overrides, fragments):
    with raises(ConfigError, *fragments):
        ChipProfile(overrides=overrides)


def test_profile_overrides_round_trip_and_resolve():
    p = ChipProfile(
        weight_rounding="floor",
        overrides={"lif_curr_exp": {"current_fused_multiply_add": False}, "lif": {"threshold_op": ">"}},
    )
    assert ChipProfile.from_dict(p.to_dict()) == p and hash(ChipProfile.from_dict(p.to_dict())) == hash(p)
    assert p.to_dict()["overrides"] == {
        "lif": {"threshold_op": ">"},
        "lif_curr_exp": {"current_fused_multiply_add": False},
    }
    lif, cur, conv = (p.model_settings(m) for m in ("lif", "lif_curr_exp", "lif_conv2d"))
    assert (lif.threshold_op, cur.threshold_op) == (">", ">=")
    assert (cur.fused_multiply_add, cur.current_fused_multiply_add) == (True, False)
    assert (conv.weight_rounding, conv.conv_weight_rounding) == ("floor", "floor")
    with raises(ConfigError, "'spike_list'", "not a neuron model"):
        p.model_settings("spike_list")


# -- fuzz: whatever the user writes, the answer is a result or an s2sim error -------------------------------
ODD_VALUES = st.sampled_from(
    [math.nan, math.inf, -1.0, 0.0, 1e40, -1e-45, 2**31, "x", None, [], [1.0, 2.0], [[1.0]], True, 0.5, 7, 300]
)


@settings(max_examples=150, deadline=None)
@given(
    model=st.sampled_from(sorted(MODELS)),
    size=st.one_of(st.integers(-1, 4), ODD_VALUES),
    params=st.dictionaries(
        st.sampled_from(["threshold", "alpha_decay", "t_refrac", "exc_decay", "reset", "bogus", 0, 1, 7]),
        ODD_VALUES,
        max_size=3,
    ),
    connections=st.lists(st.lists(ODD_VALUES, min_size=0, max_size=5), max_size=3),
)
def test_odd_values_never_escape_as_other_exceptions(model, size, params, connections):
    try:
        pop = snn.Population(size, model, params, name="fuzz", record=["spikes"])
        src = snn.Population(2, "spike_list", {0: [0, 1]}, name="src")
        net = snn.Network("fuzz").add(src, pop)
        net.add(snn.Projection(src, pop, connections))
        for runner in ("oracle", "kernel"):
            run(runner, net, 3)
    except S2SimError:
        pass
