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

from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any

import numpy as np
try:
    import torch
except ModuleNotFoundError as exc:  # the core of s2sim runs without torch; training needs it
    raise ModuleNotFoundError(f"s2sim.qat needs torch ({exc}); install it with `pip install torch==2.13.0` "
                              "(CPU build) or `pip install s2sim[torch]`") from exc

from .chip_forward import ChipTrace, LayerList, LayerTensors, chip_run, frozen_tensors
from .chip_neuron import check_backend
from .chip_neuron import fma32  # noqa: F401  (public here: s2sim.qat.fma32)
from .errors import ConfigError, TraceError
from .fake_quant import FakeQuantLayer, fake_quant_weight, fake_quantize_stage, rule_of, stage_scale
from .quant_config import QuantConfig
from .quantize import QuantizedModel, quantize_stage
from .snntorch_stages import Stage, parse_model

# the chip forward and fake quantization live in their own modules; their names stay importable from here
__all__ = ["QATModel", "verify", "verify_trace", "VerifyReport", "LayerMismatch", "fma32", "ChipTrace", "LayerList",
           "LayerTensors", "chip_run", "frozen_tensors", "FakeQuantLayer", "fake_quant_weight", "fake_quantize_stage",
           "rule_of", "stage_scale"]


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
