"""s2sim network -> NIR -> file -> s2sim network reproduces the network exactly."""

import nir
import numpy as np
import pytest

from s2sim import ChipProfile, Simulator, snn
from s2sim.errors import ConversionError
from s2sim.nir_export import to_nir
from s2sim.nir_import import ConversionConfig, convert


def bits(x):
    return np.asarray(x, np.float64).astype(np.float32).view(np.uint32)


def assert_same_network(a, b):
    assert [p.name for p in a.populations] == [p.name for p in b.populations]
    for pa, pb in zip(a.populations, b.populations, strict=True):
        assert (pa.size, pa.neuron_model, pa.record, pa.max_atoms_per_core) == (
            pb.size,
            pb.neuron_model,
            pb.record,
            pb.max_atoms_per_core,
        ), pa.name
        if pa.model.is_input:
            assert pa.spike_times == pb.spike_times
            continue
        assert pa.reset == pb.reset
        params_a, params_b = pa.validated().params, pb.validated().params
        assert sorted(params_a) == sorted(params_b)
        for key in params_a:
            np.testing.assert_array_equal(bits(params_a[key]), bits(params_b[key]), err_msg=f"{pa.name}.{key}")
    assert [p.name for p in a.projections] == [p.name for p in b.projections]
    for ja, jb in zip(a.projections, b.projections, strict=True):
        assert type(ja) is type(jb) and (ja.pre.name, ja.post.name) == (jb.pre.name, jb.post.name)
        np.testing.assert_array_equal(ja.weights, jb.weights)
        if isinstance(ja, snn.Projection):
            np.testing.assert_array_equal(ja.pre_idx, jb.pre_idx)
            np.testing.assert_array_equal(ja.post_idx, jb.post_idx)
            np.testing.assert_array_equal(ja.delays, jb.delays)
        else:
            assert ja.conv_params == jb.conv_params


def roundtrip(net, tmp_path):
    path = tmp_path / "net.nir"
    nir.write(path, to_nir(net))
    return convert(path)


def hand_built_network():
    """Delays, duplicate synapses, odd float parameters, curr_exp, recurrence, a spike_list with spikes."""
    rng = np.random.default_rng(7)
    stim = snn.Population(6, "spike_list", {0: [1, 4], 3: [2], 5: [0, 7, 9]}, name="stim")
    a = snn.Population(
        5,
        "lif",
        {
            "threshold": rng.uniform(1, 9, 5),
            "alpha_decay": 0.9 + rng.uniform(0, 0.09, 5),
            "i_offset": rng.normal(0, 0.1, 5),
            "v_reset": -0.5,
            "reset": "reset_to_v_reset",
        },
        name="a",
        record=["spikes", "v"],
    )
    a.set_max_atoms_per_core(3)
    b = snn.Population(
        4,
        "lif_curr_exp_no_delay",
        {"threshold": 3.3, "alpha_decay": 0.8, "exc_decay": 0.6, "inh_decay": 0.6, "i_offset": 0.01},
        name="b",
        record=["spikes"],
    )
    c = snn.Population(
        3,
        "lif_no_delay",
        {"threshold": 2.0, "alpha_decay": 1.0, "i_offset": [0.5, 0.0, 0.25]},
        name="c",
        record=["v_last"],
    )
    conns = [[0, 1, 3, 0], [0, 1, -2, 5], [2, 4, 7.5, 7], [5, 0, 1, 1], [5, 0, 1, 2], [1, 2, 0, 3]]
    net = snn.Network("hand")
    net.add(
        stim,
        a,
        b,
        c,
        snn.Projection(stim, a, conns, name="stim->a"),
        snn.Projection(a, b, [[i, j, (i - j) * 1.5, 0] for i in range(5) for j in range(4)], name="a->b"),
        snn.Projection(b, b, [[0, 1, 4, 0], [1, 0, -4, 0]], name="b rec"),
        snn.Projection(b, c, [[0, 0, 9, 0], [3, 2, -1, 0]], name="b->c"),
    )
    return net


def test_hand_built_network_roundtrips_exactly(tmp_path):
    net = hand_built_network()
    res = roundtrip(net, tmp_path)
    assert_same_network(net, res.net)
    x = np.random.default_rng(0).random((2, 20, 6)) < 0.4
    prof = ChipProfile(weight_rounding="nearest_even")
    ra = Simulator(profile=prof).run_batch(net, {"stim": x.astype(np.uint8)}, 20)
    rb = Simulator(profile=prof).run_batch(res.net, {"stim": x.astype(np.uint8)}, 20)
    for name in ("a", "b"):
        np.testing.assert_array_equal(ra.spikes[name], rb.spikes[name])
    np.testing.assert_array_equal(ra.v_last["c"].view(np.uint32), rb.v_last["c"].view(np.uint32))
    assert ra.spikes["a"].any() and ra.spikes["b"].any()


def conv_nir_graph():
    rng = np.random.default_rng(1)
    shape = (3, 4, 2)
    return nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([2, 8, 8])}),
            "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            "conv": nir.Conv2d(
                input_shape=None,
                weight=rng.normal(0, 1, (3, 2, 3, 3)),
                stride=np.array([1, 2]),
                padding=np.array([1, 1]),
                dilation=np.array([1, 1]),
                groups=1,
                bias=rng.normal(0, 1, 3),
            ),
            "lif": nir.LIF(
                tau=np.full(shape, 5e-3),
                r=np.full(shape, 2.0),
                v_leak=np.full(shape, 0.1),
                v_threshold=np.full(shape, 0.3),
                v_reset=np.zeros(shape),
            ),
            "flat": nir.Flatten(input_type=None, start_dim=0),
            "fc": nir.Affine(weight=rng.normal(0, 1, (4, 24)), bias=rng.normal(0, 0.1, 4)),
            "cuba": nir.CubaLIF(
                tau_syn=np.full(4, 3e-3),
                tau_mem=np.full(4, 7e-3),
                r=np.ones(4),
                v_leak=np.zeros(4),
                v_threshold=np.ones(4),
                v_reset=np.zeros(4),
                w_in=np.full(4, 2.0),
            ),
            "rec": nir.Linear(weight=rng.normal(0, 1, (4, 4))),
            "out": nir.Output(output_type=None),
        },
        edges=[
            ("in", "pool"),
            ("pool", "conv"),
            ("conv", "lif"),
            ("lif", "flat"),
            ("flat", "fc"),
            ("fc", "cuba"),
            ("cuba", "rec"),
            ("rec", "cuba"),
            ("cuba", "out"),
        ],
        type_check=False,
    )


def test_converted_network_roundtrips_exactly(tmp_path):
    first = convert(
        conv_nir_graph(), ConversionConfig(dt=1e-3, conn_delay=0, scale_weights=True, output_record=("spikes", "v"))
    )
    res = roundtrip(first.net, tmp_path)
    assert_same_network(first.net, res.net)
    for pa, pb in zip(first.net.populations, res.net.populations, strict=True):
        if pa.voltage_scale is not None:
            np.testing.assert_array_equal(pa.voltage_scale, pb.voltage_scale)
    assert res.report.config["dt"] == 1.0 and res.report.config["integrator"] == "forward"


def test_exported_graph_describes_the_chip_in_ticks():
    first = convert(conv_nir_graph(), ConversionConfig(dt=1e-3, conn_delay=0))
    graph = to_nir(first.net)
    lif = graph.nodes["lif"]
    alpha = first.net.population("lif").param("alpha_decay")
    np.testing.assert_allclose(lif.tau.ravel(), 1.0 / (1.0 - alpha))
    np.testing.assert_allclose(lif.v_threshold.ravel(), first.net.population("lif").param("threshold"))
    conv = graph.nodes["in->lif"]
    np.testing.assert_array_equal(conv.stride, [1, 2])
    assert isinstance(graph.nodes["in->lif_pool"], nir.SumPool2d)
    assert graph.metadata["s2sim_format"] == 1 and graph.metadata["reset"] == "subtract"


def test_edited_graph_uses_the_nir_values_and_says_so(tmp_path):
    net = hand_built_network()
    graph = to_nir(net)
    graph.nodes["b"].v_threshold = graph.nodes["b"].v_threshold * 2
    res = convert(graph)
    assert res.net.population("b").param("threshold")[0] == pytest.approx(6.6)
    assert any("differ" in n for n in res.report.population("b").notes)
    assert res.net.population("a").param("threshold")[0] == net.population("a").param("threshold")[0]


def test_what_nir_cannot_express_is_refused_naming_the_population():
    stim = snn.Population(2, "spike_list", {}, name="stim")
    pop = snn.Population(2, "lif_curr_exp", {"t_refrac": 3}, name="refractory")
    net = snn.Network().add(stim, pop, snn.Projection(stim, pop, [[0, 0, 1, 0]]))
    with pytest.raises(ConversionError, match=r"'refractory'.*t_refrac"):
        to_nir(net)
    mixed = snn.Population(2, "lif", {"alpha_decay": [1.0, 0.5]}, name="mixed")
    with pytest.raises(ConversionError, match=r"'mixed'.*alpha_decay"):
        to_nir(snn.Network().add(stim, mixed, snn.Projection(stim, mixed, [[0, 0, 1, 0]])))
    src = snn.Population(16, "spike_list", {}, name="img")
    post = snn.Population(16, "lif_conv2d", {}, name="conv")
    proj = snn.Conv2DProjection(
        src, post, np.ones((1, 1, 2, 2)), {"in_height": 4, "in_width": 4, "pad_bottom": 1, "pad_right": 1}
    )
    with pytest.raises(ConversionError, match=r"'img->conv'.*asymmetric"):
        to_nir(snn.Network().add(src, post, proj))
