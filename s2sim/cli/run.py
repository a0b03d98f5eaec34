"""``s2sim run model.nir --input spikes.npz -o out.h5``: convert, simulate and write what ``--record`` asks for.

The output is NIR's own data container (``nir.write_data``): one NIRNodeData per written population, named like
the NIR node it came from, with ``spikes`` (bool [samples, ticks, neurons]) and, when asked, ``v`` (the recorded
membrane after reset, in chip units, float32 exactly as simulated) as TimeGriddedData. By default only the output
nodes' spikes are recorded and written: every layer's voltages of a large batch can be hundreds of MB, and
recording them also slows the run down.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, TraceError
from ..results import BatchResult
from .checks import check_output, positive_float, positive_int, require
from .convert import add_conversion_options, json_default, load_model

INPUT_HELP = """\
input file format:
  .npz   one array per NIR input node, named like the node:
           [T, N]          one sample of T ticks
           [B, T, N]       B samples
           [B, T, *shape]  B samples with the node's shape (e.g. tonic frames [B, T, C, H, W]),
                           flattened in C order, i.e. neuron c*H*W + h*W + w as py-spinnaker2 numbers them
         values 0 or 1 (a spike_list sends at most one spike per neuron and tick); event counts
         (tonic's ToFrame) with --event-counts binarise: a count above 1 becomes one spike and a
         warning says how many were clipped.
  .h5    the same arrays as datasets named like the input nodes, or a NIR data file
         (nir.write_data) whose input nodes carry a 'spikes' TimeGriddedData observable.
A spike at tick t reaches its target population in tick t+1.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "run",
        help="simulate a NIR graph on input spikes and write what --record asks (NIR data, HDF5)",
        description="Convert a NIR graph, run it bit-exactly as SpiNNaker2 PEs compute it, and write the spikes "
        "(and, with --record spikes,v, the membrane voltages) of the output nodes, or of the "
        "populations --populations names, with nir.write_data. Nothing else is recorded.",
        epilog=INPUT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help="NIR graph file (HDF5, written by nir.write)")
    parser.add_argument("--input", "-i", required=True, metavar="FILE", help="input spikes, .npz or .h5 (see below)")
    parser.add_argument(
        "--ticks",
        "-T",
        type=positive_int,
        default=None,
        help="ticks to run (default: the input's length; longer runs pad the input with no spikes)",
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT.h5", help="output file (NIR data, HDF5)")
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=64,
        metavar="B",
        help="samples simulated per chunk (default 64); bounds the simulator's working memory "
        "and drives the progress bar",
    )
    rec = parser.add_argument_group("what is recorded and written (nothing else is)")
    rec.add_argument(
        "--record",
        default="spikes",
        metavar="WHAT[,WHAT]",
        type=_record_list,
        help="spikes, v (membrane voltages, chip units), or spikes,v (default: spikes)",
    )
    rec.add_argument(
        "--populations",
        default="outputs",
        metavar="WHICH",
        help="outputs (the graph's output nodes, default), all, or a comma-separated list of population names",
    )
    rec.add_argument("--outputs-only", action="store_true", help=argparse.SUPPRESS)  # the default now
    rec.add_argument("--no-voltages", action="store_true", help=argparse.SUPPRESS)  # the default now
    parser.add_argument(
        "--event-counts",
        choices=("error", "binarise"),
        default="error",
        help="input values above 1 (event counts): an error (default), or one spike each, with a "
        "warning that says how many were clipped (an error under --strict)",
    )
    parser.add_argument(
        "--trace",
        metavar="TRACE.h5",
        default=None,
        help="also write sample 0 as an s2sim trace (network, profile, inputs, exact bits), the "
        "format `s2sim conform` compares with a chip run (docs/conformance.md)",
    )
    parser.add_argument(
        "--report", action="store_true", help="also print the resource report and spikes / packets per PE and tick"
    )
    parser.add_argument("--threads", type=positive_int, default=None, help="simulator threads (default: all cores)")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="stop the simulation after this many seconds (exit 2); default: no limit",
    )
    timing = parser.add_argument_group("PE time and energy (an estimate, docs/timing.md)")
    timing.add_argument(
        "--sys-tick",
        type=float,
        default=None,
        metavar="SECONDS",
        help="estimate per-PE time_done, deadline misses, latency and energy for this tick length "
        "(py-spinnaker2's sys_tick_in_s, e.g. 1e-3)",
    )
    timing.add_argument(
        "--dvfs",
        choices=("low", "high", "auto"),
        default=None,
        help="performance level of every PE (auto: high in a tick when a PE received more packets "
        "than its model's pl_threshold); implies the estimate, with a 1 ms tick unless given",
    )
    timing.add_argument(
        "--timing-plot",
        metavar="PNG",
        default=None,
        help="draw sample 0's time_done per PE and tick, and time_done against received packets",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of the text lines")
    add_conversion_options(parser)
    parser.set_defaults(func=run_run)


# -- input -------------------------------------------------------------------------------------------------------


def read_inputs(path: str, pops: list, event_counts: str = "error", strict: bool = False) -> dict[str, np.ndarray]:
    """Read the input spikes per input population as uint8 [B, T, N], checked against the populations' sizes.

    Event counts are binarised, with a warning, when ``event_counts`` is "binarise".
    """
    if not os.path.isfile(path):
        raise TraceError(f"input file {path!r} does not exist")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        raw = _read_npz(path)
    elif ext in (".h5", ".hdf5"):
        from ..isolation import call_isolated

        raw = call_isolated(_read_h5, path, what=f"input file {path!r}")
    else:
        raise TraceError(f"input file {path!r}: unknown extension {ext!r}; expected .npz or .h5")
    names = [p.name for p in pops]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise TraceError(f"input file {path!r}: arrays {unknown} match no input node; input nodes: {names}")
    missing = [n for n in names if n not in raw]
    if missing:
        raise TraceError(f"input file {path!r}: no array for input node(s) {missing}; input nodes: {names}")
    out = {p.name: _as_spikes(raw[p.name], p, path, event_counts, strict) for p in pops}
    shapes = {name: arr.shape[:2] for name, arr in out.items()}
    if len(set(shapes.values())) > 1:
        raise TraceError(f"input file {path!r}: inputs disagree on (samples, ticks): {shapes}")
    return out


def _read_npz(path: str) -> dict[str, np.ndarray]:
    from .. import memory

    try:
        with np.load(path, allow_pickle=False) as data:
            memory.check(_npz_bytes(data), f"reading input file {path!r} (the arrays it declares)")
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise TraceError(f"input file {path!r} is not a readable .npz archive: {type(exc).__name__}: {exc}") from None


def _npz_bytes(data: Any) -> int:
    """Bytes the arrays of an open .npz declare, from their headers (nothing is decompressed)."""
    total = 0
    for name in data.files:
        with data.zip.open(name + ".npy" if name + ".npy" in data.zip.namelist() else name) as fh:
            version = np.lib.format.read_magic(fh)
            shape, _, dtype = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )(fh)
            total += int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    return total


def _read_h5(path: str) -> dict[str, np.ndarray]:
    """Return the input arrays of an HDF5 file (run in a child process by read_inputs: HDF5 can crash on bad files)."""
    import h5py

    from .. import memory

    try:
        with h5py.File(path, "r") as f:
            memory.check(memory.hdf5_bytes(f), f"reading input file {path!r} (the arrays it declares)")
            if f.attrs.get("__type__") == "NIRGraphData":
                return _read_nir_data(path)
            return {key: f[key][()] for key in f if isinstance(f[key], h5py.Dataset)}
    except TraceError:
        raise
    except Exception as exc:  # h5py raises OSError, KeyError, RuntimeError, ... on damaged files
        raise TraceError(f"input file {path!r} is not a readable HDF5 file: {type(exc).__name__}: {exc}") from None


def _read_nir_data(path: str) -> dict[str, np.ndarray]:
    import nir

    try:
        data = nir.read_data(path)
    except Exception as exc:  # nir and h5py raise KeyError, ValueError, RuntimeError, ... on damaged files
        raise TraceError(f"input file {path!r} is damaged NIR data: {type(exc).__name__}: {exc}") from None
    out = {}
    for name, node in data.nodes.items():
        obs = getattr(node, "observables", {})
        spikes = obs.get("spikes")
        if spikes is None:
            continue
        if not isinstance(spikes, nir.TimeGriddedData):
            raise TraceError(
                f"input file {path!r}: node {name!r} holds 'spikes' as {type(spikes).__name__}; "
                "s2sim run reads TimeGriddedData"
            )
        out[name] = spikes.data
    return out


def _as_spikes(arr: np.ndarray, pop: Any, path: str, event_counts: str = "error", strict: bool = False) -> np.ndarray:
    where = f"input file {path!r}, array {pop.name!r}"
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim > 3:
        arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
    if arr.ndim != 3 or arr.shape[2] != pop.size:
        raise TraceError(
            f"{where}: shape {np.shape(arr)} does not give {pop.size} neurons per tick; expected "
            f"[T, {pop.size}], [B, T, {pop.size}] or [B, T, *node_shape]"
        )
    if arr.dtype.kind not in "biuf":
        raise TraceError(f"{where}: dtype {arr.dtype} is not numeric")
    if 0 in arr.shape[:2]:
        raise TraceError(
            f"{where}: shape {np.shape(arr)} holds {arr.shape[0]} sample(s) of {arr.shape[1]} tick(s); "
            "there is nothing to simulate"
        )
    if event_counts == "binarise":
        from ..simulator import binarise_counts

        arr = binarise_counts(arr, where, pop.name, strict)
    bad = np.flatnonzero((arr != 0) & (arr != 1))
    if bad.size:
        b, t, n = np.unravel_index(bad[0], arr.shape)
        raise TraceError(
            f"{where}: value {arr[b, t, n]} at sample {b}, tick {t}, neuron {n}; spikes must be 0 or "
            "1 (a spike_list sends at most one spike per neuron and tick; event counts are binarised, "
            "with a report, by --event-counts binarise)"
        )
    return arr.astype(np.uint8)


def _fit_ticks(inputs: dict[str, np.ndarray], ticks: int | None, path: str) -> tuple[dict[str, np.ndarray], int]:
    length = next(iter(inputs.values())).shape[1] if inputs else 0
    if ticks is None:
        if not inputs:
            raise ConfigError("s2sim run: the model has no input nodes; give the number of ticks with --ticks")
        return inputs, length
    if ticks < 1:
        raise ConfigError(f"--ticks must be at least 1, got {ticks}")
    if ticks < length:
        late = {
            name: int(np.flatnonzero(arr[:, ticks:].any(axis=(0, 2)))[0]) + ticks
            for name, arr in inputs.items()
            if arr[:, ticks:].any()
        }
        if late:
            raise ConfigError(
                f"--ticks {ticks} is shorter than input file {path!r} ({length} ticks) and would drop "
                f"spikes of input(s) {sorted(late)} (the first at tick {min(late.values())}); "
                "run at least as many ticks as the input has"
            )
        return {name: np.ascontiguousarray(arr[:, :ticks]) for name, arr in inputs.items()}, ticks
    from .. import memory

    memory.check(
        sum(arr.shape[0] * ticks * arr.shape[2] for arr in inputs.values()),
        f"padding the inputs of {path!r} to {ticks} ticks",
        "Run fewer ticks",
    )
    pad = ((0, 0), (0, ticks - length), (0, 0))
    return {name: np.pad(arr, pad) for name, arr in inputs.items()}, ticks


# -- what to record ---------------------------------------------------------------------------------------------

RECORDABLE = ("spikes", "v")


def _record_list(text: str) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    bad = [t for t in items if t not in RECORDABLE]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"{text!r}: give spikes, v or spikes,v")
    return items


def chosen_populations(which: str, net: Any, outputs: list) -> list:
    """Return the populations ``--populations`` names: ``outputs``, ``all`` or a comma-separated list."""
    if which == "outputs":
        return list(outputs)
    if which == "all":
        return list(net.populations)
    by_name = {p.name: p for p in net.populations}
    names = [n.strip() for n in which.split(",") if n.strip()]
    unknown = [n for n in names if n not in by_name]
    if unknown or not names:
        raise ConfigError(
            f"--populations {which!r}: {unknown or 'no name'} not in the network; give outputs, all "
            f"or names among {list(by_name)}"
        )
    return [by_name[n] for n in names]


def record_plan(pops: list, what: tuple[str, ...]) -> dict[str, list[str]]:
    """Map population name -> what it records; a spike source has no membrane, so ``v`` is not asked of it."""
    return {p.name: [w for w in what if w == "spikes" or not p.model.is_input] for p in pops}


def _chunks(batch: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, batch, size):
        yield start, min(start + size, batch)


# -- simulate and write ------------------------------------------------------------------------------------------


def simulate(
    net: Any,
    inputs: Mapping[str, np.ndarray],
    ticks: int,
    profile: Any,
    batch_size: int,
    record: Mapping[str, Sequence[str]],
    threads: int | None = None,
    timing: Any = None,
    strict: bool = False,
    timeout: float | None = None,
    desc: str = "simulating",
) -> BatchResult:
    """Run ``net`` on all samples in chunks of ``batch_size``, with a progress bar over the samples.

    Returns what ``record`` asks (population -> "spikes", "v", "counts"), [B, T, ...], as one BatchResult.
    With ``timing`` (a TimingConfig) the result's ``timing`` is the merged PE time summary of every chunk (a dict).

    Sets each population's ``record`` list to what ``record`` asks (nothing for populations it does not name):
    the network is the one this command loaded. ``timeout`` bounds the whole simulation (RunTimeout).
    """
    from ..errors import RunTimeout
    from ..simulator import Simulator
    from ..timing import merge_summaries

    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    from ..progress import bar

    for pop in net.populations:
        pop.record = list(record.get(pop.name, ()))
    batch = next(iter(inputs.values())).shape[0] if inputs else 1
    sim = Simulator(profile=profile, num_threads=threads, timing=timing, strict=strict)
    deadline = None if timeout is None else time.monotonic() + timeout
    total = BatchResult(ticks)
    summaries, energies = [], []
    progress = bar(total=batch, desc=desc, unit="sample")
    for start, stop in _chunks(batch, batch_size):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise RunTimeout(
                f"simulation stopped after its timeout of {timeout:g} s ({start} of {batch} samples "
                "done); nothing was written"
            )
        res = sim.run_batch(net, {k: v[start:stop] for k, v in inputs.items()}, ticks, timeout=left)
        for group in ("spikes", "voltages", "counts"):
            _collect(getattr(total, group), getattr(res, group), start, batch)
        if res.timing is not None:
            summaries.append(res.timing.to_dict())
            energies.append(res.timing.energy_j)
        progress.update(stop - start)
    progress.close()
    if summaries:
        total.timing = merge_summaries(summaries, energies)
    return total


def _collect(into: dict[str, np.ndarray], part: Mapping[str, np.ndarray], start: int, batch: int) -> None:
    for name, arr in part.items():
        if name not in into:
            into[name] = np.empty((batch, *arr.shape[1:]), dtype=arr.dtype)
        into[name][start : start + arr.shape[0]] = arr


def write_recording(
    path: str,
    spikes: Mapping[str, np.ndarray],
    voltages: Mapping[str, np.ndarray],
    dt: float,
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Write spikes (as bool) and voltages (dtype kept) per population with nir.write_data.

    A population may have either or both.

    ``attrs`` are stored as JSON strings in the file's root attributes (nir.read_data ignores them).
    """
    import h5py
    import nir

    from ..progress import step

    step("writing %s", path)  # a large batch's voltages take a while
    nodes = {}
    names = list(dict.fromkeys([*spikes, *voltages]))
    for name in names:
        if "/" in name:
            raise ConfigError(f"population {name!r}: a '/' in the name would nest HDF5 groups; rename it")
        obs: dict[str, Any] = {}
        if name in spikes:
            obs["spikes"] = nir.TimeGriddedData(spikes[name].astype(bool), dt)
        if name in voltages:
            obs["v"] = nir.TimeGriddedData(np.ascontiguousarray(voltages[name]), dt)
        nodes[name] = nir.NIRNodeData(obs)
    try:
        nir.write_data(path, nir.NIRGraphData(nodes))
        with h5py.File(path, "a") as f:
            f.attrs["s2sim_node_order"] = json.dumps(names)
            for key, value in (attrs or {}).items():
                f.attrs[f"s2sim_{key}"] = json.dumps(value, default=json_default)
    except OSError as exc:
        raise TraceError(f"output file {path!r} cannot be written: {exc}") from None


def _scale(pop: Any) -> Any:
    """Return the population's S (V_nir = V_chip / S) as one number when uniform, else per neuron; None if unknown."""
    scale = getattr(pop, "voltage_scale", None)
    if scale is None:
        return None
    arr = np.asarray(scale, dtype=np.float64).ravel()
    return float(arr[0]) if arr.size and np.all(arr == arr[0]) else arr.tolist()


def _timing_config(args: argparse.Namespace) -> Any:
    if args.sys_tick is None and args.dvfs is None:
        return None
    from ..timing import TimingConfig

    try:
        return TimingConfig(sys_tick_in_s=1e-3 if args.sys_tick is None else args.sys_tick, dvfs=args.dvfs or "high")
    except ConfigError as exc:
        raise ConfigError(f"--sys-tick / --dvfs: {exc}") from None


def _default_timing() -> Any:
    from ..timing import TimingConfig

    return TimingConfig()


def _plot_first_sample(net: Any, result: BatchResult, timing: Any, profile: Any, path: str) -> None:
    from ..plotting import plot_timing
    from ..progress import step
    from ..timing import estimate

    first = BatchResult(result.timesteps, spikes={k: v[:1] for k, v in result.spikes.items()})
    plot_timing(estimate(net, first, timing, profile=profile), path)
    step("wrote %s: time_done per PE and tick of sample 0 (estimate)", path)


def format_timing_summary(t: Mapping[str, Any]) -> str:
    """Return the merged PE time summary as a few text lines."""
    b, e = t["bottleneck"], t["energy_per_sample_j"]
    lines = [
        (
            f"PE time (estimate, tick {t['sys_tick_in_s'] * 1e3:g} ms, DVFS {t['dvfs']}): latency "
            f"{t['latency_ms']:.4g} ms per sample; energy per sample {e['mean'] * 1e3:.4g} mJ "
            f"(samples {e['min'] * 1e3:.4g}..{e['max'] * 1e3:.4g}; {e['cpi_range'][0] * 1e3:.4g}.."
            f"{e['cpi_range'][1] * 1e3:.4g} over the CPI range)"
        ),
        (
            f"deadline misses: {t['deadline_misses']} (PE, tick) pairs; bottleneck PE {b['pe']} "
            f"({b['population']}) time_done {b['time_done']:.3f}; shortest tick without misses "
            f"{t['min_tick_s'] * 1e3:.3g} ms"
        ),
    ]
    worst = sorted(t["time_done_max_per_pe"].items(), key=lambda kv: -kv[1])[:5]
    lines.append("worst time_done per PE: " + ", ".join(f"{pe} {v:.3f}" for pe, v in worst))
    hint = t.get("suggestion")
    if hint and hint["max_atoms_per_core"]:
        lines.append(f"suggestion: set_max_atoms_per_core({hint['max_atoms_per_core']}) on {hint['population']!r}")
    lines += [f"cycle costs: {c}" for c in t["calibration"]]
    return "\n".join(lines)


def _check_old_flags(args: argparse.Namespace) -> None:
    """Refuse the retired --outputs-only / --no-voltages beside a selection that contradicts them.

    Alone they ask for what is now the default; beside --populations or --record asking for more, one of the two
    would be ignored.
    """
    if args.outputs_only and args.populations != "outputs":
        raise ConfigError(f"--outputs-only contradicts --populations {args.populations}; drop one of them")
    if args.no_voltages and "v" in args.record:
        raise ConfigError("--no-voltages contradicts --record " + ",".join(args.record) + "; drop one of them")


def run_run(args: argparse.Namespace) -> int:
    """Run ``s2sim run``: convert the graph, simulate the inputs and write what ``--record`` asks."""
    needs = {"h5py": "writing the output file"}
    if args.timing_plot:
        needs["matplotlib"] = "--timing-plot"
    require("s2sim run", needs)
    _check_old_flags(args)
    check_output(args.output, "-o/--output")
    if args.trace:
        check_output(args.trace, "--trace")
    model = load_model(args)
    net = model.net
    inputs, ticks = _fit_ticks(
        read_inputs(args.input, model.inputs, args.event_counts, args.strict), args.ticks, args.input
    )
    batch = next(iter(inputs.values())).shape[0] if inputs else 1
    written = chosen_populations(args.populations, net, model.outputs)
    plan = record_plan(written, args.record)
    # the activity report counts spikes and packets of every population; the timing plot estimates every PE
    extra = ["spikes", "counts"] if args.report else ["spikes"] if args.timing_plot else []
    if extra:
        plan = {p.name: list(dict.fromkeys([*plan.get(p.name, []), *extra])) for p in net.populations}
    timing = _timing_config(args)
    result = simulate(
        net,
        inputs,
        ticks,
        model.profile,
        args.batch_size,
        plan,
        args.threads,
        timing=timing,
        strict=args.strict,
        timeout=args.timeout,
    )
    keep = {p.name for p in written}
    spikes = {k: v for k, v in result.spikes.items() if k in keep and "spikes" in args.record}
    volts = {k: v for k, v in result.voltages.items() if k in keep}
    write_recording(args.output, spikes, volts, model.dt, _file_attrs(args, model, net, ticks, batch, volts, result))
    summary = {
        "output": args.output,
        "populations": sorted(keep),
        "recorded": list(args.record),
        "samples": batch,
        "ticks": ticks,
        "bytes": os.path.getsize(args.output),
        "timing": result.timing,
    }
    outputs = {"output": args.output}
    if args.timing_plot:
        _plot_first_sample(net, result, timing or _default_timing(), model.profile, args.timing_plot)
        outputs["timing_plot"] = args.timing_plot
    if args.trace:
        _write_trace(args, net, model, inputs, ticks)
        outputs["trace"] = args.trace
    report = _report_text(net, model, result) if args.report else None
    if args.json:
        summary["files"] = outputs
        if report is not None:
            summary["report"] = report
        print(json.dumps(summary, default=json_default, indent=1))
        return 0
    print(
        f"wrote {args.output}: {'+'.join(args.record)} of {len(keep)} population(s), {batch} sample(s), {ticks} ticks"
    )
    if result.timing is not None:
        print(format_timing_summary(result.timing))
    if args.trace:
        print(f"wrote {args.trace}: trace of sample 0 (compare with a chip run: s2sim conform)")
    if report is not None:
        print()
        print(report)
    return 0


def _file_attrs(
    args: argparse.Namespace, model: Any, net: Any, ticks: int, batch: int, volts: Mapping, result: BatchResult
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "model": os.path.abspath(args.model),
        "input": os.path.abspath(args.input),
        "ticks": ticks,
        "samples": batch,
        "profile": model.profile.to_dict(),
        "voltage_units": "chip (NIR units: divide by the population's scale S in the conversion report)",
    }
    report = getattr(net, "conversion_report", None)
    if report is not None:
        attrs["conversion"] = report.to_dict()
    attrs["voltage_scale"] = {p.name: _scale(p) for p in net.populations if p.name in volts}
    attrs["threshold"] = {p.name: _threshold(p) for p in net.populations if p.name in volts}
    if result.timing is not None:
        attrs["timing"] = result.timing
    return attrs


def _threshold(pop: Any) -> Any:
    """Return the firing threshold in chip units (one number when uniform), None for a model without one."""
    try:
        value = np.asarray(pop.param("threshold"), dtype=np.float64).ravel()
    except Exception:  # a model without a threshold parameter
        return None
    return float(value[0]) if value.size and np.all(value == value[0]) else value.tolist()


def _write_trace(args: argparse.Namespace, net: Any, model: Any, inputs: Mapping[str, np.ndarray], ticks: int) -> None:
    """Write sample 0 as a trace, from a run of that sample that records spikes and voltages everywhere.

    conform compares all of them; the main run stays apart, recording only what was asked.
    """
    from ..progress import step
    from ..traces import from_result, write_trace

    first = {k: v[:1] for k, v in inputs.items()}
    res = simulate(
        net,
        first,
        ticks,
        model.profile,
        1,
        record_plan(list(net.populations), RECORDABLE),
        args.threads,
        strict=args.strict,
        desc="trace of sample 0",
    )
    write_trace(
        args.trace,
        from_result(
            net, res, profile=model.profile, inputs=first, sample=0, metadata={"model": os.path.abspath(args.model)}
        ),
    )
    step("wrote %s (trace of sample 0)", args.trace)


def _report_text(net: Any, model: Any, result: BatchResult) -> str:
    from ..placement import activity_report, place

    placement = place(net, model.profile)
    return placement.format() + "\n\n" + activity_report(placement, result).format()
