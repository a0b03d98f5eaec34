"""How float weights, thresholds and biases become chip values: :class:`QuantConfig` and the scale rules.

Shared by PTQ (:mod:`s2sim.quantize`) and QAT (:mod:`s2sim.qat`); docs/quantization.md describes the rules.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Literal

import numpy as np

from .errors import ConfigError
from .models import MODELS
from .profile import ChipProfile

ScaleRule = Literal["max", "percentile", "mean_std"]
Rounding = Literal["nearest_even", "trunc"]
ThresholdSearch = Literal["none", "global", "per_layer"]
DenseModel = Literal["lif_no_delay", "lif"]

SCALE_RULES = ("max", "percentile", "mean_std")
ROUNDINGS = ("nearest_even", "trunc")
THRESHOLD_SEARCHES = ("none", "global", "per_layer")
DENSE_MODELS = ("lif_no_delay", "lif")
CONV_MODEL = "lif_conv2d"


@dataclass(frozen=True)
class QuantConfig:
    """How float weights, thresholds and biases become chip values (used by PTQ and by QAT).

    Parameters
    ----------
    scale_rule : {"max", "percentile", "mean_std"}
        Per target population, the weight magnitude ``c`` that maps to the largest integer ``L``
        (``scale = L / c``): ``max|W|`` (py-spinnaker2's ``scale_weights``), ``percentile(|W|, p)`` (weights above
        it are clipped to ±L and counted in the report), or ``mean(|W|) + k_std * std(|W|)`` (also clips).
    percentile : float or tuple of float
        ``p`` for the percentile rule, one value or one per layer (0 < p <= 100).
    k_std : float
        ``k`` for the mean_std rule.
    rounding : {"nearest_even", "trunc"}
        ``W * scale`` to integer: round half to even, or toward zero (py-spinnaker2's conv path).
    dense_model : {"lif_no_delay", "lif"}
        Chip model of populations fed by a Linear: ±127 weights, or ±15 weights (the model with a delay field);
        the current-based layers (Synaptic, RSynaptic) take the matching ``lif_curr_exp_no_delay`` (±127) or
        ``lif_curr_exp`` (±15). Populations fed by a Conv2d are always ``lif_conv2d`` (±127).
    max_weight : int or None
        Cap every layer's integer range at ±max_weight, below what its model holds (e.g. 15: the 4-bit magnitude of
        the models with a delay field, also for conv kernels). None: the model's own range.
    threshold_search : {"none", "global", "per_layer"}
        PTQ only. Choose the percentile of the percentile rule on calibration data (needs labels and
        ``scale_rule="percentile"``): one value for all layers, or layer by layer starting from the best global one.
    search_percentiles : tuple of float
        Candidates of the search.
    extra_ticks : int or None
        Ticks run after the input ends; default one per layer (the chip's pipeline depth).
    profile : ChipProfile
        Spike test and FMA settings of the chip forward, per model as ``overrides`` and ``model_settings`` give them
        (membrane and synaptic-current FMA). Weight roundings and the placement limits cannot change what it computes
        (weights reach the chip as integers), nor can ``refractory_rule`` (snnTorch neurons have no refractory
        period, so the populations get ``t_refrac = 0``). Every other field must keep its default (ConfigError
        otherwise): the forward models only that chip.
    silent_rate, saturation_rate : float
        Report warnings: a layer whose mean firing rate (spikes per neuron and tick) after quantization is at most
        ``silent_rate`` is called silent, at least ``saturation_rate`` saturated.
    """

    scale_rule: ScaleRule = "max"
    percentile: float | tuple[float, ...] = 99.9
    k_std: float = 3.0
    rounding: Rounding = "nearest_even"
    dense_model: DenseModel = "lif_no_delay"
    max_weight: int | None = None
    threshold_search: ThresholdSearch = "none"
    search_percentiles: tuple[float, ...] = (100.0, 99.99, 99.9, 99.7, 99.5, 99.0, 98.0, 96.0)
    extra_ticks: int | None = None
    profile: ChipProfile = field(default_factory=ChipProfile)
    silent_rate: float = 0.0
    saturation_rate: float = 0.9

    def __post_init__(self) -> None:
        _choice("scale_rule", self.scale_rule, SCALE_RULES)
        _choice("rounding", self.rounding, ROUNDINGS)
        _choice("dense_model", self.dense_model, DENSE_MODELS)
        _choice("threshold_search", self.threshold_search, THRESHOLD_SEARCHES)
        for p in (*_as_tuple(self.percentile), *self.search_percentiles):
            if not 0.0 < float(p) <= 100.0:
                raise ConfigError(f"QuantConfig: percentile {p} must be in (0, 100]")
        if not math.isfinite(self.k_std) or self.k_std < 0:
            raise ConfigError(f"QuantConfig.k_std = {self.k_std} must be a finite number >= 0")
        if self.threshold_search != "none" and self.scale_rule != "percentile":
            raise ConfigError(f"QuantConfig: threshold_search = {self.threshold_search!r} searches the percentile "
                              f"of scale_rule='percentile', but scale_rule = {self.scale_rule!r}")
        if self.extra_ticks is not None and (not isinstance(self.extra_ticks, int) or self.extra_ticks < 0):
            raise ConfigError(f"QuantConfig.extra_ticks = {self.extra_ticks!r} must be None or an int >= 0")
        if self.max_weight is not None and (isinstance(self.max_weight, bool) or not isinstance(self.max_weight, int)
                                            or self.max_weight < 1):
            raise ConfigError(f"QuantConfig.max_weight = {self.max_weight!r} must be None or an int >= 1")
        if not isinstance(self.profile, ChipProfile):
            raise ConfigError(f"QuantConfig.profile must be a ChipProfile, got {type(self.profile).__name__}")
        _check_modelled_profile(self.profile)

    def layer_percentile(self, index: int, n_layers: int) -> float:
        """The percentile of layer ``index`` (a single value applies to every layer)."""
        values = _as_tuple(self.percentile)
        if len(values) == 1:
            return float(values[0])
        if len(values) != n_layers:
            raise ConfigError(f"QuantConfig.percentile has {len(values)} values for a model of {n_layers} layers")
        return float(values[index])


#: ChipProfile fields the torch forward follows (the spike test and the FMA settings, per model through
#: ``overrides``) or that cannot change what it computes: weights reach the chip as integers, the placement limits
#: move neurons, not values, and the refractory rule never applies with snnTorch's t_refrac = 0.
MODELLED_PROFILE_FIELDS = frozenset({"threshold_op", "fused_multiply_add", "current_fused_multiply_add",
                                     "overrides", "weight_rounding", "conv_weight_rounding", "refractory_rule",
                                     "max_atoms_per_core", "max_targets_per_core"})


def _check_modelled_profile(profile: ChipProfile) -> None:
    """Refuse a profile whose other fields differ from the defaults: the forward implements the default float32
    chip only, and "bit-identical to the simulator" would be untrue for any other variant (also for fields added to
    ChipProfile later, which is why the check lists what is modelled instead of what is not)."""
    default = ChipProfile()
    for f in fields(profile):
        value = getattr(profile, f.name)
        if f.name not in MODELLED_PROFILE_FIELDS and value != getattr(default, f.name):
            raise ConfigError(f"QuantConfig.profile.{f.name} = {value!r}: the quantized torch forward models "
                              f"{f.name} = {getattr(default, f.name)!r} only")


def _as_tuple(value: float | Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in value) if isinstance(value, (tuple, list)) else (float(value),)


def _choice(name: str, value: object, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"QuantConfig.{name} = {value!r} is not one of {choices}")


# -- scales and integers ---------------------------------------------------------------------------------------
def select_scale(abs_weights: np.ndarray, limit: int, rule: str, percentile: float = 100.0,
                 k_std: float = 3.0, where: str = "?") -> tuple[float, float]:
    """``(scale, clip)``: the weight magnitude ``clip`` that maps to ``limit``, and ``scale = limit / clip``.

    A layer whose weights are all zero gets scale 1 (nothing to scale). If the rule's statistic is 0 while some
    weight is not (e.g. a low percentile of a mostly pruned layer), the largest weight is used instead.
    """
    a = np.asarray(abs_weights, dtype=np.float64).ravel()
    top = float(a.max()) if a.size else 0.0
    if top == 0.0:
        return 1.0, 0.0
    if rule == "max":
        clip = top
    elif rule == "percentile":
        clip = float(np.percentile(a, percentile))
    elif rule == "mean_std":
        clip = float(a.mean() + k_std * a.std())
    else:
        raise ConfigError(f"{where}: unknown scale rule {rule!r}; known: {SCALE_RULES}")
    clip = min(clip, top) if clip > 0 else top
    return limit / clip, clip


#: The current-based model of the same weight format as each dense model.
CURR_EXP_MODELS = {"lif_no_delay": "lif_curr_exp_no_delay", "lif": "lif_curr_exp"}


def weight_limit(kind: str, dense_model: str, neuron: str = "lif", max_weight: int | None = None) -> tuple[str, int]:
    """(chip model, largest weight magnitude) of a population of ``neuron`` dynamics ("lif" or "curr_exp") fed by a
    ``kind`` ("dense" or "conv") projection; ``max_weight`` caps the magnitude below the model's own limit."""
    if kind == "conv":
        name = CONV_MODEL
    else:
        name = CURR_EXP_MODELS[dense_model] if neuron == "curr_exp" else dense_model
    limit = MODELS[name].weight_limit
    return name, limit if max_weight is None else min(limit, max_weight)
