"""Post-training quantization (PTQ) of snnTorch networks to the chip's integer weights.

A feed-forward snnTorch model (an ``nn.Sequential``, possibly nested, of ``Linear`` / ``Conv2d`` / ``AvgPool2d`` /
``Flatten`` and ``snntorch.Leaky``) becomes one chip population per ``Leaky``. Everything between two ``Leaky``
modules is one projection ("stage"): pools before a conv become its fused sum-pool, a pool right after a conv is
folded into a larger strided kernel, pools and a flatten before a ``Linear`` are folded into its connection list.

Per target population one symmetric scale maps float weights to integers at the model's width (±127 for
``lif_no_delay`` and ``lif_conv2d``, ±15 for ``lif``); threshold and bias (``i_offset``) are multiplied by the
same scale, so the chip's membrane is the float membrane times ``scale``. The scale rules, the percentile search
on calibration data and the per-layer report are described in docs/quantization.md.

The quantized forward used for calibration is the chip's arithmetic in torch (:mod:`s2sim.qat`), bit-identical
to :class:`s2sim.Simulator` running :meth:`QuantizedModel.to_network`. Torch and snnTorch are imported lazily.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Sequence

import numpy as np

from .errors import ConfigError, ConversionError, LimitError
from .models import MAX_INPUT_SUM, MODELS
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
        Chip model of populations fed by a Linear: ±127 weights, or ±15 weights (the model with a delay field).
        Populations fed by a Conv2d are always ``lif_conv2d`` (±127).
    threshold_search : {"none", "global", "per_layer"}
        PTQ only. Choose the percentile of the percentile rule on calibration data (needs labels and
        ``scale_rule="percentile"``): one value for all layers, or layer by layer starting from the best global one.
    search_percentiles : tuple of float
        Candidates of the search.
    extra_ticks : int or None
        Ticks run after the input ends; default one per layer (the chip's pipeline depth).
    profile : ChipProfile
        Spike test and FMA setting of the chip forward (weight rounding is irrelevant: weights are integers).
        state_precision, input_grouping, conv_x_axis and flush_to_zero must keep their defaults, and per-model
        overrides must not change the spike test or FMA of the models the network uses (ConfigError otherwise).
    silent_rate, saturation_rate : float
        Report warnings: a layer whose mean firing rate (spikes per neuron and tick) after quantization is at most
        ``silent_rate`` is called silent, at least ``saturation_rate`` saturated.
    """

    scale_rule: ScaleRule = "max"
    percentile: float | tuple[float, ...] = 99.9
    k_std: float = 3.0
    rounding: Rounding = "nearest_even"
    dense_model: DenseModel = "lif_no_delay"
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
        if not isinstance(self.profile, ChipProfile):
            raise ConfigError(f"QuantConfig.profile must be a ChipProfile, got {type(self.profile).__name__}")
        # The torch forward implements the float32 chip with the default input grouping and conv axes, without
        # flush-to-zero, and one spike test and FMA setting for all its layers; any other variant would make
        # "bit-identical to the simulator" untrue, so it is refused, not approximated.
        for name, supported in (("state_precision", "float32"), ("input_grouping", "input_first"),
                                ("conv_x_axis", "width"), ("flush_to_zero", False)):
            if getattr(self.profile, name) != supported:
                raise ConfigError(f"QuantConfig.profile.{name} = {getattr(self.profile, name)!r}: the quantized "
                                  f"torch forward models {name} = {supported!r} only")
        for model in (self.dense_model, CONV_MODEL):
            settings = self.profile.model_settings(model)
            for name in ("threshold_op", "fused_multiply_add"):
                if getattr(settings, name) != getattr(self.profile, name):
                    raise ConfigError(f"QuantConfig.profile.overrides[{model!r}][{name!r}] = "
                                      f"{getattr(settings, name)!r}: the quantized torch forward runs every layer "
                                      f"with the profile's {name} ({getattr(self.profile, name)!r})")

    def layer_percentile(self, index: int, n_layers: int) -> float:
        """The percentile of layer ``index`` (a single value applies to every layer)."""
        values = _as_tuple(self.percentile)
        if len(values) == 1:
            return float(values[0])
        if len(values) != n_layers:
            raise ConfigError(f"QuantConfig.percentile has {len(values)} values for a model of {n_layers} layers")
        return float(values[index])


def _as_tuple(value: float | Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in value) if isinstance(value, (tuple, list)) else (float(value),)


def _choice(name: str, value: object, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"QuantConfig.{name} = {value!r} is not one of {choices}")


# -- parsing a torch model into stages --------------------------------------------------------------------------
@dataclass(frozen=True)
class Geometry:
    """How one projection connects its pre and post populations.

    ``kind`` "dense": weights [n_out, n_in] over the pre population's flat order. ``kind`` "conv": kernel
    [C_out, C_in, kH, kW] (torch layout) applied to the input sum-pooled by ``pool``, with ``stride`` and
    ``padding`` as (y, x) pairs.
    """

    kind: Literal["dense", "conv"]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    pool: int = 1
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))


@dataclass
class Stage:
    """One chip population and the torch modules feeding it (``ops``, then ``leaky``)."""

    name: str
    geometry: Geometry
    ops: list
    leaky: Any
    post_pool: int = 1

    @property
    def n_out(self) -> int:
        return self.geometry.n_out

    def synapse_float(self, x):
        """The float model's input current: the torch modules applied to ``x`` [n, *in_shape]."""
        for op in self.ops:
            x = op(x)
        return x.reshape(x.shape[0], -1)

    def effective(self):
        """(weight, bias) of the chip projection in float, as differentiable torch tensors.

        dense: weight [n_out, n_in] (pools and flatten folded in by probing the linear chain with unit vectors),
        conv: kernel [C_out, C_in, kH', kW'] divided by the fused pool area and with a following pool folded in.
        bias: one value per post neuron.
        """
        import torch
        import torch.nn.functional as F

        main = next(op for op in self.ops if isinstance(op, (torch.nn.Linear, torch.nn.Conv2d)))
        g = self.geometry
        if g.kind == "dense":
            if len(self.ops) == 1:
                weight = main.weight
            else:
                probe = torch.eye(g.n_in, dtype=main.weight.dtype).reshape(g.n_in, *g.in_shape)
                for op in self.ops:
                    probe = F.linear(probe, main.weight) if op is main else op(probe)
                weight = probe.reshape(g.n_in, -1).T
            bias = main.bias if main.bias is not None else torch.zeros(g.n_out, dtype=weight.dtype)
            return weight, bias
        weight = _fold_pool(main.weight, self.post_pool, main.stride) / float(g.pool * g.pool)
        per_channel = main.bias if main.bias is not None else torch.zeros(weight.shape[0], dtype=weight.dtype)
        bias = per_channel.repeat_interleave(g.out_shape[1] * g.out_shape[2])
        return weight, bias

    def leaky_params(self):
        """(beta clamped to [0, 1], threshold) of the Leaky, broadcast to one value per post neuron."""
        import torch

        shape = self.geometry.out_shape
        beta = torch.broadcast_to(torch.as_tensor(self.leaky.beta).clamp(0, 1), shape).reshape(-1)
        thr = torch.broadcast_to(torch.as_tensor(self.leaky.threshold), shape).reshape(-1)
        return beta, thr

    @property
    def reset(self) -> str:
        return "reset_by_subtraction" if self.leaky.reset_mechanism == "subtract" else "reset_to_v_reset"


def _fold_pool(weight, q: int, stride: tuple[int, int]):
    """A conv (kernel K, stride s) followed by a q x q average pool equals one conv with kernel K + (q-1)s and
    stride q*s whose taps are the pool-averaged shifted copies of the kernel."""
    import torch

    if q == 1:
        return weight
    co, ci, kh, kw = weight.shape
    sy, sx = stride
    out = torch.zeros(co, ci, kh + (q - 1) * sy, kw + (q - 1) * sx, dtype=weight.dtype)
    for dy in range(q):
        for dx in range(q):
            pad = (dx * sx, (q - 1 - dx) * sx, dy * sy, (q - 1 - dy) * sy)
            out = out + torch.nn.functional.pad(weight, pad)
    return out / float(q * q)


def parse_model(model: Any, input_shape: Sequence[int]) -> list[Stage]:
    """Split a feed-forward snnTorch model into chip stages (one per ``Leaky``).

    Raises
    ------
    ConversionError
        For a module the chip cannot run (MaxPool2d, a Leaky that is not subtract/zero reset, a graded spike
        factor, a pool with padding or stride != kernel, a conv with dilation or groups), naming the module.
    """
    import snntorch
    import torch.nn as nn

    modules = list(_leaves(model, ""))
    stages: list[Stage] = []
    shape = tuple(int(s) for s in input_shape)
    pending: list[tuple[str, Any]] = []
    for name, mod in modules:
        if isinstance(mod, (nn.Dropout, nn.Identity)):
            continue
        if isinstance(mod, snntorch.Leaky):
            _check_leaky(name, mod)
            stage = _make_stage(f"layer{len(stages) + 1}", pending, mod, shape, name)
            stages.append(stage)
            shape = stage.geometry.out_shape
            pending = []
        elif isinstance(mod, (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.Flatten)):
            pending.append((name, mod))
        else:
            raise ConversionError(f"module {name!r} ({type(mod).__name__}) has no chip equivalent; supported: "
                                  "Linear, Conv2d, AvgPool2d, Flatten, Dropout, snntorch.Leaky")
    if pending:
        raise ConversionError(f"modules {[n for n, _ in pending]} after the last Leaky have no neuron population "
                              "to feed; end the model with a Leaky")
    if not stages:
        raise ConversionError("the model has no snntorch.Leaky layer")
    return stages


def _leaves(module: Any, prefix: str):
    children = list(module.named_children())
    if not children:
        yield prefix or type(module).__name__, module
        return
    for name, child in children:
        yield from _leaves(child, f"{prefix}.{name}" if prefix else name)


def _check_leaky(name: str, mod: Any) -> None:
    if mod.reset_mechanism not in ("subtract", "zero"):
        raise ConversionError(f"Leaky {name!r}: reset_mechanism {mod.reset_mechanism!r}; the chip resets by "
                              "subtraction or to v_reset (use 'subtract' or 'zero')")
    if float(mod.graded_spikes_factor) != 1.0 or getattr(mod, "inhibition", False) or mod.state_quant:
        raise ConversionError(f"Leaky {name!r}: graded spikes, inhibition and state_quant have no chip equivalent")


def _make_stage(stage_name: str, ops: list[tuple[str, Any]], leaky: Any, shape: tuple[int, ...],
                leaky_name: str) -> Stage:
    import torch.nn as nn

    mains = [(n, m) for n, m in ops if isinstance(m, (nn.Linear, nn.Conv2d))]
    if len(mains) != 1:
        raise ConversionError(f"{stage_name} (Leaky {leaky_name!r}): needs exactly one Linear or Conv2d before it, "
                              f"found {[n for n, _ in mains] or 'none'}; two weight layers in a row cannot share "
                              "one chip projection")
    main_name, main = mains[0]
    idx = [m for _, m in ops].index(main)
    before, after = ops[:idx], ops[idx + 1:]
    if isinstance(main, nn.Linear):
        return _dense_stage(stage_name, ops, before, after, main, main_name, shape, leaky)
    return _conv_stage(stage_name, ops, before, after, main, main_name, shape, leaky)


def _pool_factor(name: str, pool: Any, shape: tuple[int, ...]) -> int:
    k = pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[0]
    ks = (pool.kernel_size,) * 2 if isinstance(pool.kernel_size, int) else tuple(pool.kernel_size)
    st = ks if pool.stride is None else ((pool.stride,) * 2 if isinstance(pool.stride, int) else tuple(pool.stride))
    pad = (pool.padding,) * 2 if isinstance(pool.padding, int) else tuple(pool.padding)
    if ks[0] != ks[1] or st != ks or pad != (0, 0) or pool.ceil_mode:
        raise ConversionError(f"AvgPool2d {name!r}: kernel {ks}, stride {st}, padding {pad}, ceil_mode "
                              f"{pool.ceil_mode}; the chip's sum-pool needs a square kernel == stride, no padding")
    if len(shape) != 3 or shape[1] % k or shape[2] % k:
        raise ConversionError(f"AvgPool2d {name!r}: input shape {shape} is not (C, H, W) with H and W multiples "
                              f"of {k}")
    return int(k)


def _dense_stage(stage_name, ops, before, after, main, main_name, shape, leaky) -> Stage:
    import torch.nn as nn

    if after:
        raise ConversionError(f"{stage_name}: modules {[n for n, _ in after]} between Linear {main_name!r} and "
                              "its Leaky are not supported")
    cur = shape
    for name, op in before:
        if isinstance(op, nn.AvgPool2d):
            k = _pool_factor(name, op, cur)
            cur = (cur[0], cur[1] // k, cur[2] // k)
        elif isinstance(op, nn.Flatten):
            cur = (int(np.prod(cur)),)
        else:
            raise ConversionError(f"{stage_name}: {type(op).__name__} {name!r} before Linear {main_name!r}")
    if cur != (main.in_features,):
        raise ConversionError(f"Linear {main_name!r}: in_features {main.in_features}, but its input has shape {cur}")
    geo = Geometry("dense", shape, (main.out_features,))
    return Stage(stage_name, geo, [op for _, op in ops], leaky)


def _conv_stage(stage_name, ops, before, after, main, main_name, shape, leaky) -> Stage:
    import torch.nn as nn

    pool = 1
    for name, op in before:
        if not isinstance(op, nn.AvgPool2d) or pool != 1:
            raise ConversionError(f"{stage_name}: only one AvgPool2d may precede Conv2d {main_name!r}, found "
                                  f"{type(op).__name__} {name!r}")
        pool = _pool_factor(name, op, shape)
    post_pool = 1
    for name, op in after:
        if not isinstance(op, nn.AvgPool2d) or post_pool != 1:
            raise ConversionError(f"{stage_name}: only one AvgPool2d may sit between Conv2d {main_name!r} and its "
                                  f"Leaky, found {type(op).__name__} {name!r}")
        post_pool = -1  # checked below, once the conv output shape is known
        post_op = (name, op)
    if (main.dilation != (1, 1) or main.groups != 1 or main.padding_mode != "zeros"
            or isinstance(main.padding, str)):
        raise ConversionError(f"Conv2d {main_name!r}: dilation {main.dilation}, groups {main.groups}, padding "
                              f"{main.padding!r} ({main.padding_mode}); the chip runs dilation 1, groups 1, "
                              "numeric zero padding")
    if len(shape) != 3 or shape[0] != main.in_channels:
        raise ConversionError(f"Conv2d {main_name!r}: expects {main.in_channels} input channels, input shape {shape}")
    ph, pw = shape[1] // pool, shape[2] // pool
    (kh, kw), (sy, sx), (py, px) = main.kernel_size, main.stride, main.padding
    oh, ow = (ph + 2 * py - kh) // sy + 1, (pw + 2 * px - kw) // sx + 1
    if post_pool == -1:
        post_pool = _pool_factor(post_op[0], post_op[1], (main.out_channels, oh, ow))
        oh, ow = oh // post_pool, ow // post_pool
    geo = Geometry("conv", shape, (main.out_channels, oh, ow), pool, (sy * post_pool, sx * post_pool), (py, px))
    return Stage(stage_name, geo, [op for _, op in ops], leaky, post_pool)


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


def weight_limit(kind: str, dense_model: str) -> tuple[str, int]:
    """(chip model, largest weight magnitude) of a population fed by a ``kind`` projection."""
    name = CONV_MODEL if kind == "conv" else dense_model
    return name, MODELS[name].weight_limit


@dataclass
class QuantLayer:
    """One quantized population: integer weights and the float32 values uploaded to the chip.

    ``weights`` are integers (int64) in torch layout; ``threshold``, ``i_offset`` and ``alpha`` are float32, one
    per neuron; ``scale`` maps float units to chip units (chip membrane = float membrane * scale).
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


def quantize_stage(stage: Stage, index: int, n_layers: int, config: QuantConfig) -> QuantLayer:
    """Freeze one stage at the current torch parameters with ``config``'s rule (same code path as QAT)."""
    import torch

    from .qat import fake_quant_weight, rule_of, stage_scale

    with torch.no_grad():
        w, b = stage.effective()
        beta, thr = stage.leaky_params()
        model, limit = weight_limit(stage.geometry.kind, config.dense_model)
        scale, clip = stage_scale(w, limit, config, index, n_layers, stage.name)
        wq, n_clipped = fake_quant_weight(w, scale, limit, config.rounding)
        threshold = (thr.double() * scale).float()
        i_offset = (b.double() * scale).float()
    if not torch.isfinite(threshold).all() or not torch.isfinite(i_offset).all():
        raise LimitError(f"{stage.name}: threshold or i_offset times scale {scale:.6g} overflows float32")
    out = QuantLayer(stage.name, stage.geometry, model, limit, scale, clip, rule_of(config, index, n_layers),
                     wq.detach().numpy().astype(np.int64), threshold.numpy(), i_offset.numpy(),
                     beta.detach().float().numpy(), stage.reset, int(n_clipped),
                     w.detach().double().numpy(), thr.detach().double().numpy())
    check_exact_sums(out)
    return out


def check_exact_sums(layer: QuantLayer) -> None:
    """The torch forward adds integer weights in float32, exact only below 2**24 per neuron and tick."""
    w = np.abs(layer.weights)
    if layer.geometry.kind == "dense":
        worst = int(w.sum(axis=1).max())
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
        head = (f"{'layer':<8} {'model':<13} {'rule':<16} {'scale':>9} {'clipped':>9} {'w_rmse':>7} "
                f"{'thr_chip':>10} {'thr_err':>8} {'rate_f':>7} {'rate_q':>7} {'silent':>6}")
        rows = [head]
        for r in self.layers:
            rows.append(f"{r.name:<8} {r.model:<13} {r.rule:<16} {r.scale:>9.4g} {r.n_clipped:>4}/{r.n_weights:<4} "
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
        """Run the chip arithmetic in torch on spikes ``x`` [T, B, *input_shape]; see :func:`s2sim.qat.chip_run`."""
        from .qat import chip_run, frozen_tensors

        return chip_run(frozen_tensors(self.layers), x, self.n_ticks(int(x.shape[0])), self.config.profile,
                        record_v=record_v)

    def predict(self, x: Any) -> np.ndarray:
        """Class = output neuron with the most spikes over the run (ties: lowest index)."""
        trace = self.forward(x)
        return trace.spikes[-1].sum(0).argmax(1).numpy()

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
            post = snn.Population(layer.geometry.n_out, layer.model, params, name=layer.name, record=list(record))
            net.add(post, _projection(snn, pre, post, layer))
            pre = post
        return net

    def simulator_inputs(self, x: Any) -> dict[str, np.ndarray]:
        """``x`` [T, B, *input_shape] (0/1) as the simulator's input dict, zero-padded to :meth:`n_ticks`."""
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
        n_out, n_in = layer.weights.shape
        post_idx, pre_idx = np.meshgrid(np.arange(n_out), np.arange(n_in), indexing="ij")
        conns = np.stack([pre_idx.ravel(), post_idx.ravel(), layer.weights.ravel(), np.zeros(n_out * n_in)], 1)
        return snn.Projection(pre, post, conns)
    c_in, h, w = g.in_shape
    conv_params = {"in_height": h, "in_width": w, "stride_y": g.stride[0], "stride_x": g.stride[1],
                   "pool_y": g.pool, "pool_x": g.pool, "pad_top": g.padding[0], "pad_bottom": g.padding[0],
                   "pad_left": g.padding[1], "pad_right": g.padding[1]}
    return snn.Conv2DProjection(pre, post, layer.weights.transpose(1, 0, 2, 3).astype(np.float64), conv_params)


# -- PTQ --------------------------------------------------------------------------------------------------------
def ptq(model: Any, calib_x: Any, calib_y: Any = None, config: QuantConfig | None = None,
        input_shape: Sequence[int] | None = None) -> QuantizedModel:
    """Post-training quantization of a feed-forward snnTorch model.

    Parameters
    ----------
    model : torch.nn.Module
        ``nn.Sequential`` of Linear / Conv2d / AvgPool2d / Flatten / Dropout and ``snntorch.Leaky`` (subtract or
        zero reset); see :func:`parse_model`.
    calib_x : torch.Tensor
        Calibration spikes [T, B, *input_shape], 0/1.
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

    config = config or QuantConfig()
    calib_x = torch.as_tensor(calib_x, dtype=torch.float32)
    shape = tuple(input_shape) if input_shape is not None else tuple(calib_x.shape[2:])
    stages = parse_model(model, shape)
    n = len(stages)
    float_spikes = float_run(stages, calib_x)
    search: list[tuple[tuple[float, ...], float]] = []
    if config.threshold_search != "none":
        if calib_y is None:
            raise ConfigError(f"ptq: threshold_search = {config.threshold_search!r} needs calibration labels")
        config, search = _search_percentiles(stages, calib_x, calib_y, config)
    qm = QuantizedModel([quantize_stage(s, i, n, config) for i, s in enumerate(stages)], shape, config)
    trace = qm.forward(calib_x)
    qm.report = _report(stages, qm, float_spikes, trace.spikes, calib_y, search)
    return qm


def _search_percentiles(stages: list[Stage], x: Any, y: Any, config: QuantConfig):
    n = len(stages)
    tried: dict[tuple[float, ...], float] = {}

    def score(ps: tuple[float, ...]) -> float:
        if ps not in tried:
            cfg = replace(config, percentile=ps)
            qm = QuantizedModel([quantize_stage(s, i, n, cfg) for i, s in enumerate(stages)], tuple(x.shape[2:]),
                                cfg)
            tried[ps] = _accuracy(qm.predict(x), y)
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


def float_run(stages: list[Stage], x: Any) -> list[Any]:
    """The float model as snnTorch computes it (no hop delay, spike when ``mem > threshold``, snnTorch's reset
    including ``reset_delay``): per stage the spikes [T, B, n_out]."""
    import torch

    out = []
    with torch.no_grad():
        for stage in stages:
            t, b = x.shape[:2]
            cur = stage.synapse_float(x.reshape(t * b, *x.shape[2:])).reshape(t, b, -1)
            beta, thr = stage.leaky_params()
            x = _snntorch_leaky(cur, beta, thr, stage.leaky.reset_mechanism, bool(stage.leaky.reset_delay))
            out.append(x)
            x = x.reshape(t, b, *stage.geometry.out_shape)
    return out


def _snntorch_leaky(cur: Any, beta: Any, thr: Any, mechanism: str, reset_delay: bool) -> Any:
    """snntorch.Leaky's update, step by step in its own operation order."""
    import torch

    mem = torch.zeros_like(cur[0])
    spikes = torch.empty_like(cur)
    for t in range(cur.shape[0]):
        reset = (mem - thr > 0).float()
        if mechanism == "subtract":
            mem = beta * mem + cur[t] - reset * thr
        else:
            mem = (1 - reset) * mem
            mem = beta * mem + cur[t]
        spk = (mem - thr > 0).float()
        if not reset_delay:
            do_reset = spk - reset
            mem = mem - do_reset * thr if mechanism == "subtract" else mem - do_reset * mem
        spikes[t] = spk
    return spikes


def _report(stages: list[Stage], qm: QuantizedModel, before: list, after: list, y: Any, search: list) -> QuantReport:
    cfg = qm.config
    layers = []
    for depth, (stage, layer, sb, sa) in enumerate(zip(stages, qm.layers, before, after), start=1):
        # layer `depth` sees input tick t at chip tick t + depth: compare the aligned window
        sa = sa[depth:depth + sb.shape[0]]
        fw = layer.float_weights
        err = fw - layer.weights / layer.scale
        rms = float(np.sqrt(np.mean(fw ** 2)))
        thr_eff = layer.threshold.astype(np.float64) / layer.scale
        thr_err = float(np.max(np.abs(thr_eff - layer.float_threshold) / np.abs(layer.float_threshold)))
        rate_b, rate_a = float(sb.mean()), float(sa.mean())
        never = sa.sum((0, 1)) == 0
        rep = LayerReport(layer.name, layer.model, layer.rule, layer.scale, layer.clip, int(fw.size), layer.n_clipped,
                          float(np.sqrt(np.mean(err ** 2)) / rms) if rms else 0.0,
                          float(layer.float_threshold.mean()), float(layer.threshold.mean()), thr_err,
                          rate_b, rate_a, float(never.float().mean()))
        if rate_a <= cfg.silent_rate:
            rep.warnings.append(f"{layer.name} is silent after quantization (rate {rate_a:.4g}, float {rate_b:.4g})")
        if rate_a >= cfg.saturation_rate:
            rep.warnings.append(f"{layer.name} saturates after quantization (rate {rate_a:.4g} >= "
                                f"{cfg.saturation_rate}, float {rate_b:.4g})")
        layers.append(rep)
    report = QuantReport(layers, search=search)
    if y is not None:
        report.float_accuracy = _accuracy(before[-1].sum(0).argmax(1).numpy(), y)
        report.quant_accuracy = _accuracy(after[-1].sum(0).argmax(1).numpy(), y)
    for stage in stages:
        if stage.leaky.reset_mechanism == "subtract" and stage.leaky.reset_delay:
            report.notes.append(f"{stage.name}: snnTorch Leaky with reset_delay=True subtracts the threshold one step "
                                "later and undecayed; the chip subtracts it at once and decays it, so spike trains "
                                "differ (train with reset_delay=False for an exact match)")
    return report
