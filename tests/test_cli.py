"""The convert / run / plot commands, run through ``s2sim.cli.main`` on real files in a temporary directory."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from s2sim import Simulator, snn
from s2sim.cli import main
from s2sim.cli.run import read_inputs, write_recording
from s2sim.errors import TraceError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# -- help ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["convert", "run", "plot"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert f"s2sim {command}" in text
    if command == "run":
        assert "[B, T, N]" in text and ".npz" in text


def test_module_entry_point_help_in_a_subprocess():
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "s2sim.cli", "--help"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    for command in ("convert", "run", "plot"):
        assert command in proc.stdout


# -- input files ---------------------------------------------------------------------------------------------------

def _inputs():
    return [snn.Population(3, "spike_list", name="input"), snn.Population(2 * 2 * 2, "spike_list", name="image")]


def test_npz_inputs_accept_t_n_b_t_n_and_node_shaped_arrays(tmp_path):
    rng = np.random.default_rng(1)
    one = (rng.random((7, 3)) < 0.5).astype(np.int64)
    image = rng.random((1, 7, 2, 2, 2)) < 0.5
    path = tmp_path / "in.npz"
    np.savez(path, input=one, image=image)
    got = read_inputs(str(path), _inputs())
    assert got["input"].shape == (1, 7, 3) and got["input"].dtype == np.uint8
    np.testing.assert_array_equal(got["input"][0], one)
    # C-order flattening: neuron c*H*W + h*W + w.
    np.testing.assert_array_equal(got["image"][0, :, 1 * 4 + 0 * 2 + 1], image[0, :, 1, 0, 1])


def test_h5_inputs_as_datasets_or_nir_data(tmp_path):
    import h5py

    spikes = {"input": np.eye(3, dtype=np.uint8)[None].repeat(2, 0), "image": np.zeros((2, 3, 8), np.uint8)}
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        for k, v in spikes.items():
            f[k] = v
    nirdata = tmp_path / "nirdata.h5"
    write_recording(str(nirdata), spikes, {}, 1.0)
    for path in (plain, nirdata):
        got = read_inputs(str(path), _inputs())
        np.testing.assert_array_equal(got["input"], spikes["input"])


@pytest.mark.parametrize("content, match", [
    (None, "does not exist"),
    (b"not a zip archive", "not a readable .npz"),
    ({"input": np.zeros((4, 3)), "image": np.zeros((4, 8)), "extra": np.zeros((4, 1))}, r"\['extra'\] match no"),
    ({"input": np.zeros((4, 3))}, r"no array for input node\(s\) \['image'\]"),
    ({"input": np.zeros((4, 5)), "image": np.zeros((4, 8))}, "does not give 3 neurons"),
    ({"input": np.full((4, 3), 2), "image": np.zeros((4, 8))}, "value 2 at sample 0, tick 0, neuron 0"),
    ({"input": np.zeros((4, 3)), "image": np.zeros((5, 8))}, "disagree on"),
])
def test_bad_input_files_name_the_file_and_the_problem(tmp_path, content, match):
    path = tmp_path / "bad.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        np.savez(path, **content)
    with pytest.raises(TraceError, match=match) as info:
        read_inputs(str(path), _inputs())
    assert "bad.npz" in str(info.value)


def test_unknown_input_extension(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("0,1\n")
    with pytest.raises(TraceError, match="expected .npz or .h5"):
        read_inputs(str(path), _inputs())


# -- plot ----------------------------------------------------------------------------------------------------------

def _recording(tmp_path) -> tuple[str, dict, dict]:
    stim = snn.Population(5, "spike_list", {i: [i, i + 3] for i in range(5)}, name="stim")
    lif = snn.Population(4, "lif_no_delay", {"threshold": 3.0, "alpha_decay": 0.75}, name="lif",
                         record=["spikes", "v"])
    net = snn.Network().add(stim, lif, snn.Projection(stim, lif, [[i, i % 4, 2, 0] for i in range(5)]))
    res = Simulator(num_threads=1).run_batch(net, None, 12)
    assert res.spikes["lif"].any()
    path = str(tmp_path / "rec.h5")
    write_recording(path, {"lif": res.spikes["lif"], "stim": res.spikes["stim"]}, {"lif": res.voltages["lif"]}, 1.0)
    return path, res.spikes, res.voltages


def test_plot_writes_a_png(tmp_path, capsys):
    path, _, _ = _recording(tmp_path)
    code, out, _ = _run(capsys, "plot", path)
    assert code == 0
    png = tmp_path / "rec.png"
    assert f"wrote {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, _ = _run(capsys, "plot", path, "-o", str(tmp_path / "lif.png"), "--node", "lif", "--neurons", "2")
    assert code == 0 and (tmp_path / "lif.png").stat().st_size > 1000


def _npz_at(path) -> None:
    with open(path, "wb") as fh:  # np.savez(path) would append .npz to the name
        np.savez(fh, x=np.zeros(2))


@pytest.mark.parametrize("make, match", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_bytes(b"garbage"), "not a readable HDF5"),
    (lambda p: _npz_at(p), "not a readable HDF5"),
])
def test_plot_bad_files_are_clean_errors(tmp_path, capsys, make, match):
    path = tmp_path / "bad.h5"
    make(path)
    code, out, err = _run(capsys, "plot", str(path))
    assert code == 2 and out == ""
    assert err.startswith("s2sim plot: error: recording file") and "bad.h5" in err
    assert match in err


def test_plot_rejects_a_model_file_and_a_sample_out_of_range(tmp_path, capsys):
    import nir

    model = tmp_path / "model.nir"
    nir.write(str(model), _nir_graph())
    code, _, err = _run(capsys, "plot", str(model))
    assert code == 2 and "is not NIR data" in err
    path, _, _ = _recording(tmp_path)
    code, _, err = _run(capsys, "plot", path, "--sample", "3")
    assert code == 2 and "--sample 3 is out of range" in err


# -- convert and run end to end ---------------------------------------------------------------------------------

def _nir_graph(w=None):
    import nir

    w = np.array([[3.0, 0.0, 1.0], [0.0, 2.0, 0.0], [1.0, 1.0, 1.0], [-2.0, 4.0, 0.0]]) if w is None else w
    n = w.shape[0]
    return nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([w.shape[1]])),
        nir.Affine(weight=w, bias=np.zeros(n)),
        nir.LIF(tau=np.full(n, 2.5e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.3),
                v_reset=np.zeros(n)),
        nir.Output(output_type=np.array([n])),
    )


@pytest.fixture
def model_file(tmp_path):
    import nir

    path = tmp_path / "model.nir"
    nir.write(str(path), _nir_graph())
    return str(path)


def test_convert_prints_both_reports_and_json_parses(model_file, capsys):
    code, out, _ = _run(capsys, "convert", model_file, "--dt", "1e-4", "--integrator", "forward")
    assert code == 0
    assert "Resource report" in out and "Fits one chip" in out
    code, out, _ = _run(capsys, "convert", model_file, "--json", "--dt", "1e-4", "--reset", "zero")
    assert code == 0
    data = json.loads(out)
    assert data["placement"]["fits_one_chip"] is True
    assert data["placement"]["neurons"] == 3 + 4
    assert data["conversion"] is not None


def test_convert_bad_model_files(tmp_path, capsys):
    code, _, err = _run(capsys, "convert", str(tmp_path / "missing.nir"))
    assert code == 2 and "missing.nir" in err and "does not exist" in err
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"\x00" * 64)
    code, _, err = _run(capsys, "convert", str(bad))
    assert code == 2 and "bad.nir" in err and "cannot be read" in err


def test_convert_reports_a_neuron_that_fits_no_pe(tmp_path, capsys):
    import nir

    path = tmp_path / "wide.nir"
    nir.write(str(path), _nir_graph(np.ones((1, 9000))))  # 9000 distinct sources into one neuron
    code, out, err = _run(capsys, "convert", str(path))
    assert code == 2 and out == ""
    assert "\ns2sim convert: error: population 'lif': neuron 0 alone needs" in "\n" + err
    assert "9000 synapse words" in err and "131072 bytes" in err


def _input_pop_name(model_file) -> str:
    from s2sim.cli.convert import as_population_list
    from s2sim.nir_import import ConversionConfig, from_nir

    _, inputs, _ = from_nir(model_file, ConversionConfig(dt=1e-4))
    (pop,) = as_population_list(inputs)
    return pop.name


def test_run_writes_spikes_and_float32_voltages_exactly(model_file, tmp_path, capsys):
    import nir

    from s2sim.nir_import import ConversionConfig, from_nir

    name = _input_pop_name(model_file)
    rng = np.random.default_rng(7)
    spikes = (rng.random((5, 30, 3)) < 0.3).astype(np.uint8)
    inp = tmp_path / "in.npz"
    np.savez(inp, **{name: spikes})
    out = tmp_path / "out.h5"
    code, stdout, _ = _run(capsys, "run", model_file, "--input", str(inp), "--ticks", "32", "-o", str(out),
                           "--dt", "1e-4", "--batch-size", "2", "--progress", "on", "--report",
                           "--record", "spikes,v", "--populations", "all")
    assert code == 0 and "5 sample(s), 32 ticks" in stdout
    assert "Resource report" in stdout and "Activity per PE and tick (mean over 5 sample(s), 32 ticks)" in stdout
    data = nir.read_data(str(out))

    # The same network run directly by the Simulator (one batch, input padded with two silent ticks).
    net, _, _ = from_nir(model_file, ConversionConfig(dt=1e-4))
    for pop in net.populations:
        if not pop.model.is_input:
            pop.record = ["spikes", "v"]
    padded = np.concatenate([spikes, np.zeros((5, 2, 3), np.uint8)], axis=1)
    ref = Simulator(num_threads=1).run_batch(net, {name: padded}, 32)
    neurons = [p.name for p in net.populations if not p.model.is_input]
    assert set(data.nodes) == {p.name for p in net.populations}
    for pop in neurons:
        obs = data.nodes[pop].observables
        assert obs["v"].data.dtype == np.float32 and obs["v"].dt == 1e-4
        np.testing.assert_array_equal(obs["v"].data.view(np.uint32), ref.voltages[pop].view(np.uint32))
        np.testing.assert_array_equal(obs["spikes"].data, ref.spikes[pop].astype(bool))
    np.testing.assert_array_equal(data.nodes[name].observables["spikes"].data, padded.astype(bool))
    assert any(ref.spikes[p].any() for p in neurons)

    code, _, _ = _run(capsys, "plot", str(out), "-o", str(tmp_path / "run.png"))
    assert code == 0 and (tmp_path / "run.png").exists()


def test_run_trace_is_what_conform_compares(model_file, tmp_path, capsys):
    from s2sim.traces import read_trace

    name = _input_pop_name(model_file)
    spikes = (np.random.default_rng(3).random((2, 20, 3)) < 0.3).astype(np.uint8)
    np.savez(tmp_path / "in.npz", **{name: spikes})
    trace = tmp_path / "t.h5"
    code, stdout, _ = _run(capsys, "run", model_file, "--input", str(tmp_path / "in.npz"), "-o",
                           str(tmp_path / "out.h5"), "--dt", "1e-4", "--trace", str(trace))
    assert code == 0 and "trace of sample 0" in stdout
    t = read_trace(trace)
    np.testing.assert_array_equal(t.inputs[name], spikes[0])     # sample 0's input, not another sample's
    assert t.timesteps == 20 and t.spikes
    code, stdout, _ = _run(capsys, "conform", str(trace), str(trace))
    assert code == 0 and "RESULT: MATCH" in stdout


def test_run_errors_name_the_file(model_file, tmp_path, capsys):
    name = _input_pop_name(model_file)
    out = str(tmp_path / "out.h5")
    code, _, err = _run(capsys, "run", model_file, "--input", str(tmp_path / "nope.npz"), "-o", out)
    assert code == 2 and "nope.npz" in err and "does not exist" in err
    inp = tmp_path / "in.npz"
    np.savez(inp, **{name: np.ones((10, 3), np.uint8)})
    code, _, err = _run(capsys, "run", model_file, "--input", str(inp), "--ticks", "5", "-o", out)
    assert code == 2 and "would drop spikes" in err and "in.npz" in err
    np.savez(inp, wrong=np.ones((10, 3), np.uint8))
    code, _, err = _run(capsys, "run", model_file, "--input", str(inp), "-o", out)
    assert code == 2 and "match no input node" in err
    assert not os.path.exists(out)
