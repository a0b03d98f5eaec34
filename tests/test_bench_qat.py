"""tools/bench_qat.py on a small batch: the JSON keys the project benchmark reads, and a bit-identical QAT model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("snntorch")

TOOL = Path(__file__).resolve().parents[1] / "tools" / "bench_qat.py"


def test_bench_qat_json(capsys):
    spec = importlib.util.spec_from_file_location("bench_qat", TOOL)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    try:
        assert bench.main(["--json", "--repeats", "2", "--warmup", "0", "--batch", "3", "--torch-loop"]) == 0
    finally:
        torch.set_num_threads(threads)  # the tool sets one thread; the rest of the session keeps its own
    out = json.loads(capsys.readouterr().out)
    assert out["qat_step_ratio_vs_snntorch"] > 0 and out["qat_torch_loop_step_ratio_vs_snntorch"] > 0
    lo, hi = out["ratio_spread"]
    assert 0 < lo <= hi and out["ratio_clock"] == "cpu"
    assert set(out["steps"]) == {"qat", "snntorch", "qat_torch_loop"}
    assert all(s["repeats"] == 2 and s["cpu"] > 0 for s in out["steps"].values())
    assert out["bit_identical"] is True
    setup = out["setup"]
    assert (setup["batch"], setup["ticks"], setup["qat_ticks"], setup["torch_threads"]) == (3, 32, 35, 1)
    assert len(out["load_average"]["before"]) == 3
