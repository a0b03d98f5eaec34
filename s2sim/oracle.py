"""A second, independent implementation of the simulator semantics in plain numpy: the reference the C core is
tested against.

It is written from the specification of the datapath (the tick is restated in :func:`run_batch`), not from
:mod:`s2sim.lowering` or the C kernel, and shares no code with them: it reads the ``snn`` objects directly,
rounds and range-checks weights itself and keeps every neuron in the population's own flat order. It favours
being obviously right over being fast (it vectorises over the batch and the neurons of one population, and
loops over ticks and projections).

    from s2sim import oracle
    res = oracle.run_batch(net, timesteps=100)              # same BatchResult as Simulator.run_batch

Floating point: in the float32 mode every value is an ``np.float32`` and every operation is one IEEE float32
operation (numpy rounds each one to nearest-even). The fused multiply-add has no numpy ufunc, so
:func:`fma_float32` and :func:`fma_float64` build it from exact arithmetic; their docstrings say why the
result is the singly rounded one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Mapping, Sequence

import numpy as np

from .errors import ConfigError, LimitError
from .models import CONV_WEIGHT_MAX, CONV_WEIGHT_MIN, KIND_CURR_EXP, KIND_INPUT, MAX_INPUT_SUM
from .profile import ChipProfile, ModelSettings
from .results import BatchResult
from .snn import Conv2DProjection, Network, Projection
from .spec import PopulationSpec

#: Worst-case summed ``|weight|`` into one neuron per tick that the spec admits (a number of the spec, shared:
#: models.MAX_INPUT_SUM = 2^24, up to which float32 conversion of the exc and inh sums is exact).
ACCUMULATOR_LIMIT = MAX_INPUT_SUM


# -- fused multiply-add ---------------------------------------------------------------------------------------
def fma_float32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``a * b + c`` rounded once to float32 (what ``vfma.f32`` returns), elementwise.

    Why this is exact: the product of two float32 (24-bit significands) has at most 48 bits, so ``p = a * b``
    in float64 is exact. ``p + c`` in float64 is then rounded once to 53 bits, and rounding that again to 24
    bits can go wrong (double rounding) when the first rounding lands exactly on a float32 halfway point.
    Rounding the float64 sum *to odd* instead (if inexact, pick the neighbour whose last bit is 1) cannot
    produce a halfway point, and a round-to-odd result with at least two more bits than the target rounds to
    the same float32 as the exact value (Boldo & Melquiond, "Emulation of FMA and correctly rounded sums:
    proved algorithms using rounding to odd", IEEE TC 2008). The exact error of the float64 sum comes from
    Knuth's TwoSum, which is exact for finite inputs.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return _sum_to_odd(a, b, c).astype(np.float32)


def _sum_to_odd(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32 ``a * b + c`` in float64, rounded to odd (see :func:`fma_float32`). Its sign and its magnitude
    relative to any float32 are those of the exact value: rounding to odd never crosses a float32."""
    p = np.asarray(a, dtype=np.float32).astype(np.float64) * np.asarray(b, dtype=np.float32).astype(np.float64)
    c64 = np.asarray(c, dtype=np.float32).astype(np.float64)
    s = p + c64
    b_virtual = s - p
    err = (p - (s - b_virtual)) + (c64 - b_virtual)
    even = (s.view(np.uint64) & np.uint64(1)) == 0
    to_odd = np.isfinite(s) & (err != 0) & even
    return np.where(to_odd, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)


def fma_float64(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``a * b + c`` rounded once to float64, elementwise.

    No wider hardware format holds a float64 product exactly here (numpy's longdouble is x87 80-bit, 64-bit
    significand, while the product needs 106), so each element is computed exactly with
    :class:`fractions.Fraction` and rounded once by ``float()`` (CPython's int / int division rounds
    correctly). An exact zero keeps the sign IEEE gives it, which ``a * b + c`` in float64 reproduces because
    the product is then exactly representable or exactly zero. Slow, but float64 mode is for small comparisons.
    """
    a, b, c = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(c, np.float64))
    out = np.empty(a.shape, dtype=np.float64)
    flat_out = out.reshape(-1)
    for i, (x, y, z) in enumerate(zip(a.reshape(-1).tolist(), b.reshape(-1).tolist(), c.reshape(-1).tolist())):
        flat_out[i] = _fma_one_float64(x, y, z)
    return out


def _fma_one_float64(x: float, y: float, z: float) -> float:
    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(z)):
        return x * y + z
    exact = Fraction(x) * Fraction(y) + Fraction(z)
    if exact == 0:
        return x * y + z
    try:
        return float(exact)
    except OverflowError:
        return math.copysign(math.inf, exact)


# -- arithmetic of one profile --------------------------------------------------------------------------------
_FLT_MIN = float(np.finfo(np.float32).tiny)


def _flush(x: np.ndarray, exact: np.ndarray | None = None) -> np.ndarray:
    """Flush-to-zero as the ARM FPU does it (FPSCR.FZ): a value whose exact magnitude (``exact``, default ``x``
    itself) is below the smallest normal float32 becomes zero of the same sign."""
    exact = x if exact is None else exact
    with np.errstate(invalid="ignore"):
        tiny = np.abs(exact) < _FLT_MIN
    return np.where(tiny, np.copysign(np.float32(0), exact).astype(np.float32), x).astype(np.float32)


@dataclass(frozen=True)
class _Arithmetic:
    """The float type of the state and the roundings a profile prescribes (flush-to-zero: float32 only)."""

    dtype: type
    ftz: bool = False

    @classmethod
    def of(cls, profile: ChipProfile) -> "_Arithmetic":
        dtype = np.float64 if profile.state_precision == "float64" else np.float32
        return cls(dtype, profile.flush_to_zero)

    def muladd(self, x: np.ndarray, a: np.ndarray, c: np.ndarray, fused: bool) -> np.ndarray:
        """``x * a + c``, rounded once (``fused``) or twice."""
        if self.ftz:
            x, a, c = _flush(x), _flush(a), _flush(c)
            if fused:
                with np.errstate(over="ignore", invalid="ignore"):
                    return _flush(fma_float32(x, a, c), _sum_to_odd(x, a, c))
            product = x.astype(np.float64) * a.astype(np.float64)      # exact: the flush sees the exact product
            with np.errstate(over="ignore"):
                return self.add(_flush(product.astype(np.float32), product), c)
        if fused:
            fma = fma_float64 if self.dtype is np.float64 else fma_float32
            return fma(x, a, c).astype(self.dtype)
        return (x * a).astype(self.dtype) + c

    def add(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``x + y`` rounded once; a tiny exact sum is representable, so flushing after rounding is exact."""
        if self.ftz:
            return _flush(_flush(x) + _flush(y))
        return (x + y).astype(self.dtype)

    def at_least(self, v: np.ndarray, threshold: np.ndarray, strict: bool) -> np.ndarray:
        """The spike test on (flushed) operands."""
        if self.ftz:
            v, threshold = _flush(v), _flush(threshold)
        return v > threshold if strict else v >= threshold

    def from_count(self, count: np.ndarray) -> np.ndarray:
        """(float) of a uint32 ring sum: exact in float64, then one round-to-nearest-even step to float32."""
        return count.astype(np.float64).astype(self.dtype)


# -- weights --------------------------------------------------------------------------------------------------
def _round_weights(weights: np.ndarray, rounding: str, where: str) -> np.ndarray:
    """Float weights -> integers by ChipProfile.weight_rounding (range is checked by the caller)."""
    w = np.asarray(weights, dtype=np.float64)
    if rounding == "trunc":
        out = np.trunc(w)
    elif rounding == "floor":
        out = np.floor(w)
    elif rounding == "nearest_even":
        out = np.rint(w)
    elif rounding == "nearest_away":
        # w - trunc(w) is exact, so the tie test is exact too (|w| + 0.5 could round up e.g. 0.49999999999999994).
        whole = np.trunc(w)
        out = whole + np.where(np.abs(w - whole) >= 0.5, np.sign(w), 0.0)
    elif rounding == "exact":
        bad = np.flatnonzero(w != np.trunc(w))
        if bad.size:
            raise ConfigError(f"{where}: weight {w.reshape(-1)[bad[0]]!r} (element {bad[0]}) is not an integer and "
                              "ChipProfile.weight_rounding is 'exact'")
        out = w
    else:
        raise ConfigError(f"{where}: unknown weight rounding {rounding!r}")
    return out.astype(np.int64)


def _check_range(w: np.ndarray, low: int, high: int, where: str, original: np.ndarray) -> None:
    bad = np.flatnonzero((w.reshape(-1) < low) | (w.reshape(-1) > high))
    if bad.size:
        i = int(bad[0])
        raise LimitError(f"{where}: weight {original.reshape(-1)[i]!r} (element {i}) becomes {int(w.reshape(-1)[i])}, "
                         f"outside {low}..{high}")


# -- synapses -------------------------------------------------------------------------------------------------
class _ListSynapses:
    """A connection list with integer weights: delivery adds |w| at ring slot (t + delay) mod S."""

    def __init__(self, proj: Projection, profile: ChipProfile, float_weights: bool = False) -> None:
        where = f"projection {proj.name!r}"
        limit = proj.post.model.weight_limit
        self.pre, self.post = proj.pre.name, proj.post.name
        self.pre_idx = np.asarray(proj.pre_idx, dtype=np.int64)
        self.post_idx = np.asarray(proj.post_idx, dtype=np.int64)
        self.delays = np.asarray(proj.delays, dtype=np.int64)
        if float_weights:
            self.weights = np.asarray(proj.weights, dtype=np.float64)
        else:
            self.weights = _round_weights(proj.weights,
                                          profile.model_settings(proj.post.neuron_model).weight_rounding, where)
            _check_range(self.weights, -limit, limit, f"{where} into {proj.post.neuron_model!r} population "
                         f"{proj.post.name!r}", np.asarray(proj.weights))
        self._check_indices(proj)

    def _check_indices(self, proj: Projection) -> None:
        where = f"projection {proj.name!r}"
        checks = ((self.pre_idx, proj.pre.size, "pre index"), (self.post_idx, proj.post.size, "post index"),
                  (self.delays, proj.post.model.max_delay + 1, "delay"))
        for values, bound, what in checks:
            bad = np.flatnonzero((values < 0) | (values >= bound))
            if bad.size:
                kind = LimitError if what == "delay" else ConfigError
                raise kind(f"{where}: connection {bad[0]} has {what} {values[bad[0]]}, outside 0..{bound - 1}")

    def deliver(self, pre_spikes: np.ndarray, ring: np.ndarray, t: int) -> np.ndarray:
        """Add this tick's synaptic input into ``ring`` [S, 2, B, N_post]; return events per sample [B]."""
        slots = ring.shape[0]
        active = pre_spikes[:, self.pre_idx].astype(np.int64)          # [B, n_syn]: 1 if the synapse fires
        for plane, sign in ((0, 1), (1, -1)):
            amount = active * np.maximum(sign * self.weights, 0)         # |w| on its own plane only
            for d in np.unique(self.delays):
                sel = self.delays == d
                target = ring[(t + d) % slots, plane]
                np.add.at(target.T, self.post_idx[sel], amount[:, sel].T)
        return active.sum(axis=1)


class _ConvSynapses:
    """A Conv2DProjection: sum-pool the pre spikes, then cross-correlate with the integer kernel."""

    def __init__(self, proj: Conv2DProjection, profile: ChipProfile, float_weights: bool = False) -> None:
        where = f"conv projection {proj.name!r}"
        self.pre, self.post = proj.pre.name, proj.post.name
        if float_weights:
            self.kernel = np.asarray(proj.weights, dtype=np.float64)
        else:
            rounding = profile.model_settings(proj.post.neuron_model).conv_weight_rounding
            self.kernel = _round_weights(proj.weights, rounding, where)  # [C_in, C_out, kH, kW]
            _check_range(self.kernel, CONV_WEIGHT_MIN, CONV_WEIGHT_MAX, where, np.asarray(proj.weights))
        p = dict(proj.conv_params)
        if profile.conv_x_axis == "height":   # the chip reads every x parameter along the height, y along the width
            for x_key, y_key in (("stride_x", "stride_y"), ("pool_x", "pool_y"), ("pad_left", "pad_top"),
                                 ("pad_right", "pad_bottom")):
                p[x_key], p[y_key] = p[y_key], p[x_key]
        self.c_in, self.c_out, self.kh, self.kw = self.kernel.shape
        self.in_h, self.in_w = p["in_height"], p["in_width"]
        self.pool_y, self.pool_x = p["pool_y"], p["pool_x"]
        self.stride_y, self.stride_x = p["stride_y"], p["stride_x"]
        self.pad_top, self.pad_left = p["pad_top"], p["pad_left"]
        self.ph, self.pw = self.in_h // self.pool_y, self.in_w // self.pool_x
        self.oh = (self.ph + p["pad_top"] + p["pad_bottom"] - self.kh) // self.stride_y + 1
        self.ow = (self.pw + p["pad_left"] + p["pad_right"] - self.kw) // self.stride_x + 1
        if proj.pre.size != self.c_in * self.in_h * self.in_w or proj.post.size != self.c_out * self.oh * self.ow:
            raise ConfigError(f"{where}: populations of sizes {proj.pre.size} -> {proj.post.size} do not match the "
                              f"geometry {self.c_in}x{self.in_h}x{self.in_w} -> {self.c_out}x{self.oh}x{self.ow}")

    def deliver(self, pre_spikes: np.ndarray, ring: np.ndarray, t: int) -> np.ndarray:
        batch = pre_spikes.shape[0]
        grid = pre_spikes.reshape(batch, self.c_in, self.ph, self.pool_y, self.pw, self.pool_x).astype(np.int64)
        pooled = grid.sum(axis=(3, 5))                                   # [B, C_in, ph, pw]: every spike counts
        exc = np.zeros((batch, self.c_out, self.oh, self.ow), dtype=self.kernel.dtype)
        inh = np.zeros_like(exc)
        events = np.zeros(batch, dtype=np.int64)
        oy, ox = np.arange(self.oh), np.arange(self.ow)
        for ky in range(self.kh):
            iy = oy * self.stride_y - self.pad_top + ky
            rows = (iy >= 0) & (iy < self.ph)
            for kx in range(self.kw):
                ix = ox * self.stride_x - self.pad_left + kx
                cols = (ix >= 0) & (ix < self.pw)
                if not rows.any() or not cols.any():
                    continue
                patch = pooled[:, :, iy[rows]][:, :, :, ix[cols]]          # [B, C_in, rows, cols]
                tap = self.kernel[:, :, ky, kx]                            # [C_in, C_out]
                region = (slice(None), slice(None), np.flatnonzero(rows)[:, None], np.flatnonzero(cols)[None, :])
                exc[region] += np.einsum("bcyx,co->boyx", patch, np.maximum(tap, 0))
                inh[region] += np.einsum("bcyx,co->boyx", patch, np.maximum(-tap, 0))
                events += patch.sum(axis=(1, 2, 3)) * self.c_out
        slot = t % ring.shape[0]
        ring[slot, 0] += exc.reshape(batch, -1)
        ring[slot, 1] += inh.reshape(batch, -1)
        return events


# -- neurons --------------------------------------------------------------------------------------------------
class _NeuronGroup:
    """The state of one non-input population over the batch, and its tick update.

    ``settings`` are the profile's settings for the population's model; ``grouping`` and ``refractory_rule`` the
    profile's (see ChipProfile).
    """

    def __init__(self, pop: PopulationSpec, batch: int, arith: _Arithmetic, settings: ModelSettings, grouping: str,
                 refractory_rule: str, ring_dtype: type = np.int64) -> None:
        self.pop = pop
        self.arith = arith
        self.settings = settings
        self.grouping = grouping
        self.refractory_spikes = refractory_rule == "held_v_tested"
        self.curr_exp = pop.model.kind == KIND_CURR_EXP
        self.subtract = pop.reset == "reset_by_subtraction"
        self.p = {key: self._upload(pop, key) for key in pop.params}
        n = pop.size
        self.v = np.broadcast_to(self.p["v_init"], (batch, n)).astype(arith.dtype)
        self.i_exc = np.zeros((batch, n), dtype=arith.dtype)
        self.i_inh = np.zeros((batch, n), dtype=arith.dtype)
        self.refrac = np.zeros((batch, n), dtype=np.int64)
        self.ring = np.zeros((pop.model.ring_slots, 2, batch, n), dtype=ring_dtype)

    def _upload(self, pop: PopulationSpec, key: str) -> np.ndarray:
        values = np.asarray(pop.param(key), dtype=np.float64)
        if key == "t_refrac":
            return values.astype(np.int32).astype(np.int64)
        # Parameters are rounded to float32 once (the upload); float64 mode widens that float32 value.
        return values.astype(np.float32).astype(self.arith.dtype)

    def _leak_and_input(self, exc: np.ndarray, inh: np.ndarray) -> np.ndarray:
        """V * alpha joined with this tick's excitatory and inhibitory input and i_offset, in the profile's grouping."""
        a, p, fused = self.arith, self.p, self.settings.fused_multiply_add
        if self.grouping == "left_to_right":     # ((V * alpha + E) - I) + i_offset
            return a.add(a.add(a.muladd(self.v, p["alpha_decay"], exc, fused), -inh), p["i_offset"])
        syn = a.add(exc, -inh)
        if self.grouping == "leak_first":        # (V * alpha + (E - I)) + i_offset
            return a.add(a.muladd(self.v, p["alpha_decay"], syn, fused), p["i_offset"])
        return a.muladd(self.v, p["alpha_decay"], a.add(syn, p["i_offset"]), fused)   # V * alpha + ((E - I) + i_offset)

    def update(self, t: int) -> np.ndarray:
        """Phase 2 of tick t; returns the uint8 spikes [B, N] (V after reset is in ``self.v``)."""
        slot = self.ring[t % self.ring.shape[0]]
        exc, inh = self.arith.from_count(slot[0]), self.arith.from_count(slot[1])
        slot[...] = 0
        p, a = self.p, self.arith
        allowed = np.ones(self.v.shape, dtype=bool)
        if self.curr_exp:
            fused = self.settings.current_fused_multiply_add
            self.i_exc = a.muladd(self.i_exc, p["exc_decay"], exc, fused)
            self.i_inh = a.muladd(self.i_inh, p["inh_decay"], inh, fused)
            stepped = self._leak_and_input(self.i_exc, self.i_inh)
            # refractory: count down and hold V; the held V is still tested unless the rule says no spike
            resting = self.refrac > 0
            self.refrac = np.where(resting, self.refrac - 1, self.refrac)
            stepped = np.where(resting, self.v, stepped)
            if not self.refractory_spikes:
                allowed = ~resting
        else:
            stepped = self._leak_and_input(exc, inh)
        spiked = a.at_least(stepped, p["threshold"], self.settings.threshold_op == ">") & allowed
        if self.subtract:
            reset_value = a.add(stepped, -p["threshold"])
        else:
            reset_value = np.broadcast_to(p["v_reset"], stepped.shape)
        self.v = np.where(spiked, reset_value, stepped).astype(a.dtype)
        if self.curr_exp:
            self.refrac = np.where(spiked, p["t_refrac"], self.refrac)
        return spiked.astype(np.uint8)


# -- the run --------------------------------------------------------------------------------------------------
def run_batch(net: Network, inputs: Mapping[str, np.ndarray] | None = None, timesteps: int | None = None,
              profile: ChipProfile | None = None, float_weights: bool = False) -> BatchResult:
    """Simulate ``net`` for ``timesteps`` ticks on every sample of a batch; the reference for Simulator.run_batch.

    Each tick ``t``: (1) every projection delivers the spikes its pre population emitted in tick ``t - 1`` (a
    spike_list emits its input of tick ``t``), adding integer weight magnitudes into a ring of ``S`` slots per
    post neuron (slot ``(t + delay) mod S``, excitatory or inhibitory plane by sign); (2) every neuron
    population reads and clears slot ``t mod S``, updates its float state, tests the threshold and resets.

    Parameters
    ----------
    net : Network
    inputs : dict, optional
        spike_list population name -> uint8 array [B, T, N] of 0/1. spike_list populations left out use their
        own spike times for every sample. Without inputs the batch is 1.
    timesteps : int, optional
        Ticks to run; taken from the input arrays when omitted.
    profile : ChipProfile, optional
        Default ``ChipProfile()``.
    float_weights : bool
        Keep the weights as given, summed in float64 (not a chip behaviour: py-spinnaker2's Brian2 backend with
        ``quantize_weights=False``). Needs ``profile.state_precision == "float64"``.

    Returns
    -------
    BatchResult
        ``spikes`` of populations recording "spikes", ``voltages`` ("v"), ``v_last`` ("v_last"), ``counts``
        (spikes, synaptic events per tick) of every population.

    Raises
    ------
    ConfigError, LimitError
        Malformed inputs, non-integer weights under "exact" rounding, weights or accumulators beyond the chip.
    """
    profile = ChipProfile() if profile is None else profile
    if not isinstance(profile, ChipProfile):
        raise ConfigError(f"profile must be a ChipProfile, got {type(profile).__name__}")
    if not isinstance(net, Network):
        raise ConfigError(f"net must be a Network, got {type(net).__name__}")
    if not net.populations:
        raise ConfigError(f"network {net.name!r} has no populations")
    inputs = dict(inputs or {})
    timesteps = _check_timesteps(timesteps, inputs)
    _check_names(net)
    pops = net.validated().populations    # parameters, spike times and records as they are now
    if float_weights and profile.state_precision != "float64":
        raise ConfigError("float weights are a Brian2-backend mode: they need ChipProfile(state_precision='float64')")
    synapses = [_make_synapses(proj, profile, net, float_weights) for proj in net.projections]
    if not float_weights:
        _check_accumulators(net, synapses)
    batch = _check_inputs(net, inputs, timesteps)
    arith = _Arithmetic.of(profile)

    groups = {pop.name: _NeuronGroup(pop, batch, arith, profile.model_settings(pop.neuron_model),
                                     profile.input_grouping, profile.refractory_rule,
                                     np.float64 if float_weights else np.int64)
              for pop in pops if pop.model.kind != KIND_INPUT}
    stimuli = {pop.name: _stimulus(pop, inputs, batch, timesteps) for pop in pops if pop.model.kind == KIND_INPUT}
    rec = _Recording(pops, batch, timesteps, arith.dtype)
    previous = {pop.name: np.zeros((batch, pop.size), dtype=np.uint8) for pop in pops}
    for t in range(timesteps):
        events = {name: np.zeros(batch, dtype=np.int64) for name in groups}
        for syn in synapses:
            events[syn.post] += syn.deliver(previous[syn.pre], groups[syn.post].ring, t)
        current = {name: stim[:, t] for name, stim in stimuli.items()}
        for name, group in groups.items():
            current[name] = group.update(t)
        for pop in pops:
            group = groups.get(pop.name)
            rec.store(pop, t, current[pop.name], None if group is None else group.v,
                      events.get(pop.name, np.zeros(batch, dtype=np.int64)))
        previous = current
    for name, group in groups.items():
        rec.finish(name, group.v)
    return rec.result


def _check_timesteps(timesteps: int | None, inputs: Mapping) -> int:
    if timesteps is None:
        lengths = {np.shape(arr)[1] for arr in inputs.values() if np.ndim(arr) == 3}
        if len(lengths) != 1:
            raise ConfigError("timesteps not given and not implied by the input arrays [B, T, N]")
        timesteps = lengths.pop()
    if isinstance(timesteps, bool) or not isinstance(timesteps, (int, np.integer)) or timesteps < 1:
        raise ConfigError(f"timesteps must be a positive int, got {timesteps!r}")
    return int(timesteps)


def _check_names(net: Network) -> None:
    seen: set[str] = set()
    for pop in net.populations:
        if pop.name in seen:
            raise ConfigError(f"network {net.name!r}: two populations are named {pop.name!r}")
        seen.add(pop.name)


def _make_synapses(proj, profile: ChipProfile, net: Network, float_weights: bool = False):
    for end in (proj.pre, proj.post):
        if not any(end is pop for pop in net.populations):
            raise ConfigError(f"projection {proj.name!r}: population {end.name!r} is not part of network "
                              f"{net.name!r}")
    if isinstance(proj, Conv2DProjection):
        return _ConvSynapses(proj, profile, float_weights)
    return _ListSynapses(proj, profile, float_weights)


def _check_accumulators(net: Network, synapses: list) -> None:
    """Reject a network whose ring sums could pass the limit: every pre neuron spiking into the same slot."""
    worst = {pop.name: np.zeros((1, 1, 1, pop.size), dtype=np.int64) for pop in net.populations}
    sizes = {pop.name: pop.size for pop in net.populations}
    for syn in synapses:
        ring = np.zeros((1, 2, 1, sizes[syn.post]), dtype=np.int64)
        every_pre_fires = np.ones((1, sizes[syn.pre]), dtype=np.uint8)
        if isinstance(syn, _ListSynapses):
            np.add.at(ring[0, 0, 0], syn.post_idx, np.abs(syn.weights))   # delays ignored: all in one slot
        else:
            syn.deliver(every_pre_fires, ring, 0)
        worst[syn.post] += ring.sum(axis=1, keepdims=True)
    for name, total in worst.items():
        if total.size and total.max() > ACCUMULATOR_LIMIT:
            i = int(np.argmax(total.reshape(-1)))
            raise LimitError(f"population {name!r}: neuron {i} can receive a summed weight of {int(total.max())} "
                             f"in one tick, beyond the accumulator limit {ACCUMULATOR_LIMIT} (2^24)")


def _check_inputs(net: Network, inputs: Mapping, timesteps: int) -> int:
    batches = set()
    for name, arr in inputs.items():
        pop = next((p for p in net.populations if p.name == name), None)
        if pop is None:
            raise ConfigError(f"inputs: no population named {name!r} in network {net.name!r}")
        if pop.model.kind != KIND_INPUT:
            raise ConfigError(f"inputs: population {name!r} is a {pop.neuron_model!r}, not a spike_list")
        a = np.asarray(arr)
        if a.ndim != 3 or a.shape[1:] != (timesteps, pop.size):
            raise ConfigError(f"inputs[{name!r}] has shape {a.shape}; expected [B, {timesteps}, {pop.size}]")
        bad = np.argwhere(~np.isin(a, (0, 1)))
        if bad.size:
            where = tuple(int(i) for i in bad[0])
            raise ConfigError(f"inputs[{name!r}]{list(where)} = {a[where]!r}; spike_list inputs must be 0 or 1 "
                              "(at most one spike per neuron and tick)")
        batches.add(a.shape[0])
    if len(batches) > 1:
        raise ConfigError(f"inputs have different batch sizes {sorted(batches)}")
    batch = batches.pop() if batches else 1
    if batch < 1:
        raise ConfigError(f"inputs have batch size 0 ({ {k: np.shape(v) for k, v in inputs.items()} }); a run needs "
                          "at least one sample")
    return batch


def _stimulus(pop: PopulationSpec, inputs: Mapping, batch: int, timesteps: int) -> np.ndarray:
    if pop.name in inputs:
        return np.asarray(inputs[pop.name]).astype(np.uint8)
    return np.broadcast_to(pop.input_array(timesteps), (batch, timesteps, pop.size))


class _Recording:
    """Preallocated output arrays, filled tick by tick."""

    def __init__(self, pops: Sequence[PopulationSpec], batch: int, timesteps: int, dtype: type) -> None:
        self.result = BatchResult(timesteps=timesteps)
        for pop in pops:
            shape = (batch, timesteps, pop.size)
            if "spikes" in pop.record:
                self.result.spikes[pop.name] = np.zeros(shape, dtype=np.uint8)
            if "v" in pop.record:
                self.result.voltages[pop.name] = np.zeros(shape, dtype=dtype)
            if "v_last" in pop.record:
                self.result.v_last[pop.name] = np.zeros((batch, pop.size), dtype=dtype)
            if "counts" in pop.record:
                self.result.counts[pop.name] = np.zeros((batch, timesteps, 2), dtype=np.int64)

    def store(self, pop: PopulationSpec, t: int, spikes: np.ndarray, v: np.ndarray | None, events: np.ndarray) -> None:
        res = self.result
        if pop.name in res.spikes:
            res.spikes[pop.name][:, t] = spikes
        if pop.name in res.voltages:
            res.voltages[pop.name][:, t] = v
        if pop.name in res.counts:
            res.counts[pop.name][:, t, 0] = spikes.sum(axis=1, dtype=np.int64)
            res.counts[pop.name][:, t, 1] = events

    def finish(self, name: str, v: np.ndarray) -> None:
        if name in self.result.v_last:
            self.result.v_last[name][...] = v
