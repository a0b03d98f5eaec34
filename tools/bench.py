#!/usr/bin/env python3
"""Benchmarks of the C core, printed as JSON. Every figure is measured in this process, side by side.

Keys: neuron_updates_per_s, synaptic_events_per_s (one thread each; _sparse: 10 % connectivity, the kernel's
CSR rows instead of dense int8 rows), conv_net_speedup_vs_snntorch (the
DVS-Gesture-sized conv net, T=100, batch 32, both on all cores), thread_scaling (1 -> 2 threads on that batch),
bytes_per_neuron, bytes_per_synapse (peak traced allocation while loading and running, per unit; the synapse
figure is dominated by lowering's temporaries, bytes_per_synapse_resident is what the kernel keeps).
Run: ``make bench`` or ``python tools/bench.py [--quick]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc

import numpy as np

from s2sim import snn
from s2sim.simulator import Simulator


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def neuron_net(n: int) -> snn.Network:
    pop = snn.Population(n, "lif_no_delay", {"threshold": 10.0, "alpha_decay": 0.95,
                                             "i_offset": np.linspace(0.1, 1.0, n)}, name="pop", record=[])
    return snn.Network("neurons").add(pop)


def synapse_net(n_in: int, n_out: int, rng: np.random.Generator, density: float = 1.0) -> snn.Network:
    """n_in -> n_out lif_no_delay; all pairs (the kernel's dense rows) or a random fraction (sparse rows)."""
    stim = snn.Population(n_in, "spike_list", {}, name="stim", record=[])
    post = snn.Population(n_out, "lif_no_delay", {"threshold": 1e6, "alpha_decay": 0.9}, name="post",
                          record=["counts"])
    pre, tgt = np.meshgrid(np.arange(n_in), np.arange(n_out), indexing="ij")
    keep = rng.random(pre.size) < density
    pre, tgt = pre.ravel()[keep], tgt.ravel()[keep]
    conns = np.stack([pre, tgt, rng.integers(-127, 128, pre.size), np.zeros(pre.size)], axis=1)
    return snn.Network("synapses").add(stim, post, snn.Projection(stim, post, conns))


def measure_neurons(n: int, ticks: int, repeats: int) -> dict:
    net = neuron_net(n)
    loaded = Simulator(num_threads=1).load(net)
    seconds = best_of(lambda: loaded.run_batch(None, ticks), repeats)
    return {"neuron_updates_per_s": n * ticks / seconds, "neuron_bench_seconds": seconds}


def measure_synapses(n_in: int, n_out: int, ticks: int, rate: float, repeats: int, density: float = 1.0,
                     key: str = "synaptic_events_per_s") -> dict:
    rng = np.random.default_rng(0)
    net = synapse_net(n_in, n_out, rng, density)
    x = (rng.random((1, ticks, n_in)) < rate).astype(np.uint8)
    loaded = Simulator(num_threads=1).load(net)
    res = loaded.run_batch({"stim": x})
    events = int(res.counts["post"][..., 1].sum())
    seconds = best_of(lambda: loaded.run_batch({"stim": x}), repeats)
    return {key: events / seconds, f"{key}_events": events, f"{key}_seconds": seconds}


def conv_chip_net(rng: np.random.Generator, weights: dict) -> snn.Network:
    """2x32x32 -> conv5x5 16 -> LIF -> sum-pool 2 fused into conv5x5 32 -> LIF -> sum-pool 2 -> dense 11 -> LIF."""
    inp = snn.Population(2 * 32 * 32, "spike_list", {}, name="input", record=[])
    lif = {"threshold": 60.0, "alpha_decay": 0.9}
    c1 = snn.Population(16 * 28 * 28, "lif_conv2d", lif, name="conv1", record=["spikes"])
    c2 = snn.Population(32 * 10 * 10, "lif_conv2d", lif, name="conv2", record=["spikes"])
    out = snn.Population(11, "lif_no_delay", lif, name="out", record=["spikes"])
    p1 = snn.Conv2DProjection(inp, c1, weights["w1"], {"in_height": 32, "in_width": 32})
    p2 = snn.Conv2DProjection(c1, c2, weights["w2"], {"in_height": 28, "in_width": 28, "pool_x": 2, "pool_y": 2})
    # sum-pool 2 before the dense layer: one connection list joining pool and affine (as py-spinnaker2 does)
    c, y, x = np.unravel_index(np.arange(c2.size), (32, 10, 10))
    cell = np.ravel_multi_index((c, y // 2, x // 2), (32, 5, 5))
    w3 = weights["w3"]  # [11, 800]
    pre = np.repeat(np.arange(c2.size), 11)
    post = np.tile(np.arange(11), c2.size)
    conns = np.stack([pre, post, w3[post, cell[pre]], np.zeros(pre.size)], axis=1)
    p3 = snn.Projection(c2, out, conns)
    return snn.Network("dvs_conv").add(inp, c1, c2, out, p1, p2, p3)


def snntorch_net(weights: dict):
    import snntorch as snt
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(2, 16, 5, bias=False)
            self.c2 = nn.Conv2d(16, 32, 5, bias=False)
            self.fc = nn.Linear(800, 11, bias=False)
            self.l1, self.l2, self.l3 = (snt.Leaky(beta=0.9, threshold=60.0) for _ in range(3))
            with torch.no_grad():
                self.c1.weight.copy_(torch.tensor(weights["w1"].transpose(1, 0, 2, 3), dtype=torch.float32))
                self.c2.weight.copy_(torch.tensor(weights["w2"].transpose(1, 0, 2, 3), dtype=torch.float32) / 4)
                self.fc.weight.copy_(torch.tensor(weights["w3"], dtype=torch.float32) / 4)

        def forward(self, x):  # x [T, B, 2, 32, 32]
            m1, m2, m3 = self.l1.init_leaky(), self.l2.init_leaky(), self.l3.init_leaky()
            out = []
            for t in range(x.shape[0]):
                s1, m1 = self.l1(self.c1(x[t]), m1)
                s2, m2 = self.l2(self.c2(nn.functional.avg_pool2d(s1, 2)), m2)
                s3, m3 = self.l3(self.fc(nn.functional.avg_pool2d(s2, 2).flatten(1)), m3)
                out.append(s3)
            return torch.stack(out)

    return Net()


def measure_conv(batch: int, ticks: int, repeats: int) -> dict:
    import torch

    rng = np.random.default_rng(3)
    # Random integer weights chosen so that hidden layers fire at a few percent, as trained DVS nets do; the
    # measured activity is part of the output, since the event-driven kernel's time depends on it.
    weights = {"w1": rng.integers(-20, 24, (2, 16, 5, 5)), "w2": rng.integers(-18, 17, (16, 32, 5, 5)),
               "w3": rng.integers(-40, 46, (11, 800))}
    x = (rng.random((batch, ticks, 2 * 32 * 32)) < 0.05).astype(np.uint8)
    net = conv_chip_net(rng, weights)
    threads = os.cpu_count() or 1
    res = Simulator(num_threads=threads).run_batch(net, {"input": x})
    activity = {name: float(res.spikes[name].mean()) for name in ("conv1", "conv2", "out")}
    # Timed runs record what the snnTorch forward returns: the output layer's spikes.
    for pop in net.populations:
        pop.record = ["spikes"] if pop.name == "out" else []
    loaded = Simulator(num_threads=threads).load(net)
    sim_s = best_of(lambda: loaded.run_batch({"input": x}), repeats)
    one = Simulator(num_threads=1).load(net)
    sim_1 = best_of(lambda: one.run_batch({"input": x}), repeats)

    torch.set_num_threads(threads)
    model = snntorch_net(weights).eval()
    xt = torch.tensor(x.reshape(batch, ticks, 2, 32, 32).transpose(1, 0, 2, 3, 4), dtype=torch.float32)

    def torch_run():
        with torch.no_grad():
            model(xt)

    torch_run()
    torch_s = best_of(torch_run, repeats)
    return {"conv_net_speedup_vs_snntorch": torch_s / sim_s, "conv_net_sim_seconds": sim_s,
            "conv_net_snntorch_seconds": torch_s, "thread_scaling": sim_1 / sim_s, "conv_net_sim_1thread_seconds":
            sim_1, "conv_net_activity": activity}


def measure_memory(n_neurons: int, n_in: int, n_out: int) -> dict:
    def peak(fn) -> int:
        tracemalloc.start()
        fn()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    net = neuron_net(n_neurons)
    per_neuron = peak(lambda: Simulator(num_threads=1).load(net).run_batch(None, 10)) / n_neurons
    rng = np.random.default_rng(0)
    syn = synapse_net(n_in, n_out, rng)
    x = np.zeros((1, 10, n_in), np.uint8)
    per_synapse = peak(lambda: Simulator(num_threads=1).load(syn).run_batch({"stim": x})) / (n_in * n_out)
    # What stays allocated for the kernel once loaded (lowering's float64 temporaries are gone by then).
    loaded = Simulator(num_threads=1).load(syn)
    resident = sum(a.nbytes for proj in loaded.lowered.projections for a in proj.arrays.values())
    return {"bytes_per_neuron": per_neuron, "bytes_per_synapse": per_synapse,
            "bytes_per_synapse_resident": resident / (n_in * n_out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repeat (smoke run)")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    out = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()}}
    out.update(measure_neurons(10_000 if args.quick else 100_000, 100 if args.quick else 1000, repeats))
    out.update(measure_synapses(2048, 4096, 50 if args.quick else 1000, 0.05, repeats))
    # the same layer with 10 % of the pairs connected: the kernel's sparse (CSR) rows
    out.update(measure_synapses(2048, 4096, 50 if args.quick else 1000, 0.05, repeats, density=0.1,
                                key="synaptic_events_per_s_sparse"))
    out.update(measure_conv(4 if args.quick else 32, 20 if args.quick else 100, repeats))
    out.update(measure_memory(100_000, 2048, 4096))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
