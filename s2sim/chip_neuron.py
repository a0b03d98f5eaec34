"""One chip population over all ticks of a batch, differentiable: the neuron loop of the QAT forward.

:class:`ChipNeuron` takes a population's synaptic sums for every tick (computed by :func:`s2sim.qat.chip_run` in
one matmul or conv for all ticks) and runs the chip's float32 dynamics tick by tick, lif (Leaky, RLeaky) or
curr_exp (Synaptic, RSynaptic), with the spike test and the fused multiply-adds of the population's model (see
:mod:`s2sim.qat`). The backward is the arctan surrogate gradient back through time along the membrane, the
synaptic current and the recurrent projection, with the reset detached as in snnTorch.

Two implementations of the same arithmetic, chosen by ``Dynamics.backend``:

- ``"c"``: the C core's loop (csrc/chip_neuron.c), the arithmetic of the simulator's kernel, for CPU tensors.
  One call per population and direction, the samples split over torch's intra-op thread count (the calls release
  the GIL).
- ``"torch"``: torch operations per tick, the fused multiply-add emulated exactly by :func:`fma32`; runs on any
  device (CUDA).
- ``"auto"`` (default): ``"c"`` for CPU tensors, ``"torch"`` elsewhere.

Both are bit-identical to :class:`s2sim.Simulator` in spikes and membranes (tests/test_qat.py,
tests/test_chip_neuron.py); their gradients agree to float32 rounding (the sums run in another order).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .errors import ConfigError

BACKENDS = ("auto", "c", "torch")


def check_backend(backend: str) -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else ConfigError."""
    if backend not in BACKENDS:
        raise ConfigError(f"neuron loop backend {backend!r} is not one of {BACKENDS}")
    return backend


def fma32(v: Any, alpha: Any, inp: Any) -> Any:
    """``v * alpha + inp`` rounded once to float32 (``vfma.f32``), elementwise, for float32 tensors on any device.

    The float64 product of two float32 is exact; the float64 sum is rounded to odd using the exact TwoSum error,
    and a round-to-odd value with 53 >= 24 + 2 bits rounds to the same float32 as the exact result
    (:func:`s2sim.oracle.fma_float32` gives the argument). Rounding to odd is done on the bit pattern, without a
    data-dependent branch (which would stall a GPU): an inexact, even sum steps one unit in the last place toward
    the exact value, which lands on the odd neighbour (the sum is never 0 when inexact).
    """
    p = v.double() * alpha.double()
    c = inp.double()
    s = p + c
    bv = s - p
    err = (p - (s - bv)) + (c - bv)
    bits = s.view(torch.int64)
    to_odd = (err != 0) & ((bits & 1) == 0) & torch.isfinite(s)
    # the magnitude grows (bits + 1) when the error has the sum's sign, else shrinks (bits - 1)
    step = torch.where((err > 0) == (s > 0), 1, -1) * to_odd
    return (bits + step).view(torch.float64).float()


def muladd(v: Any, alpha: Any, inp: Any, fused: bool) -> Any:
    """``v * alpha + inp`` in float32: rounded once (fused) or twice."""
    return fma32(v, alpha, inp) if fused else v * alpha + inp


@dataclass(frozen=True)
class Dynamics:
    """The settings of one population's neuron loop that are not tensors.

    The arctan surrogate's ``scale`` (chip units per float unit) and ``slope``, FMA of the membrane (``fused``) and of
    the synaptic currents (``current_fused``), spike test ``>=`` (``ge``, else ``>``), reset by subtraction
    (``subtract``, else to 0), the implementation (``backend``, one of :data:`BACKENDS`), ``late``: the sums ``syn[t]``
    are the input of tick t + 1 (the projection's sums of the spikes of tick t, which arrive one tick later; tick 0 has
    no input and ``syn[T-1]`` is not read), else of tick t, and ``keep_v``: whether the membrane after the reset is
    returned (False: None in its place, which saves writing and reading it).
    """

    scale: float
    fused: bool
    current_fused: bool
    ge: bool
    subtract: bool
    slope: float
    backend: str = "auto"
    late: bool = False
    keep_v: bool = True

    def __post_init__(self) -> None:
        check_backend(self.backend)

    def uses_c(self, device: Any) -> bool:
        """Whether tensors on ``device`` run in the C core (ConfigError for backend "c" off the CPU)."""
        on_cpu = torch.device(device).type == "cpu"
        if self.backend == "c" and not on_cpu:
            raise ConfigError(
                f"neuron loop backend 'c' runs on CPU tensors only, not on {device}; use 'auto' or 'torch'"
            )
        return on_cpu and self.backend != "torch"


class ChipNeuron(torch.autograd.Function):
    """One population over all ticks: the chip's dynamics forward, arctan surrogate-gradient BPTT backward.

    Inputs: ``syn`` [T, B, n] feed-forward synaptic sums (integer-valued float32), ``syn[t]`` the input of tick t (of
    tick t + 1 with ``dyn.late``); ``exc`` and ``inh`` its excitatory and inhibitory parts (current-based populations,
    else None); ``i_offset``, ``alpha``, ``theta`` [n]; ``decay`` [n] the synaptic current decay (None: lif); ``w_rec``
    [n, n] integer recurrent weights (post, pre) or None; ``dyn`` a :class:`Dynamics`. Returns spikes and V after reset
    (None unless ``dyn.keep_v``), [T, B, n] each. Gradients reach ``syn``, ``i_offset``, ``alpha``, ``decay``, ``theta``
    and ``w_rec``.
    """

    @staticmethod
    def forward(
        ctx: Any,
        syn: Tensor,
        exc: Tensor | None,
        inh: Tensor | None,
        i_offset: Tensor,
        alpha: Tensor,
        decay: Tensor | None,
        theta: Tensor,
        w_rec: Tensor | None,
        dyn: Dynamics,
    ) -> tuple[Tensor, Tensor | None]:
        """Run the chip's dynamics over all ticks (autograd entry; see the class docstring)."""
        _check_shapes(syn, exc, inh, decay, w_rec)
        params = _params(syn.shape[2], i_offset, alpha, theta, decay)
        run = _forward_c if dyn.uses_c(syn.device) else _forward_torch
        spikes, v_pre, v_post, i_net = run(syn, exc, inh, params, w_rec, dyn)
        ctx.save_for_backward(v_pre, spikes, i_net, *params, w_rec)
        ctx.dyn, ctx.shapes = dyn, (i_offset.shape, alpha.shape, None if decay is None else decay.shape, theta.shape)
        ctx.set_materialize_grads(False)  # an unused output's gradient stays None instead of a tensor of zeros
        return spikes, v_post

    @staticmethod
    def backward(ctx: Any, g_spk: Tensor | None, g_vpost: Tensor | None) -> tuple[Tensor | None, ...]:
        """Backpropagate through time with the arctan surrogate (autograd entry; see the class docstring)."""
        v_pre, spikes, i_net, i_offset, alpha, theta, decay, w_rec = ctx.saved_tensors
        dyn, params = ctx.dyn, (i_offset, alpha, theta, decay)
        run = _backward_c if dyn.uses_c(v_pre.device) else _backward_torch
        g_syn, g_ioff, g_alpha, g_decay, g_theta = run(
            _f32(g_spk), _f32(g_vpost), v_pre, spikes, i_net, params, w_rec, dyn
        )
        need = ctx.needs_input_grad
        g_wrec = None
        if w_rec is not None and need[7]:  # W_rec s[t-1] feeds the input of tick t, whose gradient is g_in
            n = spikes.shape[2]
            g_in = g_syn[:-1] if dyn.late else g_syn[1:]
            g_wrec = g_in.reshape(-1, n).T @ spikes[:-1].reshape(-1, n)
        s_ioff, s_alpha, s_decay, s_theta = ctx.shapes
        return (
            g_syn,
            None,
            None,
            _reduce_to(g_ioff, need[3], s_ioff),
            _reduce_to(g_alpha, need[4], s_alpha),
            _reduce_to(g_decay, need[5], s_decay),
            _reduce_to(g_theta, need[6], s_theta),
            g_wrec,
            None,
        )


def _check_shapes(
    syn: Tensor, exc: Tensor | None, inh: Tensor | None, decay: Tensor | None, w_rec: Tensor | None
) -> None:
    """Check every tensor against ``syn``'s [T, B, n]: the C loop trusts the sizes it is given."""
    if syn.dim() != 3:
        raise ConfigError(f"ChipNeuron: synaptic sums of shape {tuple(syn.shape)}; expected [ticks, batch, neurons]")
    if decay is not None and not (exc is not None and inh is not None and exc.shape == inh.shape == syn.shape):
        raise ConfigError(
            f"ChipNeuron: a current-based population needs excitatory and inhibitory sums of the sums' "
            f"shape {tuple(syn.shape)}, got {None if exc is None else tuple(exc.shape)} and "
            f"{None if inh is None else tuple(inh.shape)}"
        )
    n = syn.shape[2]
    if w_rec is not None and tuple(w_rec.shape) != (n, n):
        raise ConfigError(f"ChipNeuron: recurrent weights of shape {tuple(w_rec.shape)} for {n} neurons")


def _params(n: int, i_offset: Tensor, alpha: Tensor, theta: Tensor, decay: Tensor | None) -> tuple:
    """(i_offset, alpha, theta, decay) as contiguous float32 [n] tensors (decay None for lif)."""

    def per_neuron(name: str, x: Tensor | None) -> Tensor | None:
        if x is None:
            return None
        if x.numel() not in (1, n):
            raise ConfigError(f"ChipNeuron: {name} has {x.numel()} values for {n} neurons")
        return torch.broadcast_to(x.detach().float().reshape(-1), (n,)).contiguous()

    return (
        per_neuron("i_offset", i_offset),
        per_neuron("alpha", alpha),
        per_neuron("threshold", theta),
        per_neuron("decay", decay),
    )


def _reduce_to(grad: Tensor | None, needed: bool, shape: tuple[int, ...] | None) -> Tensor | None:
    """Sum a per-(sample, neuron) gradient [B, n] down to ``shape`` ([n] or scalar); None when not needed."""
    if not needed or shape is None or grad is None:
        return None
    return grad.sum(0).reshape(shape) if len(shape) else grad.sum()


# -- the C core ---------------------------------------------------------------------------------------------------
def _layer_struct(
    spikes_shape: tuple[int, ...], params: tuple, w_rec: Tensor | None, dyn: Dynamics
) -> tuple[Any, list[Tensor | None]]:
    """Return the s2_qn_layer of csrc/chip_neuron.h, and the tensors its pointers reference (keep them alive)."""
    from ._core import ffi, lib

    i_offset, alpha, theta, decay = params
    keep = [i_offset, alpha, theta, decay]
    layer = ffi.new("s2_qn_layer *")
    layer.n_ticks, layer.batch, layer.n = (int(s) for s in spikes_shape)
    layer.flags = (
        (lib.S2_QN_FMA if dyn.fused else 0)
        | (lib.S2_QN_CURRENT_FMA if dyn.current_fused else 0)
        | (0 if dyn.ge else lib.S2_QN_STRICT)
        | (lib.S2_QN_SUBTRACT if dyn.subtract else 0)
        | (lib.S2_QN_LATE if dyn.late else 0)
    )
    layer.i_offset, layer.alpha, layer.threshold, layer.decay = (_ptr(ffi, t) for t in keep)
    if w_rec is not None:
        rec = w_rec.detach().float().contiguous()
        rec_t = rec.T.contiguous()
        keep += [rec, rec_t]
        layer.recurrent, layer.recurrent_t = _ptr(ffi, rec), _ptr(ffi, rec_t)
    layer.scale, layer.slope = float(dyn.scale), float(dyn.slope)
    return layer, keep


def _ptr(ffi: Any, tensor: Tensor | None) -> Any:
    """Return a float* to a contiguous CPU float32 tensor (NULL for None)."""
    return ffi.NULL if tensor is None else ffi.cast("float *", tensor.data_ptr())


def _f32(x: Tensor | None) -> Tensor | None:
    return None if x is None else x.detach().float().contiguous()


def _split(batch: int, n: int) -> list[tuple[int, int]]:
    """Sample ranges for the C loop's threads.

    As many as torch's intra-op threads, each with at least 4096 neurons of a tick (fewer would not pay for a thread).
    """
    parts = max(1, min(torch.get_num_threads(), batch, batch * n // 4096))
    bounds = [batch * i // parts for i in range(parts + 1)]
    return list(itertools.pairwise(bounds))


def _on_threads(call: Callable[[int, int, Tensor], object], batch: int, n: int, scratch_per_thread: int) -> None:
    """``call(b_begin, b_end, scratch)`` for disjoint sample ranges, on threads (the C calls release the GIL)."""
    ranges = _split(batch, n)
    scratch = [torch.empty(scratch_per_thread) for _ in ranges]
    if len(ranges) == 1:
        call(*ranges[0], scratch[0])
        return
    with ThreadPoolExecutor(len(ranges)) as pool:
        for job in [pool.submit(call, b0, b1, buf) for (b0, b1), buf in zip(ranges, scratch, strict=True)]:
            job.result()


def _forward_c(
    syn: Tensor, exc: Tensor | None, inh: Tensor | None, params: tuple, w_rec: Tensor | None, dyn: Dynamics
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    from ._core import ffi, lib

    _t_len, batch, n = syn.shape
    curr = params[3] is not None
    syn, exc, inh = syn.detach().float().contiguous(), _f32(exc), _f32(inh)
    layer, keep = _layer_struct(syn.shape, params, w_rec, dyn)
    spikes, v_pre = torch.empty_like(syn), torch.empty_like(syn)
    v_post = torch.empty_like(syn) if dyn.keep_v else None
    i_net = torch.empty_like(syn) if curr else None
    state = torch.empty(3 * batch * n)
    ptrs = [
        _ptr(ffi, t)
        for t in (
            None if curr else syn,
            exc if curr else None,
            inh if curr else None,
            spikes,
            v_pre,
            v_post,
            i_net,
            state,
        )
    ]
    _on_threads(lambda b0, b1, scratch: lib.s2_qn_forward(layer, b0, b1, *ptrs, _ptr(ffi, scratch)), batch, n, 4 * n)
    del keep
    return spikes, v_pre, v_post, i_net


def _backward_c(
    g_spk: Tensor | None,
    g_vpost: Tensor | None,
    v_pre: Tensor,
    spikes: Tensor,
    i_net: Tensor | None,
    params: tuple,
    w_rec: Tensor | None,
    dyn: Dynamics,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor]:
    from ._core import ffi, lib

    _t_len, batch, n = v_pre.shape
    curr = params[3] is not None
    layer, keep = _layer_struct(v_pre.shape, params, w_rec, dyn)
    g_syn = torch.empty_like(v_pre)
    g_ioff, g_alpha, g_theta = (torch.empty(batch, n) for _ in range(3))
    g_decay = torch.empty(batch, n) if curr else None
    state = torch.empty(2 * batch * n)
    ptrs = [
        _ptr(ffi, t) for t in (g_spk, g_vpost, v_pre, spikes, i_net, g_syn, g_alpha, g_decay, g_theta, g_ioff, state)
    ]
    _on_threads(lambda b0, b1, scratch: lib.s2_qn_backward(layer, b0, b1, *ptrs, _ptr(ffi, scratch)), batch, n, 3 * n)
    del keep
    return g_syn, g_ioff, g_alpha, g_decay, g_theta


# -- torch operations (any device) -------------------------------------------------------------------------------
def _forward_torch(
    syn: Tensor, exc: Tensor | None, inh: Tensor | None, params: tuple, w_rec: Tensor | None, dyn: Dynamics
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    i_offset, alpha, theta, decay = params
    zero = torch.zeros_like(syn[0])
    v, i_exc, i_inh, s_prev = zero, zero, zero, zero
    spikes, v_pre = torch.empty_like(syn), torch.empty_like(syn)
    v_post = torch.empty_like(syn) if dyn.keep_v else None
    i_net = torch.empty_like(syn) if decay is not None else None
    if w_rec is not None:  # ``+ 0.0`` turns the -0.0 of clamp(-0.0) into the chip's +0.0
        w_rec = w_rec.detach()
        rec_exc, rec_inh = w_rec.clamp_min(0).T + 0.0, (-w_rec).clamp_min(0).T + 0.0
    for t in range(syn.shape[0]):
        if decay is None:
            cur = _tick_input(syn, t, dyn.late, zero)
            cur = cur if w_rec is None else cur + s_prev @ w_rec.T
        else:
            assert exc is not None and inh is not None and i_net is not None  # _check_shapes: they come with decay
            e, i = _tick_input(exc, t, dyn.late, zero), _tick_input(inh, t, dyn.late, zero)
            e, i = (e, i) if w_rec is None else (e + s_prev @ rec_exc, i + s_prev @ rec_inh)
            i_exc = muladd(i_exc, decay, e, dyn.current_fused)
            i_inh = muladd(i_inh, decay, i, dyn.current_fused)
            cur = i_net[t] = i_exc - i_inh
        v = muladd(v, alpha, cur + i_offset, dyn.fused)
        v_pre[t] = v
        s = v >= theta if dyn.ge else v > theta
        v = torch.where(s, v - theta if dyn.subtract else zero, v)
        s_prev = spikes[t] = s.float()
        if v_post is not None:
            v_post[t] = v
    return spikes, v_pre, v_post, i_net


def _tick_input(sums: Tensor, t: int, late: bool, zero: Tensor) -> Tensor:
    """Return the sums that arrive in tick t (see ``Dynamics.late``), ``+ 0.0``.

    A matmul or conv of -0.0 terms gives -0.0 where the chip's (float) of an integer sum 0 is +0.0.
    """
    if late and t == 0:
        return zero
    return sums[t - 1 if late else t] + 0.0


def _backward_torch(
    g_spk: Tensor | None,
    g_vpost: Tensor | None,
    v_pre: Tensor,
    spikes: Tensor,
    i_net: Tensor | None,
    params: tuple,
    w_rec: Tensor | None,
    dyn: Dynamics,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor]:
    _i_offset, alpha, theta, decay = params
    # V after the reset, recomputed by the forward's own float operation
    v_post = torch.where(spikes > 0, v_pre - theta if dyn.subtract else torch.zeros_like(v_pre), v_pre)
    # snnTorch's ATan surrogate on the membrane in float units (chip units / scale)
    x = (v_pre - theta) / dyn.scale
    dsdv = (dyn.slope / 2) / (1 + (math.pi / 2 * dyn.slope * x) ** 2) / dyn.scale
    zero = torch.zeros_like(v_pre[0])
    g_in = torch.empty_like(v_pre)  # gradient of each tick's input
    g_alpha, g_decay, g_theta, g_ioff = zero.clone(), zero.clone(), zero.clone(), zero.clone()
    g_v_next, g_i_next, g_syn_next = zero, zero, zero  # gradients of V, I and the input at tick t + 1
    for t in range(v_pre.shape[0] - 1, -1, -1):
        g_s = zero if g_spk is None else g_spk[t]
        g_s = g_s if w_rec is None else g_s + g_syn_next @ w_rec
        # V[t+1] = alpha * V_post[t] + inp[t+1]; the reset is detached as in snnTorch
        g_post = alpha * g_v_next if g_vpost is None else g_vpost[t] + alpha * g_v_next
        g_alpha += g_v_next * v_post[t]
        g_sur = g_s * dsdv[t]
        if dyn.subtract:  # V_post = V - s * theta
            g_v, g_theta = g_sur + g_post, g_theta - g_sur - g_post * spikes[t]
        else:  # V_post = V * (1 - s)
            g_v, g_theta = g_sur + g_post * (1 - spikes[t]), g_theta - g_sur
        g_ioff += g_v
        if decay is not None:  # I[t+1] = decay * I[t] + syn[t+1]
            assert i_net is not None  # the forward keeps the net current of a population with a decay
            g_decay += g_i_next * i_net[t]
            g_i_next = g_v + decay * g_i_next
            g_in[t] = g_i_next
        else:
            g_in[t] = g_v
        g_v_next, g_syn_next = g_v, g_in[t]
    # the gradient of each row of syn: late rows feed the next tick, and the last one no tick
    g_syn = torch.cat([g_in[1:], zero[None]]) if dyn.late else g_in
    return g_syn, g_ioff, g_alpha, g_decay if decay is not None else None, g_theta
