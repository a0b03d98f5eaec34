"""The benchmark's networks, each as a chip network (s2sim.snn) and as the snnTorch model of the same shape.

``dvs``: 2x32x32 -> conv5x5 16 -> LIF -> sum-pool 2 fused into conv5x5 32 -> LIF -> sum-pool 2 -> dense 11 -> LIF
(DVS-Gesture sized). ``big``: 2x64x64 -> conv5x5 16 -> pool 2 + conv5x5 32 -> pool 2 + conv3x3 64 -> dense 11.
Weights are random integers scaled so that hidden layers fire at a few percent, as trained nets do; the benchmark
prints the activity it measured, since the event-driven paths' time depends on it. The snnTorch models compute
the same layer shapes in float (the same work a GPU-less snnTorch user pays for), not the chip's arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from s2sim import snn

LIF = {"threshold": 60.0, "alpha_decay": 0.9}


@dataclass(frozen=True)
class ConvLayer:
    c_out: int
    k: int
    pool: int  # sum-pool of the incoming spikes, fused into this conv (1: none)


@dataclass(frozen=True)
class BenchNet:
    """A conv stack ending in a dense layer of 11 outputs."""

    name: str
    in_shape: tuple[int, int, int]
    layers: tuple[ConvLayer, ...]
    weight_ranges: tuple[tuple[int, int], ...]  # per conv layer, then the dense layer: numpy integers(low, high)
    pool_before_dense: int

    def shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) of the input and of every conv layer's output."""
        out = [self.in_shape]
        for layer in self.layers:
            _, h, w = out[-1]
            h, w = h // layer.pool - layer.k + 1, w // layer.pool - layer.k + 1
            out.append((layer.c_out, h, w))
        return out

    def weights(self, seed: int = 3) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        shapes = self.shapes()
        out = [
            rng.integers(*r, (shapes[i][0], layer.c_out, layer.k, layer.k))
            for i, (layer, r) in enumerate(zip(self.layers, self.weight_ranges[:-1], strict=True))
        ]
        c, h, w = shapes[-1]
        p = self.pool_before_dense
        out.append(rng.integers(*self.weight_ranges[-1], (11, c * (h // p) * (w // p))))
        return out


DVS = BenchNet("dvs", (2, 32, 32), (ConvLayer(16, 5, 1), ConvLayer(32, 5, 2)), ((-20, 24), (-18, 17), (-40, 46)), 2)
BIG = BenchNet(
    "big",
    (2, 64, 64),
    (ConvLayer(16, 5, 1), ConvLayer(32, 5, 2), ConvLayer(64, 3, 2)),
    ((-20, 24), (-18, 17), (-12, 11), (-8, 9)),
    1,
)


def chip_net(spec: BenchNet, weights: list[np.ndarray]) -> snn.Network:
    """The chip network; only the output layer records spikes (what the snnTorch forward returns)."""
    shapes = spec.shapes()
    pops = [snn.Population(int(np.prod(spec.in_shape)), "spike_list", {}, name="input", record=[])]
    net = snn.Network(spec.name).add(pops[0])
    for i, (layer, w) in enumerate(zip(spec.layers, weights[:-1], strict=True)):  # the last: the dense layer
        c, h, wd = shapes[i]
        pop = snn.Population(int(np.prod(shapes[i + 1])), "lif_conv2d", LIF, name=f"conv{i + 1}", record=[])
        net.add(
            pop,
            snn.Conv2DProjection(
                pops[-1], pop, w, {"in_height": h, "in_width": wd, "pool_x": layer.pool, "pool_y": layer.pool}
            ),
        )
        pops.append(pop)
    out = snn.Population(11, "lif_no_delay", LIF, name="out", record=["spikes"])
    # the pool before the dense layer joined into one connection list, as py-spinnaker2 does
    c, h, wd = shapes[-1]
    p = spec.pool_before_dense
    ch, y, x = np.unravel_index(np.arange(pops[-1].size), (c, h, wd))
    cell = np.ravel_multi_index((ch, y // p, x // p), (c, h // p, wd // p))
    w = weights[-1]
    pre = np.repeat(np.arange(pops[-1].size), 11)
    post = np.tile(np.arange(11), pops[-1].size)
    conns = np.stack([pre, post, w[post, cell[pre]], np.zeros(pre.size)], axis=1)
    return net.add(out, snn.Projection(pops[-1], out, conns))


def torch_model(spec: BenchNet, weights: list[np.ndarray]) -> Callable:
    """SnnTorch model: conv -> Leaky -> avg-pool (the pool scaled into the next weights) ..., dense -> Leaky.
    Its forward takes a sequence of T tensors [B, C, H, W] and returns the output spikes [T, B, 11].
    """
    import snntorch as snt
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            shapes = spec.shapes()
            self.convs = nn.ModuleList(
                nn.Conv2d(shapes[i][0], layer.c_out, layer.k, bias=False) for i, layer in enumerate(spec.layers)
            )
            self.pools = [layer.pool for layer in spec.layers[1:]] + [spec.pool_before_dense]
            self.fc = nn.Linear(weights[-1].shape[1], 11, bias=False)
            self.leaky = nn.ModuleList(
                snt.Leaky(beta=LIF["alpha_decay"], threshold=LIF["threshold"]) for _ in range(len(spec.layers) + 1)
            )
            with torch.no_grad():
                for i, conv in enumerate(self.convs):
                    area = spec.layers[i].pool ** 2
                    conv.weight.copy_(torch.tensor(weights[i].transpose(1, 0, 2, 3), dtype=torch.float32) * area)
                self.fc.weight.copy_(torch.tensor(weights[-1], dtype=torch.float32) * spec.pool_before_dense**2)

        def forward(self, xs):
            mem = [layer.init_leaky() for layer in self.leaky]
            out = []
            for x in xs:
                for i, conv in enumerate(self.convs):
                    if i and self.pools[i - 1] > 1:
                        x = nn.functional.avg_pool2d(x, self.pools[i - 1])
                    x, mem[i] = self.leaky[i](conv(x), mem[i])
                if self.pools[-1] > 1:
                    x = nn.functional.avg_pool2d(x, self.pools[-1])
                x, mem[-1] = self.leaky[-1](self.fc(x.flatten(1)), mem[-1])
                out.append(x)
            return torch.stack(out)

    return Net()
