"""``s2sim demo``: the DVS Gesture pipeline end to end on shipped files, or the NIR paper's single-LIF benchmark.

The default run uses only files inside the package (``s2sim/data``): a small gesture network trained on
s2sim's synthetic gesture generator (float and QAT weights) and a few synthetic recordings. It converts the
recordings to chip input, quantizes the network, simulates it bit-exactly, prints the accuracy table, the NIR
route's conversion summary, the mapping and resource summary, and writes a spike raster. ``--data`` runs the
same pipeline on the test split of a local DVS Gesture copy (or synthetic copy) instead.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
FLOAT_MODEL = DATA_DIR / "gesture_float.npz"
QAT_MODEL = DATA_DIR / "gesture_qat.npz"
RECORDINGS = DATA_DIR / "gesture_recordings.npz"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="run the DVS Gesture pipeline on shipped files (or the NIR benchmark)",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nir-paper", action="store_true",
                        help="run the NIR paper's single-LIF benchmark instead (docs/datapath.md R§7)")
    parser.add_argument("--data", type=Path, help="folder holding DVSGesture/: evaluate its test split instead of "
                                                   "the shipped recordings")
    parser.add_argument("--limit", type=int, help="with --data: only the first N test samples")
    parser.add_argument("--float-model", type=Path, default=FLOAT_MODEL, help="float model (.npz)")
    parser.add_argument("--qat-model", type=Path, default=QAT_MODEL, help="QAT-trained model (.npz)")
    parser.add_argument("--raster", type=Path, default=Path("s2sim-demo-raster.png"),
                        help="spike raster to write (default ./s2sim-demo-raster.png)")
    parser.add_argument("--workers", type=int, help="simulator processes (default: none; the simulator's threads "
                        "run in this process on every core)")
    parser.add_argument("--dask", help="address of a running Dask scheduler to simulate on")
    parser.add_argument("--export", type=Path, metavar="DIR",
                        help="only write small sample files into DIR (a NIR model, input spikes, two traces, a "
                             "py-spinnaker2 script) for trying the other commands; see s2sim.samples")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.export is not None:
        return run_export(args)
    if args.nir_paper:
        return run_nir_paper(args)
    missing = [m for m in ("torch", "snntorch") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"s2sim demo: the gesture pipeline quantizes with torch and snntorch; missing: {', '.join(missing)}. "
              "Install them with `pip install torch==2.13.0` (CPU build, first), then `pip install s2sim[torch]`. "
              "`s2sim demo --nir-paper` runs with the core alone.", file=sys.stderr)
        return 2
    return run_gestures(args)


def run_export(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..samples import write_samples

    if args.nir_paper or args.data is not None:
        raise ConfigError("--export writes sample files and runs nothing: it cannot be combined with "
                          f"{'--nir-paper' if args.nir_paper else '--data'}")
    for path in write_samples(args.export):
        print(f"wrote {path}")
    print(f"try: cd {args.export} && s2sim run model.nir --input spikes.npz -o out.h5 --trace sim.h5")
    return 0


def run_nir_paper(args: argparse.Namespace) -> int:
    from ..benchmarks import NIR_PAPER_SPIKES, NIR_PAPER_TICKS, nir_paper_lif
    from ..simulator import Simulator

    net, _, lif = nir_paper_lif()
    sim = Simulator()
    sim.run(net, NIR_PAPER_TICKS)
    spikes = lif.get_spikes()[0]
    v = lif.get_voltages()[0]
    print(f"NIR paper single-LIF benchmark, {NIR_PAPER_TICKS} ticks, profile {sim.profile}")
    print(f"  output spikes (ticks): {spikes}")
    print(f"  published:             {list(NIR_PAPER_SPIKES)}")
    print(f"  peak membrane {float(v.max()):.4f} (threshold {float(lif.param('threshold')[0]):.2f})")
    match = spikes == list(NIR_PAPER_SPIKES)
    print("  match" if match else "  MISMATCH")
    return 0 if match else 1


def run_gestures(args: argparse.Namespace) -> int:
    from .. import gesture_model as gm
    from .. import gestures
    from ..errors import ConfigError
    from ..evaluate import run_gesture_pipeline

    t_start = time.perf_counter()
    model, config, meta = gm.load_model(args.float_model)
    qat_model, _, qat_meta = gm.load_model(args.qat_model)
    if "quant_config" not in qat_meta:
        raise ConfigError(f"{args.qat_model}: no quant_config in its metadata; write it with "
                          "tools/train_gesture.py --qat")
    qat_config = gm.quant_config_from_dict(qat_meta["quant_config"])
    print(f"DVS Gesture on SpiNNaker2 (s2sim): network {_describe(config)}")
    print(f"  float model {args.float_model.name}: trained on {meta.get('data', '?')} data, "
          f"{meta.get('epochs', '?')} epoch(s); QAT model {args.qat_model.name}: fine-tuned "
          f"{qat_meta.get('epochs', '?')} epoch(s), scale rule {qat_config.scale_rule}")
    if args.data is not None:
        test = gestures.load_spikes(args.data, False, config.frames)
        if args.limit:
            test = test.subset(slice(0, args.limit))
        source = f"test split of {gestures.dataset_dir(args.data)}"
    else:
        recordings, labels = gestures.load_recordings(RECORDINGS)
        test = gestures.recordings_to_spikes(zip(recordings, labels), config.frames)
        source = f"{len(test)} synthetic recordings shipped in {RECORDINGS.name} (not seen in training)"
    print(f"\n1. input: {source}\n   {test.summary()}")

    print("\n2. quantize (PTQ and the QAT model) and simulate")
    result = run_gesture_pipeline(model, config, test, qat_model=qat_model, qat_config=qat_config,
                                  workers=args.workers, dask_address=args.dask)
    print(_indent(result.format()))
    silent = result.simulation.silent_populations()
    if silent:
        print(f"   warning: population(s) {silent} never spiked")

    print("\n3. the NIR route (export_snntorch -> from_nir, py-spinnaker2's conversion of the float model)")
    print(_indent(_nir_route(model, config, test, args, result.qat.config)))

    print("\n4. mapping and resources of the simulated network")
    from ..placement import place

    print(_indent(place(result.network.net, result.qat.config.profile).format()))

    print("\n5. PE time and energy per sample (estimate, docs/timing.md)")
    print(_indent(_timing(result, test)))

    print("\n6. raster")
    path = _raster(result, test, args.raster)
    print(f"   wrote {path} (sample 0, label {int(test.labels[0])}: {gestures.CLASSES[int(test.labels[0])]})")
    print(f"\ndone in {time.perf_counter() - t_start:.1f} s")
    return 0


def _describe(config) -> str:
    c1, c2 = config.channels
    f = config.frames
    return (f"{f.polarities}x{f.size}x{f.size} -> conv{config.kernel}x{config.kernel} {c1} -> Leaky -> avgpool "
            f"{config.pool} -> conv{config.kernel}x{config.kernel} {c2} -> Leaky -> avgpool {config.pool} -> dense "
            f"{config.n_classes} -> Leaky, {f.n_time_bins} ticks per sample"
            f"{', trained with snnTorch reset_delay=True' if config.reset_delay else ''}")


def _nir_route(model, config, test, args, quant_config) -> str:
    import torch

    from ..evaluate import describe_format, evaluate
    from ..gesture_model import GestureNetwork
    from ..nir_import import ConversionConfig, convert
    from ..snntorch_export import export_snntorch

    graph = export_snntorch(model, torch.zeros(config.frames.input_shape))
    conv = convert(graph, ConversionConfig(dt=1e-4, conn_delay=0, scale_weights=True, integrator="forward"))
    (inp,), (out,) = conv.input_pops, conv.output_pops
    hops = len(conv.net.populations) - 1
    gnet = GestureNetwork(conv.net, inp, out, config.frames.n_time_bins + hops, hops)
    res = evaluate(gnet, test, workers=args.workers, dask_address=args.dask)
    pops = ", ".join(f"{p.name}: {p.neuron_model} {p.size}" for p in conv.net.populations)
    return (f"NIR graph of {len(graph.nodes)} nodes -> {pops}\n"
            f"weights scaled 127/max|W| per population, truncated toward zero (ChipProfile.weight_rounding)\n"
            f"simulator accuracy of this conversion: {100 * res.accuracy:.2f} % "
            f"(the PTQ/QAT rows above: {describe_format(quant_config)})")


#: The published DVS Gesture energies on SpiNNaker2 by DVFS mode (chip paper, as quoted in public summaries; the
#: unit of work, whole test set or one gesture, is not stated there), and the demo's ticks for them.
PUBLISHED_GESTURE_J = {"auto": 0.741, "high": 1.023, "low": 2.010}
PUBLISHED_TICK_S = {"auto": 1e-3, "high": 1e-3, "low": 2e-3}


def _timing(result, test) -> str:
    from ..simulator import Simulator
    from ..timing import TimingConfig

    gnet = result.network
    net = result.qat.to_network(record=("spikes",), name="dvs_gesture_timing")
    inputs = gnet.inputs(test.spikes)
    lines = [f"{'DVFS':<6} {'tick':>6} {'latency':>9} {'misses':>7} {'max time_done':>14} {'energy/sample':>14}   "
             "published (chip, unit of work not stated)"]
    calibration = set()
    for mode in ("low", "high", "auto"):
        for tick in sorted({1e-3, PUBLISHED_TICK_S[mode]}):
            res = Simulator(result.qat.config.profile, timing=TimingConfig(sys_tick_in_s=tick, dvfs=mode)).run_batch(
                net, inputs)
            t = res.timing.to_dict()
            calibration.update(t["calibration"])
            published = f"{PUBLISHED_GESTURE_J[mode]:.3f} J" if tick == PUBLISHED_TICK_S[mode] else ""
            lines.append(f"{mode:<6} {tick * 1e3:>4g} ms {t['latency_ms']:>6.0f} ms {t['deadline_misses']:>7} "
                         f"{t['bottleneck']['time_done']:>14.3f} {t['energy_per_sample_j']['mean'] * 1e3:>11.3f} mJ   "
                         f"{published}")
    lines.append("the published figures are for the paper's network and test set (not this small synthetic one): "
                 "compare the ordering of the modes, not the values")
    lines += [f"cycle costs: {c}" for c in sorted(calibration)]
    return "\n".join(lines)


def _raster(result, test, path: Path) -> Path:
    from ..plotting import NodeRecording, plot_recording
    from ..simulator import Simulator

    gnet = result.network
    net = result.qat.to_network(record=("spikes", "v"), name="dvs_gesture_raster")
    res = Simulator(result.qat.config.profile, num_threads=1).run_batch(net, gnet.inputs(test.spikes[:1]))
    recording = {name: NodeRecording(name, res.spikes[name], res.voltages.get(name), 1.0)
                 for name in result.qat.population_names}
    return Path(plot_recording(recording, str(path), sample=0, max_neurons=5))


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())
