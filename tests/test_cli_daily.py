"""Everyday use of the command line and its library helpers: what is written, progress and messages, pipes,
option errors, missing optional modules, plots, tonic-shaped inputs and event counts, other event cameras.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from s2sim import Simulator, snn
from s2sim.cli import main
from s2sim.errors import ConfigError, InputCountsWarning

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _graph():
    import nir

    w = np.array([[3.0, 0.0, 1.0], [0.0, 2.0, 0.0], [1.0, 1.0, 1.0], [-2.0, 4.0, 0.0]])
    return nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([3])),
        nir.Affine(weight=w, bias=np.zeros(4)),
        nir.LIF(
            tau=np.full(4, 2.5e-3), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.full(4, 0.3), v_reset=np.zeros(4)
        ),
        nir.Output(output_type=np.array([4])),
    )


@pytest.fixture
def files(tmp_path):
    """A NIR model (input node 'input', LIF population 'lif') and 40 samples of input spikes."""
    import nir

    model = tmp_path / "model.nir"
    nir.write(str(model), _graph())
    spikes = (np.random.default_rng(5).random((40, 30, 3)) < 0.4).astype(np.uint8)
    np.savez(tmp_path / "in.npz", input=spikes)
    return str(model), str(tmp_path / "in.npz"), spikes


def _nodes(path) -> dict[str, set[str]]:
    import nir

    return {name: set(node.observables) for name, node in nir.read_data(str(path)).nodes.items()}


# -- s2sim run writes what is asked, nothing more ------------------------------------------------------------------


def test_run_writes_only_the_output_spikes_by_default(files, tmp_path, capsys):
    model, inp, _ = files
    out = tmp_path / "out.h5"
    code, stdout, _ = _run(capsys, "run", model, "-i", inp, "-o", out, "--dt", "1e-4")
    assert code == 0 and "spikes of 1 population(s)" in stdout
    assert _nodes(out) == {"lif": {"spikes"}}


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--record", "v"], {"lif": {"v"}}),
        (["--record", "spikes,v"], {"lif": {"spikes", "v"}}),
        (["--populations", "all"], {"input": {"spikes"}, "lif": {"spikes"}}),
        (["--populations", "all", "--record", "spikes,v"], {"input": {"spikes"}, "lif": {"spikes", "v"}}),
        (["--populations", "input"], {"input": {"spikes"}}),
    ],
)
def test_run_record_flags_select_what_is_written(files, tmp_path, capsys, flags, expected):
    model, inp, _ = files
    out = tmp_path / "out.h5"
    code, _, err = _run(capsys, "run", model, "-i", inp, "-o", out, "--dt", "1e-4", *flags)
    assert code == 0, err
    assert _nodes(out) == expected


def test_run_default_file_is_much_smaller_than_every_layers_voltages(files, tmp_path, capsys):
    model, inp, _ = files
    _run(capsys, "run", model, "-i", inp, "-o", tmp_path / "small.h5", "--dt", "1e-4")
    _run(
        capsys,
        "run",
        model,
        "-i",
        inp,
        "-o",
        tmp_path / "all.h5",
        "--dt",
        "1e-4",
        "--record",
        "spikes,v",
        "--populations",
        "all",
    )
    small, full = (os.path.getsize(tmp_path / n) for n in ("small.h5", "all.h5"))
    # 40 x 30 x 4 float32 voltages alone are 19200 bytes more than the spikes
    assert full - small >= 40 * 30 * 4 * 4


def test_run_trace_holds_every_population_whatever_is_written(files, tmp_path, capsys):
    from s2sim.traces import read_trace

    model, inp, spikes = files
    code, _, _ = _run(
        capsys, "run", model, "-i", inp, "-o", tmp_path / "o.h5", "--dt", "1e-4", "--trace", tmp_path / "t.h5"
    )
    assert code == 0 and _nodes(tmp_path / "o.h5") == {"lif": {"spikes"}}
    trace = read_trace(str(tmp_path / "t.h5"))
    assert "lif" in trace.voltages and "lif" in trace.spikes
    np.testing.assert_array_equal(trace.inputs["input"], spikes[0])


def test_run_json_summary(files, tmp_path, capsys):
    model, inp, _ = files
    out = tmp_path / "o.h5"
    code, stdout, _ = _run(capsys, "run", model, "-i", inp, "-o", out, "--dt", "1e-4", "--json")
    data = json.loads(stdout)
    assert code == 0
    assert data["populations"] == ["lif"] and data["recorded"] == ["spikes"]
    assert data["samples"] == 40 and data["ticks"] == 30 and data["bytes"] == os.path.getsize(out)


def test_demo_json_of_the_nir_paper_benchmark(capsys):
    code, stdout, _ = _run(capsys, "demo", "--nir-paper", "--json")
    data = json.loads(stdout)
    assert code == 0 and data["match"] is True and data["spikes"] == data["published"]


# -- messages, version, pipes ----------------------------------------------------------------------------------------


def test_version(capsys):
    from s2sim import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"s2sim {__version__}"


def test_step_messages_go_to_stderr_and_quiet_hides_them(files, tmp_path, capsys):
    model, inp, _ = files
    out = tmp_path / "o.h5"
    code, stdout, err = _run(capsys, "run", model, "-i", inp, "-o", out, "--dt", "1e-4", "--json")
    assert code == 0 and f"s2sim run: writing {out}" in err
    json.loads(stdout)  # stdout holds the result only
    code, stdout, err = _run(capsys, "run", model, "-i", inp, "-o", out, "--dt", "1e-4", "--quiet")
    assert code == 0 and err == "" and stdout.startswith("wrote")
    assert logging.getLogger("s2sim").handlers == []  # the command's handler is gone after it


def test_progress_bar_only_when_asked_or_on_a_terminal(files, tmp_path, capsys):
    model, inp, _ = files
    out = tmp_path / "o.h5"
    _, _, err = _run(capsys, "run", model, "-i", inp, "-o", out, "--dt", "1e-4", "--batch-size", "8")
    assert "sample/s" not in err and "40/40" not in err  # captured stderr is no terminal
    _, _, err = _run(
        capsys, "run", model, "-i", inp, "-o", out, "--dt", "1e-4", "--batch-size", "8", "--progress", "on"
    )
    assert "40/40" in err and "sample" in err  # tqdm's bar, on stderr
    _, _, err = _run(capsys, "run", model, "-i", inp, "-o", out, "--dt", "1e-4", "--progress", "on", "-q")
    assert "40/40" not in err


def test_a_reader_that_stops_early_gets_no_traceback(files):
    model, _, _ = files
    proc = subprocess.Popen(
        [sys.executable, "-m", "s2sim", "convert", model, "--dt", "1e-4"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # like `| head` that has already quit: the first write meets a closed pipe
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
    assert proc.returncode == 141


# -- errors name the flags -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--batch-size", "0"], "--batch-size"),
        (["--threads", "0"], "--threads"),
        (["--ticks", "-3"], "--ticks"),
        (["--timeout", "nan"], "--timeout"),
        (["--sys-tick", "0"], "--sys-tick"),
        (["--record", "voltage"], "--record"),
        (["--populations", "nope"], "--populations"),
        (["--dt", "-1"], "--dt"),
        (["--conn-delay", "9"], "--conn-delay"),
    ],
)
def test_bad_options_are_named_as_typed(files, tmp_path, capsys, flags, named):
    model, inp, _ = files
    code, _, err = _run(capsys, "run", model, "-i", inp, "-o", tmp_path / "o.h5", "--dt", "1e-4", *flags)
    last = err.strip().splitlines()[-1]
    assert code == 2 and named in last, err
    assert "ConversionConfig" not in last and "num_threads" not in last
    assert not (tmp_path / "o.h5").exists()


def test_plot_options_are_named(files, tmp_path, capsys):
    model, inp, _ = files
    out = tmp_path / "o.h5"
    _run(capsys, "run", model, "-i", inp, "-o", out, "--dt", "1e-4")
    code, _, err = _run(capsys, "plot", out, "--sample", "40")
    assert code == 2 and "--sample 40" in err and "40 sample(s)" in err
    code, _, err = _run(capsys, "plot", out, "--neurons", "0")
    assert code == 2 and "argument --neurons: must be a positive integer, got 0" in err


def test_demo_limit_without_data_is_refused_at_once(capsys):
    code, _, err = _run(capsys, "demo", "--limit", "3")
    assert code == 2 and "--limit" in err and "--data" in err


# -- missing optional modules are found before any work --------------------------------------------------------------


def test_missing_optional_module_is_reported_before_work(files, tmp_path):
    model, inp, _ = files
    # Python's own way to make a module unimportable: a None entry in sys.modules (find_spec then returns None)
    script = "import sys; sys.modules['matplotlib'] = None; from s2sim.cli import main; sys.exit(main(sys.argv[1:]))"
    out = tmp_path / "o.h5"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "run",
            model,
            "-i",
            inp,
            "-o",
            str(out),
            "--dt",
            "1e-4",
            "--timing-plot",
            str(tmp_path / "t.png"),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "--timing-plot needs matplotlib" in proc.stderr and "s2sim[io]" in proc.stderr
    assert not out.exists()  # refused before the simulation and the output


def test_require_names_every_extra(monkeypatch):
    from s2sim.cli import checks

    checks.require("x", {"numpy": "arrays"})  # present: nothing happens
    monkeypatch.setitem(sys.modules, "tonic", None)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ConfigError) as info:
        checks.require("s2sim demo", {"tonic": "framing", "torch": "quantizing", "numpy": "arrays"})
    text = str(info.value)
    assert "framing needs tonic" in text and "quantizing needs torch" in text and "numpy" not in text
    assert "'s2sim[data]'" in text and "'s2sim[torch]'" in text and "Nothing was run" in text


# -- plots -----------------------------------------------------------------------------------------------------------


def test_plot_properties_and_no_backend_switch(files, tmp_path, capsys):
    import matplotlib
    from PIL import Image

    from s2sim.plotting import DPI, NodeRecording, load_recording, plot_recording

    backend = matplotlib.get_backend()
    model, inp, _ = files
    out = tmp_path / "o.h5"
    _run(capsys, "run", model, "-i", inp, "-o", out, "--dt", "1e-4", "--record", "spikes,v")
    rec = load_recording(str(out))["lif"]
    assert rec.dt == 1e-4 and rec.threshold is not None and rec.voltage_scale is not None
    # the threshold stored is the chip value of NIR's 0.3, in the same chip units as v
    assert rec.threshold == pytest.approx(0.3 * rec.voltage_scale, rel=1e-6)
    code, _, _ = _run(capsys, "plot", out, "-o", tmp_path / "p.png", "--class-names", "a,b,c,d")
    assert code == 0 and matplotlib.get_backend() == backend
    with Image.open(tmp_path / "p.png") as img:
        dpi = img.info["dpi"]
    assert DPI >= 150 and round(dpi[0]) == DPI

    from matplotlib.figure import Figure

    seen = []
    original = Figure.savefig

    def spy(fig, *args, **kwargs):
        seen.append(fig)
        return original(fig, *args, **kwargs)

    Figure.savefig = spy
    try:
        plot_recording(
            {
                "lif": NodeRecording(
                    "lif", rec.spikes, rec.voltages, rec.dt, rec.voltage_scale, rec.threshold, ["a", "b", "c", "d"]
                )
            },
            str(tmp_path / "q.png"),
        )
    finally:
        Figure.savefig = original
    raster, volts = seen[0].axes[:2]
    assert raster.get_xlabel() == "time (ms)" and volts.get_xlabel() == "time (ms)"
    assert [t.get_text() for t in raster.get_yticklabels()] == ["a", "b", "c", "d"]
    assert raster.get_xlim()[1] == pytest.approx(29.5 * 0.1)  # 30 ticks of 0.1 ms
    assert any(np.allclose(line.get_ydata(), rec.threshold) for line in volts.get_lines())
    legend = volts.get_legend()
    assert legend is not None and legend.get_bbox_to_anchor().x0 > volts.get_window_extent().x1  # outside
    assert any("NIR units" in ax.get_ylabel() for ax in seen[0].axes[2:] + volts.child_axes)


def test_no_global_backend_switch_in_the_library():
    hits = []
    for folder, _, names in os.walk(os.path.join(ROOT, "s2sim")):
        for name in names:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as fh:
                    if "matplotlib.use(" in fh.read():
                        hits.append(name)
    assert hits == []


# -- tonic frames and event counts -----------------------------------------------------------------------------------


def _frame_net():
    src = snn.Population(2 * 3 * 3, "spike_list", {}, name="src")
    dst = snn.Population(2, "lif", {"threshold": 1.0}, name="dst", record=["spikes", "v"])
    return snn.Network("frames").add(src, dst, snn.Projection(src, dst, [[i, i % 2, 1 + i % 3, 0] for i in range(18)]))


def test_run_batch_takes_tonic_frames_and_binarises_counts_with_a_report():
    frames = np.random.default_rng(0).poisson(0.5, (3, 6, 2, 3, 3))
    flat = (frames > 0).reshape(3, 6, 18).astype(np.uint8)
    clipped = int((frames > 1).sum())
    assert clipped > 0
    with pytest.raises(ConfigError, match="event_counts='binarise'"):
        Simulator(num_threads=1).run_batch(_frame_net(), {"src": frames})
    with pytest.warns(InputCountsWarning, match=f"{clipped} count\\(s\\) above 1"):
        got = Simulator(num_threads=1).run_batch(_frame_net(), {"src": frames}, event_counts="binarise")
    ref = Simulator(num_threads=1).run_batch(_frame_net(), {"src": flat})
    np.testing.assert_array_equal(got.spikes["dst"], ref.spikes["dst"])
    np.testing.assert_array_equal(got.voltages["dst"].view(np.uint32), ref.voltages["dst"].view(np.uint32))
    # a 0/1 frame array needs no option and warns nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = Simulator(num_threads=1).run_batch(_frame_net(), {"src": flat.reshape(3, 6, 2, 3, 3)})
    np.testing.assert_array_equal(same.spikes["dst"], ref.spikes["dst"])
    with pytest.raises(ConfigError, match=r"clipped .*an error in strict mode"):
        Simulator(num_threads=1, strict=True).run_batch(_frame_net(), {"src": frames}, event_counts="binarise")
    with pytest.raises(ConfigError, match="whole numbers"):
        Simulator(num_threads=1).run_batch(_frame_net(), {"src": frames * 0.5}, event_counts="binarise")


def test_cli_run_binarises_counts_only_when_asked(files, tmp_path, capsys):
    model, _, _ = files
    counts = np.random.default_rng(2).poisson(0.7, (4, 20, 3))
    np.savez(tmp_path / "c.npz", input=counts)
    out = tmp_path / "o.h5"
    code, _, err = _run(capsys, "run", model, "-i", tmp_path / "c.npz", "-o", out, "--dt", "1e-4")
    assert code == 2 and "--event-counts binarise" in err and not out.exists()
    code, _, err = _run(
        capsys,
        "run",
        model,
        "-i",
        tmp_path / "c.npz",
        "-o",
        out,
        "--dt",
        "1e-4",
        "--event-counts",
        "binarise",
        "--populations",
        "all",
    )
    assert code == 0 and f"{int((counts > 1).sum())} count(s) above 1" in err and "InputCountsWarning" in err
    import nir

    written = nir.read_data(str(out)).nodes["input"].observables["spikes"].data
    np.testing.assert_array_equal(written, counts > 0)


def test_framing_any_sensor_size_nmnist_34x34():
    pytest.importorskip("tonic")
    from s2sim import gestures

    # tonic's N-MNIST events: structured (x, y, p, t) of plain ints, on a 34 x 34 sensor
    dtype = np.dtype([("x", int), ("y", int), ("p", int), ("t", int)])
    rng = np.random.default_rng(3)
    n = 3000
    events = np.zeros(n, dtype)
    events["x"], events["y"] = rng.integers(0, 34, n), rng.integers(0, 34, n)
    events["p"], events["t"] = rng.integers(0, 2, n), np.sort(rng.integers(0, 300_000, n))
    config = gestures.FrameConfig(n_time_bins=5, size=17, sensor_size=(34, 34, 2))
    assert config.input_shape == (2, 17, 17) and config.n_inputs == 578
    frames = gestures.events_to_frames(events, config)
    assert frames.shape == (5, 2, 17, 17)
    # each output pixel sums a 2 x 2 block of the sensor: recount by hand in the same time bins
    edges = np.linspace(events["t"][0], events["t"][-1], 6)
    assert frames.sum() == np.count_nonzero(events["t"] < edges[-1])  # ToFrame leaves out the last timestamp
    first = events[events["t"] < edges[1]]
    mine = np.zeros((2, 17, 17), np.int64)
    np.add.at(mine, (first["p"], first["y"] // 2, first["x"] // 2), 1)
    np.testing.assert_array_equal(frames[0], mine)
    out = gestures.recordings_to_spikes([(events, 1)], config)
    assert out.spikes.shape == (1, 5, 578) and out.merged[0] == frames.sum() - out.spikes.sum()
    with pytest.raises(ConfigError, match="sensor width 34"):
        gestures.FrameConfig(size=16, sensor_size=(34, 34, 2))
    events["x"][7] = 40
    with pytest.raises(Exception, match="event 7 has x = 40"):
        gestures.events_to_frames(events, config)


def test_progress_mode_follows_the_terminal_and_the_flags(capsys):
    from s2sim import progress

    previous = progress.set_mode("auto")
    try:
        assert progress.enabled() is False and progress.enabled(True) is True  # capsys' stderr is no terminal
        for _ in progress.bar(range(3), desc="quiet"):
            pass
        assert capsys.readouterr().err == ""
        progress.set_mode("on")
        for _ in progress.bar(range(3), desc="counting"):
            pass
        assert "counting" in capsys.readouterr().err
        progress.set_mode("off")
        assert progress.enabled() is False
        with pytest.raises(ConfigError, match="'sometimes'"):
            progress.set_mode("sometimes")
    finally:
        progress.set_mode(previous)


def test_conform_names_its_flags_and_plots_without_a_backend_switch(files, tmp_path, capsys):
    import matplotlib
    from PIL import Image

    from s2sim.plotting import DPI

    model, inp, _ = files
    trace = tmp_path / "t.h5"
    _run(capsys, "run", model, "-i", inp, "-o", tmp_path / "o.h5", "--dt", "1e-4", "--trace", trace)
    for flags, named in (
        (["--atol", "-1"], "--atol must be >= 0"),
        (["--spike-ticks", "-2"], "--spike-ticks"),
        (["--only", "flush_to_zero=False"], "--only applies with --infer only"),
    ):
        code, _, err = _run(capsys, "conform", trace, trace, *flags)
        assert code == 2 and named in err and "Tolerance." not in err, err
    backend = matplotlib.get_backend()
    code, stdout, _ = _run(capsys, "conform", trace, trace, "--plot", tmp_path / "c.png")
    assert code == 0 and "MATCH" in stdout and matplotlib.get_backend() == backend
    with Image.open(tmp_path / "c.png") as img:
        assert round(img.info["dpi"][0]) == DPI


def test_conform_infer_summarises_and_verbose_lists_everything(tmp_path, capsys):
    from s2sim.conformance import infer, simulate
    from s2sim.probes import threshold_probe
    from s2sim.traces import write_trace

    probe = threshold_probe()
    trace = simulate(probe.network, probe.timesteps, metadata={"probe": probe.name})
    write_trace(tmp_path / "threshold.h5", trace)
    code, summary, _ = _run(capsys, "conform", "--infer", tmp_path / "threshold.h5", "--state-precision", "float32")
    assert code == 0
    full = infer([trace], restrict={"state_precision": ["float32"]})  # what --verbose prints and --json holds
    open_points = full.not_distinguished()
    assert len(open_points) > 4  # one trace leaves many points open: the case a summary is for
    listed = [line for line in summary.splitlines() if line.startswith("NOT DISTINGUISHED")]
    assert listed == [line for line in full.report().splitlines() if line.startswith("NOT DISTINGUISHED")][:4]
    assert f"and {len(open_points) - 4} more (all of them: --verbose or --json)" in summary
    assert len(summary.splitlines()) < len(full.report().splitlines())


def test_step_messages_print_once_when_a_script_configures_logging(tmp_path, capsys):
    script = tmp_path / "script.py"
    script.write_text("import logging, sys\nlogging.basicConfig(level=logging.INFO, stream=sys.stderr)\n")
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        code, _, err = _run(capsys, "exec", "--trace", tmp_path / "runs", script)
    finally:
        for handler in root.handlers[len(before) :]:
            root.removeHandler(handler)
    assert code == 0 and err.count("wrote 0 trace(s)") == 1, err


def test_suggested_settings_are_spelled_as_options():
    from s2sim.cli.checks import fields_as_flags
    from s2sim.cli.convert import FIELD_FLAGS

    with pytest.raises(ConfigError) as info, fields_as_flags("ConversionConfig", FIELD_FLAGS):
        raise ConfigError(
            "node '0': conv projections have no delay field but conn_delay = 1; use "
            "ConversionConfig(conn_delay=0); or ConversionConfig(scale_weights=True); "
            "ConversionConfig.dt = -1.0 is not positive"
        )
    assert str(info.value) == (
        "node '0': conv projections have no delay field but conn_delay = 1; use --conn-delay "
        "0; or --scale-weights; --dt = -1.0 is not positive"
    )


def test_retired_run_flags_that_contradict_the_selection_are_refused(tmp_path, capsys):
    for flags, named in (
        (["--outputs-only", "--populations", "all"], "--outputs-only contradicts --populations all"),
        (["--no-voltages", "--record", "spikes,v"], "--no-voltages contradicts --record spikes,v"),
    ):
        code, _, err = _run(
            capsys, "run", tmp_path / "model.nir", "-i", tmp_path / "in.npz", "-o", tmp_path / "out.h5", *flags
        )
        assert code == 2 and named in err, err
        assert not (tmp_path / "out.h5").exists()
