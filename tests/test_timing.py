"""The PE time and energy model: its counts are the simulator's, time_done follows the model, deadlines and DVFS."""

from __future__ import annotations

import numpy as np
import pytest

from s2sim import Simulator, place, snn
from s2sim.errors import ConfigError
from s2sim.pe_load import EVENTS, pe_load
from s2sim.placement import PES_PER_CHIP
from s2sim.timing import DEFAULT_CYCLES, LEVELS, EnergyConstants, TimingConfig, estimate, pe_label


def conv_net(atoms=20):
    rng = np.random.default_rng(1)
    src = snn.Population(2 * 8 * 8, "spike_list", {}, name="src", record=[])
    conv = snn.Population(
        4 * 4 * 4, "lif_conv2d", {"threshold": 5.0, "alpha_decay": 0.9}, name="conv", record=["counts"]
    )
    out = snn.Population(10, "lif_curr_exp", {"threshold": 5.0, "exc_decay": 0.5}, name="out", record=["counts"])
    conv.set_max_atoms_per_core(atoms)
    params = {
        "in_height": 8,
        "in_width": 8,
        "stride_x": 2,
        "stride_y": 2,
        "pad_top": 1,
        "pad_left": 1,
        "pad_right": 1,
        "pad_bottom": 1,
    }
    conns = [[i, j, 3, (i + j) % 4] for i in range(64) for j in range(10) if (i + j) % 3 == 0]
    return snn.Network("conv").add(
        src,
        conv,
        out,
        snn.Conv2DProjection(src, conv, rng.integers(-5, 8, (2, 4, 3, 3)), params),
        snn.Projection(conv, out, conns),
    )


def run(net, activity=0.2, batch=2, ticks=30, seed=0, **kw):
    x = (np.random.default_rng(seed).random((batch, ticks, 128)) < activity).astype(np.uint8)
    return Simulator(**kw).run_batch(net, {"src": x}, all_spikes=True)


def test_load_counts_are_the_simulators_counts():
    net = conv_net()
    res = run(net)
    load = pe_load(net, place(net), res)
    for name in ("conv", "out"):
        rows = [i for i, p in enumerate(load.populations) if p == name]
        np.testing.assert_array_equal(load.synaptic_events[:, rows].sum(axis=1), res.counts[name][:, :, 1])
    for name in ("src", "conv", "out"):
        rows = [i for i, p in enumerate(load.populations) if p == name]
        np.testing.assert_array_equal(load.packets_out[:, rows].sum(axis=1), res.spikes[name].sum(axis=2))
    assert load.events["words"].sum() > 0 and load.events["conv_taps"].sum() > 0


def test_packets_received_by_brute_force():
    # a source population's packets reach every PE holding a synapse from it (a conv's: every PE of its target),
    # one tick later; each is checked against every table entry of the PE and selects one row per projection
    net = conv_net(atoms=16)
    out = net.population("out")
    out.set_max_atoms_per_core(4)
    net.add(snn.Projection(net.population("src"), out, [[0, 9, 2, 0], [3, 9, -1, 1]]))  # reaches one PE of out
    res = run(net, activity=0.1, batch=1, ticks=12)
    placement = place(net)
    load = pe_load(net, placement, res)
    conv_proj, list_proj, _extra = net.projections

    def lag(x):
        return np.concatenate([[0], x[:-1]])

    src, conv = res.spikes["src"][0].sum(axis=1), res.spikes["conv"][0].sum(axis=1)
    for row, s in enumerate(placement.slices):
        if s.population == "conv":
            expect, entries = lag(src), 1
            taps = np.bincount(conv_proj.tap_pairs()[0], minlength=128)
            np.testing.assert_array_equal(load.events["conv_tap_tests"][0, row], lag(res.spikes["src"][0] @ taps))
        elif s.population == "out":
            by_list = np.any((list_proj.post_idx >= s.start) & (list_proj.post_idx < s.stop))
            by_extra = s.start <= 9 < s.stop
            expect, entries = lag(conv * by_list + src * by_extra), int(by_list) + int(by_extra)
            np.testing.assert_array_equal(load.events["rows"][0, row], expect)
        else:
            expect, entries = np.zeros(12), 0
        np.testing.assert_array_equal(load.packets_in[0, row], expect)
        np.testing.assert_array_equal(load.events["table_entries"][0, row], expect * entries)
    assert load.packets_in.sum() > 0


def test_time_done_follows_the_model_and_grows_with_activity():
    net = conv_net()
    quiet = estimate(net, run(net, activity=0.02))
    busy = estimate(net, run(net, activity=0.4))
    assert busy.time_done.mean() > quiet.time_done.mean()
    load = busy.load
    for row, model in enumerate(load.models):
        c = DEFAULT_CYCLES[model]
        cycles = c.fixed + c.neuron * load.neurons[row]
        for name in EVENTS:
            cycles = cycles + getattr(c, name) * load.events[name][:, row]
        np.testing.assert_array_equal(busy.time_done[:, row], cycles / (LEVELS["high"].hz * 1e-3))


def overloaded_net():
    """A dense 1000 -> 200 projection driven by 1000 sources spiking in every tick: 200k synaptic words per tick
    on one PE, far beyond 300k cycles of a 1 ms tick.
    """
    src = snn.Population(1000, "spike_list", {i: list(range(8)) for i in range(1000)}, name="src", record=[])
    dst = snn.Population(200, "lif_no_delay", {"threshold": 1e9}, name="dst", record=[])
    w = np.ones((1000, 200))
    conns = np.stack([*np.nonzero(w), w[np.nonzero(w)], np.zeros(w.size)], axis=1)
    return snn.Network().add(src, dst, snn.Projection(src, dst, conns))


def test_an_overloaded_pe_misses_deadlines_and_a_longer_tick_fixes_it():
    net = overloaded_net()
    res = Simulator().run_batch(net, timesteps=10, all_spikes=True)
    report = estimate(net, res, TimingConfig(sys_tick_in_s=1e-3))
    misses = report.misses()
    assert misses and {m.population for m in misses} == {"dst"}
    assert {m.tick for m in misses} == set(range(1, 9))  # spikes of ticks 0..7 arrive in ticks 1..8
    text = misses[0].describe()
    assert "deadline missed: PE" in text and "(dst[0:" in text and "tick 1 of sample 0" in text
    tick = report.min_tick_s() * 1.001
    longer = estimate(net, res, TimingConfig(sys_tick_in_s=tick))
    assert not longer.misses() and longer.time_done.max() <= 1.0
    assert report.to_dict()["bottleneck"]["population"] == "dst"
    hint = report.suggestion()
    assert hint["population"] == "dst" and hint["max_atoms_per_core"] < hint["neurons_on_pe"]
    net.population("dst").set_max_atoms_per_core(hint["max_atoms_per_core"])
    smaller = estimate(net, Simulator().run_batch(net, timesteps=10, all_spikes=True), TimingConfig())
    assert smaller.time_done.max() <= 0.9 + 1e-9 and not smaller.misses()
    assert "suggestion: set_max_atoms_per_core(" in report.format()


def test_auto_dvfs_switches_by_pl_threshold():
    net = conv_net()
    res = run(net, activity=0.3)
    report = estimate(
        net, res, TimingConfig(dvfs="auto", pl_threshold={"lif_conv2d": 5, "lif_curr_exp": 3, "spike_list": 0})
    )
    load = report.load
    thresholds = {"lif_conv2d": 5, "lif_curr_exp": 3, "spike_list": 0}
    for row, model in enumerate(load.models):
        np.testing.assert_array_equal(report.high[:, row], load.packets_in[:, row] > thresholds[model])
    assert report.high.any() and not report.high.all()
    hz = np.where(report.high, LEVELS["high"].hz, LEVELS["low"].hz)
    np.testing.assert_array_equal(report.time_done, report.cycles / (hz * 1e-3))
    low = estimate(net, res, TimingConfig(dvfs="low"))
    high = estimate(net, res, TimingConfig(dvfs="high"))
    np.testing.assert_array_equal(low.time_done, 2 * high.time_done)  # half the clock, same cycles
    mixed = estimate(net, res, TimingConfig(dvfs={"lif_conv2d": "low"}))  # models left out run high
    conv_rows = [i for i, m in enumerate(load.models) if m == "lif_conv2d"]
    assert not mixed.high[:, conv_rows].any() and mixed.high[:, [0]].all()


def test_energy_adds_up_from_the_chip_figures():
    net = conv_net()
    res = run(net)
    report = estimate(net, res, TimingConfig(sys_tick_in_s=2e-3, dvfs="auto"))
    e = EnergyConstants()
    sleep = np.where(report.high, (564.7e-3 - 75.2e-3) / PES_PER_CHIP, (235.4e-3 - 75.2e-3) / PES_PER_CHIP) * 2e-3
    per_cycle = np.where(
        report.high, (1247.9e-3 - 564.7e-3) / PES_PER_CHIP / 300e6, (424.6e-3 - 235.4e-3) / PES_PER_CHIP / 150e6
    )
    expect = (sleep + report.cycles * per_cycle).sum(axis=(1, 2)) + 75.2e-3 * 2e-3 * report.timesteps
    np.testing.assert_allclose(report.energy_j, expect, rtol=1e-12)  # float sums in another order
    assert e.pe_cycle_j("low") < e.pe_cycle_j("high")
    d = report.to_dict()
    assert d["estimate"] is True
    active = (report.cycles * per_cycle).sum(axis=(1, 2))
    np.testing.assert_allclose(report.active_j, active, rtol=1e-12)
    lo, hi = d["energy_per_sample_j"]["cpi_range"]
    assert lo == pytest.approx(float((expect + active * (1.1 / 1.3 - 1)).mean()), rel=1e-12)
    assert lo < d["energy_per_sample_j"]["mean"] < hi


def test_py_spinnaker2_formats_and_labels():
    net = conv_net()
    report = estimate(net, run(net, batch=1))
    done = report.per_population("conv", "time_done")
    assert list(done) == [
        pe_label(pe) for pe, pop in zip(report.load.pes, report.load.populations, strict=True) if pop == "conv"
    ]
    assert all(v.shape == (30,) for v in done.values())
    assert pe_label(0) == "PE(1, 1, 0)" and pe_label(5) == "PE(2, 1, 1)" and pe_label(PES_PER_CHIP).startswith("chip1:")
    with pytest.raises(ConfigError, match="unknown diagnostic 'energy'"):
        report.per_population("conv", "energy")


def test_missing_spikes_and_bad_config_are_named():
    net = conv_net()
    res = Simulator().run_batch(net, {"src": np.zeros((1, 5, 128), np.uint8)})
    with pytest.raises(ConfigError, match=r"no spikes of population 'src'.*all_spikes=True"):
        estimate(net, res)
    with pytest.raises(ConfigError, match="sys_tick_in_s must be a positive number"):
        TimingConfig(sys_tick_in_s=0)
    with pytest.raises(ConfigError, match="dvfs = 'turbo'"):
        TimingConfig(dvfs={"lif": "turbo"})


def test_cli_run_reports_latency_misses_and_energy(tmp_path, capsys):
    import json

    import nir

    from s2sim.cli import main

    w = np.random.default_rng(2).normal(1.0, 1.0, (12, 6))
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([6])),
        nir.Affine(weight=w, bias=np.zeros(12)),
        nir.LIF(
            tau=np.full(12, 2.5e-3),
            r=np.ones(12),
            v_leak=np.zeros(12),
            v_threshold=np.full(12, 0.5),
            v_reset=np.zeros(12),
        ),
        nir.Output(output_type=np.array([12])),
    )
    model = tmp_path / "m.nir"
    nir.write(str(model), graph)
    x = (np.random.default_rng(3).random((5, 20, 6)) < 0.4).astype(np.uint8)
    np.savez(tmp_path / "x.npz", input=x)
    argv = [
        "run",
        str(model),
        "--input",
        str(tmp_path / "x.npz"),
        "-o",
        str(tmp_path / "o.h5"),
        "--dt",
        "1e-4",
        "--batch-size",
        "2",
        "--sys-tick",
        "2e-3",
        "--dvfs",
        "auto",
        "--json",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    t = data["timing"]
    assert t["latency_ms"] == pytest.approx(40.0) and t["samples"] == 5 and t["dvfs"] == "auto"
    assert t["deadline_misses"] == 0 and t["energy_per_sample_j"]["min"] > 0.0752 * 0.040
    # the chunks' summary equals one estimate over the whole batch
    import s2sim

    net, _, _ = s2sim.from_nir(str(model), s2sim.ConversionConfig(dt=1e-4))
    res = Simulator().run_batch(net, {"input": x}, all_spikes=True)
    whole = estimate(net, res, TimingConfig(sys_tick_in_s=2e-3, dvfs="auto"))
    assert t["energy_per_sample_j"]["mean"] == pytest.approx(float(whole.energy_j.mean()), rel=1e-12)
    assert t["bottleneck"]["time_done"] == float(whole.time_done.max())
    assert main(argv[:-1]) == 0
    out = capsys.readouterr().out
    assert "PE time (estimate, tick 2 ms, DVFS auto): latency 40 ms per sample" in out
    assert main([*argv[:-1], "--timing-plot", str(tmp_path / "t.png")]) == 0
    assert (tmp_path / "t.png").stat().st_size > 10_000
    assert main([*argv[:-3], "--sys-tick", "-1"]) == 2
    assert "--sys-tick / --dvfs" in capsys.readouterr().err


def test_a_fully_busy_chip_draws_the_coremark_power():
    e = EnergyConstants()
    for level, coremark in (("low", 424.6e-3), ("high", 1247.9e-3)):
        power = e.chip_off_w + PES_PER_CHIP * (e.pe_sleep_w(level) + e.pe_cycle_j(level) * LEVELS[level].hz)
        assert power == pytest.approx(coremark, rel=1e-12)
