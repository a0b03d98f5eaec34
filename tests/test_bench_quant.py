"""tools/bench_quant.py end to end on a few samples: the row schema of the issue, and QAT == simulator."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("snntorch")
pytest.importorskip("sklearn")

TOOL = Path(__file__).resolve().parents[1] / "tools" / "bench_quant.py"


def test_bench_quant_json_rows(saccade_cache, capsys):
    spec = importlib.util.spec_from_file_location("bench_quant", TOOL)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(
        [
            "--json",
            "--seeds",
            "1",
            "--limit",
            "24",
            "--epochs",
            "1",
            "--qat-epochs",
            "1",
            "--calib",
            "16",
            "--ticks",
            "5",
            "--step-ms",
            "6",
            "--cache-dir",
            str(saccade_cache),
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert [(r["net"], r["bits"]) for r in out["rows"]] == [
        ("conv", 8),
        ("conv", 4),
        ("recurrent", 8),
        ("recurrent", 4),
    ]
    for row in out["rows"]:
        assert list(row) == ["net", "bits", "float", "ptq", "qat", "sim", "agreement", "seeds"]
        assert row["seeds"] == 1 and all(0 <= row[k] <= 100 for k in ("float", "ptq", "qat", "sim"))
        # the simulator runs exactly what the QAT model computes
        assert row["sim"] == row["qat"] and row["agreement"] == 100.0
    assert {d["net"] for d in out["details"]} == {"conv", "recurrent"} and out["data"]["test"] == 24
