#!/usr/bin/env python3
"""Benchmarks of the C core against snnTorch, printed as JSON. Every figure is measured in this process (memory in
a fresh one), side by side, repeated and interleaved; medians are reported with their spread [min, max].

Conv nets (tools/bench_nets.py: ``dvs``, DVS-Gesture sized, and ``big``, 2x64x64 with three conv layers), batch 32,
100 ticks, at 1, 5, 10 and 20 % input activity: s2sim against snnTorch as it is (``default``), with channels-last
tensors (``channels_last``), compiled (``compiled``, torch.compile, where it works) and both
(``compiled_channels_last``), each on 1 and on 2 threads, CPU time and wall time; each warmed up by two calls
(torch.compile recompiles on the second). One s2sim sample is as many back-to-back runs as make it about as long
as the fastest snnTorch call (same_length), and its time is per run. Ratios: single-threaded CPU time, and 2-thread
wall time; "best" is the fastest snnTorch configuration at that thread count and activity.

Keys (existing ones kept): neuron_updates_per_s, synaptic_events_per_s (dense rows) and _sparse (10 % connectivity),
list_dense_cutover (sparse/dense time by connectivity), conv_speedup_vs_best_snntorch and
conv_big_speedup_vs_best_snntorch ({"1", "5", "10", "20"}: single-threaded CPU-time ratios),
conv_*_2thread_speedup_vs_best_snntorch, conv_net_speedup_vs_snntorch (dvs at 5 %, both on 2 threads, against
default snnTorch, as before), thread_scaling, single_sample_split_speedup, dense_4096_load_seconds,
dense_4096_projection_seconds, peak_bytes_per_synapse, peak_bytes_per_neuron, bytes_per_synapse_resident,
bytes_per_neuron / bytes_per_synapse (traced, as before), qat_step_ratio_vs_snntorch, brian2, machine (SIMD level,
AMX, load average). ``conv`` holds every timing.

Run: ``make bench`` or ``python tools/bench.py [--quick] [--no-compile] [--out FILE]``;
``python tools/bench.py --table FILE`` prints the README's performance table from a saved run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from s2sim import snn
from s2sim.benchmarks import NIR_PAPER_TICKS, nir_paper_lif
from s2sim.simulator import Simulator
from s2sim.tuning import KernelTuning, amx_available, amx_multiply_ns, simd_level

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nets import BIG, DVS, BenchNet, chip_net, torch_model

RATES = (0.01, 0.05, 0.10, 0.20)


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
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


def same_length(seconds: float, others: list[float]) -> int:
    """How many back-to-back runs of a ``seconds``-long call make one sample about as long as the shortest other.

    This machine's speed swings by up to 1.7x from one second to the next (a shared host: the same s2sim run took
    31-72 ms within a minute, 2026-12-03). A 40 ms sample catches one phase, a 400 ms one averages several, so
    medians of unequal samples compare a coin toss with a mean; equal lengths let both sides average alike.
    """
    return max(1, round(min(others, default=seconds) / seconds))


def best_of(fn: Callable[[], object], repeats: int) -> float:
    return min(timed(fn)[1] for _ in range(repeats))


# -- neurons and synapses -------------------------------------------------------------------------------------------
def neuron_net(n: int) -> snn.Network:
    pop = snn.Population(
        n,
        "lif_no_delay",
        {"threshold": 10.0, "alpha_decay": 0.95, "i_offset": np.linspace(0.1, 1.0, n)},
        name="pop",
        record=[],
    )
    return snn.Network("neurons").add(pop)


def synapse_net(n_in: int, n_out: int, rng: np.random.Generator, density: float = 1.0) -> snn.Network:
    """n_in -> n_out lif_no_delay; all pairs or a random fraction."""
    stim = snn.Population(n_in, "spike_list", {}, name="stim", record=[])
    post = snn.Population(n_out, "lif_no_delay", {"threshold": 1e6, "alpha_decay": 0.9}, name="post", record=["counts"])
    pre, tgt = np.meshgrid(np.arange(n_in), np.arange(n_out), indexing="ij")
    keep = rng.random(pre.size) < density
    pre, tgt = pre.ravel()[keep], tgt.ravel()[keep]
    conns = np.stack([pre, tgt, rng.integers(-127, 128, pre.size), np.zeros(pre.size)], axis=1)
    return snn.Network("synapses").add(stim, post, snn.Projection(stim, post, conns))


def measure_neurons(n: int, ticks: int, repeats: int) -> dict:
    loaded = Simulator(num_threads=1).load(neuron_net(n))
    samples = [timed(lambda: loaded.run_batch(None, ticks)) for _ in range(repeats)]
    s = summary(samples)
    return {"neuron_updates_per_s": n * ticks / s["cpu"], "neuron_bench_seconds": s["cpu"], "neuron_bench": s}


def measure_synapses(
    n_in: int,
    n_out: int,
    ticks: int,
    rate: float,
    repeats: int,
    density: float = 1.0,
    key: str = "synaptic_events_per_s",
    tuning: KernelTuning | None = None,
) -> dict:
    rng = np.random.default_rng(0)
    net = synapse_net(n_in, n_out, rng, density)
    x = (rng.random((1, ticks, n_in)) < rate).astype(np.uint8)
    loaded = Simulator(num_threads=1, tuning=tuning).load(net)
    events = int(loaded.run_batch({"stim": x}).counts["post"][..., 1].sum())
    s = summary([timed(lambda: loaded.run_batch({"stim": x})) for _ in range(repeats)])
    return {key: events / s["cpu"], f"{key}_events": events, f"{key}_seconds": s["cpu"]}


def measure_cutover(repeats: int, ticks: int) -> dict:
    """Sparse-row time / dense-row time of one 2048 -> 4096 list at 5 % input activity, by connectivity."""
    out = {}
    for density in (0.05, 0.10, 0.125, 0.15, 0.20):
        times = [
            measure_synapses(2048, 4096, ticks, 0.05, repeats, density, "t", KernelTuning(lists=mode))["t_seconds"]
            for mode in ("events", "dense")
        ]
        out[f"{density:g}"] = times[0] / times[1]
    return out


# -- conv nets -------------------------------------------------------------------------------------------------------
def torch_configs(spec: BenchNet, weights: list, compile_: bool) -> dict:
    """SnnTorch configurations: name -> (model, input converter); compiled only where torch.compile works."""
    import torch

    plain = torch_model(spec, weights).eval()
    steps = lambda x: list(torch.from_numpy(x).float().permute(1, 0, 2, 3, 4))  # noqa: E731  [B,T,..] -> T x [B,..]
    last = lambda x: [t.contiguous(memory_format=torch.channels_last) for t in steps(x)]  # noqa: E731
    configs = {
        "default": (plain, steps),
        "channels_last": (torch_model(spec, weights).eval().to(memory_format=torch.channels_last), last),
    }
    if compile_:
        # Every model of tools/bench_nets.py shares one forward function, and dynamo caches compilations per
        # function: two nets, two memory formats and two thread counts need more than its default 8 entries, past
        # which it silently runs the function eagerly (it did here, 2026-12-02: the compiled figures were eager).
        torch._dynamo.config.recompile_limit = 64
        # torch.compile's default mode: "reduce-overhead" adds CUDA graphs only, and "max-autotune" spent over
        # ten minutes tuning the DVS net alone on this machine (2026-12-02) without finishing
        configs["compiled"] = (torch.compile(torch_model(spec, weights).eval()), steps)
        configs["compiled_channels_last"] = (
            torch.compile(torch_model(spec, weights).eval().to(memory_format=torch.channels_last)),
            last,
        )
    return configs


def measure_conv(spec: BenchNet, batch: int, ticks: int, repeats: int, compile_: bool) -> dict:
    """Every timing of one conv net: per activity, per thread count, s2sim and each snnTorch configuration."""
    import torch

    weights = spec.weights()
    net = chip_net(spec, weights)
    n_in = net.populations[0].size
    configs = torch_configs(spec, weights, compile_)
    result: dict = {"activity": {}, "times": {}, "errors": {}}
    for rate in RATES:
        x = (np.random.default_rng(1).random((batch, ticks, n_in)) < rate).astype(np.uint8)
        x5 = x.reshape(batch, ticks, *spec.in_shape)
        result["activity"][f"{rate * 100:g}"] = _activity(net, x)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            loaded = Simulator(num_threads=threads).load(net)
            one = functools.partial(loaded.run_batch, {"input": x})
            for _ in range(2):  # warm-up, as each snnTorch side gets (the first run allocates the workspaces)
                one()
            runs: dict[str, Callable] = {}
            warm = []  # each snnTorch side's call after its warm-up, in wall seconds
            for name, (model, convert) in configs.items():
                try:
                    xs = convert(x5)
                    with torch.no_grad():
                        for _ in range(2):  # warm-up; the second call is where torch.compile recompiles
                            model(xs)
                        warm.append(timed(lambda m=model, a=xs: m(a))[1])
                    runs[name] = (lambda m, a: lambda: _no_grad(m, a))(model, xs)
                except Exception as exc:  # torch.compile "where it works": say why it did not
                    result["errors"][name] = f"{type(exc).__name__}: {str(exc)[:200]}"
            per = same_length(timed(one)[1], warm)
            runs = {"s2sim": lambda f=one, k=per: [f() for _ in range(k)], **runs}
            samples: dict[str, list] = {name: [] for name in runs}
            # the AMX multiply's cost just before and after each sample of every side: the machine's state, not
            # the side's (phase_speedups sorts the samples by it)
            probes: dict[str, list] = {name: [] for name in runs}
            for _ in range(repeats):  # interleaved, so a change of machine load hits every side alike
                for name, fn in runs.items():
                    before = amx_multiply_ns()
                    cpu, wall = timed(fn)
                    probes[name] += [before, amx_multiply_ns()]
                    k = per if name == "s2sim" else 1
                    samples[name].append((cpu / k, wall / k))
            times = {n: summary(s) for n, s in samples.items()}
            for name, t in times.items():
                t["amx_multiply_ns"] = probes[name]
                t["cpu_samples"] = [s[0] for s in samples[name]]
            times["s2sim"]["runs_per_sample"] = per
            result["times"].setdefault(f"{threads}", {})[f"{rate * 100:g}"] = times
    return result


def _no_grad(model, xs) -> None:
    import torch

    with torch.no_grad():
        model(xs)


def _activity(net: snn.Network, x: np.ndarray) -> dict:
    for pop in net.populations[1:]:
        pop.record = ["spikes"]
    res = Simulator(num_threads=2).run_batch(net, {"input": x})
    for pop in net.populations[1:]:
        pop.record = ["spikes"] if pop.name == "out" else []
    return {pop.name: float(res.spikes[pop.name].mean()) for pop in net.populations[1:]}


def speedups(conv: dict, threads: int, measure: str) -> dict:
    """Per activity: best snnTorch time / s2sim time (measure "cpu" or "wall")."""
    out = {}
    for rate, sides in conv["times"][str(threads)].items():
        torch_times = [t[measure] for name, t in sides.items() if name != "s2sim"]
        out[rate] = min(torch_times) / sides["s2sim"][measure]
    return out


#: A sample counts as taken in the machine's fast phase when the AMX probes just before and after it both cost at
#: most FAST_PROBE times the cheapest probe of its net's single-threaded samples, in the slow phase when both cost
#: at least SLOW_PROBE times it. Measured here (2026-12-03): one multiply 5.3-5.8 ns in the fast phase, about 14.5
#: ns in the slow one, which costs the AMX products about 3x and snnTorch about 1.4x (README, Performance).
FAST_PROBE, SLOW_PROBE = 1.3, 2.0


def phase_of(before: float, after: float, floor: float) -> str | None:
    """The machine phase a sample was taken in, from the probes around it ("fast", "slow", or None: mixed)."""
    if max(before, after) <= FAST_PROBE * floor:
        return "fast"
    if min(before, after) >= SLOW_PROBE * floor:
        return "slow"
    return None


def phase_speedups(conv: dict, min_samples: int = 2) -> dict:
    """Single-threaded speed-ups per machine phase: phase -> activity -> ratio and sample counts.

    Each side's median over only its samples taken wholly in that phase; the best snnTorch side among those with
    at least ``min_samples`` such samples. An activity is left out of a phase when s2sim or every snnTorch side has
    fewer. Where the phases mix, the overall medians compare a side measured mostly in one phase with a side
    measured mostly in the other (s2sim's ratio moved from 6.6x to 11.6x at 5 % that way, same code); within one
    phase both sides see the same machine.
    """
    single = conv["times"]["1"]
    all_probes = [p for sides in single.values() for t in sides.values() for p in t.get("amx_multiply_ns", [])]
    if not all_probes or min(all_probes) <= 0:  # no AMX, or a run saved before every side was probed
        return {}
    floor = min(all_probes)
    out: dict = {}
    for phase in ("fast", "slow"):
        for rate, sides in single.items():
            medians, counts = {}, {}
            for name, t in sides.items():
                p = t["amx_multiply_ns"]
                around = zip(t["cpu_samples"], p[0::2], p[1::2], strict=True)
                kept = [cpu for cpu, before, after in around if phase_of(before, after, floor) == phase]
                counts[name] = len(kept)
                if len(kept) >= min_samples:
                    medians[name] = statistics.median(kept)
            others = {n: m for n, m in medians.items() if n != "s2sim"}
            if "s2sim" in medians and others:
                best = min(others, key=others.get)
                out.setdefault(phase, {})[rate] = {
                    "ratio": others[best] / medians["s2sim"],
                    "best": best,
                    "samples": {"s2sim": counts["s2sim"], best: counts[best]},
                }
    return out


def single_sample_split(repeats: int) -> dict:
    """One sample on 1 thread / split over 2 threads (wall time), for the dvs net at 5 % and 100k neurons."""
    weights = DVS.weights()
    net = chip_net(DVS, weights)
    x = (np.random.default_rng(1).random((1, 300, net.populations[0].size)) < 0.05).astype(np.uint8)
    out = {}
    for name, (network, inputs, ticks) in {
        "dvs_5pct": (net, {"input": x}, 300),
        "neurons_100k": (neuron_net(100_000), None, 300),
    }.items():
        one = Simulator(num_threads=1).load(network)
        two = Simulator(num_threads=2, tuning=KernelTuning(split="always")).load(network)
        t1 = [timed(functools.partial(one.run_batch, inputs, ticks))[1] for _ in range(repeats)]
        t2 = [timed(functools.partial(two.run_batch, inputs, ticks))[1] for _ in range(repeats)]
        out[name] = statistics.median(t1) / statistics.median(t2)
    return out


# -- memory, set-up, references --------------------------------------------------------------------------------------
def measure_traced_memory(n_neurons: int, n_in: int, n_out: int) -> dict:
    """Peak traced allocation while loading and running (the figures reported before), per neuron / synapse."""

    def peak(fn) -> int:
        tracemalloc.start()
        fn()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    net = neuron_net(n_neurons)
    per_neuron = peak(lambda: Simulator(num_threads=1).load(net).run_batch(None, 10)) / n_neurons
    syn = synapse_net(n_in, n_out, np.random.default_rng(0))
    x = np.zeros((1, 10, n_in), np.uint8)
    per_synapse = peak(lambda: Simulator(num_threads=1).load(syn).run_batch({"stim": x})) / (n_in * n_out)
    loaded = Simulator(num_threads=1).load(syn)
    resident = sum(a.nbytes for proj in loaded.lowered.projections for a in proj.arrays.values())
    return {
        "bytes_per_neuron": per_neuron,
        "bytes_per_synapse": per_synapse,
        "bytes_per_synapse_resident": resident / (n_in * n_out),
    }


def measure_setup(n_dense: int, n_neurons: int) -> dict:
    """Set-up time and peak RSS from the user's first call, in fresh processes (tools/bench_memory.py)."""
    script = str(Path(__file__).resolve().parent / "bench_memory.py")

    def run(*args: object) -> dict:
        done = subprocess.run([sys.executable, script, *map(str, args)], check=True, capture_output=True, text=True)
        return json.loads(done.stdout)

    syn, neu = run("synapses", n_dense), run("neurons", n_neurons)
    return {
        f"dense_{n_dense}_load_seconds": syn["dense_load_seconds"],
        f"dense_{n_dense}_projection_seconds": syn["dense_projection_seconds"],
        "peak_bytes_per_synapse": syn["peak_bytes_per_synapse"],
        "kernel_bytes_per_synapse": syn["kernel_bytes_per_synapse"],
        "peak_bytes_per_neuron": neu["peak_bytes_per_neuron"],
    }


def measure_brian2(repeats: int) -> dict:
    """py-spinnaker2's own software simulator (Brian2 backend) on the NIR-paper LIF and a dense 1000-neuron net,
    against s2sim, when the real ``spinnaker2`` package (not s2sim's stand-in) is importable.
    """
    import importlib.util

    found = importlib.util.find_spec("spinnaker2")
    if found is None or "s2sim" in (found.origin or ""):
        return {
            "available": False,
            "reason": "py-spinnaker2 (the spinnaker2 package) is not installed; it is not "
            "on PyPI and its GitLab server cannot be reached from this machine",
        }
    from spinnaker2 import brian2_sim  # pragma: no cover - needs py-spinnaker2
    from spinnaker2 import snn as s2_snn

    out = {"available": True}
    for name, (build, ticks) in {
        "nir_paper_lif": (lambda m: nir_paper_lif_with(m), NIR_PAPER_TICKS),
        "dense_1000": (lambda m: dense_net_with(m, 1000), 1000),
    }.items():
        brian = best_of(lambda build=build, ticks=ticks: brian2_sim.Brian2Backend().run(build(s2_snn), ticks), repeats)
        ours = best_of(lambda build=build, ticks=ticks: Simulator(num_threads=1).run(build(snn), ticks), repeats)
        out[name] = {"brian2_seconds": brian, "s2sim_seconds": ours, "speedup": brian / ours}
    return out


def nir_paper_lif_with(module) -> object:
    """The NIR-paper LIF built with ``module`` (s2sim.snn or py-spinnaker2's snn)."""
    _net, stim, lif = nir_paper_lif()
    out = module.Network("nir_paper")
    a = module.Population(1, "spike_list", {0: list(stim.params[0])}, name="input")
    b = module.Population(1, "lif_no_delay", dict(lif.params), name="lif", record=["spikes"])
    out.add(a, b, module.Projection(a, b, [[0, 0, 102, 0]]))
    return out


def dense_net_with(module, n: int) -> object:
    """1000 inputs at 5 % -> 1000 lif_no_delay, every pair connected, built with ``module``."""
    rng = np.random.default_rng(0)
    ticks = {i: sorted(np.flatnonzero(rng.random(1000) < 0.05).tolist()) for i in range(n)}
    a = module.Population(n, "spike_list", ticks, name="input")
    b = module.Population(n, "lif_no_delay", {"threshold": 200.0, "alpha_decay": 0.9}, name="lif", record=["spikes"])
    conns = [[i, j, int(w), 0] for (i, j), w in np.ndenumerate(rng.integers(-10, 11, (n, n)))]
    return module.Network("dense").add(a, b, module.Projection(a, b, conns))


def measure_qat_step(repeats: int) -> dict:
    """QAT training step / plain snnTorch step on the gesture conv net (tools/bench_qat.py, its own process).

    A separate process, because bench_qat pins torch to one thread and times CPU time of its own steps.
    """
    script = Path(__file__).with_name("bench_qat.py")
    done = subprocess.run(
        [sys.executable, str(script), "--json", "--repeats", str(repeats)], check=True, capture_output=True, text=True
    )
    qat = json.loads(done.stdout)
    return {"qat_step_ratio_vs_snntorch": qat["qat_step_ratio_vs_snntorch"], "qat_step": qat}


# -- the report -------------------------------------------------------------------------------------------------------
def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "simd": simd_level(),
        "amx": amx_available(),
        "load_average": list(os.getloadavg()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats (smoke run)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (minutes of compiling)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per timing (default 5, quick 1)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--table", type=Path, help="print the README performance table of a saved run and exit")
    args = parser.parse_args()
    if args.table:
        print(readme_table(json.loads(args.table.read_text())))
        return
    repeats = args.repeats or (1 if args.quick else 5)
    batch, ticks = (4, 20) if args.quick else (32, 100)
    out: dict = {"machine": machine()}
    out.update(measure_neurons(10_000 if args.quick else 100_000, 100 if args.quick else 1000, repeats))
    out.update(measure_synapses(2048, 4096, 50 if args.quick else 1000, 0.05, repeats))
    out.update(
        measure_synapses(
            2048, 4096, 50 if args.quick else 1000, 0.05, repeats, density=0.1, key="synaptic_events_per_s_sparse"
        )
    )
    out["list_dense_cutover"] = measure_cutover(repeats, 50 if args.quick else 200)
    conv = {spec.name: measure_conv(spec, batch, ticks, repeats, not args.no_compile) for spec in (DVS, BIG)}
    out["conv"] = conv
    out["conv_speedup_vs_best_snntorch"] = speedups(conv["dvs"], 1, "cpu")
    out["conv_big_speedup_vs_best_snntorch"] = speedups(conv["big"], 1, "cpu")
    out["conv_speedup_by_machine_phase"] = {name: phase_speedups(c) for name, c in conv.items()}
    out["conv_2thread_speedup_vs_best_snntorch"] = speedups(conv["dvs"], 2, "wall")
    out["conv_big_2thread_speedup_vs_best_snntorch"] = speedups(conv["big"], 2, "wall")
    five = conv["dvs"]["times"]
    out["conv_net_speedup_vs_snntorch"] = five["2"]["5"]["default"]["wall"] / five["2"]["5"]["s2sim"]["wall"]
    out["conv_net_sim_seconds"] = five["2"]["5"]["s2sim"]["wall"]
    out["conv_net_snntorch_seconds"] = five["2"]["5"]["default"]["wall"]
    out["conv_net_sim_1thread_seconds"] = five["1"]["5"]["s2sim"]["wall"]
    out["thread_scaling"] = five["1"]["5"]["s2sim"]["wall"] / five["2"]["5"]["s2sim"]["wall"]
    out["conv_net_activity"] = conv["dvs"]["activity"]["5"]
    out["single_sample_split_speedup"] = single_sample_split(repeats)
    out.update(measure_traced_memory(100_000, 2048, 4096))
    out.update(measure_setup(4096, 1_000_000))
    out.update(measure_qat_step(3 if args.quick else 15))
    out["brian2"] = measure_brian2(repeats)
    out["machine"]["load_average_after"] = list(os.getloadavg())
    text = json.dumps(out, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)


def readme_table(r: dict) -> str:
    """The README's performance table, from one bench.py run."""

    def ratios(d: dict) -> str:
        return ", ".join(f"{k} %: {v:.1f}x" for k, v in d.items())

    dvs, big = r["conv"]["dvs"]["times"], r["conv"]["big"]["times"]

    def best(times: dict, rate: str) -> str:
        sides = {k: v["cpu"] for k, v in times["1"][rate].items() if k != "s2sim"}
        name = min(sides, key=sides.get)
        return f"{times['1'][rate]['s2sim']['cpu']:.3f} s vs {name} {sides[name]:.2f} s"

    def phase_ratios(by_rate: dict) -> str:
        return ", ".join(
            f"{k} %: {v['ratio']:.1f}x ({'/'.join(str(n) for n in v['samples'].values())})" for k, v in by_rate.items()
        )

    def probes(times: dict) -> str:  # the AMX multiply's median cost around the single-threaded s2sim runs
        return ", ".join(
            f"{rate} %: {statistics.median(t['s2sim']['amx_multiply_ns']):.1f}" for rate, t in times["1"].items()
        )

    rows = [
        (
            "neuron updates per second, one core (100k lif_no_delay, i_offset-driven, 1000 ticks)",
            f"{r['neuron_updates_per_s']:.2g}",
        ),
        (
            "synaptic events per second, one core (dense 2048 -> 4096, 5 % of inputs per tick)",
            f"{r['synaptic_events_per_s']:.2g}",
        ),
        ("same layer, 10 % connectivity (sparse rows)", f"{r['synaptic_events_per_s_sparse']:.2g}"),
        (
            "sparse / dense row time by connectivity (dense from 12.5 %)",
            ratios(r["list_dense_cutover"]).replace("x", "").replace(" %", ""),
        ),
        (
            "DVS-sized conv net, B32 T100, single-threaded CPU time vs best snnTorch, by input activity",
            ratios(r["conv_speedup_vs_best_snntorch"]),
        ),
        ("same, 5 % input", best(dvs, "5")),
        ("2x64x64 3-conv net, same", ratios(r["conv_big_speedup_vs_best_snntorch"])),
        ("same, 20 % input", best(big, "20")),
        ("DVS net, 2 threads each side (wall time)", ratios(r["conv_2thread_speedup_vs_best_snntorch"])),
    ]
    if r["machine"]["amx"] and "amx_multiply_ns" in dvs["1"]["5"]["s2sim"]:  # runs before the probe lack it
        rows += [
            (
                "AMX multiply just before and after each s2sim run, median ns (the machine's state): DVS net",
                probes(dvs),
            ),
            ("same, 2x64x64 net", probes(big)),
        ]
    for phase in ("fast", "slow"):
        for net, label in (("dvs", "DVS net"), ("big", "2x64x64 net")):
            by_rate = r.get("conv_speedup_by_machine_phase", {}).get(net, {}).get(phase)
            if by_rate:  # runs saved before every side was probed lack it
                what = f"{label}, single-threaded, only samples taken in the machine's {phase} phase"
                counts = "(samples s2sim / best snnTorch)"
                rows.append((f"{what} {counts}", phase_ratios(by_rate)))
    rows += [
        ("batch scaling 1 -> 2 threads (DVS net, 5 %)", f"{r['thread_scaling']:.2f}x"),
        (
            "one sample split over 2 threads",
            ", ".join(f"{k}: {v:.2f}x" for k, v in r["single_sample_split_speedup"].items()),
        ),
        (
            "loading a dense 4096 x 4096 list (Simulator.load; building the Projection)",
            f"{r['dense_4096_load_seconds']:.2f} s; {r['dense_4096_projection_seconds']:.2f} s",
        ),
        (
            "peak RSS from the user's first call, per synapse / kept by the kernel",
            f"{r['peak_bytes_per_synapse']:.1f} B / {r['kernel_bytes_per_synapse']:.1f} B",
        ),
        ("peak RSS per neuron (1M lif_no_delay, load and run)", f"{r['peak_bytes_per_neuron']:.0f} B"),
    ]
    if r.get("qat_step_ratio_vs_snntorch") is not None:  # runs saved before the QAT step was measured lack it
        rows.append(
            (
                "QAT training step / plain snnTorch step (gesture conv net, B32, CPU time)",
                f"{r['qat_step_ratio_vs_snntorch']:.2f}",
            )
        )
    m = r["machine"]
    per = [t["s2sim"].get("runs_per_sample") for times in (dvs, big) for t in times["1"].values()]
    per_sample = (  # runs saved before samples of equal length lack it
        f", each s2sim sample {min(per)}-{max(per)} back-to-back runs (single-threaded), at least about as long as "
        "the fastest snnTorch call"
        if None not in per
        else ""
    )
    head = (
        f"Measured {time.strftime('%Y-%m-%d')} on {m['cpus']} cores ({m['simd']}, AMX "
        f"{'used' if m['amx'] else 'not available'}), load average {m['load_average'][0]:.1f} before and "
        f"{m['load_average_after'][0]:.1f} after; medians of {dvs['1']['5']['s2sim']['repeats']} interleaved "
        f"samples{per_sample}.\n\n"
    )
    return head + "| figure | measured |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


if __name__ == "__main__":
    main()
