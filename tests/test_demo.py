"""``s2sim demo``: the gesture pipeline on the shipped files, on a local data folder, and the NIR benchmark."""

import re

from s2sim import gesture_model as gm
from s2sim import gestures
from s2sim.cli import main
from s2sim.cli.demo import FLOAT_MODEL, QAT_MODEL, RECORDINGS


def test_shipped_files_are_small_and_consistent():
    _model, config, meta = gm.load_model(FLOAT_MODEL)
    _, qat_config, qat_meta = gm.load_model(QAT_MODEL)
    assert config == qat_config and meta["data"] == "synthetic"
    assert qat_meta["qat"] and "quant_config" in qat_meta
    _recordings, labels = gestures.load_recordings(RECORDINGS)
    assert sorted(set(labels.tolist())) == list(range(gestures.N_CLASSES))
    for path in (FLOAT_MODEL, QAT_MODEL, RECORDINGS):
        assert path.stat().st_size < 450_000


def test_demo_runs_the_gesture_pipeline_on_shipped_files(tmp_path, capsys):
    raster = tmp_path / "raster.png"
    assert main(["demo", "--raster", str(raster), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    for stage in ("float (snnTorch)", "PTQ (", "QAT (", "simulator (s2sim"):
        assert re.search(re.escape(stage) + r".*\d+\.\d\d %", out), stage
    # the simulator runs exactly what the QAT model computes
    assert "QAT model vs simulator, per sample   prediction 100.00 %, output spike trains identical 100.00 %" in out
    assert "Resource report" in out and "PEs used" in out
    assert "NIR graph of" in out
    assert raster.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_on_a_data_folder(tmp_path, capsys):
    gestures.write_synthetic_dataset(tmp_path, 100, 100, seed=9, config=gestures.SyntheticConfig(events=500))
    assert (
        main(["demo", "--data", str(tmp_path), "--limit", "4", "--raster", str(tmp_path / "r.png"), "--workers", "1"])
        == 0
    )
    out = capsys.readouterr().out
    assert "test split of" in out and "4 samples" in out


def test_demo_reports_a_missing_data_folder(tmp_path, capsys):
    assert main(["demo", "--data", str(tmp_path / "none")]) == 2  # the CLI's exit status for an error
    assert "ibmGestureTest.tar.gz does not exist" in capsys.readouterr().err


def test_nir_paper_benchmark_is_still_available(capsys):
    assert main(["demo", "--nir-paper"]) == 0
    assert "match" in capsys.readouterr().out
