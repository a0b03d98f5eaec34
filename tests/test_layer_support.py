"""Layers PTQ/QAT and the snnTorch exporter cannot take are refused by name, type and reason; identities at
inference (Dropout) are skipped by both; the training loop and the PTQ search report their progress.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
from torch import nn  # noqa: E402

from s2sim.errors import ConversionError  # noqa: E402
from s2sim.quantize import ptq  # noqa: E402
from s2sim.snntorch_export import export_snntorch  # noqa: E402


def _leaky():
    return snn.Leaky(beta=0.9, init_hidden=True)


@pytest.mark.parametrize("model, name, kind, why", [
    (lambda: nn.Sequential(nn.Linear(4, 3), snn.Alpha(alpha=0.9, beta=0.8, init_hidden=True)), "1", "Alpha",
     "two coupled synaptic currents"),
    (lambda: nn.Sequential(nn.Linear(4, 3), nn.ReLU(), _leaky()), "1", "ReLU", "non-spiking activation"),
    (lambda: nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), _leaky()), "1", "BatchNorm1d", "fold it"),
    # the LSTM holds a Conv2d inside: the refusal names the LSTM, not its inner convolution
    (lambda: nn.Sequential(snn.SConv2dLSTM(1, 2, 3, init_hidden=True)), "0", "SConv2dLSTM", "LSTM gates"),
])
def test_refused_layers_are_named_with_the_reason(model, name, kind, why):
    shape = (1, 4, 4) if kind == "SConv2dLSTM" else (4,)
    x = (torch.rand(3, 2, *shape, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    for convert in (lambda m: ptq(m, x), lambda m: export_snntorch(m, torch.zeros(shape))):
        with pytest.raises(ConversionError) as info:
            convert(model())
        text = str(info.value)
        assert f"layer {name!r} ({kind}) cannot run on SpiNNaker2" in text and why in text, text
        assert "Supported:" in text and "RSynaptic" in text


def test_dropout_is_an_identity_for_ptq_and_the_exporter():
    torch.manual_seed(0)
    with_dropout = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5), _leaky()).eval()
    plain = nn.Sequential(with_dropout[0], with_dropout[2]).eval()
    graph = export_snntorch(with_dropout, torch.zeros(4))
    # nodes keep the names of the user's layers: Linear "0", Leaky "2"; the Dropout "1" is gone
    assert sorted(graph.nodes) == ["0", "2", "input", "output"]
    assert sorted(graph.edges) == [("0", "2"), ("2", "output"), ("input", "0")]
    ref = export_snntorch(plain, torch.zeros(4))
    np.testing.assert_array_equal(graph.nodes["0"].weight, ref.nodes["0"].weight)
    x = (torch.rand(6, 5, 4, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    got, want = ptq(with_dropout, x).simulate(x), ptq(plain, x).simulate(x)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_training_logs_every_epoch(caplog):
    from s2sim.training import fit

    model = nn.Linear(4, 3)
    x = torch.rand(30, 4, generator=torch.Generator().manual_seed(1))
    labels = np.arange(30) % 3
    with caplog.at_level(logging.INFO, logger="s2sim"):
        times = fit(lambda inp: model(inp).unsqueeze(0), model.parameters(),
                    lambda idx, epoch: x[torch.as_tensor(idx)], labels, epochs=2, lr=1e-2, batch_size=8,
                    progress=False)
    epochs = [r.getMessage() for r in caplog.records if r.name == "s2sim" and "epoch" in r.getMessage()]
    assert len(times) == 2 and len(epochs) == 2
    assert epochs[0].startswith("epoch 1/2: mean loss ") and epochs[1].startswith("epoch 2/2: mean loss ")


def test_ptq_percentile_search_shows_progress_and_logs_its_choice(caplog, capsys):
    from s2sim import progress
    from s2sim.quantize import QuantConfig

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), _leaky(), nn.Linear(4, 3), _leaky()).eval()
    x = (torch.rand(8, 10, 6, generator=torch.Generator().manual_seed(3)) < 0.4).float()
    y = torch.arange(10) % 3
    config = QuantConfig(scale_rule="percentile", threshold_search="per_layer", search_percentiles=(100.0, 99.0))
    previous = progress.set_mode("on")
    try:
        with caplog.at_level(logging.INFO, logger="s2sim"):
            qm = ptq(model, x, y, config)
    finally:
        progress.set_mode(previous)
    err = capsys.readouterr().err
    assert "PTQ percentile search" in err and "6/6" in err  # 2 candidates x (1 global + 2 layers)
    messages = [r.getMessage() for r in caplog.records if r.name == "s2sim"]
    assert any(m.startswith("PTQ search: best global percentile") for m in messages)
    chosen = [m for m in messages if m.startswith("PTQ search: per-layer percentiles")]
    accuracy = dict(qm.report.search)[qm.config.percentile]
    assert chosen == [(f"PTQ search: per-layer percentiles {qm.config.percentile} (calibration accuracy "
                       f"{accuracy:.2f} %)")]
