#!/usr/bin/env python3
"""Run the emulated SpiNNaker2 PE against the simulator and print what it shows, as JSON with --json.

For every available build of the PE program (s2sim/emulated_pe.py: Cortex-M4F under QEMU in GNU C, ISO C and GNU C
with flush-to-zero; the host builds): the probe suite and seeded random networks of every neuron model are run on
the emulated PE and compared bit for bit (spikes and every recorded float32 voltage) with the simulator under the
profile the build should match; conformance inference on the build's probe traces must recover that profile; the
M4F runs' per-tick, per-PE instruction counts are fitted per model (instructions per neuron update, synapse word,
received packet, conv tap).

    python tools/emulate_pe.py --json                 # keys: networks, bit_identical, variants_inferred_correctly,
                                                      #       variants, instructions, ...
    python tools/emulate_pe.py --write traces/        # also write each build's probe traces (for s2sim conform)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from s2sim import emulated_pe, probes, snn
from s2sim.conformance import compare, infer, profile_label, simulate
from s2sim.models import KIND_CURR_EXP, MODELS
from s2sim.profile import NEURON_MODELS
from s2sim.traces import write_trace
from s2sim.variants import open_points, value_of

PRIMARY = "m4-gnu"


# -- seeded random networks -------------------------------------------------------------------------------------
def _neuron_params(rng: np.random.Generator, model: str, size: int, drive: float) -> dict:
    params = {
        "threshold": (drive * rng.uniform(0.5, 1.5, size)).tolist(),
        "alpha_decay": rng.uniform(0.5, 1.0, size).tolist(),
        "i_offset": (drive * rng.uniform(-0.05, 0.15, size)).tolist(),
        "v_init": (drive * rng.uniform(-0.3, 0.6, size)).tolist(),
        "v_reset": (drive * rng.uniform(-0.3, 0.3, size)).tolist(),
        "reset": str(rng.choice(["reset_by_subtraction", "reset_to_v_reset"])),
    }
    if MODELS[model].kind == KIND_CURR_EXP:
        params.update(
            exc_decay=rng.uniform(0.3, 0.95, size).tolist(),
            inh_decay=rng.uniform(0.3, 0.95, size).tolist(),
            t_refrac=rng.integers(0, 4, size).tolist(),
        )
    return params


def _connections(rng: np.random.Generator, n_pre: int, n_post: int, model: str, fraction: float) -> list:
    limit, max_delay = MODELS[model].weight_limit, MODELS[model].max_delay
    count = max(1, int(fraction * n_pre * n_post))
    weights = rng.integers(-limit // 3, limit + 1, count).astype(float)
    weights[rng.random(count) < 0.2] += 0.5  # some non-integer weights: host-side rounding
    weights = np.clip(weights, -limit, limit)
    return [
        [int(a), int(b), float(w), int(d)]
        for a, b, w, d in zip(
            rng.integers(0, n_pre, count),
            rng.integers(0, n_post, count),
            weights,
            rng.integers(0, max_delay + 1, count),
            strict=True,
        )
    ]


def random_network(model: str, seed: int) -> tuple[snn.Network, int, dict]:
    """A seeded network around one population of ``model``: spike_list input (through a conv for lif_conv2d),
    sometimes a recurrent projection and a second layer; the population split over 1 to 3 PEs.
    """
    rng = np.random.default_rng(seed)
    ticks = int(rng.integers(20, 50))
    rec = ["spikes", "v"]
    if model == "lif_conv2d":
        c_in, h, w = int(rng.integers(1, 3)), int(rng.integers(3, 7)), int(rng.integers(3, 7))
        src = snn.Population(c_in * h * w, "spike_list", {}, name="src")
        geo = {
            "in_height": h,
            "in_width": w,
            **{k: int(rng.integers(1, 3)) for k in ("stride_x", "stride_y")},
            **{k: int(rng.integers(0, 2)) for k in ("pad_top", "pad_left", "pad_bottom", "pad_right")},
        }
        kernel = rng.integers(-20, 41, (c_in, int(rng.integers(1, 4)), 2, 2)).astype(float)
        oh = (h + geo["pad_top"] + geo["pad_bottom"] - 2) // geo["stride_y"] + 1
        ow = (w + geo["pad_left"] + geo["pad_right"] - 2) // geo["stride_x"] + 1
        size = kernel.shape[1] * oh * ow
        target = snn.Population(size, model, _neuron_params(rng, model, size, 40.0), name="target", record=rec)
        first = snn.Conv2DProjection(src, target, kernel, geo)
    else:
        src = snn.Population(int(rng.integers(3, 20)), "spike_list", {}, name="src")
        size = int(rng.integers(3, 40))
        target = snn.Population(
            size, model, _neuron_params(rng, model, size, MODELS[model].weight_limit * 1.5), name="target", record=rec
        )
        first = snn.Projection(src, target, _connections(rng, src.size, size, model, rng.uniform(0.1, 0.5)))
    net = snn.Network(f"random_{model}_{seed}").add(src, target, first)
    if model != "lif_conv2d" and rng.random() < 0.5:  # a second projection from the same source: two rows
        net.add(snn.Projection(src, target, _connections(rng, src.size, size, model, 0.1)))
    if model != "lif_conv2d" and rng.random() < 0.5:
        net.add(snn.Projection(target, target, _connections(rng, size, size, model, 0.1)))
    if rng.random() < 0.5:
        n2 = int(rng.integers(2, 12))
        second = snn.Population(
            n2, "lif_no_delay", _neuron_params(rng, "lif_no_delay", n2, 60.0), name="second", record=rec
        )
        net.add(second, snn.Projection(target, second, _connections(rng, size, n2, "lif_no_delay", 0.3)))
    target.set_max_atoms_per_core(max(1, -(-size // int(rng.integers(1, 4)))))
    inputs = {"src": (rng.random((ticks, src.size)) < rng.uniform(0.05, 0.4)).astype(np.uint8)}
    return net, ticks, inputs


# -- one build ---------------------------------------------------------------------------------------------------
def _job(build: str, name: str, net: snn.Network, ticks: int, inputs: dict | None) -> dict:
    """Run one network on the emulated PE and against the simulator under the build's profile."""
    run = emulated_pe.run(net, ticks, inputs, build=build, metadata={"probe": name})
    expected = simulate(net, ticks, emulated_pe.BUILDS[build].profile, inputs)
    result = compare(expected, run.trace, explain=False)
    values = sum(v.size for v in run.trace.voltages.values())
    spikes = int(sum(s.sum() for s in run.trace.spikes.values()))
    return {
        "name": name,
        "run": run,
        "match": result.match,
        "values": values,
        "spikes": spikes,
        "first_divergence": None if result.match else result.first_divergence.describe(),
    }


def _networks(seed: int, per_model: int) -> list[tuple[str, snn.Network, int, dict | None]]:
    out = [(p.name, p.network, p.timesteps, None) for p in probes.probe_suite()]
    for k, model in enumerate(NEURON_MODELS):
        for i in range(per_model):
            net, ticks, inputs = random_network(model, seed * 1000 + 100 * k + i)
            out.append((net.name, net, ticks, inputs))
    return out


def run_build(build: str, networks: list, workers: int, write: Path | None) -> dict:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = list(pool.map(lambda n: _job(build, *n), networks))
    probe_traces = [j["run"].trace for j in jobs[: len(probes.probe_suite())]]
    if write is not None:
        (write / build).mkdir(parents=True, exist_ok=True)
        for trace in probe_traces:
            write_trace(write / build / f"{trace.metadata['probe']}.h5", trace)
    inference = infer(probe_traces)
    expected = emulated_pe.BUILDS[build].profile
    truth = {p.name: value_of(expected, p) for p in open_points()}
    return {
        "jobs": jobs,
        "variant": {
            "expected_profile": profile_label(expected),
            "inferred_profiles": [profile_label(p) for p in inference.profiles()],
            "correct": inference.settled() == truth and not inference.not_distinguished(),
            "not_distinguished": inference.not_distinguished(),
            "wrong": {k: v for k, v in inference.settled().items() if truth[k] != v},
        },
    }


def _instructions(runs: list) -> dict:
    fits = emulated_pe.instruction_fits(runs)
    names = {
        "neuron": "per_neuron_update",
        "spike": "per_spike",
        "held": "per_refractory_neuron",
        "packet": "per_packet",
        "table_entry": "per_table_entry_checked",
        "row": "per_row",
        "synaptic_word": "per_synaptic_word",
        "conv_tap_test": "per_conv_tap_tested",
        "conv_tap": "per_conv_tap",
    }
    out = {}
    for model, phases in fits.items():
        row = {}
        for phase, fit in phases.items():
            for event, value in fit.per_event.items():
                row[f"base_{phase}" if event == "base" else names[event]] = round(value, 2)
            row[f"max_residual_{phase}"] = round(fit.max_residual, 2)
            if fit.not_separated:
                row[f"not_separated_{phase}"] = fit.not_separated
        row["samples"] = phases["update"].samples
        out[model] = row
    return out


def _toolchain() -> dict:
    def first_line(cmd: list[str]) -> str | None:
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return None

    return {
        "arm-none-eabi-gcc": first_line(["arm-none-eabi-gcc", "--version"]),
        "qemu-system-arm": first_line(["qemu-system-arm", "--version"]),
        "cc": first_line(["cc", "--version"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--builds",
        default=",".join(emulated_pe.BUILDS),
        help="comma-separated builds (unavailable ones are skipped and listed)",
    )
    parser.add_argument("--random", type=int, default=4, help="random networks per neuron model (default 4)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--write", type=Path, help="write each build's probe traces to DIR/<build>/")
    parser.add_argument(
        "--write-calibration",
        type=Path,
        metavar="JSON",
        help="write the primary M4F build's instruction fits for the PE time model "
        "(s2sim/data/pe_instructions.json is this file)",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    wanted = [b for b in args.builds.split(",") if b]
    available = {b: emulated_pe.availability(b) for b in wanted}
    builds = [b for b, (ok, _) in available.items() if ok]
    for b in builds:
        emulated_pe.program(b)  # build once, before the parallel runs
    networks = _networks(args.seed, args.random)
    results = {b: run_build(b, networks, args.workers, args.write) for b in builds}
    jobs = [j for r in results.values() for j in r["jobs"]]
    m4_runs = {b: [j["run"] for j in r["jobs"]] for b, r in results.items() if emulated_pe.BUILDS[b].machine == "m4"}
    report = {
        "networks": len(jobs),
        "bit_identical": sum(j["match"] for j in jobs),
        "variants_inferred_correctly": bool(results) and all(r["variant"]["correct"] for r in results.values()),
        "variants": {b: r["variant"] for b, r in results.items()},
        "instructions": _instructions(m4_runs[PRIMARY]) if PRIMARY in m4_runs else None,
        "instructions_by_build": {b: _instructions(runs) for b, runs in m4_runs.items()},
        "builds_run": builds,
        "builds_skipped": {b: why for b, (ok, why) in available.items() if not ok},
        "networks_per_build": len(networks),
        "values_compared": sum(j["values"] for j in jobs),
        "spikes_compared": sum(j["spikes"] for j in jobs),
        "mismatches": [
            {"build": b, "network": j["name"], "first_divergence": j["first_divergence"]}
            for b, r in results.items()
            for j in r["jobs"]
            if not j["match"]
        ],
        "toolchain": _toolchain(),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if args.write_calibration and report["instructions"]:
        calibration = {
            "build": PRIMARY,
            "toolchain": report["toolchain"],
            "networks": len(networks),
            "generated_by": "python tools/emulate_pe.py --write-calibration",
            "date": time.strftime("%Y-%m-%d"),
            "instructions": report["instructions"],
        }
        args.write_calibration.write_text(json.dumps(calibration, indent=1) + "\n")
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(
            f"{report['bit_identical']} of {report['networks']} emulated runs bit-identical to the simulator "
            f"({len(builds)} builds x {len(networks)} networks; skipped: {report['builds_skipped'] or 'none'})"
        )
        for b, v in report["variants"].items():
            print(
                f"{b}: expected {v['expected_profile']}, inferred {v['inferred_profiles']} "
                f"({'correct' if v['correct'] else 'WRONG'})"
            )
        for model, row in (report["instructions"] or {}).items():
            print(f"{model}: {row}")
    ok = report["networks"] and report["bit_identical"] == report["networks"] and report["variants_inferred_correctly"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
