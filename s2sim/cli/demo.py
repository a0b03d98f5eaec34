"""``s2sim demo``: the DVS Gesture pipeline end to end on shipped files, or the NIR paper's single-LIF benchmark.

The default run uses only files inside the package (``s2sim/data``): a small gesture network trained on
s2sim's synthetic gesture generator (float and QAT weights) and a few synthetic recordings. It converts the
recordings to chip input, quantizes the network, simulates it bit-exactly, prints the accuracy table, the NIR
route's conversion summary, the mapping and resource summary, and writes a spike raster. ``--data`` runs the
same pipeline on the test split of a local DVS Gesture copy (or synthetic copy) instead.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from .checks import positive_int, require

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
    parser.add_argument("--limit", type=positive_int, help="with --data: only the first N test samples")
    parser.add_argument("--float-model", type=Path, default=FLOAT_MODEL, help="float model (.npz)")
    parser.add_argument("--qat-model", type=Path, default=QAT_MODEL, help="QAT-trained model (.npz)")
    parser.add_argument("--raster", type=Path, default=Path("s2sim-demo-raster.png"),
                        help="spike raster to write (default ./s2sim-demo-raster.png)")
    parser.add_argument("--workers", type=positive_int,
                        help="simulator processes (default: none; the simulator's threads run in this process on "
                             "every core)")
    parser.add_argument("--dask", help="address of a running Dask scheduler to simulate on")
    parser.add_argument("--export", type=Path, metavar="DIR",
                        help="only write small sample files into DIR (a NIR model, input spikes, two traces, a "
                             "py-spinnaker2 script) for trying the other commands; see s2sim.samples")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (accuracies, agreement, resources, timing, files) instead of "
                             "the text report; the phases are then reported on stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.export is not None:
        return run_export(args)
    from ..errors import ConfigError

    if args.limit is not None and args.data is None:
        raise ConfigError("--limit applies to --data (the shipped recordings are always run whole)")
    if args.nir_paper:
        return run_nir_paper(args)
    require("s2sim demo (the gesture pipeline; `s2sim demo --nir-paper` runs with the core alone)",
            {"torch": "quantizing", "snntorch": "the float model", "tonic": "framing the event recordings",
             "matplotlib": "the raster"})
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
    match = spikes == list(NIR_PAPER_SPIKES)
    if args.json:
        print(json.dumps({"benchmark": "nir_paper_lif", "ticks": NIR_PAPER_TICKS, "spikes": list(spikes),
                          "published": list(NIR_PAPER_SPIKES), "peak_v": float(v.max()),
                          "threshold": float(lif.param("threshold")[0]), "match": match}, indent=1))
        return 0 if match else 1
    print(f"NIR paper single-LIF benchmark, {NIR_PAPER_TICKS} ticks, profile {sim.profile}")
    print(f"  output spikes (ticks): {spikes}")
    print(f"  published:             {list(NIR_PAPER_SPIKES)}")
    print(f"  peak membrane {float(v.max()):.4f} (threshold {float(lif.param('threshold')[0]):.2f})")
    print("  match" if match else "  MISMATCH")
    return 0 if match else 1


class _Report:
    """The demo's output: text on stdout as it goes, or (``--json``) phases on stderr and one JSON object."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.data: dict[str, Any] = {}

    def phase(self, number: int, title: str) -> None:
        if self.as_json:
            from ..progress import step

            step("%d/%d %s", number, PHASES, title)
        else:
            print(f"\n{number}. {title}")

    def text(self, text: str, indent: bool = True) -> None:
        if not self.as_json:
            print(_indent(text) if indent else text)

    def finish(self) -> None:
        if self.as_json:
            print(json.dumps(self.data, indent=1, default=_json_default))


#: Phases of the gesture demo (input, quantize and simulate, NIR route, resources, time and energy, raster).
PHASES = 6


def run_gestures(args: argparse.Namespace) -> int:
    from .. import gesture_model as gm
    from .. import gestures
    from ..errors import ConfigError
    from ..evaluate import run_gesture_pipeline

    out = _Report(args.json)
    t_start = time.perf_counter()
    model, config, meta = gm.load_model(args.float_model)
    qat_model, _, qat_meta = gm.load_model(args.qat_model)
    if "quant_config" not in qat_meta:
        raise ConfigError(f"{args.qat_model}: no quant_config in its metadata; write it with "
                          "tools/train_gesture.py --qat")
    qat_config = gm.quant_config_from_dict(qat_meta["quant_config"])
    out.text(f"DVS Gesture on SpiNNaker2 (s2sim): network {_describe(config)}\n"
             f"  float model {args.float_model.name}: trained on {meta.get('data', '?')} data, "
             f"{meta.get('epochs', '?')} epoch(s); QAT model {args.qat_model.name}: fine-tuned "
             f"{qat_meta.get('epochs', '?')} epoch(s), scale rule {qat_config.scale_rule}", indent=False)
    out.data["network"] = _describe(config)

    out.phase(1, "input")
    if args.data is not None:
        test = gestures.load_spikes(args.data, False, config.frames)
        if args.limit:
            test = test.subset(slice(0, args.limit))
        source = f"test split of {gestures.dataset_dir(args.data)}"
    else:
        recordings, labels = gestures.load_recordings(RECORDINGS)
        test = gestures.recordings_to_spikes(zip(recordings, labels), config.frames)
        source = f"{len(test)} synthetic recordings shipped in {RECORDINGS.name} (not seen in training)"
    out.text(f"{source}\n{test.summary()}")
    out.data["input"] = {"source": source, "samples": len(test), "summary": test.summary()}

    out.phase(2, "quantize (PTQ and the QAT model) and simulate")
    result = run_gesture_pipeline(model, config, test, qat_model=qat_model, qat_config=qat_config,
                                  workers=args.workers, dask_address=args.dask)
    out.text(result.format())
    silent = result.simulation.silent_populations()
    if silent:
        out.text(f"warning: population(s) {silent} never spiked")
    out.data["accuracy"] = [{"stage": stage, "accuracy": acc, "measured_by": how} for stage, acc, how in result.rows]
    out.data["agreement"] = {"reference": result.reference, **result.agreement}
    out.data["silent_populations"] = silent

    out.phase(3, "the NIR route (export_snntorch -> from_nir, py-spinnaker2's conversion of the float model)")
    text, out.data["nir_route"] = _nir_route(model, config, test, args, result.qat.config)
    out.text(text)

    out.phase(4, "mapping and resources of the simulated network")
    from ..placement import place

    placement = place(result.network.net, result.qat.config.profile)
    out.text(placement.format())
    out.data["placement"] = placement.to_dict()

    out.phase(5, "PE time and energy per sample (estimate, docs/timing.md)")
    text, out.data["timing"] = _timing(result, test)
    out.text(text)

    out.phase(6, "raster")
    path = _raster(result, test, args.raster)
    label = int(test.labels[0])
    out.text(f"wrote {path} (sample 0, label {label}: {gestures.CLASSES[label]})")
    out.data["files"] = {"raster": str(path)}
    out.data["seconds"] = time.perf_counter() - t_start
    out.text(f"\ndone in {out.data['seconds']:.1f} s", indent=False)
    out.finish()
    return 0


def _json_default(obj: Any) -> Any:
    from .convert import json_default

    return json_default(obj)


def _describe(config) -> str:
    c1, c2 = config.channels
    f = config.frames
    return (f"{f.polarities}x{f.size}x{f.size} -> conv{config.kernel}x{config.kernel} {c1} -> Leaky -> avgpool "
            f"{config.pool} -> conv{config.kernel}x{config.kernel} {c2} -> Leaky -> avgpool {config.pool} -> dense "
            f"{config.n_classes} -> Leaky, {f.n_time_bins} ticks per sample"
            f"{', trained with snnTorch reset_delay=True' if config.reset_delay else ''}")


def _nir_route(model, config, test, args, quant_config) -> tuple[str, dict[str, Any]]:
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
    text = (f"NIR graph of {len(graph.nodes)} nodes -> {pops}\n"
            f"weights scaled 127/max|W| per population, truncated toward zero (ChipProfile.weight_rounding)\n"
            f"simulator accuracy of this conversion: {100 * res.accuracy:.2f} % "
            f"(the PTQ/QAT rows above: {describe_format(quant_config)})")
    return text, {"nodes": len(graph.nodes), "populations": [[p.name, p.neuron_model, p.size]
                                                             for p in conv.net.populations],
                  "accuracy": res.accuracy}


#: The published DVS Gesture energies on SpiNNaker2 by DVFS mode (chip paper, as quoted in public summaries; the
#: unit of work, whole test set or one gesture, is not stated there), and the demo's ticks for them.
PUBLISHED_GESTURE_J = {"auto": 0.741, "high": 1.023, "low": 2.010}
PUBLISHED_TICK_S = {"auto": 1e-3, "high": 1e-3, "low": 2e-3}


def _timing(result, test) -> tuple[str, list[dict[str, Any]]]:
    from ..simulator import Simulator
    from ..timing import TimingConfig

    gnet = result.network
    net = result.qat.to_network(record=("spikes",), name="dvs_gesture_timing")
    inputs = gnet.inputs(test.spikes)
    lines = [f"{'DVFS':<6} {'tick':>6} {'latency':>9} {'misses':>7} {'max time_done':>14} {'energy/sample':>14}   "
             "published (chip, unit of work not stated)"]
    calibration = set()
    rows = []
    for mode in ("low", "high", "auto"):
        for tick in sorted({1e-3, PUBLISHED_TICK_S[mode]}):
            res = Simulator(result.qat.config.profile, timing=TimingConfig(sys_tick_in_s=tick, dvfs=mode)).run_batch(
                net, inputs)
            t = res.timing.to_dict()
            calibration.update(t["calibration"])
            published = f"{PUBLISHED_GESTURE_J[mode]:.3f} J" if tick == PUBLISHED_TICK_S[mode] else ""
            rows.append({"dvfs": mode, "tick_s": tick, "latency_ms": t["latency_ms"],
                         "deadline_misses": t["deadline_misses"], "max_time_done": t["bottleneck"]["time_done"],
                         "energy_per_sample_j": t["energy_per_sample_j"]["mean"]})
            lines.append(f"{mode:<6} {tick * 1e3:>4g} ms {t['latency_ms']:>6.0f} ms {t['deadline_misses']:>7} "
                         f"{t['bottleneck']['time_done']:>14.3f} {t['energy_per_sample_j']['mean'] * 1e3:>11.3f} mJ   "
                         f"{published}")
    lines.append("the published figures are for the paper's network and test set (not this small synthetic one): "
                 "compare the ordering of the modes, not the values")
    lines += [f"cycle costs: {c}" for c in sorted(calibration)]
    return "\n".join(lines), rows


def _raster(result, test, path: Path) -> Path:
    from ..gestures import CLASSES
    from ..plotting import NodeRecording, plot_recording
    from ..simulator import Simulator
    from .run import _threshold

    gnet = result.network
    net = result.qat.to_network(record=("spikes", "v"), name="dvs_gesture_raster")
    res = Simulator(result.qat.config.profile, num_threads=1).run_batch(net, gnet.inputs(test.spikes[:1]))
    pops = {p.name: p for p in net.populations}
    last = result.qat.population_names[-1]
    # one tick per sys_tick, 1 ms as in the timing estimate (TimingConfig's default)
    recording = {name: NodeRecording(name, res.spikes[name], res.voltages.get(name), 1e-3,
                                     threshold=_uniform(_threshold(pops[name])),
                                     class_names=CLASSES if name == last else None)
                 for name in result.qat.population_names}
    return Path(plot_recording(recording, str(path), sample=0, max_neurons=5))


def _uniform(value: Any) -> float | None:
    return value if isinstance(value, float) else None


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())
