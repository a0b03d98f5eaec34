"""The chip's forward in torch, bit-identical to the simulator.

Per-layer tensors (:class:`LayerTensors`) run layer by layer, one tick per hop (:func:`chip_run`); the arithmetic
is described in :mod:`s2sim.qat`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .chip_neuron import ChipNeuron as _ChipNeuron
from .chip_neuron import Dynamics as _Dynamics
from .errors import ConfigError
from .profile import ChipProfile
from .quant_layer import QuantLayer


@dataclass
class LayerTensors:
    """What the chip holds for one population, as torch tensors (weights integer-valued float32).

    ``model`` is the chip model (its ChipProfile settings apply); ``syn_decay`` (current-based populations) is
    uploaded as exc_decay and inh_decay; ``recurrent`` [n, n] (post, pre) holds the integer weights of a projection
    of the population onto itself.
    """

    name: str
    model: str
    geometry: Any
    weight: Any
    i_offset: Any
    alpha: Any
    threshold: Any
    reset: str
    scale: float
    syn_decay: Any = None
    recurrent: Any = None


class LayerList(Sequence):
    """The per-layer tensors of a :class:`ChipTrace`, each made on first access and kept (a conv layer's runs in
    channel-last neuron order, and its chip-order copy is only made when someone reads it)."""

    def __init__(self, items: Sequence[Any] = ()) -> None:
        self._made: list[Any] = list(items)
        self._make: list[Any] = [None] * len(self._made)

    def append(self, item: Any, make: Any = None) -> None:
        """Add ``item``, or with ``make`` the value ``make(item)``, computed when first read."""
        self._made.append(item)
        self._make.append(make)

    def __len__(self) -> int:
        return len(self._made)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = range(len(self))[index]
        if self._make[i] is not None:
            self._made[i], self._make[i] = self._make[i](self._made[i]), None
        return self._made[i]


@dataclass
class ChipTrace:
    """Per layer (in order): spikes [n_ticks, B, n] (0/1 float32) and, if recorded, V after reset (float32; None
    for a layer whose membrane was not recorded), neurons in the chip's order."""

    names: list[str]
    spikes: Sequence[Any]
    voltages: Sequence[Any] = field(default_factory=list)


# Conv populations run with their neurons in (y, x, c) order: torch's CPU convolutions and pools are faster on
# channels-last tensors (about 1.5x on the gesture net's convs), and the neuron loop does not mind the order.
def _channel_last(geometry: Any) -> bool:
    return geometry.kind == "conv"


def _to_yxc(t, shape: tuple[int, ...]):
    """Neurons in the last axis from chip order (c, y, x) to (y, x, c)."""
    c, h, w = shape
    return t.reshape(*t.shape[:-1], c, h, w).movedim(-3, -1).reshape(t.shape)


def _to_cyx(t, shape: tuple[int, ...]):
    """The inverse of :func:`_to_yxc` (a copy in chip order)."""
    c, h, w = shape
    return t.reshape(*t.shape[:-1], h, w, c).movedim(-1, -3).reshape(t.shape)


def _synapse(geometry: Any, pre, weight, pre_yxc: bool):
    """Integer synaptic sums [T, B, n_out] of the pre spikes [T, B, n_in] of every tick, in one matmul or conv; the
    pre neurons in (y, x, c) order if ``pre_yxc`` (always for a conv), the post neurons in (y, x, c) order for a
    conv. Exact in float32 (checked < 2**24; rounded off the CPU, where a conv may not sum exactly), but a sum of
    -0.0 terms may be -0.0 (the neuron loop reads it as the chip's +0.0)."""
    t_len, batch = pre.shape[:2]
    flat = pre.reshape(t_len * batch, -1)
    if geometry.kind == "dense":
        syn = F.linear(flat, _to_yxc(weight, geometry.in_shape) if pre_yxc else weight)
    else:
        c, h, w = geometry.in_shape
        frames = flat.reshape(-1, h, w, c).permute(0, 3, 1, 2)  # a channels-last [N, C, H, W] view
        if geometry.pool > 1:
            frames = F.avg_pool2d(frames, geometry.pool, divisor_override=1)
        syn = F.conv2d(frames, weight, stride=geometry.stride, padding=geometry.padding)
        if syn.device.type != "cpu":  # a GPU's conv may take a transform (Winograd, FFT), off by far less than 0.5
            syn = syn + (torch.round(syn) - syn).detach()
        syn = syn.permute(0, 2, 3, 1)
    return syn.reshape(t_len, batch, -1)


def chip_run(layers: Sequence[LayerTensors], x: Any, n_ticks: int, profile: ChipProfile,
             record_v: bool | str = False, slope: float = 2.0, backend: str = "auto") -> ChipTrace:
    """The chip's forward: ``x`` ``[T, B, *in_shape]`` spikes, zero-padded to ``n_ticks``; one tick per hop. Each layer
    runs with its model's settings in ``profile`` (``ChipProfile.model_settings``). ``record_v``: the membranes of
    every layer (True), of none (False) or of the output layer only ("last", the others None in ``voltages``).

    Runs on the device of the layers' weights (``x`` is moved there). ``backend`` chooses the neuron loop
    (:class:`s2sim.chip_neuron.Dynamics`: "auto", "c" or "torch"); every choice computes the same bits.
    Differentiable with respect to weights (feed-forward and recurrent), i_offset, alpha, the synaptic decay and
    the threshold (surrogate gradient).
    """
    device = layers[0].weight.device if layers else None
    x = torch.as_tensor(x, dtype=torch.float32, device=device)
    t_in, batch = int(x.shape[0]), int(x.shape[1])
    if n_ticks < t_in:
        raise ConfigError(f"n_ticks = {n_ticks} is shorter than the input ({t_in} ticks)")
    pad = torch.zeros((n_ticks - t_in, *x.shape[1:]), dtype=x.dtype, device=x.device)
    cur = (torch.cat([x, pad]) if n_ticks > t_in else x).reshape(n_ticks, batch, -1)
    yxc = bool(layers) and _channel_last(layers[0].geometry)  # the order of cur's neurons
    if yxc:
        cur = _to_yxc(cur, layers[0].geometry.in_shape)
    trace = ChipTrace([], LayerList(), LayerList())
    for index, layer in enumerate(layers):
        # the sums of tick t's spikes arrive in tick t + 1 (late=True below; the last tick's go nowhere)
        syn = _synapse(layer.geometry, cur, layer.weight, yxc)
        exc = inh = None
        if layer.syn_decay is not None:  # the chip keeps the excitatory and inhibitory sums apart
            with torch.no_grad():
                positive = layer.weight.detach().clamp_min(0) + 0.0
                exc = _synapse(layer.geometry, cur, positive, yxc)
                inh = exc - syn.detach()
        yxc = _channel_last(layer.geometry)
        order = (lambda p: _to_yxc(p, layer.geometry.out_shape)) if yxc else (lambda p: p)
        settings = profile.model_settings(layer.model)
        keep_v = record_v is True or (record_v == "last" and index == len(layers) - 1)
        dyn = _Dynamics(layer.scale, settings.fused_multiply_add, settings.current_fused_multiply_add,
                        settings.threshold_op == ">=", layer.reset == "reset_by_subtraction", slope, backend,
                        late=True, keep_v=keep_v)
        spikes, v = _ChipNeuron.apply(syn, exc, inh, order(layer.i_offset), order(layer.alpha), layer.syn_decay,
                                      order(layer.threshold), layer.recurrent, dyn)
        chip_order = (lambda t, shape=layer.geometry.out_shape: _to_cyx(t, shape)) if yxc else None
        trace.names.append(layer.name)
        trace.spikes.append(spikes, chip_order)
        if record_v:
            trace.voltages.append(v, chip_order if v is not None else None)
        cur = spikes
    return trace


def frozen_tensors(layers: Sequence[QuantLayer]) -> list[LayerTensors]:
    """Torch tensors of a :class:`QuantizedModel`'s integer layers."""
    def f32(a):
        return None if a is None else torch.as_tensor(np.asarray(a, dtype=np.float32))

    return [LayerTensors(q.name, q.model, q.geometry, f32(q.weights), torch.as_tensor(q.i_offset), torch.as_tensor(q.alpha),
                         torch.as_tensor(q.threshold), q.reset, q.scale, f32(q.syn_decay), f32(q.recurrent))
            for q in layers]
