"""Quantization-aware training (QAT) whose forward pass is the chip's arithmetic.

:class:`QATModel` wraps a trained snnTorch model (sharing its parameters) and replaces its forward by what the
chip computes for the quantized network:

- weights fake-quantized to the population's integer width with a straight-through gradient; the scale is
  recomputed from the current weights (feed-forward and recurrent together) at every forward and the threshold
  and bias are multiplied by it (adaptive threshold scaling: the chip threshold follows the learned weight scale);
- one tick per population hop: a layer sees the previous layer's spikes of the previous tick, and a recurrent
  layer its own spikes of the previous tick;
- per tick, in float32, lif populations (Leaky, RLeaky): ``inp = syn + i_offset`` (``syn`` an integer sum,
  exact), ``V = fma(V, alpha, inp)`` (or ``V * alpha + inp``, per the profile's fused_multiply_add);
  current-based populations (Synaptic, RSynaptic): ``I_exc = fma(I_exc, decay, E)`` and ``I_inh = fma(I_inh,
  decay, I)`` with ``E`` and ``I`` the excitatory and inhibitory integer sums, decayed separately as on the chip,
  then ``V = fma(V, alpha, (I_exc - I_inh) + i_offset)``; spike if ``V >= threshold`` (or ``>``), reset by
  subtraction or to 0, V recorded after the reset. snnTorch neurons have no refractory period (t_refrac = 0).
  Each population runs with its model's spike test and FMA settings (``ChipProfile.model_settings``: overrides
  per model, and ``current_fused_multiply_add`` for the current decay).

The fused multiply-add is emulated exactly in float64 with round-to-odd (same argument as
:func:`s2sim.oracle.fma_float32`), so spikes and membranes are bit-identical to :class:`s2sim.Simulator` running
:meth:`QATModel.freeze` ``.to_network()``; :func:`verify` and ``forward(x, verify=True)`` check that on real
batches. The backward is a surrogate gradient (arctan, as snnTorch's default) through the recorded membranes,
with the reset detached as in snnTorch, back through time along the membrane, the synaptic current and the
recurrent projection.

Tensors are time-first: input spikes ``[T, B, *input_shape]``; outputs [n_ticks, B, n] with
``n_ticks = T + extra_ticks`` (default: one tick per layer, so the last input reaches the output layer).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import Any

import numpy as np
try:
    import torch
    import torch.nn.functional as F
except ModuleNotFoundError as exc:  # the core of s2sim runs without torch; training needs it
    raise ModuleNotFoundError(f"s2sim.qat needs torch ({exc}); install it with `pip install torch==2.13.0` "
                              "(CPU build) or `pip install s2sim[torch]`") from exc

from .chip_neuron import ChipNeuron as _ChipNeuron
from .chip_neuron import Dynamics as _Dynamics
from .chip_neuron import check_backend
from .chip_neuron import fma32  # noqa: F401  (public here: s2sim.qat.fma32)
from .errors import ConfigError, TraceError
from .profile import ChipProfile
from .quantize import (QuantConfig, QuantizedModel, QuantLayer, Stage, parse_model, quantize_stage, select_scale,
                       weight_limit)


# -- per-layer tensors and the layer-by-layer forward ----------------------------------------------------------
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


# -- fake quantization ------------------------------------------------------------------------------------------
def rule_of(config: QuantConfig, index: int, n_layers: int) -> str:
    if config.scale_rule == "percentile":
        return f"percentile {config.layer_percentile(index, n_layers):g}"
    if config.scale_rule == "mean_std":
        return f"mean+{config.k_std:g}std"
    return "max"


def stage_scale(weight: Any, limit: int, config: QuantConfig, index: int, n_layers: int, where: str):
    """(scale, clip) of one layer from its current float weights (detached)."""
    absw = weight.detach().abs().double().cpu().numpy()
    p = config.layer_percentile(index, n_layers) if config.scale_rule == "percentile" else 100.0
    return select_scale(absw, limit, config.scale_rule, p, config.k_std, where)


def fake_quant_weight(weight: Any, scale: float, limit: int, rounding: str):
    """``(q, n_clipped)``: integer-valued float32 weights ``round(W * scale)`` clipped to ±limit.

    The gradient is straight-through (``d q / d W = scale``) except for clipped weights (0). The product and the
    rounding are done in float64 so PTQ, QAT and export give the same integers.
    """
    w = weight.double() * scale
    q = torch.round(w) if rounding == "nearest_even" else torch.trunc(w)
    clipped = q.abs() > limit
    q = q.clamp(-limit, limit)
    out = q.detach() + (w - w.detach()) * (~clipped)
    return out.float(), int(clipped.sum())


def _ste_float32(value64: Any):
    """float64 -> float32 rounding with identity gradient."""
    v32 = value64.float()
    return v32.detach() + (value64 - value64.detach()).float()


@dataclass
class FakeQuantLayer:
    """One stage at its current weights: the chip tensors, how they were quantized, and the float values."""

    tensors: LayerTensors
    model: str
    limit: int
    clip: float
    n_clipped: int
    float_weight: Any
    float_recurrent: Any
    float_threshold: Any


def fake_quantize_stage(stage: Stage, index: int, n_layers: int, config: QuantConfig) -> FakeQuantLayer:
    """The chip values of one stage, differentiable (PTQ freezes them, QAT trains through them).

    One scale for every weight into the population, feed-forward and recurrent, from ``config``'s rule; threshold
    and ``i_offset`` (:meth:`Stage.membrane_bias`) times that scale, rounded once to float32.
    """
    w, bias = stage.effective()
    w_rec = stage.recurrent_weight()
    params = stage.neuron_params()
    model, limit = weight_limit(stage.geometry.kind, config.dense_model, stage.kind, config.max_weight)
    every = w.reshape(-1) if w_rec is None else torch.cat([w.reshape(-1), w_rec.reshape(-1)])
    scale, clip = stage_scale(every, limit, config, index, n_layers, stage.name)
    wq, n_clipped = fake_quant_weight(w, scale, limit, config.rounding)
    wrq = None
    if w_rec is not None:
        wrq, n_rec_clipped = fake_quant_weight(w_rec, scale, limit, config.rounding)
        n_clipped += n_rec_clipped
    i_offset = _ste_float32(stage.membrane_bias(bias, params).double() * scale)
    threshold = _ste_float32(params.threshold.double() * scale)
    decay = None if params.syn_decay is None else params.syn_decay.float()
    tensors = LayerTensors(stage.name, model, stage.geometry, wq, i_offset, params.beta.float(), threshold, stage.reset,
                           scale, decay, wrq)
    return FakeQuantLayer(tensors, model, limit, clip, n_clipped, w, w_rec, params.threshold)


# -- the QAT model ----------------------------------------------------------------------------------------------
class QATModel(torch.nn.Module):
    """Quantization-aware training wrapper of an snnTorch model (see module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        The snnTorch model (``nn.Sequential`` as accepted by :func:`s2sim.quantize.parse_model`: Leaky, RLeaky,
        Synaptic, RSynaptic layers). It becomes a submodule and is trained in place (``QATModel.parameters()`` are
        the model's own tensors, recurrent weights included).
    input_shape : tuple of int
        Shape of one input frame, e.g. (64,) or (2, 32, 32).
    config : QuantConfig
        Scale rule, rounding, dense model width, extra ticks and ChipProfile (the same settings as PTQ; e.g. the
        ``.config`` of a :func:`s2sim.quantize.ptq` result, with its searched percentiles).
    slope : float
        Arctan surrogate slope (snnTorch's ``surrogate.atan(alpha=2.0)``).
    backend : {"auto", "c", "torch"}
        The neuron loop (:mod:`s2sim.chip_neuron`): "auto" runs CPU tensors in the C core and other devices (CUDA)
        with torch operations; the forward runs on the device of the model's parameters. Every choice computes
        the same spikes and membranes.
    """

    def __init__(self, model: Any, input_shape: Sequence[int], config: QuantConfig | None = None,
                 slope: float = 2.0, backend: str = "auto") -> None:
        super().__init__()
        self.model = model
        self.input_shape = tuple(int(s) for s in input_shape)
        self.config = config or QuantConfig()
        if self.config.threshold_search != "none":
            raise ConfigError("QATModel: threshold_search is a PTQ setting; pass the config of the PTQ result "
                              "(its percentiles are fixed)")
        self.slope = float(slope)
        self.backend = check_backend(backend)
        self.stages: list[Stage] = parse_model(model, self.input_shape)

    def n_ticks(self, input_ticks: int) -> int:
        extra = len(self.stages) if self.config.extra_ticks is None else self.config.extra_ticks
        return input_ticks + extra

    def layer_tensors(self) -> list[LayerTensors]:
        """The current fake-quantized chip values (differentiable)."""
        n = len(self.stages)
        return [fake_quantize_stage(stage, i, n, self.config).tensors for i, stage in enumerate(self.stages)]

    def run(self, x: Any, record_v: bool | str = False) -> ChipTrace:
        """Chip forward over all layers: see :func:`chip_run`."""
        return chip_run(self.layer_tensors(), x, self.n_ticks(int(x.shape[0])), self.config.profile,
                        record_v=record_v, slope=self.slope, backend=self.backend)

    def forward(self, x: Any, verify: bool = False, simulator: Any = None):
        """``(spikes, membrane)`` of the output layer, each [n_ticks, B, n_out] (as snnTorch's spk_rec, mem_rec).

        With ``verify=True`` the same batch also runs in :class:`s2sim.Simulator` (``simulator``, default one with
        the config's profile) on :meth:`freeze`'s network, and a TraceError is raised unless every layer's spikes
        and membranes are bit-identical.
        """
        trace = self.run(x, record_v=True if verify else "last")
        if verify:
            report = verify_trace(self.freeze(), x, trace, simulator)
            if not report.identical:
                raise TraceError(f"QAT forward differs from the simulator: {report.summary()}")
        return trace.spikes[-1], trace.voltages[-1]

    def freeze(self) -> QuantizedModel:
        """The integer network at the current weights (same scales and integers as the forward)."""
        n = len(self.stages)
        layers = [quantize_stage(s, i, n, self.config) for i, s in enumerate(self.stages)]
        return QuantizedModel(layers, self.input_shape, self.config)


# -- verification against the simulator -------------------------------------------------------------------------
@dataclass
class LayerMismatch:
    """Where one layer first differs (sample, tick, neuron) and how many entries differ."""

    name: str
    spike_mismatches: int
    voltage_mismatches: int
    first: tuple[int, int, int] | None


@dataclass
class VerifyReport:
    """Outcome of :func:`verify`: ``identical`` when every spike and every membrane bit pattern agrees."""

    layers: list[LayerMismatch]
    batch: int
    n_ticks: int

    @property
    def identical(self) -> bool:
        return all(m.spike_mismatches == 0 and m.voltage_mismatches == 0 for m in self.layers)

    def summary(self) -> str:
        bad = [m for m in self.layers if m.spike_mismatches or m.voltage_mismatches]
        if not bad:
            return f"identical: {len(self.layers)} layers, {self.batch} samples, {self.n_ticks} ticks"
        return "; ".join(f"{m.name}: {m.spike_mismatches} spikes and {m.voltage_mismatches} membranes differ, first "
                         f"at (sample, tick, neuron) {m.first}" for m in bad)


def verify(model: QATModel | QuantizedModel, x: Any, simulator: Any = None) -> VerifyReport:
    """Run ``x`` ``[T, B, *input_shape]`` through the torch chip forward and through the simulator; compare bits.

    Voltages are compared as uint32 bit patterns, spikes exactly, for every layer, sample and tick.
    """
    with torch.no_grad():
        if isinstance(model, QATModel):
            frozen, trace = model.freeze(), model.run(x, record_v=True)
        else:
            frozen, trace = model, model.forward(x, record_v=True)
    return verify_trace(frozen, x, trace, simulator)


def verify_trace(frozen: QuantizedModel, x: Any, trace: ChipTrace, simulator: Any = None) -> VerifyReport:
    """Compare an already computed torch trace (with voltages) against the simulator running ``frozen``."""
    from .simulator import Simulator

    sim = simulator or Simulator(frozen.config.profile)
    inputs = frozen.simulator_inputs(x)
    res = sim.run_batch(frozen.to_network(record=("spikes", "v")), inputs)
    out = []
    for name, spk, v in zip(trace.names, trace.spikes, trace.voltages):
        mine_s = spk.detach().cpu().numpy().transpose(1, 0, 2).astype(np.uint8)
        mine_v = np.ascontiguousarray(v.detach().cpu().numpy().transpose(1, 0, 2)).view(np.uint32)
        sim_v = np.ascontiguousarray(res.voltages[name].astype(np.float32, copy=False)).view(np.uint32)
        ds = mine_s != res.spikes[name]
        dv = mine_v != sim_v
        both = np.argwhere(ds | dv)
        out.append(LayerMismatch(name, int(ds.sum()), int(dv.sum()),
                                 tuple(int(i) for i in both[0]) if len(both) else None))
    return VerifyReport(out, int(inputs["input"].shape[0]), int(inputs["input"].shape[1]))
