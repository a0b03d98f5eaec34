"""Train the DVS Gesture network (s2sim.gesture_model), in float or quantization-aware, on the real data or on
synthetic recordings.

    python tools/train_gesture.py --data ~/data --out float.npz                  # real DVS Gesture (local copy)
    python tools/train_gesture.py --synthetic /tmp/syn --out float.npz           # writes synthetic data if absent
    python tools/train_gesture.py --synthetic /tmp/syn --init float.npz --qat --epochs 2 --lr 1e-4 --out qat.npz
    python tools/train_gesture.py --recordings recordings.npz --n-recordings 55    # held-out synthetic recordings

``--qat`` fine-tunes through s2sim.qat.QATModel, whose forward is the chip's arithmetic (integer weights,
float32 FMA, one tick per layer); the test accuracy printed each epoch is then the simulator's, on the frozen
integer network. The quantisation settings are stored in the model file, so freezing it later gives the same
integers.

Every epoch writes a checkpoint (model, optimiser, epoch, history, random states) next to ``--out``; run the same
command with ``--resume`` to continue after an interruption. The final weights go to ``--out`` (s2sim's
``.npz`` model format, no pickle); quantisation and evaluation are tools/eval_gesture.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2sim import gesture_model as gm
from s2sim import gestures
from s2sim.errors import S2SimError


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="folder holding DVSGesture/ (tonic's layout)")
    src.add_argument("--synthetic", type=Path, help="folder for synthetic recordings (written when absent)")
    src.add_argument(
        "--recordings",
        type=Path,
        help="only write --n-recordings synthetic recordings (generator "
        "seed --recordings-seed, not used in training) to this file, "
        "as shipped in s2sim/data for the demo",
    )
    p.add_argument("--n-recordings", type=int, default=55, help="recordings for --recordings (default 55)")
    p.add_argument("--recordings-seed", type=int, default=2026, help="generator seed for --recordings")
    p.add_argument("--n-train", type=int, default=550, help="synthetic train recordings (default 550)")
    p.add_argument("--n-test", type=int, default=220, help="synthetic test recordings (default 220)")
    p.add_argument("--events", type=int, default=3000, help="mean events per synthetic recording (default 3000)")
    p.add_argument("--bins", type=int, default=32, help="time bins = chip ticks per sample (default 32)")
    p.add_argument("--size", type=int, default=32, help="downsampled width/height (default 32)")
    p.add_argument("--beta", type=float, default=0.9, help="membrane decay of every Leaky layer (default 0.9)")
    p.add_argument(
        "--reset-delay",
        action="store_true",
        help="train with snnTorch's default reset_delay=True (the chip resets at once; PTQ inherits the "
        "difference, QAT trains it away)",
    )
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--init", type=Path, help="start from this model file (its configuration wins over --bins etc.)")
    p.add_argument("--qat", action="store_true", help="quantization-aware fine-tuning (chip arithmetic forward)")
    p.add_argument(
        "--scale-rule",
        default="max",
        choices=("max", "percentile", "mean_std"),
        help="QAT weight scale rule per layer (default max)",
    )
    p.add_argument("--percentile", type=float, default=99.9, help="percentile of the percentile rule")
    p.add_argument(
        "--rounding",
        default="nearest_even",
        choices=("nearest_even", "trunc"),
        help="QAT weight rounding (trunc: toward zero, as py-spinnaker2's conv path)",
    )
    p.add_argument(
        "--dense-model",
        default="lif_no_delay",
        choices=("lif_no_delay", "lif"),
        help="QAT chip model of the dense output layer (lif: the 4-bit weights of the delay models)",
    )
    p.add_argument("--max-weight", type=int, help="QAT: cap every layer's integer weights at +-this")
    p.add_argument("--out", type=Path, help="model file to write (.npz); required unless --recordings")
    p.add_argument("--checkpoint", type=Path, help="checkpoint file (default: <out>.ckpt.pt)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument("--cache-dir", type=Path, help="where converted splits are cached")
    return p.parse_args(argv)


def load_data(args: argparse.Namespace, frames: gestures.FrameConfig):
    root = args.data
    if args.synthetic is not None:
        root = args.synthetic
        if gestures.missing_files_message(root, True) or gestures.missing_files_message(root, False):
            print(f"writing {args.n_train} + {args.n_test} synthetic recordings to {gestures.dataset_dir(root)}")
            gestures.write_synthetic_dataset(
                root, args.n_train, args.n_test, seed=args.seed, config=gestures.SyntheticConfig(events=args.events)
            )
    train = gestures.load_spikes(root, True, frames, cache_dir=args.cache_dir, progress=True)
    test = gestures.load_spikes(root, False, frames, cache_dir=args.cache_dir, progress=True)
    print(f"train: {train.summary()}\ntest:  {test.summary()}")
    return root, train, test


def float_accuracy(model, data: gestures.GestureSpikes, batch_size: int = 64) -> float:
    import torch

    correct = 0
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            x = torch.from_numpy(data.spikes[start : start + batch_size]).float()
            counts = gm.run_torch_model(model, x).sum(dim=1).numpy()
            correct += int((gm.predict(counts) == data.labels[start : start + batch_size]).sum())
    return correct / max(len(data), 1)


def simulator_accuracy(qat, data: gestures.GestureSpikes, n_bins: int) -> float:
    from s2sim.evaluate import evaluate

    frozen = qat.freeze()
    return evaluate(gm.chip_network(frozen, n_bins), data, profile=frozen.config.profile).accuracy


def setup(args: argparse.Namespace):
    """Model, the function giving logits [batch, classes] for spikes [batch, T, n_inputs], and the test metric."""
    import torch

    if args.init is not None:
        model, config, _ = gm.load_model(args.init)
    else:
        frames = gestures.FrameConfig(n_time_bins=args.bins, size=args.size)
        config = gm.GestureNetConfig(frames=frames, beta=args.beta, reset_delay=args.reset_delay)
        torch.manual_seed(args.seed)
        model = gm.build_torch_model(config)
    model.train()
    n_bins = config.frames.n_time_bins
    if not args.qat:
        return (
            model,
            model,
            config,
            None,
            (lambda x: gm.run_torch_model(model, x).sum(dim=1)),
            (lambda data: float_accuracy(model, data)),
        )
    from s2sim.qat import QATModel
    from s2sim.quantize import QuantConfig

    qconfig = QuantConfig(
        scale_rule=args.scale_rule,
        percentile=args.percentile,
        rounding=args.rounding,
        dense_model=args.dense_model,
        max_weight=args.max_weight,
    )
    qat = QATModel(model, config.frames.input_shape, qconfig)
    # output spikes over the whole run, the chip's pipeline ticks included: that is what the chip counts
    return (
        model,
        qat,
        config,
        qconfig,
        (lambda x: qat(gm.time_first(x.numpy()))[0].sum(dim=0)),
        (lambda data: simulator_accuracy(qat, data, n_bins)),
    )


def train(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    if args.threads:
        torch.set_num_threads(args.threads)
    model, trained, config, qconfig, logits_of, test_metric = setup(args)
    root, train_set, test_set = load_data(args, config.frames)
    opt = torch.optim.Adam(trained.parameters(), lr=args.lr)
    ckpt = args.checkpoint or args.out.with_suffix(".ckpt.pt")
    state = {"epoch": 0, "history": [], "rng": np.random.default_rng(args.seed).bit_generator.state}
    if args.resume and ckpt.is_file():
        saved = torch.load(ckpt, weights_only=False)
        if saved["config"] != config.to_dict() or saved.get("qat") != args.qat:
            raise S2SimError(
                f"checkpoint {ckpt} was written for another configuration: {saved['config']} (qat={saved.get('qat')})"
            )
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
        state = {k: saved[k] for k in state}
        print(f"resumed from {ckpt} after epoch {state['epoch']}")
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(state["epoch"], args.epochs):
        model.train()
        order = rng.permutation(len(train_set))
        bar = tqdm(range(0, len(order), args.batch_size), desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch")
        total, seen, t0 = 0.0, 0, time.time()
        for start in bar:
            idx = order[start : start + args.batch_size]
            x = torch.from_numpy(train_set.spikes[idx]).float()
            y = torch.from_numpy(train_set.labels[idx])
            # spike counts as logits: the class is read off the counts on the chip too
            loss = loss_fn(logits_of(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{total / seen:.3f}")
        model.eval()
        test_acc = test_metric(test_set)
        state["epoch"] = epoch + 1
        state["history"].append(
            {"epoch": epoch + 1, "loss": total / seen, "test_accuracy": test_acc, "seconds": time.time() - t0}
        )
        state["rng"] = rng.bit_generator.state
        kind = "simulator" if args.qat else "float"
        print(f"epoch {epoch + 1}: loss {total / seen:.4f}, test accuracy ({kind}) {100 * test_acc:.2f} %")
        tmp = ckpt.with_suffix(".tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "config": config.to_dict(),
                "qat": args.qat,
                "torch_rng": torch.get_rng_state(),
                **state,
            },
            tmp,
        )
        tmp.replace(ckpt)
    meta = {
        "data": "synthetic" if args.synthetic is not None else "dvs_gesture",
        "root": str(root),
        "train_samples": len(train_set),
        "test_samples": len(test_set),
        "epochs": state["epoch"],
        "lr": args.lr,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "history": state["history"],
        "qat": args.qat,
        "init": str(args.init) if args.init else None,
    }
    if qconfig is not None:
        meta["quant_config"] = gm.quant_config_to_dict(qconfig)
    if args.synthetic is not None:
        meta["synthetic"] = {"n_train": args.n_train, "n_test": args.n_test, "events": args.events, "seed": args.seed}
    gm.save_model(args.out, model, config, meta)
    print(f"wrote {args.out}")
    print(json.dumps(state["history"][-1]))
    return 0


def write_recordings(args: argparse.Namespace) -> int:
    recordings, labels = gestures.synthetic_recordings(
        args.n_recordings, args.recordings_seed, gestures.SyntheticConfig(events=args.events)
    )
    gestures.save_recordings(args.recordings, recordings, labels)
    print(f"wrote {len(recordings)} synthetic recordings (seed {args.recordings_seed}) to {args.recordings}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.recordings is None and args.out is None:
        print("train_gesture: error: --out is required (unless --recordings)", file=sys.stderr)
        return 2
    try:
        return write_recordings(args) if args.recordings is not None else train(args)
    except S2SimError as exc:
        print(f"train_gesture: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
