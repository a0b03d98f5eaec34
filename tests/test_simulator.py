"""The simulator's own behaviour: published reference, py-spinnaker2 formats, batching, threads, layouts, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

import s2sim
from s2sim import ChipProfile, snn
from s2sim.benchmarks import NIR_PAPER_SPIKES, NIR_PAPER_TICKS, nir_paper_lif
from s2sim.core import CoreNetwork, ffi, lib
from s2sim.errors import ConfigError, CoreError, LimitError
from s2sim.lowering import PROJ_DENSE, PROJ_SPARSE, lower, map_bytes
from s2sim.simulator import Simulator
from s2sim.tuning import KernelTuning, uses_amx


def bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(np.uint64 if a.dtype == np.float64 else np.uint32)


@pytest.mark.parametrize(
    "profile",
    [ChipProfile(), ChipProfile(fused_multiply_add=False, threshold_op=">"), ChipProfile(state_precision="float64")],
)
def test_nir_paper_single_lif_spikes_at_published_ticks(profile):
    net, _, lif = nir_paper_lif()
    Simulator(profile).run(net, NIR_PAPER_TICKS)
    assert lif.get_spikes() == {0: list(NIR_PAPER_SPIKES)}
    v = lif.get_voltages()[0]
    assert v.shape == (NIR_PAPER_TICKS,)
    # Zero reset: the spike tick records v_reset (V is recorded after the reset).
    assert all(v[t] == 0.0 for t in NIR_PAPER_SPIKES)


def test_voltage_trace_follows_float32_formula_tick_by_tick():
    """One neuron, constant i_offset, no input: V_t = V_{t-1} * a + i (two roundings) in float32."""
    a, i_off, thr = np.float32(0.9), np.float32(0.37), np.float32(3.0)
    pop = snn.Population(
        1,
        "lif_no_delay",
        {"alpha_decay": float(a), "i_offset": float(i_off), "threshold": float(thr)},
        name="p",
        record=["spikes", "v"],
    )
    net = snn.Network().add(pop)
    res = Simulator(ChipProfile(fused_multiply_add=False)).run(net, 40)
    v = np.float32(0.0)
    expected, spikes = [], []
    for t in range(40):
        v = np.float32(np.float32(v * a) + i_off)
        if v >= thr:
            v = np.float32(v - thr)
            spikes.append(t)
        expected.append(v)
    np.testing.assert_array_equal(bits(res.voltages["p"][0, :, 0]), bits(np.array(expected, np.float32)))
    assert pop.get_spikes() == {0: spikes}


def test_py_spinnaker2_formats_and_counts():
    stim = snn.Population(3, "spike_list", {0: [0, 2], 2: [1]}, name="stim")
    pop = snn.Population(
        2, "lif", {"threshold": 100.0, "alpha_decay": 1.0}, name="pop", record=["spikes", "v", "counts"]
    )
    proj = snn.Projection(stim, pop, [[0, 0, 5, 0], [0, 1, -3, 2], [2, 1, 7, 7]])
    net = snn.Network("fmt").add(stim, pop, proj)
    Simulator().run(net, 12)
    v = pop.get_voltages()
    assert set(v) == {0, 1} and all(arr.dtype == np.float32 and arr.shape == (12,) for arr in v.values())
    assert pop.get_spikes() == {0: [], 1: []}
    # neuron 0: +5 at ticks 1 and 3; neuron 1: -3 at ticks 1+2 and 3+2, +7 at 2+7
    assert v[0].tolist() == [0, 5, 5, 10] + [10] * 8
    assert v[1].tolist() == [0, 0, 0, -3, -3, -6, -6, -6, -6, 1, 1, 1]
    counts = pop.get_counts()
    assert counts["synaptic_events"].tolist() == [0, 2, 1, 2] + [0] * 8
    assert counts["spikes"].sum() == 0


def test_batch_equals_single_runs_and_threads_do_not_change_results():
    rng = np.random.default_rng(0)
    stim = snn.Population(40, "spike_list", {}, name="stim")
    hid = snn.Population(
        30,
        "lif_curr_exp",
        {"threshold": 12.0, "alpha_decay": 0.93, "exc_decay": 0.7, "inh_decay": 0.6, "t_refrac": 2},
        name="hid",
        record=["spikes", "v"],
    )
    out = snn.Population(
        5,
        "lif_no_delay",
        {"threshold": 9.5, "alpha_decay": 0.8, "reset": "reset_to_v_reset", "v_reset": -1.0},
        name="out",
        record=["spikes", "v"],
    )
    c1 = [
        [i, j, int(rng.integers(-15, 16)), int(rng.integers(0, 8))]
        for i in range(40)
        for j in range(30)
        if rng.random() < 0.3
    ]
    c2 = [[i, j, int(rng.integers(-60, 100)), 0] for i in range(30) for j in range(5)]
    rec = [
        [i, j, int(rng.integers(-15, 16)), int(rng.integers(0, 8))]
        for i in range(30)
        for j in range(30)
        if rng.random() < 0.1
    ]
    net = snn.Network().add(
        stim, hid, out, snn.Projection(stim, hid, c1), snn.Projection(hid, out, c2), snn.Projection(hid, hid, rec)
    )
    x = (rng.random((7, 60, 40)) < 0.15).astype(np.uint8)
    batched = Simulator(num_threads=2).run_batch(net, {"stim": x})
    single = Simulator(num_threads=1).run_batch(net, {"stim": x})
    assert batched.spikes["out"].sum() > 0 and batched.spikes["hid"].sum() > 0
    for name in ("hid", "out"):
        np.testing.assert_array_equal(batched.spikes[name], single.spikes[name])
        np.testing.assert_array_equal(bits(batched.voltages[name]), bits(single.voltages[name]))
    one = Simulator().run_batch(net, {"stim": x[3:4]})
    np.testing.assert_array_equal(bits(one.voltages["hid"][0]), bits(batched.voltages["hid"][3]))
    # samples differ, so the batch really ran independent inputs
    assert not np.array_equal(batched.spikes["hid"][0], batched.spikes["hid"][1])


def test_dense_and_sparse_representations_agree():
    rng = np.random.default_rng(1)
    stim = snn.Population(20, "spike_list", {}, name="stim")
    post = snn.Population(
        16, "lif_no_delay", {"threshold": 40.0, "alpha_decay": 0.9}, name="post", record=["spikes", "v"]
    )
    full = [[i, j, int(rng.integers(-127, 128)), 0] for i in range(20) for j in range(16)]
    dense_net = snn.Network().add(stim, post, snn.Projection(stim, post, full))
    sparse_net = snn.Network().add(
        stim,
        post,
        snn.Projection(stim, post, full[: len(full) // 2]),
        snn.Projection(stim, post, full[len(full) // 2 :]),
    )
    kinds = {p.kind for p in lower(dense_net).projections} | {p.kind for p in lower(sparse_net).projections}
    assert kinds == {PROJ_DENSE, PROJ_SPARSE} or lower(dense_net).projections[0].kind == PROJ_DENSE
    x = (rng.random((3, 30, 20)) < 0.3).astype(np.uint8)
    a = Simulator().run_batch(dense_net, {"stim": x})
    b = Simulator().run_batch(sparse_net, {"stim": x})
    np.testing.assert_array_equal(bits(a.voltages["post"]), bits(b.voltages["post"]))
    assert a.spikes["post"].sum() > 0


def conv_reference(x: np.ndarray, w: np.ndarray, p: dict) -> np.ndarray:
    """Integer sum-pool then cross-correlation, straight from the definition ([C_in, C_out, kH, kW] weights)."""
    c_in, h, wd = x.shape
    pooled = x.reshape(c_in, h // p["pool_y"], p["pool_y"], wd // p["pool_x"], p["pool_x"]).sum(axis=(2, 4))
    padded = np.pad(pooled, ((0, 0), (p["pad_top"], p["pad_bottom"]), (p["pad_left"], p["pad_right"])))
    _, c_out, kh, kw = w.shape
    oh = (padded.shape[1] - kh) // p["stride_y"] + 1
    ow = (padded.shape[2] - kw) // p["stride_x"] + 1
    out = np.zeros((c_out, oh, ow), np.int64)
    for oy in range(oh):
        for ox in range(ow):
            patch = padded[
                :, oy * p["stride_y"] : oy * p["stride_y"] + kh, ox * p["stride_x"] : ox * p["stride_x"] + kw
            ]
            out[:, oy, ox] = np.einsum("chw,cohw->o", patch, w)
    return out


@pytest.mark.parametrize(
    "geom",
    [
        {
            "in_height": 8,
            "in_width": 6,
            "stride_x": 1,
            "stride_y": 1,
            "pool_x": 1,
            "pool_y": 1,
            "pad_top": 0,
            "pad_bottom": 0,
            "pad_left": 0,
            "pad_right": 0,
        },
        {
            "in_height": 8,
            "in_width": 12,
            "stride_x": 2,
            "stride_y": 1,
            "pool_x": 2,
            "pool_y": 2,
            "pad_top": 1,
            "pad_bottom": 2,
            "pad_left": 0,
            "pad_right": 1,
        },
    ],
)
def test_conv_input_matches_integer_convolution(geom):
    rng = np.random.default_rng(2)
    w = rng.integers(-128, 128, size=(3, 4, 3, 2))
    pre = snn.Population(3 * geom["in_height"] * geom["in_width"], "spike_list", {}, name="pre")
    oh = (geom["in_height"] // geom["pool_y"] + geom["pad_top"] + geom["pad_bottom"] - 3) // geom["stride_y"] + 1
    ow = (geom["in_width"] // geom["pool_x"] + geom["pad_left"] + geom["pad_right"] - 2) // geom["stride_x"] + 1
    expected_n = 4 * oh * ow
    post = snn.Population(expected_n, "lif_conv2d", {"threshold": 1e9, "alpha_decay": 0.0}, name="post", record=["v"])
    conv = snn.Conv2DProjection(pre, post, w, geom)
    net = snn.Network().add(pre, post, conv)
    x = (rng.random((2, 3, pre.size)) < 0.4).astype(np.uint8)
    res = Simulator().run_batch(net, {"pre": x})
    for b in range(2):
        ref = conv_reference(x[b, 0].reshape(conv.in_shape).astype(np.int64), w, conv.conv_params)
        # alpha 0: V at tick 1 is exactly the integer input delivered from tick-0 spikes
        np.testing.assert_array_equal(res.voltages["post"][b, 1], ref.ravel().astype(np.float32))


def test_limits_raise_named_errors():
    stim = snn.Population(2, "spike_list", {0: [0]}, name="stim")
    pop = snn.Population(2, "lif", {}, name="target")
    net = snn.Network().add(stim, pop, snn.Projection(stim, pop, [[0, 0, 16, 0]], name="too_big"))
    with pytest.raises(LimitError, match=r"too_big.*target.*16.*-15\.\.15"):
        net.validate()
    net2 = snn.Network().add(stim, pop, snn.Projection(stim, pop, [[0, 0, 2.5, 0]], name="frac"))
    with pytest.raises(ConfigError, match="not an integer"):
        net2.validate(ChipProfile(weight_rounding="exact"))
    with pytest.raises(LimitError, match=r"delay 8.*0\.\.7"):
        snn.Projection(stim, pop, [[0, 0, 1, 8]])
    with pytest.raises(LimitError, match=r"tick 5.*5 ticks"):
        Simulator().run(snn.Network().add(snn.Population(1, "spike_list", {0: [5]}, name="late")), 5)


def test_inputs_must_be_binary_and_shaped():
    stim = snn.Population(2, "spike_list", {}, name="stim")
    pop = snn.Population(1, "lif_no_delay", {}, name="pop")
    net = snn.Network().add(stim, pop, snn.Projection(stim, pop, [[0, 0, 1, 0]]))
    with pytest.raises(ConfigError, match=r"inputs\['stim'\]\[0, 1, 0\] = 2"):
        Simulator().run_batch(net, {"stim": np.array([[[0, 0], [2, 0]]])})
    with pytest.raises(ConfigError, match="expected \\[batch, ticks, 2\\]"):
        Simulator().run_batch(net, {"stim": np.zeros((1, 3, 5))})
    with pytest.raises(ConfigError, match="not a spike_list"):
        Simulator().run_batch(net, {"pop": np.zeros((1, 3, 1))})


def test_c_core_rejects_corrupt_network_without_crashing():
    stim = snn.Population(4, "spike_list", {}, name="stim")
    pop = snn.Population(3, "lif", {}, name="pop")
    net = snn.Network().add(stim, pop, snn.Projection(stim, pop, [[0, 1, 3, 2], [3, 2, -4, 0]]))
    lowered = lower(net)
    lowered.projections[0].arrays["target"][1] = 3  # one past the end of a 3-neuron population
    with pytest.raises(CoreError, match=re.escape("target 3 outside 0..2")):
        CoreNetwork(lowered)
    lowered = lower(net)
    lowered.projections[0].arrays["delay"][0] = 9  # the two synapses have different delays
    with pytest.raises(CoreError, match="delay 9"):
        CoreNetwork(lowered)


def test_c_core_rejects_a_map_laid_out_from_the_wrong_input():
    # map_planes says the conv's map is its input row with the channel rows interleaved; the core checks that the
    # pre population and its cell table agree before it trusts that
    inp = snn.Population(2 * 6 * 6, "spike_list", {}, name="in")
    conv = snn.Population(16 * 4 * 4, "lif_conv2d", {}, name="conv")
    w = np.ones((2, 16, 3, 3), dtype=np.int64)
    net = snn.Network().add(inp, conv, snn.Conv2DProjection(inp, conv, w, {"in_height": 6, "in_width": 6}))
    tuning = KernelTuning(conv="dense")
    lowered = lower(net, tuning=tuning)
    lowered.projections[0].arrays["cell"][[0, 1]] = lowered.projections[0].arrays["cell"][[1, 0]]
    with pytest.raises(CoreError, match="map_planes, but pre neuron 0 has map cell 2, not 0"):
        CoreNetwork(lowered)
    conv2 = snn.Population(16 * 2 * 2, "lif_conv2d", {}, name="conv2")
    w2 = np.ones((16, 16, 3, 3), dtype=np.int64)
    net.add(conv2, snn.Conv2DProjection(conv, conv2, w2, {"in_height": 4, "in_width": 4}))
    lowered = lower(net, tuning=tuning)
    assert lowered.projections[1].geometry["map_planes"] == 0
    lowered.projections[1].geometry["map_planes"] = 1
    with pytest.raises(CoreError, match="map_planes, but the pre population is not an unpooled 16 x 4 x 4 input"):
        CoreNetwork(lowered)


@pytest.mark.parametrize(
    "flags, message",
    [
        (1 << 7, "unknown flags 0x80"),
        (lib.S2_POP_LEAK_FIRST | lib.S2_POP_LEFT_TO_RIGHT, "two input groupings"),
        (lib.S2_POP_LEFT_TO_RIGHT, "ring_planes 1, its kind and flags need 2"),
    ],
)
def test_c_core_rejects_inconsistent_population_flags(flags, message):
    stim = snn.Population(1, "spike_list", {}, name="stim")
    pop = snn.Population(3, "lif", {}, name="pop")
    core = CoreNetwork(lower(snn.Network().add(stim, pop, snn.Projection(stim, pop, [[0, 1, 3, 2]]))))
    core._pops[1].flags = flags
    err = ffi.new("char[]", 256)
    assert lib.s2_validate(core._net, err, 256) == lib.S2_ERR_INVALID
    assert message in ffi.string(err).decode()
    f64 = CoreNetwork(lower(snn.Network().add(stim, pop), ChipProfile(state_precision="float64")))
    f64._pops[1].flags = lib.S2_POP_FTZ
    assert lib.s2_validate(f64._net, err, 256) == lib.S2_ERR_INVALID
    assert "flush-to-zero needs float32" in ffi.string(err).decode()


@pytest.mark.parametrize("stacked_map", [True, False])
def test_c_core_checks_a_conv_map_slice_against_the_size_lowering_reserves(stacked_map):
    """s2_validate and lowering size a conv projection's slice of conv_map with the same function: a slice that ends
    exactly at the array's end loads, one byte further is refused with the projection and the bounds.
    """
    rng = np.random.default_rng(0)
    stim = snn.Population(2 * 12 * 12, "spike_list", {}, name="stim")
    conv = snn.Population(16 * 8 * 8, "lif_conv2d", {}, name="conv")
    kernel = rng.integers(-9, 9, (2, 16, 5, 5))
    net = snn.Network().add(stim, conv, snn.Conv2DProjection(stim, conv, kernel, {"in_height": 12, "in_width": 12}))
    low = lower(net, tuning=KernelTuning(conv="dense", stacked_map=stacked_map))
    (proj,) = low.projections
    assert ("stacked" in proj.arrays) == (stacked_map and uses_amx(KernelTuning()))  # the case named is the one run
    size = map_bytes(proj.geometry, "stacked" in proj.arrays)
    core = CoreNetwork(low)
    err = ffi.new("char[]", 256)
    core._projs[0].map_offset = low.n_conv_map - size
    assert lib.s2_validate(core._net, err, 256) == lib.S2_OK
    core._projs[0].map_offset = low.n_conv_map - size + 1
    assert lib.s2_validate(core._net, err, 256) == lib.S2_ERR_INVALID
    bounds = f"projection 0: map [{low.n_conv_map - size + 1}, {low.n_conv_map + 1}) outside {low.n_conv_map} conv map"
    assert bounds in ffi.string(err).decode()


def test_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, s2sim; s2sim.ChipProfile(); "
        "print(sorted(m for m in ('torch', 'snntorch', 'tonic', 'h5py') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert s2sim.Simulator is Simulator


def test_loaded_network_is_safe_across_threads_and_follows_a_changed_network():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    stim = snn.Population(30, "spike_list", {}, name="stim")
    pop = snn.Population(20, "lif", {"threshold": 9.0, "alpha_decay": 0.9}, name="pop", record=["spikes", "v"])
    conns = [
        [i, j, int(rng.integers(-15, 16)), int(rng.integers(0, 8))]
        for i in range(30)
        for j in range(20)
        if rng.random() < 0.3
    ]
    net = snn.Network().add(stim, pop, snn.Projection(stim, pop, conns))
    loaded = Simulator(num_threads=2).load(net)
    xs = [(rng.random((3, 40, 30)) < 0.2).astype(np.uint8) for _ in range(6)]
    expected = [loaded.run_batch({"stim": x}).voltages["pop"] for x in xs]
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(lambda x: loaded.run_batch({"stim": x}).voltages["pop"], xs))
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_array_equal(bits(e), bits(g))
    net.add(snn.Population(2, "lif", {}, name="late", record=["v"]))
    res = loaded.run_batch({"stim": xs[0]})  # a population added after loading is part of the next run
    assert res.voltages["late"].shape == (3, 40, 2)
    np.testing.assert_array_equal(bits(res.voltages["pop"]), bits(expected[0]))
