"""Quantize and evaluate the DVS Gesture network: one table of float, PTQ, QAT and simulator accuracy.

    python tools/eval_gesture.py --data ~/data --float float.npz --qat qat.npz
    python tools/eval_gesture.py --synthetic /tmp/syn --float float.npz --qat qat.npz --dask tcp://host:8786

PTQ is calibrated on ``--calib`` training samples; the QAT model is frozen with the quantisation settings stored
in its file. The test split runs in the simulator over local processes (``--workers``) or on an existing Dask
cluster (``--dask``). ``--json`` also writes the figures to a file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2sim import gesture_model as gm
from s2sim import gestures
from s2sim.errors import S2SimError


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="folder holding DVSGesture/ (tonic's layout)")
    src.add_argument("--synthetic", type=Path, help="folder holding synthetic recordings (train_gesture.py)")
    p.add_argument("--float", dest="float_model", type=Path, required=True, help="float model (.npz)")
    p.add_argument("--qat", dest="qat_model", type=Path, help="QAT-trained model (.npz); omit to simulate PTQ")
    p.add_argument("--calib", type=int, default=64, help="training samples for PTQ calibration (default 64)")
    p.add_argument("--scale-rule", default="max", choices=("max", "percentile", "mean_std"), help="PTQ scale rule")
    p.add_argument("--percentile", type=float, default=99.9, help="PTQ percentile (rule 'percentile')")
    p.add_argument(
        "--threshold-search",
        default="none",
        choices=("none", "global", "per_layer"),
        help="PTQ percentile search on the calibration samples (needs --scale-rule percentile)",
    )
    p.add_argument("--limit", type=int, help="evaluate only the first N test samples")
    p.add_argument("--workers", type=int, help="local simulator processes (default: one per core)")
    p.add_argument("--dask", help="address of a running Dask scheduler to simulate on")
    p.add_argument("--cache-dir", type=Path, help="where converted splits are cached")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from s2sim.evaluate import run_gesture_pipeline
    from s2sim.quantize import QuantConfig

    model, config, _meta = gm.load_model(args.float_model)
    qat_model, qat_config = None, None
    if args.qat_model is not None:
        qat_model, qat_net_config, qat_meta = gm.load_model(args.qat_model)
        if qat_net_config != config:
            raise S2SimError(f"{args.qat_model} has another network configuration than {args.float_model}")
        if "quant_config" not in qat_meta:
            raise S2SimError(f"{args.qat_model} records no quant_config; was it written by train_gesture.py --qat?")
        qat_config = gm.quant_config_from_dict(qat_meta["quant_config"])
    root = args.data if args.data is not None else args.synthetic
    test = gestures.load_spikes(root, False, config.frames, cache_dir=args.cache_dir, progress=True)
    train = gestures.load_spikes(root, True, config.frames, cache_dir=args.cache_dir, progress=True)
    if args.limit:
        test = test.subset(slice(0, args.limit))
    calib = train.subset(slice(0, args.calib))
    print(f"test: {test.summary()}")
    # PTQ in the QAT model's chip format (rounding, weight widths, profile), with the rule asked for
    ptq_config = replace(
        qat_config or QuantConfig(),
        scale_rule=args.scale_rule,
        percentile=args.percentile,
        threshold_search=args.threshold_search,
    )
    t0 = time.perf_counter()
    result = run_gesture_pipeline(
        model,
        config,
        test,
        qat_model=qat_model,
        qat_config=qat_config,
        calib=calib,
        ptq_config=ptq_config,
        workers=args.workers,
        dask_address=args.dask,
        progress=True,
    )
    print()
    print(result.ptq.report.format())
    print()
    print(result.format())
    silent = result.simulation.silent_populations()
    if silent:
        print(f"warning: population(s) {silent} never spiked on this split")
    print(f"total {time.perf_counter() - t0:.1f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rows": [{"stage": s, "accuracy": a, "measured_by": how} for s, a, how in result.rows],
                    "agreement": result.agreement,
                    "samples": result.samples,
                    "seconds": result.seconds,
                    "simulator": {
                        "backend": result.simulation.backend,
                        "workers": result.simulation.workers,
                        "seconds": result.simulation.seconds,
                    },
                    "float_model": str(args.float_model),
                    "qat_model": str(args.qat_model) if args.qat_model else None,
                    "data": str(root),
                },
                indent=1,
            )
        )
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except S2SimError as exc:
        print(f"eval_gesture: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
