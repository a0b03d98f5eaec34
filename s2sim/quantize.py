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

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, Sequence

import numpy as np

from .errors import ConfigError, LimitError
from .models import MAX_INPUT_SUM, MODELS
from .profile import ChipProfile
from .snntorch_stages import Geometry, Stage, float_run, parse_model

__all__ = ["QuantConfig", "QuantLayer", "QuantizedModel", "QuantReport", "LayerReport", "ptq", "select_scale",
           "weight_limit", "quantize_stage", "parse_model", "float_run", "Geometry", "Stage"]

ScaleRule = Literal["max", "percentile", "mean_std"]
Rounding = Literal["nearest_even", "trunc"]
ThresholdSearch = Literal["none", "global", "per_layer"]
DenseModel = Literal["lif_no_delay", "lif"]

SCALE_RULES = ("max", "percentile", "mean_std")
ROUNDINGS = ("nearest_even", "trunc")
THRESHOLD_SEARCHES = ("none", "global", "per_layer")
DENSE_MODELS = ("lif_no_delay", "lif")
CONV_MODEL = "lif_conv2d"
INPUT_NAME = "input"
#: The torch forward sums integer weights in float32; sums stay exact up to 2**24 (models.MAX_INPUT_SUM).
EXACT_SUM_LIMIT = MAX_INPUT_SUM


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


@dataclass
class QuantLayer:
    """One quantized population: integer weights and the float32 values uploaded to the chip.

    ``weights`` are integers (int64) in torch layout; ``threshold``, ``i_offset`` and ``alpha`` are float32, one
    per neuron; ``scale`` maps float units to chip units (chip membrane = float membrane * scale). Current-based
    populations also have ``syn_decay`` (float32, uploaded as exc_decay and inh_decay); recurrent ones
    ``recurrent``, integer weights [n, n] (post, pre) of the projection onto themselves, with the same scale.
    """

    name: str
    geometry: Geometry
    model: str
    limit: int
    scale: float
    clip: float
    rule: str
    weights: np.ndarray
    threshold: np.ndarray
    i_offset: np.ndarray
    alpha: np.ndarray
    reset: str
    n_clipped: int
    float_weights: np.ndarray
    float_threshold: np.ndarray
    syn_decay: np.ndarray | None = None
    recurrent: np.ndarray | None = None
    float_recurrent: np.ndarray | None = None

    @property
    def all_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(integer, float) weights of every synapse into the population, flat: feed-forward then recurrent."""
        ints = [self.weights.ravel()] + ([] if self.recurrent is None else [self.recurrent.ravel()])
        floats = [self.float_weights.ravel()] + ([] if self.float_recurrent is None else [self.float_recurrent.ravel()])
        return np.concatenate(ints), np.concatenate(floats)


def quantize_stage(stage: Stage, index: int, n_layers: int, config: QuantConfig) -> QuantLayer:
    """Freeze one stage at the current torch parameters with ``config``'s rule (the code path of QAT's forward)."""
    import torch

    from .qat import fake_quantize_stage, rule_of

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


def check_exact_sums(layer: QuantLayer) -> None:
    """The torch forward adds integer weights in float32, exact only below 2**24 per neuron and tick."""
    w = np.abs(layer.weights)
    if layer.geometry.kind == "dense":
        per_neuron = w.sum(axis=1)
        if layer.recurrent is not None:
            per_neuron = per_neuron + np.abs(layer.recurrent).sum(axis=1)
        worst = int(per_neuron.max())
    else:
        worst = int(w.reshape(w.shape[0], -1).sum(axis=1).max()) * layer.geometry.pool ** 2
    if worst > EXACT_SUM_LIMIT:
        raise LimitError(f"{layer.name}: worst-case synaptic sum {worst} into one neuron exceeds 2**24 = "
                         f"{EXACT_SUM_LIMIT}; the torch forward would no longer be exact")


# -- the quantized model ---------------------------------------------------------------------------------------
@dataclass
class LayerReport:
    """Quantization report of one layer (firing rates in spikes per neuron and tick on the calibration data)."""

    name: str
    model: str
    rule: str
    scale: float
    clip: float
    n_weights: int
    n_clipped: int
    weight_rel_rmse: float
    threshold: float
    threshold_chip: float
    threshold_rel_error: float
    rate_before: float
    rate_after: float
    silent_neurons: float
    warnings: list[str] = field(default_factory=list)


@dataclass
class QuantReport:
    """Per-layer quantization report plus calibration accuracies (percent; None without labels)."""

    layers: list[LayerReport]
    float_accuracy: float | None = None
    quant_accuracy: float | None = None
    search: list[tuple[tuple[float, ...], float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return [w for layer in self.layers for w in layer.warnings] + list(self.notes)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    def format(self) -> str:
        """A plain-text table, one row per layer, then warnings."""
        head = (f"{'layer':<8} {'model':<21} {'rule':<16} {'scale':>9} {'clipped':>9} {'w_rmse':>7} "
                f"{'thr_chip':>10} {'thr_err':>8} {'rate_f':>7} {'rate_q':>7} {'silent':>6}")
        rows = [head]
        for r in self.layers:
            rows.append(f"{r.name:<8} {r.model:<21} {r.rule:<16} {r.scale:>9.4g} {r.n_clipped:>4}/{r.n_weights:<4} "
                        f"{r.weight_rel_rmse:>7.4f} {r.threshold_chip:>10.5g} {r.threshold_rel_error:>8.1e} "
                        f"{r.rate_before:>7.4f} {r.rate_after:>7.4f} {r.silent_neurons:>6.2f}")
        if self.float_accuracy is not None:
            rows.append(f"calibration accuracy: float {self.float_accuracy:.2f} %, quantized "
                        f"{self.quant_accuracy:.2f} %")
        rows += [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(rows)


@dataclass
class QuantizedModel:
    """Integer layers ready for the chip, with the torch forward that reproduces the simulator bit for bit."""

    layers: list[QuantLayer]
    input_shape: tuple[int, ...]
    config: QuantConfig
    report: QuantReport | None = None

    @property
    def population_names(self) -> list[str]:
        return [INPUT_NAME] + [layer.name for layer in self.layers]

    def n_ticks(self, input_ticks: int) -> int:
        """Ticks run for an input of ``input_ticks`` ticks: the input plus the pipeline depth (default)."""
        extra = len(self.layers) if self.config.extra_ticks is None else self.config.extra_ticks
        return input_ticks + extra

    def forward(self, x: Any, record_v: bool = False):
        """Run the chip arithmetic in torch on spikes ``x`` ``[T, B, *input_shape]``; see :func:`s2sim.qat.chip_run`."""
        from .qat import chip_run, frozen_tensors

        return chip_run(frozen_tensors(self.layers), x, self.n_ticks(int(x.shape[0])), self.config.profile,
                        record_v=record_v)

    def simulate(self, x: Any, simulator: Any = None) -> list[np.ndarray]:
        """Every layer's spikes, uint8 [n_ticks, B, n] each, for spikes ``x`` ``[T, B, *input_shape]``, run by the C
        kernel (``simulator``, default ``s2sim.Simulator(config.profile)``, on :meth:`to_network`): the same spikes
        as :meth:`forward` (tests/test_quantize.py checks it), in a fraction of the time."""
        from .simulator import Simulator

        sim = simulator or Simulator(self.config.profile)
        res = sim.run_batch(self.to_network(record=()), self.simulator_inputs(x), all_spikes=True)
        return [res.spikes[layer.name].transpose(1, 0, 2) for layer in self.layers]

    def predict(self, x: Any, simulator: Any = None) -> np.ndarray:
        """Class = output neuron with the most spikes over the run (ties: lowest index), from :meth:`simulate`."""
        return self.simulate(x, simulator)[-1].sum(0, dtype=np.int64).argmax(1)

    def to_network(self, record: Sequence[str] = ("spikes",), name: str = "quantized") -> Any:
        """The chip network: ``input`` (spike_list) and one population per layer, recording ``record``."""
        from . import snn

        net = snn.Network(name)
        pre = snn.Population(int(np.prod(self.input_shape)), "spike_list", {}, name=INPUT_NAME)
        net.add(pre)
        for layer in self.layers:
            params = {"threshold": layer.threshold.astype(np.float64), "alpha_decay": layer.alpha.astype(np.float64),
                      "i_offset": layer.i_offset.astype(np.float64), "v_init": 0.0, "v_reset": 0.0,
                      "reset": layer.reset}
            if layer.syn_decay is not None:
                # snnTorch neurons have no refractory period; one decay for both currents, as snnTorch's one syn
                decay = layer.syn_decay.astype(np.float64)
                params.update(exc_decay=decay, inh_decay=decay.copy(), t_refrac=0)
            post = snn.Population(layer.geometry.n_out, layer.model, params, name=layer.name, record=list(record))
            net.add(post, _projection(snn, pre, post, layer))
            if layer.recurrent is not None:
                net.add(snn.Projection(post, post, _dense_connections(layer.recurrent), name=f"{layer.name}->self"))
            pre = post
        return net

    def simulator_inputs(self, x: Any) -> dict[str, np.ndarray]:
        """``x`` ``[T, B, *input_shape]`` (0/1) as the simulator's input dict, zero-padded to :meth:`n_ticks`."""
        arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
        t, b = arr.shape[:2]
        flat = arr.reshape(t, b, -1)
        if not np.isin(flat, (0, 1)).all():
            raise ConfigError("input spikes must be 0 or 1 (a spike_list sends at most one spike per neuron and "
                              "tick)")
        out = np.zeros((b, self.n_ticks(t), flat.shape[2]), dtype=np.uint8)
        out[:, :t] = flat.transpose(1, 0, 2)
        return {INPUT_NAME: out}


def _projection(snn: Any, pre: Any, post: Any, layer: QuantLayer) -> Any:
    g = layer.geometry
    if g.kind == "dense":
        return snn.Projection(pre, post, _dense_connections(layer.weights))
    c_in, h, w = g.in_shape
    conv_params = {"in_height": h, "in_width": w, "stride_y": g.stride[0], "stride_x": g.stride[1],
                   "pool_y": g.pool, "pool_x": g.pool, "pad_top": g.padding[0], "pad_bottom": g.padding[0],
                   "pad_left": g.padding[1], "pad_right": g.padding[1]}
    return snn.Conv2DProjection(pre, post, layer.weights.transpose(1, 0, 2, 3).astype(np.float64), conv_params)


def _dense_connections(weights: np.ndarray) -> np.ndarray:
    """Connection list rows [pre, post, weight, delay 0] of a [post, pre] weight matrix (zeros included)."""
    n_out, n_in = weights.shape
    post_idx, pre_idx = np.meshgrid(np.arange(n_out), np.arange(n_in), indexing="ij")
    return np.stack([pre_idx.ravel(), post_idx.ravel(), weights.ravel(), np.zeros(n_out * n_in)], 1)


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

    # ties go to the larger percentile (less clipping), hence the candidates in descending order
    candidates = sorted(set(config.search_percentiles), reverse=True)
    best = max(((p,) * n for p in candidates), key=score)
    if config.threshold_search == "per_layer":
        for i in range(n):
            options = [best[:i] + (p,) + best[i + 1:] for p in candidates]
            best = max(options, key=lambda ps: (score(ps), ps == best))
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
