"""The py-spinnaker2 stand-in: scripts in the vendor's idiom (tests/spinnaker2_scripts/) run unmodified through
``s2sim exec`` and give, bit for bit, what s2sim's native API gives for the same networks.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest

import s2sim
from s2sim import ChipProfile, Simulator, snn
from s2sim.benchmarks import NIR_PAPER_INPUT_TICKS
from s2sim.cli import main
from s2sim.conformance import compare
from s2sim.errors import ConfigError, ConversionError, IgnoredSettingWarning, NotChipArithmeticWarning
from s2sim.timing import DEFAULT_PL_THRESHOLD, TimingConfig
from s2sim.traces import from_result, read_trace, read_trace_set

SCRIPTS = Path(__file__).parent / "spinnaker2_scripts"


def bits(a):
    a = np.asarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def run_script(name: str, *args, trace=None) -> int:
    opts = ["--trace", str(trace)] if trace else []
    return main(["exec", *opts, str(SCRIPTS / name), *map(str, args)])


# -- lif_network.py: edits between runs -------------------------------------------------------------------------


def native_lif_runs():
    """The three runs of lif_network.py, each built from scratch with that run's values (s2sim's own API)."""
    stims = [
        {0: [1, 5, 9], 1: [2, 3, 12], 3: [7]},
        {0: [0, 4], 2: [6, 7, 8], 3: [30]},
        {0: [0, 4], 2: [6, 7, 8], 3: [30]},
    ]
    exc_params = [
        {"threshold": 10.0, "alpha_decay": 0.875},
        {"threshold": 7.5, "alpha_decay": 0.875},
        {"threshold": 7.5, "alpha_decay": [0.95, 0.6, 0.7, 0.8, 0.9]},
    ]
    cur_record = [["spikes"], ["spikes", "v"], ["v"]]
    out = []
    for stim_ticks, params, record in zip(stims, exc_params, cur_record, strict=True):
        stim = snn.Population(4, "spike_list", stim_ticks, name="stim")
        exc = snn.Population(
            5, "lif", {**params, "i_offset": 0.25, "reset": "reset_by_subtraction"}, name="exc", record=["spikes", "v"]
        )
        cur = snn.Population(
            3,
            "lif_curr_exp",
            {
                "threshold": 6.0,
                "alpha_decay": 0.9,
                "exc_decay": 0.5,
                "inh_decay": 0.75,
                "t_refrac": 2,
                "v_reset": -1.0,
                "reset": "reset_to_v_reset",
            },
            name="cur",
            record=record,
        )
        cur.set_max_atoms_per_core(2)
        conns = [[i, j, (i + 2 * j) % 15 - 4, (i + j) % 8] for i in range(4) for j in range(5)]
        net = snn.Network("lif network").add(
            stim,
            exc,
            cur,
            snn.Projection(stim, exc, conns),
            snn.Projection(exc, cur, [[i, i % 3, 9, 1] for i in range(5)]),
            snn.Projection(cur, cur, [[0, 1, -5, 0], [1, 2, 7, 2], [2, 0, 3, 0]]),
        )
        out.append((net, Simulator().run_batch(net, timesteps=40)))
    return out


def test_lif_script_runs_unmodified_and_matches_the_native_api(tmp_path):
    out = tmp_path / "out.npz"
    assert run_script("lif_network.py", out, trace=tmp_path / "traces") == 0
    got = np.load(out)
    native = native_lif_runs()
    for run, (_net, res) in enumerate(native):
        np.testing.assert_array_equal(got[f"exc_spikes_{run}"], res.spikes["exc"][0].T)
        np.testing.assert_array_equal(bits(got[f"exc_v_{run}"]), bits(res.voltages["exc"][0].T))
        idx, times = np.nonzero(res.spikes["exc"][0].T)
        np.testing.assert_array_equal(got[f"exc_idx_{run}"], idx)
        np.testing.assert_array_equal(got[f"exc_times_{run}"], times)
        if "cur" in res.spikes:
            np.testing.assert_array_equal(got[f"cur_spikes_{run}"], res.spikes["cur"][0].T)
        if "cur" in res.voltages:
            np.testing.assert_array_equal(bits(got[f"cur_v_{run}"]), bits(res.voltages["cur"][0].T))
    assert sum(int(got[f"exc_spikes_{r}"].sum()) for r in range(3)) > 5  # the network is not silent
    # --trace wrote every run; each compares equal with the native run's trace
    traces, _ = read_trace_set(tmp_path / "traces")
    assert len(traces) == 3
    for trace, (net, res) in zip(traces, native, strict=True):
        result = compare(from_result(net, res, profile=ChipProfile()), trace)
        assert result.match, result.report()


def test_the_import_swap_gives_the_same_run(tmp_path):
    text = (SCRIPTS / "lif_network.py").read_text().replace("from spinnaker2 import", "from s2sim.spinnaker2 import")
    assert "from s2sim.spinnaker2 import hardware, helpers, snn" in text
    swapped = tmp_path / "swapped.py"
    swapped.write_text(text)
    code = f"import sys; sys.argv = ['x', {str(tmp_path / 'a.npz')!r}]; exec(open({str(swapped)!r}).read())"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    assert run_script("lif_network.py", tmp_path / "b.npz") == 0
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(
            bits(a[key]) if a[key].dtype.kind == "f" else a[key], bits(b[key]) if b[key].dtype.kind == "f" else b[key]
        )


def test_exec_cli_exit_status_and_warnings_said_once(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "s2sim",
            "exec",
            "--trace",
            str(tmp_path / "t.h5"),
            str(SCRIPTS / "lif_network.py"),
            str(tmp_path / "o.npz"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    # the script makes three chips with eth_ip and three runs with debug=: each said once, by name
    assert proc.stderr.count("IgnoredSettingWarning") == 2
    assert "SpiNNaker2Chip(eth_ip=...)" in proc.stderr and "run(debug=...)" in proc.stderr
    assert "lif_network.py:" in proc.stderr  # the warning points at the script's line
    assert sorted(p.name for p in tmp_path.glob("t*.h5")) == ["t-1.h5", "t-2.h5", "t.h5"]
    proc = subprocess.run(
        [sys.executable, "-m", "s2sim", "exec", str(SCRIPTS / "unsupported_model.py")], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "'izhikevich'" in proc.stderr and "not public" in proc.stderr and "lif_curr_exp" in proc.stderr


def test_exit_status_is_the_scripts(tmp_path):
    for code, expected in (
        ("import sys; sys.exit(7)", 7),
        ("raise SystemExit", 0),
        ("pass", 0),
        ("raise RuntimeError('boom')", 1),
        ("import sys; sys.exit('bye')", 1),
    ):
        script = tmp_path / "s.py"
        script.write_text(code)
        assert main(["exec", str(script)]) == expected, code
    assert main(["exec", str(tmp_path / "missing.py")]) == 2


# -- NIR conversion, per-sample input --------------------------------------------------------------------------


def small_scnn(path: Path) -> None:
    rng = np.random.default_rng(3)

    def n(*s):
        return np.asarray(s, dtype=float)

    def lif(shape, tau):
        return nir.LIF(
            tau=np.full(shape, tau),
            r=np.full(shape, tau / 1e-4),
            v_leak=np.zeros(shape),
            v_threshold=np.full(shape, 1.0),
        )

    nodes = {
        "input": nir.Input(input_type={"input": n(2, 6, 6)}),
        "conv": nir.Conv2d(
            input_shape=(6, 6),
            weight=rng.normal(0.3, 0.5, (3, 2, 3, 3)),
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=np.zeros(3),
        ),
        "lif1": lif((3, 6, 6), 2e-4),
        "pool": nir.SumPool2d(kernel_size=n(2, 2), stride=n(2, 2), padding=n(0, 0)),
        "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": n(3, 3, 3)}),
        "fc": nir.Affine(weight=rng.normal(0.2, 0.4, (4, 27)), bias=np.zeros(4)),
        "lif2": lif((4,), 5e-4),
        "output": nir.Output(output_type={"output": n(4)}),
    }
    edges = [
        ("input", "conv"),
        ("conv", "lif1"),
        ("lif1", "pool"),
        ("pool", "flat"),
        ("flat", "fc"),
        ("fc", "lif2"),
        ("lif2", "output"),
    ]
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges))


def test_nir_script_per_sample_input_matches_a_native_batch(tmp_path):
    graph, samples, out = tmp_path / "g.nir", tmp_path / "x.npz", tmp_path / "o.npz"
    small_scnn(graph)
    x = (np.random.default_rng(0).random((3, 25, 2, 6, 6)) < 0.25).astype(np.uint8)
    np.savez(samples, x=x)
    assert run_script("nir_per_sample.py", graph, samples, out) == 0
    got = np.load(out)
    # native: s2sim's own conversion of the same graph and one batched run of all samples (one tick appended, as
    # the script runs T + 1 ticks)
    g = nir.read(graph)
    g.nodes["out_lif1"] = nir.Output(output_type=dict(g.nodes["lif1"].output_type))
    g.edges.append(("lif1", "out_lif1"))
    cfg = s2sim.ConversionConfig(
        dt=1e-4, conn_delay=0, scale_weights=True, reset="ZERO", integrator="FORWARD", output_record=("v", "spikes")
    )
    net, _inputs, outputs = s2sim.from_nir(g, cfg)
    flat = np.concatenate([x.reshape(3, 25, -1), np.zeros((3, 1, 72), np.uint8)], axis=1)
    res = Simulator().run_batch(net, {"input": flat})
    np.testing.assert_array_equal(bits(got["v_out"]), bits(res.voltages["lif2"]))
    np.testing.assert_array_equal(got["spikes_hidden"], res.spikes["lif1"].sum(axis=1))
    np.testing.assert_array_equal(bits(got["v_scale"]), bits(outputs["lif2"].voltage_scale))
    assert got["spikes_hidden"].sum() > 0 and np.ptp(got["v_out"]) > 0


def nir_paper_lif(path: Path) -> None:
    """The NIR paper's single-LIF graph, weight and threshold scaled by 102.02 as its py-spinnaker2 script does."""
    one = np.ones(1)
    nir.write(
        path,
        nir.NIRGraph(
            nodes={
                "input": nir.Input(input_type={"input": one}),
                "0": nir.Affine(weight=np.array([[102.02]]), bias=np.zeros(1)),
                "1": nir.LIF(tau=one * 2.5e-3, r=one, v_leak=0 * one, v_threshold=one * 0.1 * 102.02),
                "output": nir.Output(output_type={"output": one}),
            },
            edges=[("input", "0"), ("0", "1"), ("1", "output")],
        ),
    )


def test_brian2_script_reproduces_the_nir_paper_benchmark(tmp_path):
    graph, out = tmp_path / "lif.nir", tmp_path / "o.npz"
    nir_paper_lif(graph)
    assert run_script("brian2_lif.py", graph, out) == 0
    got = np.load(out)
    for key in ("brian2", "chip", "brian2_again"):
        assert got[f"{key}_spikes"].tolist() == [461, 511, 711, 761], key  # the published spikes
    assert got["brian2_v"].dtype == np.float64 and got["chip_v"].dtype == np.float32
    np.testing.assert_array_equal(bits(got["brian2_v"]), bits(got["brian2_again_v"]))
    assert got["threshold"].tolist() == [pytest.approx(255.05)]
    assert got["brian2_float_spikes"].tolist() == [461, 511, 711, 761]
    assert got["brian2_float_v"].dtype == np.float64 and not np.array_equal(got["brian2_float_v"], got["brian2_v"])
    # the same run through s2sim's native API, float64 state as the Brian2 backend keeps it
    stim = snn.Population(
        1,
        "spike_list",
        {0: list(NIR_PAPER_INPUT_TICKS)},
        name="input",
    )
    lif = snn.Population(
        1,
        "lif_no_delay",
        {"threshold": 255.05, "alpha_decay": 0.96, "reset": "reset_to_v_reset"},
        name="1",
        record=["v"],
    )
    net = snn.Network().add(stim, lif, snn.Projection(stim, lif, [[0, 0, 102.02, 0]]))
    for key, precision in (("brian2", "float64"), ("chip", "float32")):
        res = Simulator(ChipProfile(state_precision=precision)).run_batch(net, timesteps=1001)
        np.testing.assert_array_equal(bits(got[f"{key}_v"]), bits(res.voltages["1"][0, :, 0]))


def test_brian2_float_weights_follow_a_float64_recurrence(tmp_path):
    # quantize_weights=False keeps the weight 102.02; with two roundings (no FMA) the membrane is the plain float64
    # recurrence V = V * alpha + (w * s + i_offset), reset to 0 at threshold, parameters rounded to float32 first
    import json

    graph, out, profile = tmp_path / "lif.nir", tmp_path / "o.npz", tmp_path / "p.json"
    nir_paper_lif(graph)
    profile.write_text(json.dumps(ChipProfile(fused_multiply_add=False).to_dict()))
    with pytest.warns(NotChipArithmeticWarning, match="fractional weights are kept"):
        assert main(["exec", "--profile", str(profile), str(SCRIPTS / "brian2_lif.py"), str(graph), str(out)]) == 0
    got = np.load(out)
    ticks = set(NIR_PAPER_INPUT_TICKS)
    alpha, thr = float(np.float32(0.96)), float(np.float32(255.05))
    v, expect = 0.0, []
    for t in range(1001):
        v = v * alpha + (102.02 if t - 1 in ticks else 0.0)
        v = 0.0 if v >= thr else v
        expect.append(v)
    np.testing.assert_array_equal(bits(got["brian2_float_v"]), bits(np.array(expect)))


# -- settings, helpers, diagnostics ---------------------------------------------------------------------------


def test_board_settings_script_and_helpers(tmp_path):
    out = tmp_path / "o.npz"
    assert run_script("board_settings.py", out) == 0
    got = np.load(out)
    assert got["n_pool"] == 16 and got["pool_shape"].tolist() == [1, 2, 2]
    assert "'pl_threshold': 200" in str(got["settings"]) and "'routing_type': 'MC'" in str(got["settings"])
    # native: the pool + dense composition worked out by hand
    w = np.array([[0, 12, -3], [7, 0, 0], [0, 0, 127], [-127, 5, 0]])
    conns = []
    for y in range(4):
        for x in range(4):
            cell = (y // 2) * 2 + x // 2
            conns += [[y * 4 + x, j, int(w[cell, j]), 0] for j in range(3)]
    stim = snn.Population(16, "spike_list", {i: [i % 5, 6 + i % 3] for i in range(16)}, name="input")
    dense = snn.Population(3, "lif_no_delay", {"threshold": 50.0, "alpha_decay": 0.9}, name="dense", record=["v"])
    sparse = snn.Population(3, "lif_no_delay", {"threshold": 50.0, "alpha_decay": 0.9}, name="sparse", record=["v"])
    sparse_conns = [[i, j, int(w[i, j] // 2), 0] for i in range(3) for j in range(3) if w[i, j] // 2]
    net = snn.Network().add(
        stim, dense, sparse, snn.Projection(stim, dense, conns), snn.Projection(dense, sparse, sparse_conns)
    )
    config = TimingConfig(
        sys_tick_in_s=2e-3,
        dvfs={"lif_no_delay": "auto", "lif_conv2d": "auto"},
        pl_threshold={**DEFAULT_PL_THRESHOLD, "lif_no_delay": 200, "lif_conv2d": 30},
    )
    res = Simulator(timing=config).run_batch(net, timesteps=20)
    np.testing.assert_array_equal(bits(got["dense_v"]), bits(res.voltages["dense"][0].T))
    np.testing.assert_array_equal(bits(got["sparse_v"]), bits(res.voltages["sparse"][0].T))
    assert np.ptp(got["sparse_v"]) > 0
    # measure_power and time_done: the PE time model under the script's tick and DVFS parameters
    assert float(got["energy"]) == float(res.timing.energy_j[0])
    native = res.timing.per_population("dense", "time_done")
    assert got["time_done_pes"].tolist() == sorted(native)
    np.testing.assert_array_equal(got["time_done"], np.stack([native[k] for k in sorted(native)]))


def _flat_index(a, b, cc, H, W, C, order):
    """Index of (channel cc, row a, column b) in a flattened (C, H, W) map: channel-major for torch, else last."""
    return cc * H * W + a * W + b if order == "torch" else a * W * C + b * C + cc


def test_sumpool_helper_matches_a_brute_force_pool():
    from s2sim.spinnaker2.ann2snn_helpers import connection_list_for_sumpool2d

    for shape, k, s, p, order in (
        ((2, 5, 7), 2, 2, 0, "torch"),
        ((3, 6, 6), 3, 2, 1, "tf"),
        ((1, 4, 5), (2, 3), (1, 2), (1, 0), "torch"),
    ):
        conns, out_shape = connection_list_for_sumpool2d(shape, s, k, p, 2, data_order=order)
        c, h, w = shape
        (kh, kw), (sh, sw), (ph, pw) = [(v, v) if np.ndim(v) == 0 else v for v in (k, s, p)]
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        assert out_shape == (c, oh, ow)
        expect = set()
        for ch in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    for y in range(oy * sh - ph, oy * sh - ph + kh):
                        for x in range(ox * sw - pw, ox * sw - pw + kw):
                            if 0 <= y < h and 0 <= x < w:
                                pre = _flat_index(y, x, ch, h, w, c, order)
                                expect.add((pre, _flat_index(oy, ox, ch, oh, ow, c, order), 1, 2))
        assert {tuple(r) for r in conns} == expect and len(conns) == len(expect)


def test_sparse_weights_matrix_counts_synapses():
    a, b = snn.Population(3, "spike_list", {}, name="a"), snn.Population(2, "lif", {}, name="b")
    proj = snn.Projection(a, b, [[0, 1, 5, 0], [2, 0, -3, 1], [2, 0, 1, 0]])
    np.testing.assert_array_equal(proj.sparse_weights.toarray(), [[0, 5], [0, 0], [-2, 0]])
    assert proj.sparse_weights.nonzero()[0].shape[0] == 2
    # a conv projection unrolled: equal to the dense convolution of each one-hot input
    rng = np.random.default_rng(0)
    src = snn.Population(2 * 5 * 5, "spike_list", {}, name="src")
    conv = snn.Population(3 * 3 * 3, "lif_conv2d", {}, name="conv")
    w = rng.integers(-4, 5, (2, 3, 3, 3)).astype(float)
    cp = snn.Conv2DProjection(
        src,
        conv,
        w,
        {
            "in_height": 5,
            "in_width": 5,
            "stride_x": 2,
            "stride_y": 2,
            "pad_top": 1,
            "pad_left": 1,
            "pad_bottom": 1,
            "pad_right": 1,
        },
    )
    dense = cp.sparse_weights.toarray()
    for i in range(50):
        x = np.zeros((2, 5, 5))
        x.flat[i] = 1
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
        out = np.array(
            [
                [
                    [np.sum(w[:, co] * padded[:, 2 * oy : 2 * oy + 3, 2 * ox : 2 * ox + 3]) for ox in range(3)]
                    for oy in range(3)
                ]
                for co in range(3)
            ]
        )
        np.testing.assert_array_equal(dense[i], out.ravel())


def test_join_refuses_two_delays_for_one_pair():
    from s2sim.spinnaker2.ann2snn_helpers import join_conn_lists

    assert join_conn_lists([[0, 0, 2, 0], [0, 1, 3, 0]], [[0, 5, 4, 1], [1, 5, -1, 1]]) == [[0, 5, 5.0, 1]]
    with pytest.raises(ConfigError, match="pre 0 reaches post 5 through connections of different delays"):
        join_conn_lists([[0, 0, 2, 0], [0, 1, 3, 0]], [[0, 5, 4, 1], [1, 5, -1, 2]])


def test_dense_helpers_use_w_pre_post():
    from s2sim.spinnaker2 import ann2snn_helpers as h

    w = np.array([[1, 0], [0, -2], [3, 0]])
    assert h.connection_list_from_dense_weights(w, 1) == [
        [0, 0, 1, 1],
        [0, 1, 0, 1],
        [1, 0, 0, 1],
        [1, 1, -2, 1],
        [2, 0, 3, 1],
        [2, 1, 0, 1],
    ]
    assert h.sparse_connection_list_from_dense_weights(w, 0) == [[0, 0, 1, 0], [1, 1, -2, 0], [2, 0, 3, 0]]


def test_conversion_config_attributes_and_enums():
    from s2sim.spinnaker2 import s2_nir

    cfg = s2_nir.ConversionConfig()
    assert (cfg.dt, cfg.conn_delay, cfg.scale_weights, cfg.output_record) == (1.0, 1, False, ["spikes"])
    assert cfg.integrator is s2_nir.IntegratorMethod.EXPONENTIAL and cfg.reset is s2_nir.ResetMethod.SUBTRACT
    cfg.integrator = "FORWARD"
    cfg.reset = s2_nir.ResetMethod.ZERO.value
    native = cfg.to_s2sim()
    assert native.integrator.name == "FORWARD" and native.reset.name == "ZERO"
    cfg.integrator = "Runge-Kutta"
    with pytest.raises(ConversionError, match=re.escape("ConversionConfig.integrator = 'Runge-Kutta'")):
        cfg.to_s2sim()
    cfg.integrator, cfg.dt = "FORWARD", -1.0
    with pytest.raises(ConversionError, match=re.escape("dt = -1.0")):
        cfg.to_s2sim()


def test_diagnostics_come_from_the_pe_time_model():
    from s2sim.timing import DEFAULT_CYCLES, LEVELS

    pop = snn.Population(2, "lif", {}, name="p", record=["spikes", "time_done", "n_packets", "performance_level"])
    net = snn.Network().add(pop)
    Simulator().run(net, 5)
    done = pop.get_time_done_times()
    costs = DEFAULT_CYCLES["lif"]
    assert list(done) == ["PE(1, 1, 0)"]  # py-spinnaker2's shape: a dict per PE of arrays [T]
    np.testing.assert_array_equal(
        done["PE(1, 1, 0)"], np.full(5, (costs.fixed + 2 * costs.neuron) / (LEVELS["high"].hz * 1e-3))
    )
    np.testing.assert_array_equal(pop.get_n_packets()["PE(1, 1, 0)"], np.zeros(5))
    np.testing.assert_array_equal(pop.get_performance_levels()["PE(1, 1, 0)"], np.ones(5))
    pop.record = ["spikes"]
    Simulator().run(net, 5)
    with pytest.raises(ConfigError, match="'time_done' was not recorded"):
        pop.get_time_done_times()


def test_hardware_keywords_never_raise_type_errors():
    from s2sim.spinnaker2 import hardware

    pop = snn.Population(1, "lif", {}, name="p")
    net = snn.Network().add(pop)
    for cls, kwargs in (
        (hardware.SpiNNaker2Chip, {"eth_ip": "1.2.3.4", "experiment_backend_type": "spinnman2"}),
        (hardware.SpiNNcloud48NodeBoard, {"stm_ip": "1.1.1.1", "eth_ip": "2.2.2.2", "x": 1}),
        (hardware.FPGA_Rev2, {}),
    ):
        hw = cls(**kwargs)
        with pytest.warns(IgnoredSettingWarning) if cls is hardware.SpiNNcloud48NodeBoard else _no_check():
            hw.run(net, 3, sys_tick_in_s=1e-3, debug=True, reset_board=True, some_future_keyword=5)
        assert hw.energy is None
        hw.run(net, 3, mapping_only=True)
        assert hw.placement is not None and hw.placement.n_pes == 1
    with pytest.raises(ConfigError, match="sys_tick_in_s must be a positive number"):
        hardware.SpiNNaker2Chip().run(net, 3, sys_tick_in_s=0)
    with pytest.raises(ValueError):
        hardware.SpiNNaker2Chip(experiment_backend_type="ethernet-pigeon")


class _no_check:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_unknown_spinnaker2_submodule_says_what_it_is(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import spinnaker2.coordinates\n")
    proc = subprocess.run([sys.executable, "-m", "s2sim", "exec", str(script)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "'spinnaker2.coordinates' is internal to py-spinnaker2" in proc.stderr
    # modules scripts import out of habit exist; what has no simulator meaning says so when used
    script.write_text(
        "from spinnaker2 import mapper\nfrom spinnaker2.logger import SpiNNaker2Logger\n"
        "SpiNNaker2Logger.setup(level=10)\nmapper.Mapper()\n"
    )
    proc = subprocess.run([sys.executable, "-m", "s2sim", "exec", str(script)], capture_output=True, text=True)
    assert proc.returncode == 1 and "NotModelledError: spinnaker2.mapper.Mapper: s2sim places networks" in proc.stderr


def test_an_installed_spinnaker2_is_shadowed_only_inside_exec(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "spinnaker2"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("VENDOR = True\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    script = tmp_path / "s.py"
    script.write_text(
        "import sys, spinnaker2\nfrom spinnaker2 import hardware\n"
        "sys.exit(0 if not hasattr(spinnaker2, 'VENDOR') and hasattr(hardware, 'SpiNNaker2Chip') "
        "else 5)\n"
    )
    import spinnaker2 as vendor_before

    assert vendor_before.VENDOR
    assert main(["exec", str(script)]) == 0
    import spinnaker2 as vendor_after

    assert vendor_after is vendor_before
    sys.modules.pop("spinnaker2", None)


def test_profile_option_reads_the_json_profile(tmp_path):
    import json

    profile = tmp_path / "p.json"
    profile.write_text(json.dumps(ChipProfile(threshold_op=">", fused_multiply_add=False).to_dict()))
    out = tmp_path / "o"
    assert (
        main(
            [
                "exec",
                "--profile",
                str(profile),
                "--trace",
                str(out),
                str(SCRIPTS / "lif_network.py"),
                str(tmp_path / "o.npz"),
            ]
        )
        == 0
    )
    trace = read_trace(out / "run-0000.h5")
    assert trace.profile == ChipProfile(threshold_op=">", fused_multiply_add=False)
    profile.write_text("{not json")
    assert main(["exec", "--profile", str(profile), str(SCRIPTS / "lif_network.py"), str(tmp_path / "o.npz")]) == 2


def test_exec_board_runs_through_py_spinnaker2_and_traces_compare(tmp_path, monkeypatch):
    # A "py-spinnaker2" installed beside s2sim, implemented by the stand-in itself: `exec --board` must hand the
    # script's networks to the vendor's own snn/hardware modules (not to the alias the script sees) and read the
    # results back; the board's traces then compare equal with a simulator run of the same script.
    pkg = tmp_path / "site" / "spinnaker2"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("VENDOR = True\n")
    (pkg / "snn.py").write_text("from s2sim.spinnaker2.snn import *  # noqa\n")
    (pkg / "hardware.py").write_text("from s2sim.spinnaker2.hardware import *  # noqa\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    script = str(SCRIPTS / "lif_network.py")
    assert (
        main(["exec", "--board", "10.0.0.9", "--trace", str(tmp_path / "board"), script, str(tmp_path / "b.npz")]) == 0
    )
    assert main(["exec", "--trace", str(tmp_path / "sim"), script, str(tmp_path / "s.npz")]) == 0
    for key, value in np.load(tmp_path / "s.npz").items():
        np.testing.assert_array_equal(np.load(tmp_path / "b.npz")[key], value, err_msg=key)
    boards, _ = read_trace_set(tmp_path / "board")
    sims, _ = read_trace_set(tmp_path / "sim")
    assert len(boards) == len(sims) == 3
    for board, sim in zip(boards, sims, strict=True):
        assert (
            board.source == "spinnaker2" and board.profile is None and board.metadata["settings"]["board"] == "10.0.0.9"
        )
        result = compare(sim, board)
        assert result.match, result.report()
    for key in [k for k in sys.modules if k == "spinnaker2" or k.startswith("spinnaker2.")]:
        del sys.modules[key]
    monkeypatch.delenv("S2SIM_BOARD_IP", raising=False)
    monkeypatch.delenv("S2_IP", raising=False)
    assert main(["exec", "--board", "--trace", str(tmp_path / "x"), script, str(tmp_path / "x.npz")]) == 2


def test_conversion_records_diagnostics_and_the_plot_helper_reads_them(tmp_path):
    from s2sim.spinnaker2 import hardware, helpers, s2_nir

    graph = tmp_path / "g.nir"
    small_scnn(graph)
    cfg = s2_nir.ConversionConfig()
    cfg.output_record = ["v", "spikes", "time_done", "n_packets", "performance_level"]
    cfg.dt, cfg.conn_delay, cfg.scale_weights = 1e-4, 0, True
    net, inp, outp = s2_nir.from_nir(nir.read(graph), cfg)
    inp[0].params = {i: [1, 2, 5] for i in range(0, 72, 3)}
    inp[0].record = ["time_done"]
    hw = hardware.SpiNNaker2Chip()
    hw.run(net, 12, sys_tick_in_s=1e-3, measure_power=True)
    done = outp[0].get_time_done_times()
    packets = outp[0].get_n_packets()
    assert done.keys() == packets.keys() and all(v.shape == (12,) for v in done.values())
    assert max(float(v.max()) for v in packets.values()) > 0 and hw.energy > 0
    assert inp[0].get_time_done_times()  # a spike source's PEs are timed too
    path = tmp_path / "time_done_lif2.npz"
    np.savez(path, pes=np.array(sorted(done)), times=np.stack([done[k] for k in sorted(done)]))
    fig = helpers.plot_times_done_multiple_pes_one_plot_vertical(str(path), 1e-3)
    assert len(fig.axes) == len(done)
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_ydata(), done[sorted(done)[0]] * 1e-3)
    with pytest.raises(ConfigError, match="is not a time_done file"):
        helpers.plot_times_done_multiple_pes_one_plot_vertical(str(graph))
