"""Lowering: a Network plus a ChipProfile -> the flat integer and float32 arrays the C core runs.

This is where host values become chip values: parameters are rounded once to float32 (the upload), float weights
become integers by ``profile.weight_rounding`` and are range-checked against the target model's synapse format.
It also picks, per projection, the representation the kernel handles fastest (sparse rows, dense int8 rows, or a
convolution), and gives each conv target population a channel-last internal neuron order so a kernel tap is one
contiguous add over output channels. Recording arrays are translated back to the external order by the caller.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import memory
from .errors import (WEIGHT_LOSS_LIMIT, ConfigError, LimitError, S2SimError, TimeConstantWarning, WeightLossWarning,
                     warn)
from .models import CONV_WEIGHT_MAX, CONV_WEIGHT_MIN, KIND_CURR_EXP, KIND_INPUT, MAX_INPUT_SUM, NeuronModel
from .profile import ChipProfile, ModelSettings
from .snn import Conv2DProjection, ConvGeometry, Network, Projection
from .spec import NetworkSpec, PopulationSpec

#: Below MAX_INPUT_SUM the kernel may keep one signed accumulator for lif populations (see models.py).
ACCUMULATOR_LIMIT = MAX_INPUT_SUM
#: A connection list becomes a dense int8 matrix when at least this fraction of pre x post pairs is connected.
DENSE_MIN_DENSITY = 0.25
DENSE_MAX_BYTES = 1 << 28

PROJ_SPARSE, PROJ_DENSE, PROJ_CONV = 0, 1, 2
_UNIFORM_PARAMS = ("threshold", "alpha_decay", "v_reset", "exc_decay", "inh_decay")
_PARAM_NAMES = ("threshold", "alpha_decay", "i_offset", "v_reset", "v_init", "exc_decay", "inh_decay")
_DECAYS = ("alpha_decay", "exc_decay", "inh_decay")


@dataclass
class LoweredPopulation:
    """One population as the core holds it (arrays in internal neuron order)."""

    name: str
    kind: int
    reset: int
    n: int
    ring_slots: int
    ring_planes: int
    state_offset: int
    ring_offset: int
    curr_offset: int
    #: (C, H, W) of a conv target, whose internal order is channel-last (y, x, c); None otherwise.
    channel_last_shape: tuple[int, int, int] | None = None
    params: dict[str, np.ndarray] = field(default_factory=dict)
    #: threshold, alpha_decay, v_reset and the decays are the same for every neuron (the kernel reads one value).
    uniform_params: bool = False
    #: The profile's per-model settings for this population's model (None for a spike_list).
    settings: ModelSettings | None = None

    @property
    def to_external(self) -> np.ndarray | None:
        """Internal index -> external (py-spinnaker2) index; None when the two orders agree."""
        if self.channel_last_shape is None:
            return None
        c, h, w = self.channel_last_shape
        return np.arange(c * h * w, dtype=np.int64).reshape(c, h, w).transpose(1, 2, 0).ravel()

    def to_external_order(self, arr: np.ndarray) -> np.ndarray:
        """Recorded array [..., n] in internal order -> py-spinnaker2 order (a transpose, not a scatter)."""
        if self.channel_last_shape is None:
            return arr
        c, h, w = self.channel_last_shape
        lead = arr.shape[:-1]
        moved = np.moveaxis(arr.reshape(*lead, h, w, c), -1, -3)
        return np.ascontiguousarray(moved).reshape(*lead, self.n)

    @property
    def to_internal(self) -> np.ndarray | None:
        order = self.to_external
        if order is None:
            return None
        inv = np.empty_like(order)
        inv[order] = np.arange(self.n, dtype=inv.dtype)
        return inv


@dataclass
class LoweredProjection:
    """One projection in one of the kernel's three representations."""

    name: str
    kind: int
    pre: int
    post: int
    n_pre: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    geometry: dict[str, int] = field(default_factory=dict)
    n_synapses: int = 0


@dataclass
class LoweredNetwork:
    """The whole network as the C core runs it, plus what is needed to translate results back."""

    populations: list[LoweredPopulation]
    projections: list[LoweredProjection]
    n_neurons: int
    n_ring: int
    n_curr: int
    profile: ChipProfile
    #: The validated snapshot this was lowered from.
    spec: NetworkSpec

    def index(self, name: str) -> int:
        for k, pop in enumerate(self.populations):
            if pop.name == name:
                return k
        raise ConfigError(f"no population named {name!r}")


def round_weights(weights: np.ndarray, mode: str, where: str) -> np.ndarray:
    """Float weights -> integer-valued float64 by ChipProfile.weight_rounding (see docs/datapath.md)."""
    w = np.asarray(weights, dtype=np.float64)
    if mode == "trunc":
        return np.trunc(w)
    if mode == "nearest_even":
        return np.rint(w)
    if mode == "nearest_away":
        # from the fractional part: floor(|w| + 0.5) would round 0.49999999999999994 up
        t = np.trunc(w)
        return t + np.sign(w) * (np.abs(w - t) >= 0.5)
    if mode == "floor":
        return np.floor(w)
    if mode == "exact":
        bad = np.flatnonzero(w.ravel() != np.round(w.ravel()))
        if bad.size:
            raise ConfigError(f"{where}: weight {w.ravel()[bad[0]]} (entry {bad[0]}) is not an integer and "
                              "ChipProfile.weight_rounding is 'exact'")
        return w
    raise ConfigError(f"{where}: unknown weight_rounding {mode!r}")


def check_weight_loss(weights: np.ndarray, rounded: np.ndarray, where: str, subject: str, how: str, *,
                      strict: bool = False, error: type[S2SimError] = ConfigError) -> None:
    """Warn (WeightLossWarning; ``error`` when ``strict``) when rounding silences a projection: every non-zero
    weight becomes 0, or more than WEIGHT_LOSS_LIMIT of the weight mass sum(|w|) is lost.

    ``how`` names the rounding ("weight_rounding 'trunc'"); an all-zero projection as given is not reported.
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    r = np.asarray(rounded, dtype=np.float64).ravel()
    mass = float(np.abs(w).sum())
    if mass == 0.0:
        return
    advice = ("scale the weights up (s2sim.quantize, or ConversionConfig(scale_weights=True) for a NIR graph) or "
              "choose a model with a wider weight range")
    if not np.any(r):
        nonzero = int(np.count_nonzero(w))
        warn(WeightLossWarning, f"{where}: all {nonzero} non-zero weight(s) round to 0 under {how} (largest |w| "
             f"{float(np.abs(w).max()):.4g}); the projection carries no input at all; {advice}", subject,
             strict=strict, error=error)
        return
    loss = float(np.abs(w - r).sum()) / mass
    if loss > WEIGHT_LOSS_LIMIT:
        warn(WeightLossWarning, f"{where}: rounding under {how} loses {loss:.0%} of the weight mass sum(|w|) (more "
             f"than {WEIGHT_LOSS_LIMIT:.0%}); {advice}", subject, strict=strict, error=error)


def check_decays(pop: PopulationSpec, *, strict: bool = False) -> None:
    """Warn (TimeConstantWarning; ConfigError when ``strict``) about decays outside [0, 1] (as float32 on the
    chip): above 1 the state grows without input, below 0 it flips sign every tick."""
    for key in _DECAYS:
        if key not in pop.params:
            continue
        arr = pop.params[key].astype(np.float32)
        bad = np.flatnonzero((arr < 0) | (arr > 1))
        if bad.size:
            i = int(bad[0])
            effect = "grows without input" if arr[i] > 1 else "flips sign every tick"
            warn(TimeConstantWarning, f"population {pop.name!r}: {key} of neuron {i} is {float(arr[i]):.6g}, outside "
                 f"[0, 1] ({bad.size} neuron(s)); the state {effect}", pop.name, strict=strict)


def _check_range(w: np.ndarray, low: int, high: int, where: str) -> None:
    bad = np.flatnonzero((w.ravel() < low) | (w.ravel() > high))
    if bad.size:
        raise LimitError(f"{where}: weight {w.ravel()[bad[0]]:g} (entry {bad[0]}, after rounding) outside the "
                         f"chip's range {low}..{high}; {bad.size} weight(s) out of range (nothing is clipped; "
                         "scale the weights, e.g. with s2sim.quantize)")


def lower(net: Network | NetworkSpec, profile: ChipProfile | None = None, *, strict: bool = False) -> LoweredNetwork:
    """Check a network (as it is now, or a snapshot of it) against the chip's limits under ``profile`` and lower
    it for the C core.

    Warns (WeightLossWarning) when a projection's weights all round to zero or lose more than
    :data:`~s2sim.errors.WEIGHT_LOSS_LIMIT` of their mass under the target model's weight rounding, and
    (TimeConstantWarning) when a decay lies outside [0, 1]; ``strict`` makes both a ConfigError.

    Raises
    ------
    ConfigError, LimitError
        With the population or projection, the parameter, the value and the limit.
    ResourceError
        When the lowered arrays would exceed the memory budget (:mod:`s2sim.memory`).
    """
    profile = profile or ChipProfile()
    if not isinstance(profile, ChipProfile):
        raise ConfigError(f"profile must be a ChipProfile, got {type(profile).__name__}")
    spec = net if isinstance(net, NetworkSpec) else net.validated()
    memory.check(lowering_bytes(spec), f"lowering network {spec.name!r} for the C core",
                 "Reduce the population sizes or the number of synapses")
    conv_shapes = _conv_target_shapes(spec, profile)
    pops = _lower_populations(spec, conv_shapes, profile)
    for pop in spec.populations:
        check_decays(pop, strict=strict)
    projections = [_lower_projection(spec, k, pops, profile, strict) for k in range(len(spec.projections))]
    _check_accumulators(spec, projections, pops)
    last = pops[-1]
    n_ring = max((p.ring_offset + p.ring_slots * p.ring_planes * p.n for p in pops), default=0)
    n_curr = sum(p.n for p in pops if p.kind == KIND_CURR_EXP)
    return LoweredNetwork(pops, projections, last.state_offset + last.n, n_ring, n_curr, profile, spec)


def lowering_bytes(spec: NetworkSpec) -> int:
    """Estimated peak bytes of lowering ``spec``: float32 parameters, ring buffers and state per neuron, and per
    synapse the rounded weights, sort order and the kernel's index arrays (with their temporaries)."""
    total = 0
    for pop in spec.populations:
        ring = pop.model.ring_slots * (2 if pop.model.kind == KIND_CURR_EXP else 1)
        total += pop.size * (4 * len(_PARAM_NAMES) + 8 + 4 * ring + 16)
    for proj, pre, post in zip(spec.projections, spec.pre, spec.post):
        n_pre, n_post = spec.populations[pre].size, spec.populations[post].size
        if isinstance(proj, Conv2DProjection):
            total += n_pre * 72 + proj.weights.size * 24 + n_post * 16
        else:
            m = proj.weights.size
            dense = n_pre * n_post if m >= DENSE_MIN_DENSITY * n_pre * n_post and n_pre * n_post <= DENSE_MAX_BYTES \
                else 0
            total += m * 64 + n_pre * 16 + dense * 3 + n_post * 16
    return total


def _conv_target_shapes(spec: NetworkSpec, profile: ChipProfile) -> dict[int, tuple[int, int, int]]:
    shapes: dict[int, tuple[int, int, int]] = {}
    for proj, pre, post in zip(spec.projections, spec.pre, spec.post):
        if isinstance(proj, Conv2DProjection):
            sizes = (spec.populations[pre].size, spec.populations[post].size)
            out_shape = proj.geometry(profile.conv_x_axis, sizes).out_shape
            prev = shapes.setdefault(post, out_shape)
            if prev != out_shape:
                raise ConfigError(f"population {proj.post.name!r}: conv projections give output shapes {prev} and "
                                  f"{out_shape} (C, H, W); they must agree")
    return shapes


def _ring_planes(kind: int, profile: ChipProfile) -> int:
    """Two planes (exc, inh) where the update needs them apart: decaying currents, or the left-to-right grouping
    ((V*alpha + E) - I); otherwise one signed plane (the same arithmetic under the accumulator bound)."""
    return 2 if kind == KIND_CURR_EXP or profile.input_grouping == "left_to_right" else 1


def _lower_populations(spec: NetworkSpec, conv_shapes: dict, profile: ChipProfile) -> list[LoweredPopulation]:
    out = []
    state = ring = curr = 0
    for k, pop in enumerate(spec.populations):
        out.append(_lower_population(pop, conv_shapes.get(k), state, ring, curr, profile))
        state += pop.size
        if not pop.model.is_input:
            ring += out[-1].ring_slots * out[-1].ring_planes * pop.size
        if pop.model.kind == KIND_CURR_EXP:
            curr += pop.size
    return out


def _lower_population(pop: PopulationSpec, conv_shape: tuple[int, int, int] | None, state: int, ring: int,
                      curr: int, profile: ChipProfile) -> LoweredPopulation:
    model = pop.model
    low = LoweredPopulation(
        name=pop.name, kind=model.kind, reset=0 if pop.reset == "reset_by_subtraction" else 1, n=pop.size,
        ring_slots=model.ring_slots, ring_planes=_ring_planes(model.kind, profile),
        state_offset=state, ring_offset=ring if not model.is_input else -1,
        curr_offset=curr if model.kind == KIND_CURR_EXP else -1, channel_last_shape=conv_shape)
    if model.is_input:
        return low
    low.settings = profile.model_settings(model.name)
    to_ext = low.to_external
    for key in _PARAM_NAMES:
        if key in pop.params:
            values = pop.params[key] if to_ext is None else pop.params[key][to_ext]
            low.params[key] = np.ascontiguousarray(values, dtype=np.float32)
    low.uniform_params = all(
        np.all(low.params[key].view(np.uint32) == low.params[key].view(np.uint32)[0])
        for key in _UNIFORM_PARAMS if key in low.params)
    if model.kind == KIND_CURR_EXP:
        refrac = pop.params["t_refrac"] if to_ext is None else pop.params["t_refrac"][to_ext]
        low.params["t_refrac"] = np.ascontiguousarray(refrac, dtype=np.int32)
    return low


def _lower_projection(spec: NetworkSpec, k: int, pops: list[LoweredPopulation], profile: ChipProfile,
                      strict: bool = False) -> LoweredProjection:
    proj, pre, post = spec.projections[k], spec.pre[k], spec.post[k]
    if isinstance(proj, Conv2DProjection):
        sizes = (spec.populations[pre].size, spec.populations[post].size)
        return _lower_conv(proj, (pre, post), pops, profile, proj.geometry(profile.conv_x_axis, sizes), strict)
    return _lower_list(proj, (pre, post), pops, profile, spec.populations[post].model, strict)


def _rounded(proj: Projection | Conv2DProjection, mode: str, where: str, strict: bool) -> np.ndarray:
    """The projection's weights rounded by ``mode`` (the target model's setting), reported when rounding silences
    them."""
    w = round_weights(proj.weights, mode, where)
    check_weight_loss(proj.weights, w, where, proj.name, f"weight rounding {mode!r}", strict=strict)
    return w


def _lower_list(proj: Projection, ends: tuple[int, int], pops: list[LoweredPopulation], profile: ChipProfile,
                post_model: NeuronModel, strict: bool = False) -> LoweredProjection:
    pre, post = pops[ends[0]], pops[ends[1]]
    where = f"projection {proj.name!r} into population {post.name!r} ({post_model.name})"
    w = _rounded(proj, post.settings.weight_rounding, where, strict)
    limit = post_model.weight_limit
    _check_range(w, -limit, limit, where)
    pre_idx = proj.pre_idx if pre.to_internal is None else pre.to_internal[proj.pre_idx]
    post_idx = proj.post_idx if post.to_internal is None else post.to_internal[proj.post_idx]
    low = LoweredProjection(proj.name, PROJ_SPARSE, ends[0], ends[1], pre.n, n_synapses=int(w.size))
    if _dense_fits(proj, pre.n, post.n):
        dense = np.zeros((pre.n, post.n), dtype=np.int8)
        dense[pre_idx, post_idx] = w.astype(np.int8)
        low.kind = PROJ_DENSE
        low.arrays = {"dense": dense, "row_nnz": np.bincount(pre_idx, minlength=pre.n).astype(np.int32)}
        low.geometry = {"dense_delay": int(proj.delays[0])}
        return low
    order = np.argsort(pre_idx, kind="stable")
    row_ptr = np.zeros(pre.n + 1, dtype=np.int64)
    np.cumsum(np.bincount(pre_idx, minlength=pre.n), out=row_ptr[1:])
    low.arrays = {
        "row_ptr": row_ptr,
        "target": np.ascontiguousarray(post_idx[order], dtype=np.int32),
        "delay": np.ascontiguousarray(proj.delays[order], dtype=np.uint8),
        "weight": np.ascontiguousarray(w[order], dtype=np.int16),
    }
    return low


def _dense_fits(proj: Projection, n_pre: int, n_post: int) -> bool:
    """Dense rows pay off when most pairs are connected, all share one delay and no pair repeats."""
    m = proj.weights.size
    if m == 0 or m < DENSE_MIN_DENSITY * n_pre * n_post or n_pre * n_post > DENSE_MAX_BYTES:
        return False
    if np.any(proj.delays != proj.delays[0]):
        return False
    pairs = proj.pre_idx * n_post + proj.post_idx
    return np.unique(pairs).size == m


def _lower_conv(proj: Conv2DProjection, ends: tuple[int, int], pops: list[LoweredPopulation], profile: ChipProfile,
                geometry: ConvGeometry, strict: bool = False) -> LoweredProjection:
    pre, post = pops[ends[0]], pops[ends[1]]
    where = f"conv projection {proj.name!r} into population {post.name!r}"
    w = _rounded(proj, post.settings.conv_weight_rounding, where, strict)
    _check_range(w, CONV_WEIGHT_MIN, CONV_WEIGHT_MAX, where)
    p = geometry.params
    c_in, h, wd = geometry.in_shape
    _, ph, pw = geometry.pooled_shape
    c_out, oh, ow = geometry.out_shape
    ext = np.arange(pre.n, dtype=np.int64) if pre.to_external is None else pre.to_external
    c, rem = np.divmod(ext, h * wd)
    y, x = np.divmod(rem, wd)
    pool_pos = np.stack([c, y // p["pool_y"], x // p["pool_x"]], axis=1).astype(np.int32)  # [n_pre, 3]
    # [c_in, kH, kW reversed, c_out]: channel-last rows, columns reversed so one kernel row of taps lines up
    # with consecutive output positions (csrc/kernel.c, deliver_conv)
    kernel = np.ascontiguousarray(w.transpose(0, 2, 3, 1)[:, :, ::-1, :], dtype=np.int8)
    low = LoweredProjection(proj.name, PROJ_CONV, ends[0], ends[1], pre.n, n_synapses=int(np.count_nonzero(w)))
    low.arrays = {"pool_pos": np.ascontiguousarray(pool_pos), "kernel": kernel}
    low.geometry = {
        "c_in": c_in, "ph": ph, "pw": pw, "c_out": c_out, "oh": oh, "ow": ow, "k_h": w.shape[2], "k_w": w.shape[3],
        "stride_x": p["stride_x"], "stride_y": p["stride_y"], "pad_top": p["pad_top"], "pad_left": p["pad_left"],
    }
    return low


def _check_accumulators(spec: NetworkSpec, projections: list[LoweredProjection],
                        pops: list[LoweredPopulation]) -> None:
    """Refuse networks whose worst-case per-tick input to one neuron could overflow the accumulators."""
    worst = {k: np.zeros(p.n, dtype=np.float64) for k, p in enumerate(pops) if p.kind != KIND_INPUT}
    for proj, low in zip(spec.projections, projections):
        acc = worst[low.post]
        if low.kind == PROJ_CONV:
            pool = proj.conv_params["pool_x"] * proj.conv_params["pool_y"]
            per_channel = np.abs(low.arrays["kernel"].astype(np.float64)).sum(axis=(0, 1, 2)) * pool
            acc += np.tile(per_channel, pops[low.post].n // per_channel.size)
        elif low.kind == PROJ_DENSE:
            acc += np.abs(low.arrays["dense"].astype(np.int16)).sum(axis=0, dtype=np.int64)
        else:
            acc += np.bincount(low.arrays["target"], np.abs(low.arrays["weight"].astype(np.float64)),
                               minlength=pops[low.post].n)
    for k, acc in worst.items():
        if acc.size and acc.max() > ACCUMULATOR_LIMIT:
            i = int(np.argmax(acc))
            i_ext = i if pops[k].to_external is None else int(pops[k].to_external[i])
            raise LimitError(f"population {pops[k].name!r}: neuron {i_ext} could receive |weights| summing to "
                             f"{acc[i]:.0f} in one tick, above s2sim's accumulator limit {ACCUMULATOR_LIMIT} (2^24, "
                             "where float32 conversion of the sums stops being exact)")
