"""tools/qat_rsynaptic.py: the QAT fine-tuning example runs end to end and its frozen network is bit-identical to the
simulator.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("snntorch")

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def test_qat_rsynaptic_example(saccade_cache, capsys):
    spec = importlib.util.spec_from_file_location("qat_rsynaptic", TOOLS / "qat_rsynaptic.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = example.main(
        [
            "--limit",
            "48",
            "--epochs",
            "1",
            "--qat-epochs",
            "1",
            "--ticks",
            "5",
            "--step-ms",
            "6",
            "--cache-dir",
            str(saccade_cache),
        ]
    )
    assert out["identical"] and out["sim"] == out["qat"]
    text = capsys.readouterr().out
    assert "lif_curr_exp_no_delay" in text and "RSynaptic" in text and "Fits one chip" in text
    assert "3.lif: lif_curr_exp" in text  # the NIR route: RSynaptic -> nested CubaLIF -> curr_exp population
