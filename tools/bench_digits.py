"""Real-data check of PTQ and QAT: scikit-learn's digits, rate-coded, through snnTorch, the chip forward and s2sim.

    PYTHONPATH=. python tools/bench_digits.py --json

Steps: load_digits (1797 8x8 images, offline), fixed stratified split (75 % train / 25 % test, seed 0), Bernoulli
rate code (pixel / 16 per tick, T ticks; test spikes drawn once with a fixed seed). A dense SNN
64 -> Linear -> Leaky(hidden) -> Linear -> Leaky(10) is trained with plain snnTorch (float). Then:
PTQ (s2sim.quantize.ptq, percentile rule with per-layer search on training-set calibration data), QAT fine-tuning
(s2sim.qat.QATModel) from the float weights, and the QAT model's integer network run in s2sim.Simulator.
Prediction = output neuron with the most spikes. Accuracies are percent on the test split.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import platform
import sys
import time

import numpy as np


def encode(images, ticks: int, seed: int):
    """Bernoulli rate code: [T, B, 64] spikes with P(spike) = pixel / 16."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    p = torch.as_tensor(images, dtype=torch.float32) / 16.0
    return (torch.rand((ticks, *p.shape), generator=gen) < p).float()


def build_model(hidden: int, beta: float):
    import snntorch as snn
    import torch.nn as nn

    # reset_delay=False: snnTorch then subtracts the threshold in the spiking step, as the chip does
    return nn.Sequential(
        nn.Linear(64, hidden),
        snn.Leaky(beta=beta, init_hidden=True, reset_delay=False),
        nn.Linear(hidden, 10),
        snn.Leaky(beta=beta, init_hidden=True, reset_delay=False, output=True),
    )


def train_epochs(forward, params, xtr_images, ytr, args, epochs: int, lr: float, seed: int) -> list[float]:
    """Adam on cross-entropy of output spike counts; a fresh rate code per epoch. Returns seconds per epoch."""
    from s2sim.training import fit

    codes: dict[int, object] = {}

    def batches(idx, epoch):
        if epoch not in codes:
            codes.clear()
            codes[epoch] = encode(xtr_images, args.ticks, seed * 1000 + epoch)
        return codes[epoch][:, idx]

    return fit(forward, params, batches, np.asarray(ytr), epochs, lr, args.batch, seed, args.logit_scale)


def epoch_times(model, qat_model, xtr_img, ytr, args, repeats: int = 3) -> tuple[float, float]:
    """Fastest of ``repeats`` epochs of plain snnTorch and of QAT training, run alternately on copies so that
    load from other processes hits both alike.
    """
    from s2sim.qat import QATModel
    from s2sim.training import snntorch_forward

    best_float, best_qat = float("inf"), float("inf")
    for r in range(repeats):
        m = copy.deepcopy(model)
        best_float = min(
            best_float,
            train_epochs(
                functools.partial(snntorch_forward, m), m.parameters(), xtr_img, ytr, args, 1, args.lr, 100 + r
            )[0],
        )
        q = QATModel(copy.deepcopy(qat_model.model), qat_model.input_shape, qat_model.config)
        best_qat = min(
            best_qat,
            train_epochs(lambda x, q=q: q(x)[0], q.parameters(), xtr_img, ytr, args, 1, args.qat_lr, 200 + r)[0],
        )
    return best_float, best_qat


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    ap.add_argument("--ticks", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--beta", type=float, default=0.9)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--qat-epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--qat-lr", type=float, default=2e-4)
    ap.add_argument("--logit-scale", type=float, default=0.5, help="spike counts times this are the CE logits")
    ap.add_argument("--calib", type=int, default=600, help="training samples used for PTQ calibration")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from s2sim import Simulator
    from s2sim.qat import QATModel
    from s2sim.quantize import QuantConfig, ptq
    from s2sim.training import accuracy, snntorch_forward

    start = time.perf_counter()
    torch.manual_seed(args.seed)
    digits = load_digits()
    xtr_img, xte_img, ytr, yte = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    ytr, yte = torch.as_tensor(ytr), torch.as_tensor(yte)
    x_test = encode(xte_img, args.ticks, seed=12345)

    model = build_model(args.hidden, args.beta)
    float_times = train_epochs(
        lambda x: snntorch_forward(model, x),
        model.parameters(),
        xtr_img,
        ytr,
        args,
        args.epochs,
        args.lr,
        args.seed + 1,
    )
    with torch.no_grad():
        float_pred = snntorch_forward(model, x_test).sum(0).argmax(1).numpy()
    float_acc = accuracy(float_pred, yte)

    calib_x = encode(xtr_img[: args.calib], args.ticks, seed=777)
    cfg = QuantConfig(scale_rule="percentile", threshold_search="per_layer")
    qm = ptq(model, calib_x, ytr[: args.calib], cfg)
    ptq_acc = accuracy(qm.predict(x_test), yte)
    ptq_max_acc = accuracy(ptq(model, calib_x, None, QuantConfig(scale_rule="max")).predict(x_test), yte)

    qat_model = QATModel(copy.deepcopy(model), (64,), QuantConfig(scale_rule="max"))
    qat_times = train_epochs(
        lambda x: qat_model(x)[0],
        qat_model.parameters(),
        xtr_img,
        ytr,
        args,
        args.qat_epochs,
        args.qat_lr,
        args.seed + 2,
    )
    with torch.no_grad():
        trace = qat_model.run(x_test, record_v=True)
    qat_pred = trace.spikes[-1].sum(0).argmax(1).numpy()
    qat_acc = accuracy(qat_pred, yte)

    frozen = qat_model.freeze()
    sim = Simulator(frozen.config.profile)
    t0 = time.perf_counter()
    res = sim.run_batch(frozen.to_network(record=("spikes", "v")), frozen.simulator_inputs(x_test))
    sim_seconds = time.perf_counter() - t0
    sim_pred = res.spikes[frozen.layers[-1].name].sum(1).argmax(1)
    sim_acc = accuracy(sim_pred, yte)
    identical = all(
        np.array_equal(trace.spikes[i].numpy().transpose(1, 0, 2).astype(np.uint8), res.spikes[name])
        and np.array_equal(
            np.ascontiguousarray(trace.voltages[i].numpy().transpose(1, 0, 2)).view(np.uint32),
            res.voltages[name].view(np.uint32),
        )
        for i, name in enumerate(trace.names)
    )

    float_epoch, qat_epoch = epoch_times(model, qat_model, xtr_img, ytr, args)
    out = {
        "float_acc": round(float_acc, 2),
        "ptq_acc": round(ptq_acc, 2),
        "qat_acc": round(qat_acc, 2),
        "sim_acc": round(sim_acc, 2),
        "sim_qat_agreement": round(accuracy(sim_pred, qat_pred), 2),
        "seconds": round(time.perf_counter() - start, 1),
        "ptq_max_rule_acc": round(ptq_max_acc, 2),
        "ptq_percentiles": list(qm.config.percentile),
        "sim_bit_identical": bool(identical),
        "float_epoch_s": round(float_epoch, 3),
        "qat_epoch_s": round(qat_epoch, 3),
        "qat_epoch_ratio": round(qat_epoch / float_epoch, 2),
        "train_seconds_float_qat": [round(sum(float_times), 1), round(sum(qat_times), 1)],
        "sim_test_seconds": round(sim_seconds, 3),
        "n_train": len(ytr),
        "n_test": len(yte),
        "ticks": args.ticks,
        "run_ticks": frozen.n_ticks(args.ticks),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpu, torch {torch.__version__}",
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(qm.report.format())
        for key, value in out.items():
            print(f"{key:>18}: {value}")
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
