"""Fake quantization: one stage's chip values at its current float weights, differentiable.

Rounding has a straight-through gradient, so PTQ freezes and QAT trains through the same code path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .chip_forward import LayerTensors
from .quant_config import QuantConfig, select_scale, weight_limit
from .snntorch_stages import Stage


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
