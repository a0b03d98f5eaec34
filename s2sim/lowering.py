"""Lowering: a Network plus a ChipProfile -> the flat integer and float32 arrays the C core runs.

This is where host values become chip values: parameters are rounded once to float32 (the upload), float weights
become integers by ``profile.weight_rounding`` and are range-checked against the target model's synapse format.
It also picks, per projection, the representation the kernel handles fastest (sparse rows, dense int8 rows, or a
convolution with its packed kernel for the dense conv product; the cost model is s2sim.tuning, connection lists
are built by s2sim.list_rows), and gives each conv target population a channel-last internal neuron order so a
kernel tap is one contiguous add over output channels. Recording arrays are translated back to the external order
by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import memory
from .errors import ConfigError, LimitError, TimeConstantWarning, warn
from .list_rows import build_rows, check_range, check_weight_loss, int8_weights, round_weights
from .models import CONV_WEIGHT_MAX, CONV_WEIGHT_MIN, KIND_CURR_EXP, KIND_INPUT, MAX_INPUT_SUM, NeuronModel
from .profile import ChipProfile, ModelSettings
from .projections import Conv2DProjection, ConvGeometry, Projection
from .spec import NetworkSpec, PopulationSpec
from .tuning import NEVER, KernelTuning, conv_dense_from, list_is_dense, stack_quads, uses_amx

if TYPE_CHECKING:  # annotations only: s2sim.snn imports this module (Network.validate lowers)
    from .snn import Network

#: Below MAX_INPUT_SUM the kernel may keep one signed accumulator for lif populations (see models.py).
ACCUMULATOR_LIMIT = MAX_INPUT_SUM
#: Alignment of each conv projection's pooled map inside the workspace's conv_map (a cache line).
MAP_ALIGN = 64
#: Split samples: thread ranges of a non-conv population start at multiples of this many neurons.
SPLIT_GRAIN = 64

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
    #: i_offset is the same for every neuron.
    uniform_offset: bool = False
    #: The profile's per-model settings for this population's model (None for a spike_list).
    settings: ModelSettings | None = None

    @property
    def grain(self) -> int:
        """Neurons per unit when a sample is split over threads.

        A conv target's output row (its conv delivery works on whole rows), else 64 (the spike scan's width).
        """
        if self.channel_last_shape is None:
            return SPLIT_GRAIN
        c, _, w = self.channel_last_shape
        return c * w

    @property
    def to_external(self) -> np.ndarray | None:
        """Internal index -> external (py-spinnaker2) index; None when the two orders agree."""
        if self.channel_last_shape is None:
            return None
        c, h, w = self.channel_last_shape
        return np.arange(c * h * w, dtype=np.int64).reshape(c, h, w).transpose(1, 2, 0).ravel()

    def to_external_order(self, arr: np.ndarray) -> np.ndarray:
        """Reorder a recorded array [..., n] from internal to py-spinnaker2 order (a transpose, not a scatter)."""
        if self.channel_last_shape is None:
            return arr
        c, h, w = self.channel_last_shape
        lead = arr.shape[:-1]
        moved = np.moveaxis(arr.reshape(*lead, h, w, c), -1, -3)
        return np.ascontiguousarray(moved).reshape(*lead, self.n)

    @property
    def to_internal(self) -> np.ndarray | None:
        """External (py-spinnaker2) index -> internal index, the inverse of ``to_external``; None when they agree."""
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
    #: Connection lists: the sum of ``|w|`` into each internal post neuron (for the accumulator bound).
    abs_sum: np.ndarray | None = None


@dataclass
class LoweredNetwork:
    """The whole network as the C core runs it, plus what is needed to translate results back."""

    populations: list[LoweredPopulation]
    projections: list[LoweredProjection]
    n_neurons: int
    n_ring: int
    n_curr: int
    #: Bytes of the conv projections' pooled maps in one workspace (the dense conv path's scratch).
    n_conv_map: int
    #: Dense conv products run on the AMX tile unit.
    amx: bool
    profile: ChipProfile
    #: The validated snapshot this was lowered from.
    spec: NetworkSpec

    def index(self, name: str) -> int:
        """Return the index of the population called ``name`` (ConfigError when there is none)."""
        for k, pop in enumerate(self.populations):
            if pop.name == name:
                return k
        raise ConfigError(f"no population named {name!r}")


def check_decays(pop: PopulationSpec, *, strict: bool = False) -> None:
    """Warn (TimeConstantWarning; ConfigError when ``strict``) about decays outside [0, 1] (as float32 on the chip).

    Above 1 the state grows without input, below 0 it flips sign every tick.
    """
    for key in _DECAYS:
        if key not in pop.params:
            continue
        arr = pop.params[key].astype(np.float32)
        bad = np.flatnonzero((arr < 0) | (arr > 1))
        if bad.size:
            i = int(bad[0])
            effect = "grows without input" if arr[i] > 1 else "flips sign every tick"
            warn(
                TimeConstantWarning,
                f"population {pop.name!r}: {key} of neuron {i} is {float(arr[i]):.6g}, outside "
                f"[0, 1] ({bad.size} neuron(s)); the state {effect}",
                pop.name,
                strict=strict,
            )


def lower(
    net: Network | NetworkSpec,
    profile: ChipProfile | None = None,
    tuning: KernelTuning | None = None,
    *,
    strict: bool = False,
) -> LoweredNetwork:
    """Check a network against the chip's limits under ``profile`` and lower it for the C core.

    The network is taken as it is now, or as a snapshot of it. ``tuning`` chooses delivery paths, for speed only (see
    s2sim.tuning).

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
    tuning = tuning or KernelTuning()
    if not isinstance(tuning, KernelTuning):
        raise ConfigError(f"tuning must be a KernelTuning, got {type(tuning).__name__}")
    memory.check(
        lowering_bytes(spec),
        f"lowering network {spec.name!r} for the C core",
        "Reduce the population sizes or the number of synapses",
    )
    conv_shapes = _conv_target_shapes(spec, profile)
    pops = _lower_populations(spec, conv_shapes, profile)
    for pop in spec.populations:
        check_decays(pop, strict=strict)
    projections = [_lower_projection(spec, k, pops, profile, tuning, strict) for k in range(len(spec.projections))]
    _check_accumulators(spec, projections, pops)
    last = pops[-1]
    n_ring = max((p.ring_offset + p.ring_slots * p.ring_planes * p.n for p in pops), default=0)
    n_curr = max((p.curr_offset + p.n for p in pops if p.kind == KIND_CURR_EXP), default=0)
    n_conv_map = _place_conv_maps(projections)
    return LoweredNetwork(
        pops,
        projections,
        last.state_offset + last.n,
        n_ring,
        n_curr,
        n_conv_map,
        uses_amx(tuning) and n_conv_map > 0,
        profile,
        spec,
    )


def _place_conv_maps(projections: list[LoweredProjection]) -> int:
    """Give each conv projection on the dense path its slice of the workspace's conv_map; returns the total."""
    total = 0
    for low in projections:
        if low.kind == PROJ_CONV and low.geometry["dense_from"] != NEVER:
            low.geometry["map_offset"] = total
            total += _round_up(map_bytes(low.geometry, "stacked" in low.arrays), MAP_ALIGN)
    return total


def map_bytes(g: dict, stacked: bool = False) -> int:
    """Bytes of a conv projection's slice of the workspace's conv map (the core's s2_map_bytes).

    The pooled map with the slack its product may read; with ``stacked``, the stacked rows after it. s2_validate
    checks the projection's map offset against the same size.
    """
    from ._core import lib

    return int(
        lib.s2_map_bytes(g["c_in"], g["oh"], g["ow"], g["k_h"], g["k_w"], g["stride_x"], g["stride_y"], int(stacked))
    )


def lowering_bytes(spec: NetworkSpec) -> int:
    """Estimated peak bytes of lowering ``spec``.

    float32 parameters, ring buffers and state per neuron, and per synapse the int8 weights and the kernel's rows
    (dense: one byte per pair and the pair bitmap; sparse: target, weight and delay), built in place by csrc/build.c; a
    conv layer's arrays per pre neuron.
    """
    total = 0
    for pop in spec.populations:
        ring = pop.model.ring_slots * (2 if pop.model.kind == KIND_CURR_EXP else 1)
        total += pop.size * (4 * len(_PARAM_NAMES) + 8 + 4 * ring + 16)
    for proj, pre, post in zip(spec.projections, spec.pre, spec.post, strict=True):
        n_pre, n_post = spec.populations[pre].size, spec.populations[post].size
        if isinstance(proj, Conv2DProjection):
            total += n_pre * 72 + proj.weights.size * 24 + n_post * 16
        else:
            m = proj.stored_weights.size
            dense = n_pre * n_post if list_is_dense(KernelTuning(), m, n_pre, n_post) else 0
            total += m * 7 + n_pre * 24 + dense * 9 // 8 + n_post * 16
    return total


def _conv_target_shapes(spec: NetworkSpec, profile: ChipProfile) -> dict[int, tuple[int, int, int]]:
    shapes: dict[int, tuple[int, int, int]] = {}
    for proj, pre, post in zip(spec.projections, spec.pre, spec.post, strict=True):
        if isinstance(proj, Conv2DProjection):
            sizes = (spec.populations[pre].size, spec.populations[post].size)
            out_shape = proj.geometry(profile.conv_x_axis, sizes).out_shape
            prev = shapes.setdefault(post, out_shape)
            if prev != out_shape:
                raise ConfigError(
                    f"population {proj.post.name!r}: conv projections give output shapes {prev} and "
                    f"{out_shape} (C, H, W); they must agree"
                )
    return shapes


def _ring_planes(kind: int, profile: ChipProfile) -> int:
    """Two planes (exc, inh) where the update needs them apart.

    Decaying currents, or the left-to-right grouping ((V*alpha + E) - I); otherwise one signed plane (the same
    arithmetic under the accumulator bound).
    """
    return 2 if kind == KIND_CURR_EXP or profile.input_grouping == "left_to_right" else 1


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


#: Each population's ranges of the workspace start on a 64-byte boundary, as the arrays themselves do (core.ALIGN),
#: so its vector loads never straddle cache lines: its state range at a multiple of 64 neurons (the spike flags take
#: one byte each), its ring and current ranges at a multiple of 16 entries (4 bytes each, 8 for float64 state).
_STATE_STEP, _ENTRY_STEP = 64, 16


def _lower_populations(spec: NetworkSpec, conv_shapes: dict, profile: ChipProfile) -> list[LoweredPopulation]:
    out = []
    state = ring = curr = 0
    for k, pop in enumerate(spec.populations):
        out.append(_lower_population(pop, conv_shapes.get(k), state, ring, curr, profile))
        state = _round_up(state + pop.size, _STATE_STEP)
        if not pop.model.is_input:
            ring = _round_up(ring + out[-1].ring_slots * out[-1].ring_planes * pop.size, _ENTRY_STEP)
        if pop.model.kind == KIND_CURR_EXP:
            curr = _round_up(curr + pop.size, _ENTRY_STEP)
    return out


def _lower_population(
    pop: PopulationSpec, conv_shape: tuple[int, int, int] | None, state: int, ring: int, curr: int, profile: ChipProfile
) -> LoweredPopulation:
    model = pop.model
    low = LoweredPopulation(
        name=pop.name,
        kind=model.kind,
        reset=0 if pop.reset == "reset_by_subtraction" else 1,
        n=pop.size,
        ring_slots=model.ring_slots,
        ring_planes=_ring_planes(model.kind, profile),
        state_offset=state,
        ring_offset=ring if not model.is_input else -1,
        curr_offset=curr if model.kind == KIND_CURR_EXP else -1,
        channel_last_shape=conv_shape,
    )
    if model.is_input:
        return low
    low.settings = profile.model_settings(model.name)
    to_ext = low.to_external
    for key in _PARAM_NAMES:
        if key in pop.params:
            values = pop.params[key] if to_ext is None else pop.params[key][to_ext]
            low.params[key] = np.ascontiguousarray(values, dtype=np.float32)
    same = {key: bool(np.all(arr.view(np.uint32) == arr.view(np.uint32)[0])) for key, arr in low.params.items()}
    low.uniform_params = all(same[key] for key in _UNIFORM_PARAMS if key in same)
    low.uniform_offset = same["i_offset"]
    if model.kind == KIND_CURR_EXP:
        refrac = pop.params["t_refrac"] if to_ext is None else pop.params["t_refrac"][to_ext]
        low.params["t_refrac"] = np.ascontiguousarray(refrac, dtype=np.int32)
    return low


def _lower_projection(
    spec: NetworkSpec,
    k: int,
    pops: list[LoweredPopulation],
    profile: ChipProfile,
    tuning: KernelTuning,
    strict: bool = False,
) -> LoweredProjection:
    proj, pre, post = spec.projections[k], spec.pre[k], spec.post[k]
    if isinstance(proj, Conv2DProjection):
        sizes = (spec.populations[pre].size, spec.populations[post].size)
        return _lower_conv(proj, (pre, post), pops, tuning, proj.geometry(profile.conv_x_axis, sizes), strict)
    return _lower_list(proj, (pre, post), pops, tuning, spec.populations[post].model, strict)


def _lower_list(
    proj: Projection,
    ends: tuple[int, int],
    pops: list[LoweredPopulation],
    tuning: KernelTuning,
    post_model: NeuronModel,
    strict: bool = False,
) -> LoweredProjection:
    pre, post = pops[ends[0]], pops[ends[1]]
    where = f"projection {proj.name!r} into population {post.name!r} ({post_model.name})"
    assert post.settings is not None  # only a spike_list has none, and nothing projects into one
    w = int8_weights(proj, post.settings.weight_rounding, post_model.weight_limit, where, strict)
    delays = proj.stored_delays
    uniform = delays.size == 0 or int(delays.min()) == int(delays.max())
    dense = uniform and list_is_dense(tuning, w.size, pre.n, post.n)
    rows = build_rows(proj, w, pre.n, post.n, pre.to_internal, post.to_internal, dense, uniform)
    return LoweredProjection(
        proj.name,
        PROJ_DENSE if rows.dense else PROJ_SPARSE,
        ends[0],
        ends[1],
        pre.n,
        rows.arrays,
        {"uniform_delay": int(delays[0]) if uniform and delays.size else 0},
        n_synapses=int(w.size),
        abs_sum=rows.abs_sum,
    )


def _lower_conv(
    proj: Conv2DProjection,
    ends: tuple[int, int],
    pops: list[LoweredPopulation],
    tuning: KernelTuning,
    geometry: ConvGeometry,
    strict: bool = False,
) -> LoweredProjection:
    pre, post = pops[ends[0]], pops[ends[1]]
    where = f"conv projection {proj.name!r} into population {post.name!r}"
    assert post.settings is not None  # only a spike_list has none, and nothing projects into one
    mode = post.settings.conv_weight_rounding
    w = round_weights(proj.weights, mode, where)
    check_weight_loss(proj.weights, w, where, proj.name, f"weight rounding {mode!r}", strict=strict)
    check_range(w, CONV_WEIGHT_MIN, CONV_WEIGHT_MAX, where)
    w = w.astype(np.int8)
    p = geometry.params
    c_in, h, wd = geometry.in_shape
    _, ph, pw = geometry.pooled_shape
    c_out, oh, ow = geometry.out_shape
    k_h, k_w = w.shape[2], w.shape[3]
    g = {
        "c_in": c_in,
        "ph": ph,
        "pw": pw,
        "c_out": c_out,
        "oh": oh,
        "ow": ow,
        "k_h": k_h,
        "k_w": k_w,
        "stride_x": p["stride_x"],
        "stride_y": p["stride_y"],
        "pad_top": p["pad_top"],
        "pad_left": p["pad_left"],
    }
    ext = np.arange(pre.n, dtype=np.int64) if pre.to_external is None else pre.to_external
    c, rem = np.divmod(ext, h * wd)
    y, x = np.divmod(rem, wd)
    y, x = y // p["pool_y"], x // p["pool_x"]
    rows_y = _taps_per_cell(ph, p["pad_top"], k_h, p["stride_y"], oh)
    taps_x = _taps_per_cell(pw, p["pad_left"], k_w, p["stride_x"], ow)
    pre_events = (rows_y[y] * taps_x[x] * c_out).astype(np.int32)
    low = LoweredProjection(proj.name, PROJ_CONV, ends[0], ends[1], pre.n, n_synapses=int(np.count_nonzero(w)))
    # [c_in, kH, kW reversed, c_out]: channel-last rows, columns reversed so one kernel row of taps lines up
    # with consecutive output positions (csrc/kernel.c, deliver_conv_events)
    low.arrays = {
        "pool_pos": np.ascontiguousarray(np.stack([c, y, x], axis=1), dtype=np.int32),
        "kernel": np.ascontiguousarray(w.transpose(0, 2, 3, 1)[:, :, ::-1, :]),
        "pre_events": pre_events,
    }
    reached = pre_events[pre_events > 0]
    g["dense_from"] = conv_dense_from(
        tuning, p["pool_x"] * p["pool_y"], float(reached.mean()) if reached.size else 0.0, g, post.ring_planes
    )
    g["map_offset"] = 0
    g["pool_x"], g["pool_y"] = p["pool_x"], p["pool_y"]
    # a conv layer's output feeding the next conv: its spike flags pool into the map with vector adds
    g["pre_channel_last"] = int(pre.channel_last_shape == geometry.in_shape)
    # an input population of one or two channels: the map is its input row, the channels interleaved
    g["map_planes"] = int(
        pre.kind == KIND_INPUT and pre.to_external is None and p["pool_x"] == p["pool_y"] == 1 and c_in <= 2
    )
    if g["dense_from"] != NEVER:
        map_h, map_w = (oh - 1) * p["stride_y"] + k_h, (ow - 1) * p["stride_x"] + k_w
        map_y, map_x = y + p["pad_top"], x + p["pad_left"]
        inside = (map_y < map_h) & (map_x < map_w)
        low.arrays["cell"] = np.where(inside, (map_y * map_w + map_x) * c_in + c, -1).astype(np.int32)
        low.arrays["packed"] = _pack_conv(w, post.ring_planes)
        if stack_quads(tuning, g):
            low.arrays["stacked"] = _pack_stacked(w, post.ring_planes)
    low.geometry = g
    return low


def _taps_per_cell(size: int, pad: int, k: int, stride: int, out: int) -> np.ndarray:
    """Per pooled row (or column) 0..size-1: how many kernel rows (columns) reach an output from it."""
    num = np.arange(size)[:, None] + pad - np.arange(k)[None, :]  # oy * stride for kernel row ky
    return ((num >= 0) & (num % stride == 0) & (num // stride < out)).sum(axis=1)


def _pack_conv(w: np.ndarray, planes: int) -> np.ndarray:
    """Return the kernel for the dense conv path: [planes][k_h][quads][c_out_pad][4] int8 (layout in csrc/s2sim.h)."""
    from ._core import lib

    c_in, c_out, k_h, k_w = w.shape
    quads, pad = int(lib.s2_conv_quads(c_in, k_w)), -(-c_out // 16) * 16
    parts = [w] if planes == 1 else [np.maximum(w, 0), np.minimum(w, 0)]
    out = np.zeros((planes, k_h, quads * 4, pad), np.int8)
    for pl, part in enumerate(parts):
        # tap j = kx * c_in + ci of kernel row ky, for every output channel
        out[pl, :, : k_w * c_in, :c_out] = part.transpose(2, 3, 0, 1).reshape(k_h, k_w * c_in, c_out)
    return np.ascontiguousarray(out.reshape(planes, k_h, quads, 4, pad).transpose(0, 1, 2, 4, 3))


def _pack_stacked(w: np.ndarray, planes: int) -> np.ndarray:
    """Return the kernel for the stacked AMX product: [planes][quads][c_out_pad][4] int8 (layout in csrc/s2sim.h).

    Its window byte kx * k_h * c_in + ky * c_in + ci is, for the plain packing, channel ky * c_in + ci of a
    kernel with one row.
    """
    c_in, c_out, k_h, k_w = w.shape
    one_row = w.transpose(2, 0, 1, 3).reshape(k_h * c_in, c_out, 1, k_w)
    return np.ascontiguousarray(_pack_conv(one_row, planes)[:, 0])


def _check_accumulators(spec: NetworkSpec, projections: list[LoweredProjection], pops: list[LoweredPopulation]) -> None:
    """Refuse networks whose worst-case per-tick input to one neuron could overflow the accumulators."""
    worst = {k: np.zeros(p.n, dtype=np.float64) for k, p in enumerate(pops) if p.kind != KIND_INPUT}
    for proj, low in zip(spec.projections, projections, strict=True):
        acc = worst[low.post]
        if low.kind == PROJ_CONV:
            pool = proj.conv_params["pool_x"] * proj.conv_params["pool_y"]
            per_channel = np.abs(low.arrays["kernel"].astype(np.float64)).sum(axis=(0, 1, 2)) * pool
            acc += np.tile(per_channel, pops[low.post].n // per_channel.size)
        else:
            assert low.abs_sum is not None  # every list projection's rows come with it
            acc += low.abs_sum
    for k, acc in worst.items():
        if acc.size and acc.max() > ACCUMULATOR_LIMIT:
            i = int(np.argmax(acc))
            order = pops[k].to_external
            i_ext = i if order is None else int(order[i])
            raise LimitError(
                f"population {pops[k].name!r}: neuron {i_ext} could receive |weights| summing to "
                f"{acc[i]:.0f} in one tick, above s2sim's accumulator limit {ACCUMULATOR_LIMIT} (2^24, "
                "where float32 conversion of the sums stops being exact)"
            )
