"""Post-training quantization (PTQ) of snnTorch networks to the chip's integer weights.

A feed-forward snnTorch model becomes one chip population per neuron layer (``Leaky``, ``RLeaky``, ``Synaptic``,
``RSynaptic``; :mod:`s2sim.snntorch_stages` parses it). Per target population one symmetric scale maps float
weights (feed-forward and recurrent alike, since both feed the same membrane) to integers at the model's width
(±127 for ``lif_no_delay``, ``lif_conv2d`` and ``lif_curr_exp_no_delay``, ±15 for the models with a delay field,
``lif`` and ``lif_curr_exp``); threshold and bias (``i_offset``) are multiplied by the same scale, so the chip's
membrane is the float membrane times ``scale``. The scale rules, the percentile search on calibration data and
the per-layer report are described in docs/quantization.md.

Calibration (the percentile search and the report) runs the quantized network in the C kernel
(:meth:`QuantizedModel.simulate`, :class:`s2sim.Simulator` on :meth:`QuantizedModel.to_network`);
:meth:`QuantizedModel.forward` is the same arithmetic in torch (:mod:`s2sim.qat`), bit-identical to it. Torch and
snnTorch are imported lazily.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from .errors import ConfigError, LimitError
from .quant_config import (CONV_MODEL, CURR_EXP_MODELS, DENSE_MODELS, MODELLED_PROFILE_FIELDS, ROUNDINGS,
                           SCALE_RULES, THRESHOLD_SEARCHES, DenseModel, QuantConfig, Rounding, ScaleRule,
                           ThresholdSearch, select_scale, weight_limit)
from .quant_layer import EXACT_SUM_LIMIT, QuantLayer, check_exact_sums
from .quant_report import LayerReport, QuantReport
from .quantized_model import INPUT_NAME, QuantizedModel
from .snntorch_stages import Geometry, Stage, float_run, parse_model

# the configuration, the layers, the report and the model live in their own modules (quant_config, quant_layer,
# quant_report, quantized_model); their names stay importable from here
__all__ = ["QuantConfig", "QuantLayer", "QuantizedModel", "QuantReport", "LayerReport", "ptq", "select_scale",
           "weight_limit", "quantize_stage", "parse_model", "float_run", "Geometry", "Stage", "check_exact_sums",
           "snntorch_differences", "SCALE_RULES", "ROUNDINGS", "THRESHOLD_SEARCHES", "DENSE_MODELS", "CONV_MODEL",
           "CURR_EXP_MODELS", "MODELLED_PROFILE_FIELDS", "INPUT_NAME", "EXACT_SUM_LIMIT", "ScaleRule", "Rounding",
           "ThresholdSearch", "DenseModel"]


def quantize_stage(stage: Stage, index: int, n_layers: int, config: QuantConfig) -> QuantLayer:
    """Freeze one stage at the current torch parameters with ``config``'s rule (the code path of QAT's forward)."""
    import torch

    from .fake_quant import fake_quantize_stage, rule_of  # needs torch, which the rest of this module does not

    with torch.no_grad():
        fq = fake_quantize_stage(stage, index, n_layers, config)
    t = fq.tensors
    if not torch.isfinite(t.threshold).all() or not torch.isfinite(t.i_offset).all():
        raise LimitError(f"{stage.name}: threshold or i_offset times scale {t.scale:.6g} overflows float32")
    as_np = lambda x, dtype: None if x is None else x.detach().cpu().numpy().astype(dtype)  # noqa: E731
    out = QuantLayer(stage.name, stage.geometry, fq.model, fq.limit, t.scale, fq.clip, rule_of(config, index, n_layers),
                     as_np(t.weight, np.int64), as_np(t.threshold, np.float32), as_np(t.i_offset, np.float32),
                     as_np(t.alpha, np.float32), stage.reset, fq.n_clipped, as_np(fq.float_weight, np.float64),
                     as_np(fq.float_threshold, np.float64), as_np(t.syn_decay, np.float32),
                     as_np(t.recurrent, np.int64), as_np(fq.float_recurrent, np.float64))
    check_exact_sums(out)
    return out


# -- PTQ --------------------------------------------------------------------------------------------------------
def ptq(model: Any, calib_x: Any, calib_y: Any = None, config: QuantConfig | None = None,
        input_shape: Sequence[int] | None = None) -> QuantizedModel:
    """Post-training quantization of a feed-forward snnTorch model.

    Parameters
    ----------
    model : torch.nn.Module
        ``nn.Sequential`` of Linear / Conv2d / AvgPool2d / Flatten / Dropout and snnTorch ``Leaky``, ``RLeaky``,
        ``Synaptic``, ``RSynaptic`` (subtract or zero reset); see :func:`parse_model`.
    calib_x : torch.Tensor
        Calibration spikes ``[T, B, *input_shape]``, 0/1.
    calib_y : torch.Tensor, optional
        Labels [B]; needed by ``threshold_search``; with them the report holds calibration accuracies
        (output neuron with most spikes).
    config : QuantConfig
    input_shape : tuple, optional
        Default ``calib_x.shape[2:]``.

    Returns
    -------
    QuantizedModel
        With ``.report`` (per-layer scale, clipped weights, threshold error, firing rate before/after, warnings)
        and ``.config`` holding the percentiles actually used.
    """
    import torch

    from .simulator import Simulator

    config = config or QuantConfig()
    calib_x = torch.as_tensor(calib_x, dtype=torch.float32)
    shape = tuple(input_shape) if input_shape is not None else tuple(calib_x.shape[2:])
    stages = parse_model(model, shape)
    n = len(stages)
    float_spikes = float_run(stages, calib_x)
    # the quantized networks run in the C kernel (bit-identical to the torch chip forward, and much faster)
    sim = Simulator(config.profile)
    search: list[tuple[tuple[float, ...], float]] = []
    if config.threshold_search != "none":
        if calib_y is None:
            raise ConfigError(f"ptq: threshold_search = {config.threshold_search!r} needs calibration labels")
        config, search = _search_percentiles(stages, calib_x, calib_y, config, sim)
    qm = QuantizedModel([quantize_stage(s, i, n, config) for i, s in enumerate(stages)], shape, config)
    qm.report = _report(stages, qm, float_spikes, qm.simulate(calib_x, sim), calib_y, search)
    return qm


def _search_percentiles(stages: list[Stage], x: Any, y: Any, config: QuantConfig, sim: Any):
    n = len(stages)
    tried: dict[tuple[float, ...], float] = {}
    layers: dict[tuple[int, float], QuantLayer] = {}   # a layer depends on its own percentile only

    def layer(i: int, p: float) -> QuantLayer:
        if (i, p) not in layers:
            layers[(i, p)] = quantize_stage(stages[i], i, n, replace(config, percentile=p))
        return layers[(i, p)]

    def score(ps: tuple[float, ...]) -> float:
        if ps not in tried:
            cfg = replace(config, percentile=ps)
            qm = QuantizedModel([layer(i, p) for i, p in enumerate(ps)], tuple(x.shape[2:]), cfg)
            tried[ps] = _accuracy(qm.predict(x, sim), y)
        return tried[ps]

    from .progress import bar, step

    # ties go to the larger percentile (less clipping), hence the candidates in descending order
    candidates = sorted(set(config.search_percentiles), reverse=True)
    layered = config.threshold_search == "per_layer"
    # every candidate simulates the calibration set: one bar over all of them
    progress = bar(total=len(candidates) * (1 + n * layered), desc="PTQ percentile search", unit="try")

    def tried_score(ps: tuple[float, ...]) -> float:
        progress.update(1)
        return score(ps)

    best = max(((p,) * n for p in candidates), key=tried_score)
    step("PTQ search: best global percentile %g (calibration accuracy %.2f %%)", best[0], tried[best])
    if layered:
        for i in range(n):
            options = [best[:i] + (p,) + best[i + 1:] for p in candidates]
            best = max(options, key=lambda ps: (tried_score(ps), ps == best))
        step("PTQ search: per-layer percentiles %s (calibration accuracy %.2f %%)", best, tried[best])
    progress.close()
    return replace(config, percentile=best), sorted(tried.items(), key=lambda kv: -kv[1])


def _accuracy(pred: np.ndarray, y: Any) -> float:
    y = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y)
    return float(100.0 * np.mean(pred == y))


def _report(stages: list[Stage], qm: QuantizedModel, before: list, after: list, y: Any, search: list) -> QuantReport:
    cfg = qm.config
    layers = []
    for depth, (stage, layer, sb, sa) in enumerate(zip(stages, qm.layers, before, after), start=1):
        # layer `depth` sees input tick t at chip tick t + depth: compare the aligned window
        sa = sa[depth:depth + sb.shape[0]]
        iw, fw = layer.all_weights
        err = fw - iw / layer.scale
        rms = float(np.sqrt(np.mean(fw ** 2)))
        thr_eff = layer.threshold.astype(np.float64) / layer.scale
        thr_err = float(np.max(np.abs(thr_eff - layer.float_threshold) / np.abs(layer.float_threshold)))
        rate_b, rate_a = float(sb.mean()), float(sa.mean())
        never = sa.sum((0, 1), dtype=np.int64) == 0
        rep = LayerReport(layer.name, layer.model, layer.rule, layer.scale, layer.clip, int(fw.size), layer.n_clipped,
                          float(np.sqrt(np.mean(err ** 2)) / rms) if rms else 0.0,
                          float(layer.float_threshold.mean()), float(layer.threshold.mean()), thr_err,
                          rate_b, rate_a, float(never.mean()))
        if rate_a <= cfg.silent_rate:
            rep.warnings.append(f"{layer.name} is silent after quantization (rate {rate_a:.4g}, float {rate_b:.4g})")
        if rate_a >= cfg.saturation_rate:
            rep.warnings.append(f"{layer.name} saturates after quantization (rate {rate_a:.4g} >= "
                                f"{cfg.saturation_rate}, float {rate_b:.4g})")
        layers.append(rep)
    report = QuantReport(layers, search=search)
    if y is not None:
        report.float_accuracy = _accuracy(before[-1].sum(0).argmax(1).numpy(), y)
        report.quant_accuracy = _accuracy(after[-1].sum(0, dtype=np.int64).argmax(1), y)
    for stage, layer in zip(stages, qm.layers):
        report.notes.extend(snntorch_differences(stage, bool(np.any(layer.i_offset != 0))))
    return report


def snntorch_differences(stage: Stage, has_bias: bool) -> list[str]:
    """Why the chip's spikes of ``stage`` can differ from snnTorch's beyond rounding (docs/quantization.md)."""
    kind, notes = type(stage.neuron).__name__, []
    if stage.neuron.reset_mechanism == "subtract" and stage.reset_delay:
        why = ("RSynaptic applies reset_delay=False to a discarded local variable, so it always resets late"
               if kind == "RSynaptic" and not stage.neuron.reset_delay else "reset_delay=True")
        notes.append(f"{stage.name}: snnTorch {kind} ({why}) subtracts the threshold one step later and undecayed; "
                     "the chip subtracts it at once and decays it, so spike trains differ (train with "
                     "reset_delay=False for an exact match)")
    if stage.neuron.reset_mechanism == "zero" and stage.reset_delay and kind != "Leaky":
        notes.append(f"{stage.name}: snnTorch {kind} with the zero reset and reset_delay=True sets the membrane to 0 "
                     "in the step after a spike, dropping that step's input; the chip sets it to 0 in the spike tick "
                     "and integrates the next input")
    if stage.kind == "curr_exp" and has_bias:
        notes.append(f"{stage.name}: the bias enters the chip's membrane as i_offset = bias / (1 - alpha) from tick 0; "
                     "in snnTorch it builds up in the synaptic current, so only the steady state agrees")
    return notes
