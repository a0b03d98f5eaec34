"""NIR -> s2sim conversion: parameters and weights against the documented formulas, geometry against a direct
convolution, the NIR paper's published single-LIF result, and every error path.
"""

import json
import os
import re
from typing import Any, ClassVar

import nir
import numpy as np
import pytest

from s2sim import Simulator, snn
from s2sim.benchmarks import NIR_PAPER_INPUT_TICKS
from s2sim.errors import ConversionError, TraceError
from s2sim.nir_import import ConversionConfig, Integrator, Reset, convert, from_nir


def f32bits(x):
    return np.asarray(x, dtype=np.float64).astype(np.float32).view(np.uint32)


def assert_f32_equal(actual, expected):
    np.testing.assert_array_equal(f32bits(actual), f32bits(np.broadcast_to(expected, np.shape(actual))))


def k_alpha(tau, dt, integrator):
    if integrator == Integrator.FORWARD:
        return dt / tau, 1.0 - dt / tau
    return 1.0 - np.exp(-dt / tau), np.exp(-dt / tau)


def dense_graph(neuron, weight, bias, extra_nodes=None, extra_edges=()):
    n_in = weight.shape[1]
    nodes = {
        "in": nir.Input(input_type={"input": np.array([n_in])}),
        "fc": nir.Affine(weight=weight, bias=bias),
        "neuron": neuron,
        "out": nir.Output(output_type={"output": np.array([weight.shape[0]])}),
    }
    nodes.update(extra_nodes or {})
    edges = [("in", "fc"), ("fc", "neuron"), ("neuron", "out"), *extra_edges]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


RNG = np.random.default_rng(42)
W = RNG.normal(0, 2, (4, 3))
B = RNG.normal(0, 0.5, 4)


def weight_scale(config, weights, limit=127):
    if not config.scale_weights:
        return 1.0
    return limit / np.percentile(np.abs(weights), config.weight_scale_percentile)


CONFIGS = [
    ConversionConfig(conn_delay=0, integrator=i, scale_weights=s, weight_scale_percentile=p, dt=dt, on_overflow="clip")
    for i in Integrator
    for (s, p) in ((False, 100.0), (True, 100.0), (True, 90.0))
    for dt in (1.0, 1e-3)
]


def check_connections(conv_result, weights_nir, w_scale, limit=127):
    proj = conv_result.net.projections[0]
    n_out, n_in = weights_nir.shape
    expected = np.clip(weights_nir.T * w_scale, -limit, limit)
    np.testing.assert_array_equal(proj.pre_idx, np.repeat(np.arange(n_in), n_out))
    np.testing.assert_array_equal(proj.post_idx, np.tile(np.arange(n_out), n_in))
    np.testing.assert_array_equal(proj.weights, expected.ravel())


@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: f"{c.integrator.value}-s{c.scale_weights}-p{c.weight_scale_percentile}-dt{c.dt}"
)
def test_lif_parameters_follow_the_formulas(config):
    tau, r = np.array([2.0, 5.0, 10.0, 3.0]) * config.dt, np.array([1.0, 2.0, 0.5, 1.5])
    v_leak, v_thr, v_reset = np.array([0.0, 0.3, -0.2, 0.1]), np.array([1.0, 0.5, 2.0, 1.5]), np.array([0, 0.1, 0, 0.2])
    res = convert(dense_graph(nir.LIF(tau=tau, r=r, v_leak=v_leak, v_threshold=v_thr, v_reset=v_reset), W, B), config)
    pop = res.output_pops["neuron"]
    w_scale = weight_scale(config, W)
    k, alpha = k_alpha(tau, config.dt, config.integrator)
    scale = w_scale / (k * r)
    assert pop.neuron_model == "lif_no_delay" and pop.reset == "reset_by_subtraction"
    assert_f32_equal(pop.param("alpha_decay"), alpha)
    assert_f32_equal(pop.param("threshold"), v_thr * scale)
    assert_f32_equal(pop.param("i_offset"), k * v_leak * scale + B * w_scale)
    assert_f32_equal(pop.param("v_reset"), v_reset * scale)
    assert_f32_equal(pop.voltage_scale, scale)
    check_connections(res, W, w_scale)
    clipped = int(np.sum(np.abs(np.trunc(W * w_scale)) > 127))
    assert res.report.clipped == clipped
    assert (clipped > 0) == (config.weight_scale_percentile < 100)


@pytest.mark.parametrize("scale_weights", [False, True])
def test_if_parameters_follow_the_formulas(scale_weights):
    r, v_thr = np.array([1.0, 2.0, 0.5, 4.0]), np.array([1.0, 3.0, 0.25, 2.0])
    config = ConversionConfig(conn_delay=0, scale_weights=scale_weights, reset=Reset.ZERO)
    res = convert(dense_graph(nir.IF(r=r, v_threshold=v_thr, v_reset=np.zeros(4)), W, B), config)
    pop = res.output_pops["neuron"]
    w_scale = weight_scale(config, W)
    assert pop.reset == "reset_to_v_reset"
    assert_f32_equal(pop.param("alpha_decay"), 1.0)
    assert_f32_equal(pop.param("threshold"), v_thr * (w_scale / r))
    assert_f32_equal(pop.param("i_offset"), B * w_scale)
    check_connections(res, W, w_scale)


@pytest.mark.parametrize("integrator", list(Integrator))
@pytest.mark.parametrize("conn_delay", [0, 2])
def test_cubalif_parameters_follow_the_formulas(integrator, conn_delay):
    tau_syn, tau_mem = np.array([2.0, 3.0, 4.0, 5.0]), np.array([10.0, 8.0, 6.0, 20.0])
    r, w_in, v_leak = np.array([1.0, 2.0, 1.0, 0.5]), np.array([1.0, 0.5, 2.0, 1.0]), np.array([0.0, 0.1, 0.0, -0.1])
    v_thr = np.array([1.0, 2.0, 0.5, 1.0])
    node = nir.CubaLIF(
        tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak, v_threshold=v_thr, v_reset=np.zeros(4), w_in=w_in
    )
    config = ConversionConfig(conn_delay=conn_delay, integrator=integrator, scale_weights=True)
    res = convert(dense_graph(node, W, B), config)
    pop = res.output_pops["neuron"]
    limit = 127 if conn_delay == 0 else 15
    w_scale = weight_scale(config, W, limit)
    k_mem, a_mem = k_alpha(tau_mem, 1.0, integrator)
    k_syn, a_syn = k_alpha(tau_syn, 1.0, integrator)
    scale = w_scale / (k_mem * r * k_syn * w_in)
    assert pop.neuron_model == ("lif_curr_exp_no_delay" if conn_delay == 0 else "lif_curr_exp")
    assert_f32_equal(pop.param("alpha_decay"), a_mem)
    assert_f32_equal(pop.param("exc_decay"), a_syn)
    assert_f32_equal(pop.param("inh_decay"), a_syn)
    assert_f32_equal(pop.param("threshold"), v_thr * scale)
    assert_f32_equal(pop.param("i_offset"), k_mem * v_leak * scale + B * w_scale / k_syn)
    assert_f32_equal(pop.param("t_refrac"), 0.0)
    check_connections(res, W, w_scale, limit)
    assert np.all(res.net.projections[0].delays == conn_delay)
    assert any("steady state" in n for n in res.report.population("neuron").notes)


def conv_graph(pool=None, stride=(1, 2), padding=(1, 0), in_shape=(2, 8, 8), c_out=3, seed=0, neuron="LIF"):
    rng = np.random.default_rng(seed)
    weight = rng.integers(-4, 5, (c_out, in_shape[0], 3, 3)).astype(np.float64)
    bias = rng.normal(0, 1, c_out)
    nodes = {"in": nir.Input(input_type={"input": np.array(in_shape)})}
    edges = []
    prev = "in"
    if pool is not None:
        nodes["pool"] = pool
        edges.append(("in", "pool"))
        prev = "pool"
    nodes["conv"] = nir.Conv2d(
        input_shape=None,
        weight=weight,
        stride=np.array(stride),
        padding=np.array(padding),
        dilation=np.array([1, 1]),
        groups=1,
        bias=bias,
    )
    # neuron parameters as size-1 arrays: their shape is inferred from the conv output
    if neuron == "LIF":
        nodes["lif"] = nir.LIF(
            tau=np.array([4.0]),
            r=np.array([1.0]),
            v_leak=np.array([0.0]),
            v_threshold=np.array([1e9]),
            v_reset=np.array([0.0]),
        )
    else:
        nodes["lif"] = nir.IF(r=np.array([1.0]), v_threshold=np.array([1e9]), v_reset=np.array([0.0]))
    nodes["out"] = nir.Output(output_type=None)
    edges += [(prev, "conv"), ("conv", "lif"), ("lif", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), weight, bias


@pytest.mark.parametrize("scale_weights", [False, True])
@pytest.mark.parametrize("pool_kind", [None, "SumPool2d", "AvgPool2d"])
def test_conv_parameters_and_pool_fusion(scale_weights, pool_kind):
    pool = (
        None
        if pool_kind is None
        else getattr(nir, pool_kind)(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    )
    graph, weight, bias = conv_graph(pool)
    res = convert(graph, ConversionConfig(conn_delay=0, scale_weights=scale_weights))
    proj = res.net.projections[0]
    factor = 0.25 if pool_kind == "AvgPool2d" else 1.0
    w_scale = 127 / np.max(np.abs(weight * factor)) if scale_weights else 1.0
    assert isinstance(proj, snn.Conv2DProjection)
    np.testing.assert_array_equal(proj.weights, weight.swapaxes(0, 1) * factor * w_scale)
    pooled = 2 if pool_kind else 1
    assert proj.conv_params == {
        "in_height": 8,
        "in_width": 8,
        "stride_y": 1,
        "stride_x": 2,
        "pool_y": pooled,
        "pool_x": pooled,
        "pad_top": 1,
        "pad_bottom": 1,
        "pad_left": 0,
        "pad_right": 0,
    }
    pop = res.output_pops["lif"]
    assert pop.neuron_model == "lif_conv2d"
    out_shape = proj.out_shape
    assert_f32_equal(pop.param("i_offset"), np.repeat(bias * w_scale, out_shape[1] * out_shape[2]))


def direct_conv(x, weight, stride, pad):
    """Reference cross-correlation of x [C, H, W] in float64, torch semantics, symmetric padding."""
    c_out, _c_in, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (xp.shape[1] - kh) // stride[0] + 1
    ow = (xp.shape[2] - kw) // stride[1] + 1
    out = np.zeros((c_out, oh, ow))
    for co in range(c_out):
        for y in range(oh):
            for x_ in range(ow):
                patch = xp[:, y * stride[0] : y * stride[0] + kh, x_ * stride[1] : x_ * stride[1] + kw]
                out[co, y, x_] = np.sum(patch * weight[co])
    return out


@pytest.mark.parametrize("stride,padding", [((1, 2), (1, 0)), ((2, 1), (0, 1)), ((2, 3), (1, 1))])
def test_conv_geometry_matches_a_direct_convolution(stride, padding):
    """One input frame through the converted conv: V after one tick equals torch-style conv2d (stride[0] = H)."""
    graph, weight, _ = conv_graph(None, stride, padding, in_shape=(2, 7, 9), neuron="IF")
    graph.nodes["conv"].bias = np.zeros(3)
    net, _inputs, _outputs = from_nir(graph, ConversionConfig(conn_delay=0, output_record=("v",)))
    frame = np.random.default_rng(3).random((2, 7, 9)) < 0.5
    x = np.zeros((1, 2, 2 * 7 * 9), np.uint8)
    x[0, 0] = frame.ravel()
    res = Simulator().run_batch(net, {"in": x}, 2)
    expected = direct_conv(frame.astype(np.float64), weight, stride, padding)
    np.testing.assert_array_equal(res.voltages["lif"][0, 1], expected.ravel().astype(np.float32))


def test_avgpool_before_affine_and_neuron_is_folded_into_weights():
    w = RNG.integers(-3, 4, (2, 8)).astype(np.float64) * 4
    nodes = {
        "in": nir.Input(input_type={"input": np.array([2, 4, 4])}),
        "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type=None, start_dim=0),
        "fc": nir.Linear(weight=w),
        "lif": nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2)),
        "avg2": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "if2": nir.IF(r=np.ones((2, 2, 2)), v_threshold=np.ones((2, 2, 2)), v_reset=np.zeros((2, 2, 2))),
        "out": nir.Output(output_type=None),
        "out2": nir.Output(output_type=None),
    }
    edges = [
        ("in", "avg"),
        ("avg", "flat"),
        ("flat", "fc"),
        ("fc", "lif"),
        ("lif", "out"),
        ("in", "avg2"),
        ("avg2", "if2"),
        ("if2", "out2"),
    ]
    res = convert(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), ConversionConfig(conn_delay=0))
    by_post = {p.post.name: p for p in res.net.projections}
    fc = by_post["lif"]
    c, y, x = np.unravel_index(fc.pre_idx, (2, 4, 4))
    pooled = c * 4 + (y // 2) * 2 + x // 2
    np.testing.assert_array_equal(fc.weights, w[fc.post_idx, pooled] / 4)
    assert len(fc.weights) == 2 * 32
    pool = by_post["if2"]
    np.testing.assert_array_equal(pool.weights, np.full(32, 0.25))
    np.testing.assert_array_equal(
        pool.post_idx,
        np.unravel_index(pool.pre_idx, (2, 4, 4))[0] * 4
        + (np.unravel_index(pool.pre_idx, (2, 4, 4))[1] // 2) * 2
        + np.unravel_index(pool.pre_idx, (2, 4, 4))[2] // 2,
    )
    assert any("AvgPool2d" in n for n in res.report.population("lif").notes)


def test_sumpool_before_neuron_is_a_weight_one_connection_list():
    nodes = {
        "in": nir.Input(input_type={"input": np.array([1, 4, 6])}),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 3]), stride=np.array([2, 3]), padding=np.array([0, 0])),
        "lif": nir.IF(r=np.ones(4), v_threshold=np.ones(4), v_reset=np.zeros(4)),
        "out": nir.Output(output_type=None),
    }
    res = convert(
        nir.NIRGraph(nodes=nodes, edges=[("in", "pool"), ("pool", "lif"), ("lif", "out")], type_check=False),
        ConversionConfig(conn_delay=0),
    )
    proj = res.net.projections[0]
    _, y, x = np.unravel_index(proj.pre_idx, (1, 4, 6))
    np.testing.assert_array_equal(proj.post_idx, (y // 2) * 2 + x // 3)
    assert np.all(proj.weights == 1.0) and len(proj.weights) == 24


def rleaky_like_graph(nested=True):
    w_in, w_rec = RNG.normal(0, 1, (3, 2)), RNG.normal(0, 1, (3, 3))
    lif = nir.LIF(tau=np.full(3, 5.0), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3), v_reset=np.zeros(3))
    sub = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "lif": lif,
            "w_rec": nir.Linear(weight=w_rec),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
        type_check=False,
    )
    nodes = {
        "in": nir.Input(input_type={"input": np.array([2])}),
        "fc": nir.Linear(weight=w_in),
        "rleaky": sub,
        "out": nir.Output(output_type={"output": np.array([3])}),
    }
    return (
        nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "rleaky"), ("rleaky", "out")], type_check=False),
        w_in,
        w_rec,
    )


def test_nested_recurrent_subgraph_is_flattened():
    graph, w_in, w_rec = rleaky_like_graph()
    res = convert(graph, ConversionConfig(conn_delay=0, scale_weights=True))
    assert list(res.output_pops) == ["rleaky.lif"]
    rec = [p for p in res.net.projections if p.pre.name == p.post.name == "rleaky.lif"]
    assert len(rec) == 1
    w_scale = 127 / max(np.abs(w_in).max(), np.abs(w_rec).max())
    np.testing.assert_array_equal(rec[0].weights, (w_rec.T * w_scale).ravel())
    assert res.report.population("rleaky.lif").hops == 1


def test_two_weight_layers_are_fused_or_rejected_naming_both():
    w1, b1 = RNG.integers(-2, 3, (4, 3)).astype(float), np.array([1.0, 0, -1, 0.5])
    w2, b2 = RNG.integers(-2, 3, (2, 4)).astype(float), np.array([0.25, -0.5])
    nodes = {
        "in": nir.Input(input_type={"input": np.array([3])}),
        "a": nir.Affine(weight=w1, bias=b1),
        "b": nir.Affine(weight=w2, bias=b2),
        "lif": nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2)),
        "out": nir.Output(output_type=None),
    }
    graph = nir.NIRGraph(nodes=nodes, edges=[("in", "a"), ("a", "b"), ("b", "lif"), ("lif", "out")], type_check=False)
    res = convert(graph, ConversionConfig(conn_delay=0))
    np.testing.assert_array_equal(res.net.projections[0].weights, (w2 @ w1).T.ravel())
    assert_f32_equal(res.output_pops["lif"].param("i_offset"), w2 @ b1 + b2)
    with pytest.raises(ConversionError, match=r"'a'.*'b'"):
        convert(graph, ConversionConfig(conn_delay=0, fuse_weight_layers=False))
    nodes["a"] = nir.Affine(weight=w1 * 40, bias=b1)
    graph = nir.NIRGraph(nodes=nodes, edges=[("in", "a"), ("a", "b"), ("b", "lif"), ("lif", "out")], type_check=False)
    with pytest.raises(ConversionError, match="fused weight nodes 'a' and 'b'"):
        convert(graph, ConversionConfig(conn_delay=0, on_overflow="clip"))


def test_overflow_is_rejected_or_clipped_and_counted():
    w = np.array([[200.0, -300.0, 5.0]])
    graph = dense_graph(nir.IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1)), w, np.zeros(1))
    with pytest.raises(ConversionError, match=r"'fc'.*-127\.\.127"):
        convert(graph, ConversionConfig(conn_delay=0))
    res = convert(graph, ConversionConfig(conn_delay=0, on_overflow="clip"))
    np.testing.assert_array_equal(res.net.projections[0].weights, [127.0, -127.0, 5.0])
    assert res.report.clipped == 2 and res.report.projections[0].clipped == 2


def test_conn_delay_selects_delay_models_and_conv_needs_zero():
    res = convert(
        dense_graph(nir.IF(r=np.ones(4), v_threshold=np.ones(4), v_reset=np.zeros(4)), W, B),
        ConversionConfig(conn_delay=3),
    )
    assert res.output_pops["neuron"].neuron_model == "lif"
    assert np.all(res.net.projections[0].delays == 3)
    assert res.report.output_latency == {"neuron": 4}
    graph, _, _ = conv_graph()
    with pytest.raises(ConversionError, match=r"'conv'.*conn_delay"):
        convert(graph, ConversionConfig(conn_delay=1))


def test_report_rounding_errors_and_json():
    w = np.array([[0.3, 1.4, -2.6, 2.7]])
    res = convert(
        dense_graph(nir.IF(r=np.ones(1), v_threshold=np.array([0.7]), v_reset=np.zeros(1)), w, np.zeros(1)),
        ConversionConfig(conn_delay=0),
    )
    rep = res.report.projections[0]
    assert rep.rounding["trunc"].max_abs_error == pytest.approx(0.7)
    assert rep.rounding["trunc"].zeroed == 1
    assert rep.rounding["nearest_even"].max_abs_error == pytest.approx(0.4)
    assert rep.rounding["nearest_even"].zeroed == 1
    thr = next(m for m in res.report.population("neuron").parameters if m.chip_param == "threshold")
    assert thr.max_abs_error == abs(float(np.float32(0.7)) - 0.7)
    text = res.report.format()
    assert "neuron" in text and "threshold" in text and "latency" in text
    data = json.loads(json.dumps(res.report.to_dict()))
    assert data["output_latency"] == {"neuron": 1}


def test_metadata_overrides_config_unless_disabled():
    graph = dense_graph(
        nir.LIF(tau=np.full(4, 5e-3), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4), v_reset=np.zeros(4)),
        W,
        B,
    )
    graph.metadata = {"dt": 1e-3, "reset_mechanism": "zero", "integrator": "forward"}
    res = convert(graph, ConversionConfig(conn_delay=0))
    pop = res.output_pops["neuron"]
    assert pop.reset == "reset_to_v_reset"
    assert_f32_equal(pop.param("alpha_decay"), 1 - 1e-3 / 5e-3)
    assert any("dt" in n and "metadata" in n for n in res.report.notes)
    res = convert(graph, ConversionConfig(conn_delay=0, use_metadata=False))
    assert res.output_pops["neuron"].reset == "reset_by_subtraction"
    assert_f32_equal(res.output_pops["neuron"].param("alpha_decay"), np.exp(-1 / 5e-3))


def test_nir_paper_single_lif_benchmark():
    """docs/datapath.md R§7: the NIR paper's published output spikes at ticks 461, 511, 711, 761."""
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([1])}),
            "affine": nir.Affine(weight=np.array([[102.02]]), bias=np.array([0.0])),
            "lif": nir.LIF(
                tau=np.array([2.5e-3]),
                r=np.array([1.0]),
                v_leak=np.array([0.0]),
                v_threshold=np.array([0.1 * 102.02]),
                v_reset=np.array([0.0]),
            ),
            "output": nir.Output(output_type={"output": np.array([1])}),
        },
        edges=[("input", "affine"), ("affine", "lif"), ("lif", "output")],
    )
    net, _, outs = from_nir(graph, ConversionConfig(dt=1e-4, integrator="forward", reset="zero", conn_delay=0))
    assert_f32_equal(outs["lif"].param("alpha_decay"), 0.96)
    assert outs["lif"].param("threshold")[0] == pytest.approx(255.05)
    ticks = list(NIR_PAPER_INPUT_TICKS)
    x = np.zeros((1, 1001, 1), np.uint8)
    x[0, ticks, 0] = 1
    res = Simulator().run_batch(net, {"input": x}, 1001)
    assert np.flatnonzero(res.spikes["lif"][0, :, 0]).tolist() == [461, 511, 711, 761]


# -- error paths: each names the node -------------------------------------------------------------------------
def if_node(n=4):
    return nir.IF(r=np.ones(n), v_threshold=np.ones(n), v_reset=np.zeros(n))


def test_pool_with_kernel_not_stride_is_rejected():
    pool = nir.SumPool2d(kernel_size=np.array([3, 3]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    graph, _, _ = conv_graph(pool)
    with pytest.raises(ConversionError, match=r"'pool'.*kernel_size.*stride"):
        convert(graph, ConversionConfig(conn_delay=0))


def test_pool_with_padding_is_rejected():
    pool = nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([1, 1]))
    graph, _, _ = conv_graph(pool)
    with pytest.raises(ConversionError, match=r"'pool'.*padding"):
        convert(graph, ConversionConfig(conn_delay=0))


class MaxPool2d:
    """Stands in for a max-pool node (NIR 1.0.8 has none; other tools write one)."""

    input_type: ClassVar[dict[str, Any]] = {"input": None}
    output_type: ClassVar[dict[str, Any]] = {"output": None}
    metadata: ClassVar[dict[str, Any]] = {}


@pytest.mark.parametrize(
    "node,advice",
    [
        (MaxPool2d(), "AvgPool2d"),
        (nir.Threshold(threshold=np.ones(4)), "IF"),
        (nir.LI(tau=np.ones(4), r=np.ones(4), v_leak=np.zeros(4)), "record 'v'"),
        (nir.Scale(scale=np.ones(4)), "preceding weight"),
        (nir.Delay(delay=np.ones(4)), "conn_delay"),
    ],
)
def test_unsupported_nodes_name_the_node_and_an_alternative(node, advice):
    nodes = {
        "in": nir.Input(input_type={"input": np.array([4])}),
        "odd": node,
        "lif": if_node(),
        "out": nir.Output(output_type=None),
    }
    graph = nir.NIRGraph(nodes=nodes, edges=[("in", "odd"), ("odd", "lif"), ("lif", "out")], type_check=False)
    with pytest.raises(ConversionError, match=f"'odd'.*{advice}"):
        convert(graph)


def test_output_fed_through_weights_without_neuron_is_rejected():
    nodes = {
        "in": nir.Input(input_type={"input": np.array([3])}),
        "fc": nir.Linear(weight=np.ones((2, 3))),
        "out": nir.Output(output_type=None),
    }
    with pytest.raises(ConversionError, match=r"'out'.*'fc'"):
        convert(nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "out")], type_check=False))


def test_missing_edge_target_is_a_conversion_error():
    graph = dense_graph(if_node(), W, B)
    graph.edges.append(("neuron", "ghost"))
    with pytest.raises(ConversionError, match="'ghost'"):
        convert(graph)


def test_mismatched_shapes_name_both_nodes():
    graph = dense_graph(nir.IF(r=np.ones(5), v_threshold=np.ones(5), v_reset=np.zeros(5)), W, B)
    with pytest.raises(ConversionError, match=r"'neuron'.*5 values.*4"):
        convert(graph)
    nodes = {
        "in": nir.Input(input_type={"input": np.array([5])}),
        "fc": nir.Linear(weight=np.ones((2, 3))),
        "lif": if_node(2),
        "out": nir.Output(output_type=None),
    }
    with pytest.raises(ConversionError, match=r"'fc'.*3 inputs"):
        convert(nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")], type_check=False))


def test_zero_time_constant_names_node_and_parameter():
    node = nir.LIF(tau=np.zeros(4), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4), v_reset=np.zeros(4))
    with pytest.raises(ConversionError, match=r"'neuron'.*'tau'"):
        convert(dense_graph(node, W, B))


def test_bad_config_values_are_rejected():
    with pytest.raises(ConversionError, match="on_overflow"):
        ConversionConfig(on_overflow="wrap")
    with pytest.raises(ConversionError, match="conn_delay"):
        ConversionConfig(conn_delay=9)
    with pytest.raises(ConversionError, match="integrator"):
        ConversionConfig(integrator="rk4")


def test_bad_files_give_trace_errors(tmp_path):
    with pytest.raises(TraceError, match="does not exist"):
        from_nir(tmp_path / "missing.nir")
    text = tmp_path / "text.nir"
    text.write_text("not hdf5 at all")
    with pytest.raises(TraceError, match=re.escape("text.nir")):
        from_nir(text)
    good = tmp_path / "good.nir"
    nir.write(good, dense_graph(if_node(), W, B))
    data = good.read_bytes()
    truncated = tmp_path / "truncated.nir"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceError, match=re.escape("truncated.nir")):
        from_nir(truncated)
    _net, ins, outs = from_nir(good, ConversionConfig(conn_delay=0))
    assert list(ins) == ["in"] and list(outs) == ["neuron"]
    assert os.path.getsize(good) > 0


def test_config_accepts_py_spinnaker2_enum_names_in_any_case():
    from s2sim.nir_import import ConversionConfig, Integrator, Reset

    cfg = ConversionConfig(integrator="FORWARD", reset="ZERO")
    assert cfg.integrator is Integrator.FORWARD and cfg.reset is Reset.ZERO
    assert ConversionConfig(integrator=Integrator.EXPONENTIAL).integrator is Integrator.EXPONENTIAL


def test_conv_stride_note_only_for_graphs_with_a_conv():
    graph = dense_graph(
        nir.LIF(tau=np.full(4, 5e-3), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4), v_reset=np.zeros(4)),
        W,
        B,
    )
    dense = convert(graph, ConversionConfig(conn_delay=0, dt=1e-3))
    conv = convert(conv_graph()[0], ConversionConfig(conn_delay=0, dt=1.0))
    assert not any("conv stride" in n for n in dense.report.notes)
    assert any("conv stride" in n for n in conv.report.notes)
