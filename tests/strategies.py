"""Hypothesis strategies for random s2sim networks.

A strategy draws a :class:`NetSpec`: plain data (lists, dicts, small arrays) describing populations, projections,
inputs and the ChipProfile, so a failing example prints as something that can be pasted back into a test.
``spec.build()`` turns it into fresh ``snn`` objects. The structure (models, sizes, which projections exist,
rounding mode, ...) is drawn by hypothesis and shrinks; bulky numbers (connection lists, parameter vectors,
input rasters, kernels) come from a numpy generator seeded by a drawn integer.

Parameters are scaled to the weights so that neurons spike (checked in test_oracle_vs_kernel.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

from s2sim import snn
from s2sim.models import MODELS
from s2sim.profile import (
    INPUT_GROUPINGS,
    REFRACTORY_RULES,
    STATE_PRECISIONS,
    THRESHOLD_OPS,
    WEIGHT_ROUNDINGS,
    ChipProfile,
    field_models,
)
from s2sim.tuning import KernelTuning

LIST_TARGET_MODELS = ("lif", "lif_no_delay", "lif_curr_exp", "lif_curr_exp_no_delay", "lif_conv2d")
NEURON_RECORD = ["spikes", "v", "v_last", "counts"]
INPUT_RECORD = ["spikes", "counts"]


@dataclass
class PopSpec:
    name: str
    size: int
    model: str
    params: dict


@dataclass
class ListProjSpec:
    pre: str
    post: str
    connections: list


@dataclass
class ConvProjSpec:
    pre: str
    post: str
    weights: np.ndarray  # [C_in, C_out, kH, kW]
    conv_params: dict


@dataclass
class NetSpec:
    """A random network and how to run it (``tuning`` and ``threads``: the kernel paths the run takes)."""

    profile: ChipProfile
    timesteps: int
    batch: int
    tuning: KernelTuning = field(default_factory=KernelTuning)
    threads: int = 1
    pops: list[PopSpec] = field(default_factory=list)
    projections: list[Any] = field(default_factory=list)
    inputs: dict[str, np.ndarray] = field(default_factory=dict)

    def build(self) -> tuple[snn.Network, dict[str, np.ndarray]]:
        """Fresh Network (every population records everything it can) and the batched input arrays."""
        pops = {}
        for p in self.pops:
            record = INPUT_RECORD if p.model == "spike_list" else NEURON_RECORD
            pops[p.name] = snn.Population(p.size, p.model, p.params, name=p.name, record=record)
        net = snn.Network("random").add(*pops.values())
        for proj in self.projections:
            if isinstance(proj, ConvProjSpec):
                net.add(snn.Conv2DProjection(pops[proj.pre], pops[proj.post], proj.weights, proj.conv_params))
            else:
                net.add(snn.Projection(pops[proj.pre], pops[proj.post], proj.connections))
        return net, {name: arr.copy() for name, arr in self.inputs.items()}

    def neuron_names(self) -> list[str]:
        return [p.name for p in self.pops if p.model != "spike_list"]


_PER_MODEL_CHOICES = {
    "threshold_op": st.sampled_from(THRESHOLD_OPS),
    "fused_multiply_add": st.booleans(),
    "current_fused_multiply_add": st.booleans(),
    "weight_rounding": st.sampled_from(WEIGHT_ROUNDINGS),
    "conv_weight_rounding": st.sampled_from(WEIGHT_ROUNDINGS),
}


@st.composite
def model_overrides(draw, models=LIST_TARGET_MODELS) -> dict:
    """Per-model overrides: a few (model, field) pairs of the given models set to a drawn value."""
    out: dict = {}
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(sorted(_PER_MODEL_CHOICES)))
        usable = [m for m in field_models(name) if m in models]
        if usable:
            out.setdefault(draw(st.sampled_from(usable)), {})[name] = draw(_PER_MODEL_CHOICES[name])
    return out


@st.composite
def profiles(draw, precisions=STATE_PRECISIONS, models=LIST_TARGET_MODELS) -> ChipProfile:
    """Every field of a ChipProfile, with overrides for some of ``models``."""
    precision = draw(st.sampled_from(precisions))
    return ChipProfile(
        threshold_op=draw(st.sampled_from(THRESHOLD_OPS)),
        fused_multiply_add=draw(st.booleans()),
        current_fused_multiply_add=draw(st.none() | st.booleans()),
        weight_rounding=draw(st.sampled_from(WEIGHT_ROUNDINGS)),
        conv_weight_rounding=draw(st.none() | st.sampled_from(WEIGHT_ROUNDINGS)),
        state_precision=precision,
        input_grouping=draw(st.sampled_from(INPUT_GROUPINGS)),
        flush_to_zero=precision == "float32" and draw(st.booleans()),
        refractory_rule=draw(st.sampled_from(REFRACTORY_RULES)),
        overrides=draw(model_overrides(models)),
    )


class _Numbers:
    """The seeded generator behind one spec, with the value styles the tests want."""

    def __init__(self, seed: int, dyadic: bool, integer_weights: bool, tiny: bool = False) -> None:
        self.rng = np.random.default_rng(seed)
        # Dyadic values (multiples of 1/4, alpha in {1, 0.75, 0.5}) make V land exactly on the threshold,
        # where ">=" and ">" differ; uniform floats make every multiply-add round, where the FMA setting shows.
        self.dyadic = dyadic
        self.integer_weights = integer_weights
        # Tiny neuron parameters (near float32's smallest normal) let V decay into the subnormals, where
        # flush-to-zero shows.
        self.param_scale = 2.0**-124 if tiny else 1.0

    def value(self, low: float, high: float, size: int) -> Any:
        per_neuron = size > 1 and self.rng.random() < 0.5
        n = size if per_neuron else 1
        vals = self.rng.uniform(low, high, n)
        if self.dyadic:  # multiples of a quarter of the parameter scale (a power of two: exact)
            vals = np.round(vals * 4 / self.param_scale) / 4 * self.param_scale
        out = vals.tolist()
        return out if per_neuron else out[0]

    def decay(self, size: int) -> Any:
        if self.dyadic:
            choice = self.rng.choice([1.0, 0.75, 0.5], size if size > 1 and self.rng.random() < 0.5 else 1)
            return choice.tolist() if choice.size > 1 else float(choice[0])
        return self.value(0.5, 1.0, size)

    def weights(self, limit: int, n: int) -> np.ndarray:
        """Mostly excitatory weights whose every rounding stays within -limit..limit."""
        whole = self.rng.integers(-(limit // 3), limit, n, endpoint=False).astype(np.float64)
        if self.integer_weights:
            return whole
        frac = self.rng.choice([0.0, 0.5, -0.5, 0.25, 0.75], n)
        frac = np.where(self.rng.random(n) < 0.5, frac, self.rng.uniform(-0.999, 0.999, n))
        # whole + frac must stay strictly inside (-limit, limit) so floor/away never leave the range.
        return np.clip(whole + frac, -limit + 0.001, limit - 0.001)


def _neuron_params(num: _Numbers, model: str, size: int, scale: float) -> dict:
    scale *= num.param_scale
    threshold = num.value(0.5 * scale, 1.5 * scale, size)
    params = {
        "threshold": threshold,
        "alpha_decay": num.decay(size),
        "i_offset": num.value(-0.1 * scale, 0.3 * scale, size),
        "v_init": num.value(-0.5 * scale, 1.0 * scale, size),
        "v_reset": num.value(-0.5 * scale, 0.5 * scale, size),
        "reset": "reset_by_subtraction" if num.rng.random() < 0.5 else "reset_to_v_reset",
    }
    if MODELS[model].kind == 2:
        params["exc_decay"] = num.decay(size)
        params["inh_decay"] = num.decay(size)
        params["t_refrac"] = int(num.rng.integers(0, 4))
    return params


def _input_raster(num: _Numbers, batch: int, timesteps: int, size: int) -> np.ndarray:
    # quiet to busy: the conv kernel picks its event-driven or its dense path per tick from the spike count
    density = num.rng.choice([0.02, 0.1, 0.3, 0.6, 0.95])
    return (num.rng.random((batch, timesteps, size)) < density).astype(np.uint8)


def _spike_times(num: _Numbers, timesteps: int, size: int) -> dict:
    raster = _input_raster(num, 1, timesteps, size)[0]
    return {i: np.flatnonzero(raster[:, i]).tolist() for i in range(size)}


def _connections(num: _Numbers, pre: PopSpec, post: PopSpec) -> list:
    model = MODELS[post.model]
    n = int(num.rng.integers(1, max(2, pre.size * post.size) + 1))
    pre_idx = num.rng.integers(0, pre.size, n)  # repeats give several synapses between one pair
    post_idx = num.rng.integers(0, post.size, n)
    if num.rng.random() < 0.5:  # one delay for the whole list: the kernel's rows then carry no delays
        delays = np.full(n, num.rng.integers(0, model.max_delay + 1))
    else:
        delays = num.rng.integers(0, model.max_delay + 1, n)
    weights = num.weights(model.weight_limit, n)
    return [[int(a), int(b), float(w), int(d)] for a, b, w, d in zip(pre_idx, post_idx, weights, delays, strict=True)]


@st.composite
def conv_geometry(
    draw, max_channels: int = 2, max_side: int = 4, max_kernel: int = 3, in_shape: tuple[int, int, int] | None = None
) -> dict:
    """Shapes of one conv layer: C_in, C_out, kernel, and conv_params with fused pool, stride, padding.

    Wide layers (more than 16 channels, kernel rows of more than 64 taps) exercise the dense conv product's channel
    groups and tap chunks. ``in_shape`` (C, H, W): the layer reads that input (another conv layer's output).
    """
    c_out = draw(st.integers(1, max_channels))
    if in_shape is None:
        c_in = draw(st.integers(1, max_channels))
        pool_y, pool_x = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        ph, pw = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    else:
        c_in, h, w = in_shape
        pool_y, pool_x = (
            draw(st.sampled_from([p for p in (1, 2) if h % p == 0])),
            draw(st.sampled_from([p for p in (1, 2) if w % p == 0])),
        )
        ph, pw = h // pool_y, w // pool_x
    pads = {k: draw(st.integers(0, 2)) for k in ("pad_top", "pad_bottom", "pad_left", "pad_right")}
    kh = draw(st.integers(1, min(max_kernel, ph + pads["pad_top"] + pads["pad_bottom"])))
    kw = draw(st.integers(1, min(max_kernel, pw + pads["pad_left"] + pads["pad_right"])))
    stride_y, stride_x = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    conv_params = {
        "in_height": ph * pool_y,
        "in_width": pw * pool_x,
        "pool_y": pool_y,
        "pool_x": pool_x,
        "stride_y": stride_y,
        "stride_x": stride_x,
        **pads,
    }
    oh = (ph + pads["pad_top"] + pads["pad_bottom"] - kh) // stride_y + 1
    ow = (pw + pads["pad_left"] + pads["pad_right"] - kw) // stride_x + 1
    return {
        "c_in": c_in,
        "c_out": c_out,
        "kh": kh,
        "kw": kw,
        "conv_params": conv_params,
        "in_size": c_in * ph * pool_y * pw * pool_x,
        "out_size": c_out * oh * ow,
        "out_shape": (c_out, oh, ow),
    }


@st.composite
def tunings(draw) -> tuple[KernelTuning, int]:
    """Kernel path choices and a thread count: forced event-driven, dense or cost-model conv and list delivery,
    AMX or SIMD dense products, samples split over two threads or not.
    """
    tuning = KernelTuning(
        conv=draw(st.sampled_from(("auto", "events", "dense"))),
        lists=draw(st.sampled_from(("auto", "events", "dense"))),
        matrix_unit=draw(st.booleans()),
        split=draw(st.sampled_from(("auto", "never", "always"))),
    )
    return tuning, draw(st.sampled_from((1, 2)))


@st.composite
def net_specs(
    draw,
    max_neuron_pops: int = 3,
    conv: bool | None = None,
    precisions=STATE_PRECISIONS,
    max_timesteps: int = 24,
    max_batch: int = 3,
    wide_conv: bool = False,
) -> NetSpec:
    """A random network: 1-2 spike_list inputs, neuron populations of every model, list projections (recurrent,
    several into one population, delays 0..max), and (when ``conv`` is True, or sometimes when None) a
    Conv2DProjection onto a lif_conv2d population that then feeds the rest (``wide_conv``: up to 40 channels and
    5x5 kernels). Run with drawn kernel paths (:func:`tunings`).
    """
    with_conv = conv if conv is not None else draw(st.booleans())
    models = draw(st.lists(st.sampled_from(LIST_TARGET_MODELS), min_size=1, max_size=max_neuron_pops))
    profile = draw(profiles(precisions, models + ["lif_conv2d"] * with_conv))
    tuning, threads = draw(tunings())
    spec = NetSpec(profile, draw(st.integers(2, max_timesteps)), draw(st.integers(1, max_batch)), tuning, threads)
    exact = any(
        "exact" in (s.weight_rounding, s.conv_weight_rounding) for s in map(profile.model_settings, LIST_TARGET_MODELS)
    )
    integer_weights = exact or draw(st.booleans())
    num = _Numbers(
        draw(st.integers(0, 2**32 - 1)),
        dyadic=draw(st.booleans()),
        integer_weights=integer_weights,
        tiny=draw(st.integers(0, 3)) == 0,
    )

    for k in range(draw(st.integers(1, 2))):
        spec.pops.append(_input_pop(draw, num, spec, f"in{k}", draw(st.integers(1, 6))))
    if with_conv:
        _add_conv_layer(draw, num, spec, wide_conv)
    for k, model in enumerate(models):
        size = draw(st.integers(1, 8))
        post = PopSpec(f"n{k}", size, model, {})
        post.params = _neuron_params(num, model, size, scale=MODELS[model].weight_limit * 0.6)
        spec.pops.append(post)
        sources = list(spec.pops)  # includes post itself: recurrent projections
        for _ in range(draw(st.integers(1, 3))):
            pre = draw(st.sampled_from(sources))
            spec.projections.append(ListProjSpec(pre.name, post.name, _connections(num, pre, post)))
    return spec


def _input_pop(draw, num: _Numbers, spec: NetSpec, name: str, size: int) -> PopSpec:
    if draw(st.booleans()):
        spec.inputs[name] = _input_raster(num, spec.batch, spec.timesteps, size)
        return PopSpec(name, size, "spike_list", {})
    return PopSpec(name, size, "spike_list", _spike_times(num, spec.timesteps, size))


def _add_conv_layer(draw, num: _Numbers, spec: NetSpec, wide: bool = False) -> None:
    """A conv layer from a spike_list, sometimes followed by a second one reading the first's output (a conv
    layer's own neuron order then feeds the next conv).
    """
    geo = draw(conv_geometry(40, 6, 5) if wide else conv_geometry())
    src = _input_pop(draw, num, spec, "conv_in", geo["in_size"])
    spec.pops.append(src)
    _conv_projection(num, spec, src.name, "conv", geo)
    if draw(st.booleans()):
        _conv_projection(
            num,
            spec,
            "conv",
            "conv2",
            draw(conv_geometry(40 if wide else 3, 6, 5 if wide else 3, in_shape=geo["out_shape"])),
        )


def _conv_projection(num: _Numbers, spec: NetSpec, pre: str, name: str, geo: dict) -> None:
    shape = (geo["c_in"], geo["c_out"], geo["kh"], geo["kw"])
    weights = num.weights(127, int(np.prod(shape))).reshape(shape)  # every rounding stays inside -128..127
    post = PopSpec(name, geo["out_size"], "lif_conv2d", {})
    # Scale: a tap sees up to pool_y*pool_x spikes; keep thresholds in reach of a few average taps.
    post.params = _neuron_params(num, "lif_conv2d", post.size, scale=40.0)
    spec.pops.append(post)
    spec.projections.append(ConvProjSpec(pre, name, weights, geo["conv_params"]))
