"""Scale-out evaluation: inline, local processes and a Dask cluster give the simulator's exact output, which
equals the quantized model's own (torch) chip forward.
"""

import numpy as np
import pytest
import torch

from s2sim import gesture_model as gm
from s2sim import gestures
from s2sim.errors import ConfigError, TraceError
from s2sim.evaluate import agreement, evaluate, run_gesture_pipeline
from s2sim.quantize import QuantConfig, ptq

FRAMES = gestures.FrameConfig(n_time_bins=8, size=16)
CONFIG = gm.GestureNetConfig(frames=FRAMES, channels=(4, 8))


@pytest.fixture(scope="module")
def data():
    recs, labels = gestures.synthetic_recordings(
        12, seed=7, config=gestures.SyntheticConfig(events=400, duration_ms=100)
    )
    return gestures.recordings_to_spikes(zip(recs, labels, strict=True), FRAMES)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = gm.build_torch_model(CONFIG)
    with torch.no_grad():
        for layer in gm.weight_layers(m):
            layer.weight.mul_(4.0)  # random weights strong enough that every layer spikes
    return m.eval()


@pytest.fixture(scope="module")
def quantized(model, data):
    return ptq(model, gm.time_first(data.spikes), torch.from_numpy(data.labels), QuantConfig(scale_rule="max"))


@pytest.fixture(scope="module")
def reference(quantized, data):
    """The quantized model's torch chip forward, aligned like the simulator's output."""
    with torch.no_grad():
        spk = quantized.forward(gm.time_first(data.spikes)).spikes[-1].numpy()
    n = len(quantized.layers)
    return spk.transpose(1, 0, 2)[:, n : n + FRAMES.n_time_bins]


def test_inline_matches_the_quantized_forward(quantized, data, reference):
    net = gm.chip_network(quantized, FRAMES.n_time_bins)
    res = evaluate(net, data, profile=quantized.config.profile, chunk_size=5)
    assert res.backend == "threads" and res.chunks == 3
    assert res.output_spikes.shape == (12, FRAMES.n_time_bins, 11)
    assert reference.sum() > 0  # a silent output would make the comparison vacuous
    np.testing.assert_array_equal(res.output_spikes, reference)
    assert agreement(reference, res) == {"prediction": 1.0, "spikes": 1.0}
    assert res.accuracy == np.mean(reference.sum(axis=1).argmax(axis=1) == data.labels)
    # the input population's activity is the input itself; every layer spiked
    np.testing.assert_array_equal(res.spikes_per_population["input"], data.spikes.sum(axis=(1, 2)))
    assert res.silent_populations() == []


def test_processes_and_dask_give_the_same_result(quantized, data):
    from dask.distributed import LocalCluster

    net = gm.chip_network(quantized, FRAMES.n_time_bins)
    inline = evaluate(net, data, workers=1)
    procs = evaluate(lambda: gm.chip_network(quantized, FRAMES.n_time_bins), data, workers=2, chunk_size=4)
    assert procs.backend == "processes" and procs.workers == 2 and procs.chunks == 3
    np.testing.assert_array_equal(procs.output_spikes, inline.output_spikes)
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        remote = evaluate(net, data, dask_address=cluster.scheduler_address, chunk_size=5)
    assert remote.backend == "dask" and remote.workers == 2
    np.testing.assert_array_equal(remote.output_spikes, inline.output_spikes)
    for name, counts in inline.spikes_per_population.items():
        np.testing.assert_array_equal(remote.spikes_per_population[name], counts)


def test_agreement_counts_samples(quantized, data, reference):
    res = evaluate(gm.chip_network(quantized, FRAMES.n_time_bins), data, workers=1)
    changed = reference.copy()
    changed[0] = 0
    changed[0, 0, (res.predictions[0] + 1) % 11] = 1  # sample 0 now predicts another class
    a = agreement(changed, res)
    assert a["spikes"] == pytest.approx(11 / 12) and a["prediction"] == pytest.approx(11 / 12)
    with pytest.raises(ConfigError, match="shape"):
        agreement(reference[:, :3], res)


def test_bad_inputs_are_refused(quantized, data):
    net = gm.chip_network(quantized, FRAMES.n_time_bins)
    with pytest.raises(ConfigError, match="0/1"):
        evaluate(net, (data.spikes * 2, data.labels), workers=1)
    with pytest.raises(ConfigError, match="labels"):
        evaluate(net, (data.spikes, data.labels[:3]), workers=1)
    with pytest.raises(ConfigError, match="workers"):
        evaluate(net, data, workers=0)
    with pytest.raises(ConfigError, match="GestureNetwork"):
        evaluate(quantized.to_network(), data)


def test_pipeline_table(model, data):
    res = run_gesture_pipeline(
        model, CONFIG, data, qat_model=model, qat_config=QuantConfig(scale_rule="max"), workers=1
    )
    stages = [row[0] for row in res.rows]
    assert stages[0].startswith("float") and stages[1].startswith("PTQ") and stages[2].startswith("QAT")
    assert stages[3].startswith("simulator")
    # the same weights and rule: QAT (torch chip forward), PTQ and the simulator agree exactly
    assert res.rows[1][1] == res.rows[2][1] == res.rows[3][1]
    assert res.agreement == {"prediction": 1.0, "spikes": 1.0}
    text = res.format()
    assert "QAT model vs simulator" in text and "12 samples" in text


def test_model_file_and_quant_config_round_trip(model, tmp_path, data):
    config = QuantConfig(scale_rule="percentile", percentile=(99.0, 98.0, 100.0), rounding="trunc")
    path = tmp_path / "m.npz"
    gm.save_model(path, model, CONFIG, {"quant_config": gm.quant_config_to_dict(config)})
    back, back_config, meta = gm.load_model(path)
    assert back_config == CONFIG
    assert gm.quant_config_from_dict(meta["quant_config"]) == config
    for a, b in zip(gm.model_weights(model), gm.model_weights(back), strict=True):
        np.testing.assert_array_equal(a.astype(np.float32), b.astype(np.float32))
    x = torch.from_numpy(data.spikes[:3]).float()
    with torch.no_grad():
        np.testing.assert_array_equal(gm.run_torch_model(model, x).numpy(), gm.run_torch_model(back, x).numpy())
    other = gm.GestureNetConfig(frames=FRAMES, channels=(2, 8))
    with pytest.raises(ConfigError):
        gm.GestureNetConfig(frames=gestures.FrameConfig(size=8))  # 8 -> conv 4 -> pool 2: too small for conv2
    gm.save_model(path, gm.build_torch_model(other), CONFIG)  # weights that do not fit the stored config
    with pytest.raises(TraceError, match="do not fit"):
        gm.load_model(path)


PLAIN_SCRIPT = """
import numpy as np
from s2sim import snn
from s2sim.evaluate import evaluate
from s2sim.gesture_model import GestureNetwork

inp = snn.Population(4, "spike_list", {{}}, name="input")
out = snn.Population(11, "lif_no_delay", {{"threshold": 2.0}}, name="out", record=["spikes"])
conns = [[i, j, 1 + (i + j) % 3, 0] for i in range(4) for j in range(11)]
net = snn.Network("plain").add(inp, out, snn.Projection(inp, out, conns))
spikes = (np.random.default_rng(0).random((6, 5, 4)) < 0.5).astype(np.uint8)
res = evaluate(GestureNetwork(net, "input", "out", 6, 1), (spikes, np.zeros(6, np.int64)), {args})
print(res.backend, int(res.output_spikes.sum()))
"""


@pytest.mark.parametrize("args, backend", [("", "threads"), ("workers=2, chunk_size=2", "threads")])
def test_a_plain_script_without_a_main_guard_finishes(tmp_path, args, backend):
    # By default evaluate() runs in this process; asked for processes, a script without an
    # `if __name__ == "__main__":` guard cannot start them (each worker re-runs the script): it falls back to
    # threads with a warning instead of hanging or crashing.
    import subprocess
    import sys

    script = tmp_path / "plain.py"
    script.write_text(PLAIN_SCRIPT.format(args=args))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    got_backend, total = run.stdout.split()
    assert got_backend == backend and int(total) > 0
    assert ("guard" in run.stderr) == ("workers=2" in args)
