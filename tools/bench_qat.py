#!/usr/bin/env python3
"""A QAT training step against a plain snnTorch training step of the same network, measured in this process.

    python tools/bench_qat.py --json                 # {"qat_step_ratio_vs_snntorch": ..., "setup": ..., ...}
    python tools/bench_qat.py --json --torch-loop    # also the torch neuron loop (the path of CUDA tensors)

Setup: the DVS Gesture conv net of s2sim.gesture_model (2x32x32 -> conv 5x5 16 -> Leaky -> avgpool 2 -> conv 5x5
32 -> Leaky -> avgpool 2 -> dense 11 -> Leaky), with the weights and quantization settings of the shipped QAT model
(s2sim/data/gesture_qat.npz: max rule, truncation, dense +-15), 32 ticks per sample, a batch of the shipped
recordings (s2sim/data/gesture_recordings.npz), one torch thread unless --threads. One step, on either side: zero
the gradients, forward, cross-entropy on half the output spike counts (s2sim.training's loss), backward, Adam step:

- ``qat``: ``QATModel(model)(x)`` (the chip arithmetic, 32 + 3 ticks, bit-identical to the simulator);
- ``snntorch``: ``s2sim.training.snntorch_forward`` (plain snnTorch, 32 steps) on a copy of the same model.

The sides run alternately (the order swaps every repeat) after warm-up steps; each step's CPU time of this process
(``time.process_time``) and wall time are recorded. ``qat_step_ratio_vs_snntorch`` is the median QAT step CPU time
over the median snnTorch step CPU time (below 1: QAT is faster); ``ratio_spread`` is the [min, max] of the ratios of
the two steps of one repeat; ``load_average`` comes from the OS before and after. ``bit_identical`` is
``s2sim.qat.verify`` on the measured batch after the steps (the QAT forward against the simulator, every spike
and membrane bit). ``--device cuda`` runs both sides on the GPU (wall times, synchronized).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATA = Path(__file__).resolve().parents[1] / "s2sim" / "data"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print one JSON object (default: a short text summary)")
    p.add_argument("--repeats", type=int, default=15, help="measured steps per side (default 15)")
    p.add_argument("--warmup", type=int, default=2, help="unmeasured steps per side first (default 2)")
    p.add_argument("--batch", type=int, default=32, help="samples per step (default 32, train_gesture's batch)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--device", default="cpu", help="torch device of both sides (default cpu)")
    p.add_argument(
        "--torch-loop",
        action="store_true",
        help="also time QAT with the torch neuron loop (backend='torch', what CUDA tensors run)",
    )
    return p.parse_args(argv)


def setup(batch: int, device: str):
    """(float model, QuantConfig, input spikes [T, B, 2, 32, 32], labels, description) on ``device``."""
    import numpy as np
    import torch

    from s2sim import gesture_model as gm
    from s2sim import gestures

    model, config, meta = gm.load_model(DATA / "gesture_qat.npz")
    qconfig = gm.quant_config_from_dict(meta["quant_config"])
    recordings, labels = gestures.load_recordings(DATA / "gesture_recordings.npz")
    data = gestures.recordings_to_spikes(zip(recordings, labels, strict=True), config.frames)
    index = np.arange(batch) % len(data)
    x = gm.time_first(data.spikes[index]).to(device)
    y = torch.from_numpy(data.labels[index]).to(device)
    desc = {
        "net": "gesture conv net (s2sim.gesture_model), shipped QAT weights",
        "batch": batch,
        "ticks": config.frames.n_time_bins,
        "qat_ticks": config.frames.n_time_bins + 3,
        "input_shape": list(config.frames.input_shape),
        "input_spike_rate": float(x.mean()),
        "quant_config": {
            "scale_rule": qconfig.scale_rule,
            "rounding": qconfig.rounding,
            "dense_model": qconfig.dense_model,
        },
        "step": "zero_grad, forward, cross-entropy on 0.5 x output spike counts, backward, Adam(lr=1e-4) step",
    }
    return model.to(device).train(), qconfig, x, y, desc


def make_step(forward: Callable[[Any], Any], params, y) -> Callable[[Any], None]:
    import torch
    import torch.nn.functional as F

    opt = torch.optim.Adam(params, lr=1e-4)

    def step(x) -> None:
        opt.zero_grad()
        loss = F.cross_entropy(forward(x).sum(0) * 0.5, y)
        loss.backward()
        opt.step()

    return step


def timed(step: Callable[[Any], None], x, device: str) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of one step."""
    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    c0, w0 = time.process_time(), time.perf_counter()
    step(x)
    sync()
    return time.process_time() - c0, time.perf_counter() - w0


def summary(samples: list[tuple[float, float]]) -> dict:
    cpu, wall = [s[0] for s in samples], [s[1] for s in samples]
    return {
        "cpu": statistics.median(cpu),
        "cpu_spread": [min(cpu), max(cpu)],
        "wall": statistics.median(wall),
        "wall_spread": [min(wall), max(wall)],
        "repeats": len(samples),
    }


def measure(steps: dict[str, Callable[[Any], None]], x, repeats: int, warmup: int, device: str) -> dict:
    """Every side's step, alternately, ``repeats`` times (the order reversed every other repeat)."""
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            steps[name](x)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            samples[name].append(timed(steps[name], x, device))
    return samples


def ratios(samples: dict, side: str, clock: int) -> tuple[float, list[float]]:
    """(median side time / median snnTorch time, [min, max] of the per-repeat ratios) on clock 0 (CPU) or 1."""
    mine, base = [s[clock] for s in samples[side]], [s[clock] for s in samples["snntorch"]]
    pairs = [a / b for a, b in zip(mine, base, strict=True)]
    return statistics.median(mine) / statistics.median(base), [min(pairs), max(pairs)]


def run(args: argparse.Namespace) -> dict:
    import torch

    from s2sim.qat import QATModel, verify
    from s2sim.training import snntorch_forward

    torch.set_num_threads(args.threads)
    model, qconfig, x, y, desc = setup(args.batch, args.device)
    reference = copy.deepcopy(model)
    qat = QATModel(model, desc["input_shape"], qconfig)
    steps = {
        "qat": make_step(lambda v: qat(v)[0], qat.parameters(), y),
        "snntorch": make_step(lambda v: snntorch_forward(reference, v), reference.parameters(), y),
    }
    if args.torch_loop:
        other = QATModel(copy.deepcopy(reference), desc["input_shape"], qconfig, backend="torch")
        steps["qat_torch_loop"] = make_step(lambda v: other(v)[0], other.parameters(), y)
    load_before = list(os.getloadavg())
    samples = measure(steps, x, args.repeats, args.warmup, args.device)
    load_after = list(os.getloadavg())
    clock = 1 if args.device.startswith("cuda") else 0  # CPU time means nothing for a GPU's work
    ratio, spread = ratios(samples, "qat", clock)
    out = {
        "qat_step_ratio_vs_snntorch": ratio,
        "ratio_spread": spread,
        "ratio_clock": "wall" if clock else "cpu",
        "qat_step_ratio_vs_snntorch_wall": ratios(samples, "qat", 1)[0],
        "steps": {name: summary(s) for name, s in samples.items()},
    }
    if args.torch_loop:
        out["qat_torch_loop_step_ratio_vs_snntorch"], out["qat_torch_loop_ratio_spread"] = ratios(
            samples, "qat_torch_loop", clock
        )
    out["bit_identical"] = verify(qat, x).identical
    out["setup"] = {
        **desc,
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "warmup": args.warmup,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    out["load_average"] = {"before": load_before, "after": load_after}
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    out = run(args)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    s = out["steps"]
    print(
        f"QAT step {s['qat']['cpu']:.3f} s, snnTorch step {s['snntorch']['cpu']:.3f} s (CPU time, medians of "
        f"{args.repeats}): ratio {out['qat_step_ratio_vs_snntorch']:.2f} (per-repeat ratios "
        f"{out['ratio_spread'][0]:.2f}-{out['ratio_spread'][1]:.2f}); bit-identical: {out['bit_identical']}; "
        f"load average {out['load_average']['before'][0]:.2f} -> {out['load_average']['after'][0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
