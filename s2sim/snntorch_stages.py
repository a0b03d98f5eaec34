"""An snnTorch model as chip stages: one population per neuron layer and the torch modules that feed it.

A feed-forward snnTorch model (an ``nn.Sequential``, possibly nested, of ``Linear`` / ``Conv2d`` / ``AvgPool2d`` /
``Flatten`` and neuron layers) becomes one chip population per neuron layer. Everything between two neuron layers
is one projection ("stage"): pools before a conv become its fused sum-pool, a pool right after a conv is folded
into a larger strided kernel, pools and a flatten before a ``Linear`` are folded into its connection list.

Neuron layers and their chip models:

=================  ==================================  =====================================================
snnTorch            chip dynamics                       recurrent projection (population onto itself)
=================  ==================================  =====================================================
``Leaky``           lif (``lif_no_delay``, ``lif``,     none
                    ``lif_conv2d``)
``RLeaky``          lif                                 ``recurrent`` (``nn.Linear``, or one-to-one ``V``)
``Synaptic``        curr_exp (``lif_curr_exp*``)        none
``RSynaptic``       curr_exp                            as RLeaky
=================  ==================================  =====================================================

:func:`float_run` is the float model exactly as snnTorch computes it (its operation order, its reset rules),
the reference PTQ reports against. Torch and snnTorch are imported lazily.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np

from .errors import ConversionError

NeuronKind = Literal["lif", "curr_exp"]


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
class NeuronParams:
    """A stage's neuron constants, one float value per post neuron (torch tensors, differentiable).

    ``beta``: membrane decay clamped to [0, 1] (``alpha_decay``); ``syn_decay``: synaptic current decay clamped to
    [0, 1] (``exc_decay`` and ``inh_decay``; None for lif); ``threshold`` in float units.
    """

    beta: Any
    syn_decay: Any
    threshold: Any


def _neuron_types() -> dict[type, tuple[NeuronKind, bool]]:
    import snntorch

    return {snntorch.Leaky: ("lif", False), snntorch.RLeaky: ("lif", True),
            snntorch.Synaptic: ("curr_exp", False), snntorch.RSynaptic: ("curr_exp", True)}


@dataclass
class Stage:
    """One chip population and the torch modules feeding it (``ops``, then the neuron layer ``neuron``)."""

    name: str
    geometry: Geometry
    ops: list
    neuron: Any
    post_pool: int = 1

    @property
    def n_out(self) -> int:
        return self.geometry.n_out

    @property
    def kind(self) -> NeuronKind:
        """"lif" (Leaky, RLeaky) or "curr_exp" (Synaptic, RSynaptic: separate exc/inh synaptic currents)."""
        return _neuron_types()[type(self.neuron)][0]

    @property
    def recurrent(self) -> bool:
        """Whether the population projects onto itself (RLeaky, RSynaptic)."""
        return _neuron_types()[type(self.neuron)][1]

    @property
    def reset(self) -> str:
        return "reset_by_subtraction" if self.neuron.reset_mechanism == "subtract" else "reset_to_v_reset"

    @property
    def reset_delay(self) -> bool:
        """snnTorch's reset_delay as its forward applies it: RSynaptic's forward applies the immediate reset to a
        local variable and discards it, so an RSynaptic layer always behaves as ``reset_delay=True``."""
        import snntorch

        return bool(self.neuron.reset_delay) or type(self.neuron) is snntorch.RSynaptic

    def synapse_float(self, x):
        """The float model's feed-forward input current: the torch modules applied to ``x`` ``[n, *in_shape]``."""
        for op in self.ops:
            x = op(x)
        return x.reshape(x.shape[0], -1)

    def effective(self):
        """(weight, bias) of the feed-forward projection in float, as differentiable torch tensors.

        dense: weight [n_out, n_in] (pools and flatten folded in, as probing the chain with unit vectors gives them),
        conv: kernel [C_out, C_in, kH', kW'] divided by the fused pool area and with a following pool folded in.
        bias: one value per post neuron, the feed-forward bias plus the recurrent layer's bias (both are added
        to the neuron's input every step).
        """
        import torch

        main = next(op for op in self.ops if isinstance(op, (torch.nn.Linear, torch.nn.Conv2d)))
        g = self.geometry
        if g.kind == "dense":
            weight = main.weight if len(self.ops) == 1 else _dense_through_pools(main.weight, self.ops[:-1],
                                                                                g.in_shape)
            bias = main.bias if main.bias is not None else torch.zeros(g.n_out, dtype=weight.dtype,
                                                                        device=weight.device)
        else:
            weight = _fold_pool(main.weight, self.post_pool, main.stride) / float(g.pool * g.pool)
            per_channel = main.bias if main.bias is not None else torch.zeros(weight.shape[0], dtype=weight.dtype,
                                                                               device=weight.device)
            bias = per_channel.repeat_interleave(g.out_shape[1] * g.out_shape[2])
        rec = getattr(self.neuron, "recurrent", None) if self.recurrent else None
        if isinstance(rec, torch.nn.Linear) and rec.bias is not None:
            bias = bias + rec.bias
        return weight, bias

    def recurrent_weight(self):
        """The recurrent weights [n, n] (post, pre) as a differentiable tensor, or None for a stage without one.

        ``nn.Linear`` recurrence: its weight; one-to-one recurrence (``all_to_all=False``): ``diag(V)``.
        """
        import torch

        if not self.recurrent:
            return None
        rec = self.neuron.recurrent
        if isinstance(rec, torch.nn.Linear):
            return rec.weight
        v = torch.as_tensor(rec.V, dtype=torch.float32)
        return torch.diag(torch.broadcast_to(v.reshape(-1) if v.dim() else v, (self.n_out,)))

    def neuron_params(self) -> NeuronParams:
        """beta, synaptic decay and threshold broadcast to one value per post neuron (flat order)."""
        import torch

        shape = self.geometry.out_shape

        def per_neuron(value):
            return torch.broadcast_to(torch.as_tensor(value), shape).reshape(-1)

        syn = per_neuron(self.neuron.alpha.clamp(0, 1)) if self.kind == "curr_exp" else None
        return NeuronParams(per_neuron(torch.as_tensor(self.neuron.beta).clamp(0, 1)), syn,
                            per_neuron(self.neuron.threshold))

    def membrane_bias(self, bias, params: NeuronParams):
        """The bias as the chip's ``i_offset`` (float units): lif adds it to V as snnTorch does; a curr_exp
        population adds ``bias / (1 - syn_decay)`` to V, the value snnTorch's synaptic current reaches for a
        constant bias (the NIR import's mapping). Only the steady state agrees: snnTorch's current needs
        ``1/(1 - syn_decay)`` steps to build up, the chip's offset is there from tick 0."""
        if self.kind == "lif":
            return bias
        gap = 1.0 - params.syn_decay.double()
        if bool((gap == 0).any()) and bool((bias != 0).any()):
            raise ConversionError(f"{self.name} ({type(self.neuron).__name__}): alpha = 1 with a bias; the "
                                  "synaptic current then grows without bound and has no chip i_offset equivalent")
        return bias.double() / gap.clamp_min(1e-300)


def _dense_through_pools(weight, before: list, in_shape: tuple[int, ...]):
    """The weights [n_out, n_in] of ``Linear(weight)`` applied after ``before`` (AvgPool2d and Flatten only, as
    :func:`_dense_stage` checks) to an input of ``in_shape``.

    The pools have stride == kernel, so every input lies in exactly one window of each: its weight is its
    window's weight times the pools' factor. The factor is what the pools compute for a lone unit value (1/k^2
    per pool, in their own float arithmetic), so the result is the one probing the chain with unit vectors gives,
    without the n_in x n_in probe.
    """
    import torch

    shape, pools = tuple(in_shape), []
    for op in before:
        if isinstance(op, torch.nn.AvgPool2d):
            pools.append(_pool_factor("", op, shape))
            shape = (shape[0], shape[1] // pools[-1], shape[2] // pools[-1])
    if not pools:  # a Flatten only
        return weight
    side = int(np.prod(pools))
    unit = torch.zeros(1, 1, side, side, dtype=weight.dtype, device=weight.device)
    unit[0, 0, 0, 0] = 1.0
    for op in before:
        if isinstance(op, torch.nn.AvgPool2d):
            unit = op(unit)
    w = weight.reshape(weight.shape[0], *shape) * unit.reshape(())
    for k in reversed(pools):
        w = w.repeat_interleave(k, dim=2).repeat_interleave(k, dim=3)
    return w.reshape(weight.shape[0], -1)


def _fold_pool(weight, q: int, stride: tuple[int, int]):
    """A conv (kernel K, stride s) followed by a q x q average pool equals one conv with kernel K + (q-1)s and
    stride q*s whose taps are the pool-averaged shifted copies of the kernel."""
    import torch

    if q == 1:
        return weight
    co, ci, kh, kw = weight.shape
    sy, sx = stride
    out = torch.zeros(co, ci, kh + (q - 1) * sy, kw + (q - 1) * sx, dtype=weight.dtype, device=weight.device)
    for dy in range(q):
        for dx in range(q):
            pad = (dx * sx, (q - 1 - dx) * sx, dy * sy, (q - 1 - dy) * sy)
            out = out + torch.nn.functional.pad(weight, pad)
    return out / float(q * q)


def parse_model(model: Any, input_shape: Sequence[int]) -> list[Stage]:
    """Split a feed-forward snnTorch model into chip stages (one per neuron layer).

    Raises
    ------
    ConversionError
        For a module the chip cannot run (MaxPool2d, a neuron that is not subtract/zero reset, a graded spike
        factor, a pool with padding or stride != kernel, a conv with dilation or groups, a Synaptic layer fed by
        a conv, a convolutional recurrence), naming the module.
    """
    import torch.nn as nn

    neuron_types = tuple(_neuron_types())
    stages: list[Stage] = []
    shape = tuple(int(s) for s in input_shape)
    pending: list[tuple[str, Any]] = []
    for name, mod in _leaves(model, ""):
        if isinstance(mod, (nn.Dropout, nn.Identity)):
            continue
        if isinstance(mod, neuron_types):
            _check_neuron(name, mod)
            stage = _make_stage(f"layer{len(stages) + 1}", pending, mod, shape, name)
            _check_recurrence(stage, name)
            stages.append(stage)
            shape = stage.geometry.out_shape
            pending = []
        elif isinstance(mod, (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.Flatten)):
            pending.append((name, mod))
        else:
            from .layer_support import refusal

            raise ConversionError(refusal(name, mod))
    if pending:
        raise ConversionError(f"modules {[n for n, _ in pending]} after the last neuron layer have no population "
                              "to feed; end the model with a neuron layer")
    if not stages:
        raise ConversionError("the model has no snnTorch neuron layer (Leaky, RLeaky, Synaptic, RSynaptic)")
    return stages


def _leaves(module: Any, prefix: str):
    import snntorch

    from .layer_support import is_refused

    children = list(module.named_children())
    # a recurrent neuron holds its recurrent Linear as a child: the neuron itself is the leaf; so is a refused
    # layer, whose inner modules (an LSTM's convolution) are not layers of the model
    if not children or isinstance(module, (snntorch.RLeaky, snntorch.RSynaptic)) or is_refused(module):
        yield prefix or type(module).__name__, module
        return
    for name, child in children:
        yield from _leaves(child, f"{prefix}.{name}" if prefix else name)


def _check_neuron(name: str, mod: Any) -> None:
    kind = type(mod).__name__
    if type(mod) not in _neuron_types():
        raise ConversionError(f"{kind} {name!r}: only Leaky, RLeaky, Synaptic and RSynaptic are supported, not "
                              "their subclasses")
    if mod.reset_mechanism not in ("subtract", "zero"):
        raise ConversionError(f"{kind} {name!r}: reset_mechanism {mod.reset_mechanism!r}; the chip resets by "
                              "subtraction or to v_reset (use 'subtract' or 'zero')")
    if float(mod.graded_spikes_factor) != 1.0 or getattr(mod, "inhibition", False) or mod.state_quant:
        raise ConversionError(f"{kind} {name!r}: graded spikes, inhibition and state_quant have no chip equivalent")


def _check_recurrence(stage: Stage, module_name: str) -> None:
    import torch

    kind = type(stage.neuron).__name__
    if stage.kind == "curr_exp" and stage.geometry.kind == "conv":
        raise ConversionError(f"{kind} {module_name!r}: fed by a Conv2d, but the chip's current-based models "
                              "(lif_curr_exp*) are no conv target; use Leaky after a conv")
    if not stage.recurrent:
        return
    rec = stage.neuron.recurrent
    if len(stage.geometry.out_shape) != 1:
        raise ConversionError(f"{kind} {module_name!r}: recurrence on a {stage.geometry.out_shape} layer; only 1-D "
                              "(dense) recurrent layers are supported")
    if isinstance(rec, torch.nn.Linear):
        if tuple(rec.weight.shape) != (stage.n_out, stage.n_out):
            raise ConversionError(f"{kind} {module_name!r}: recurrent weight of shape {tuple(rec.weight.shape)} for a "
                                  f"layer of {stage.n_out} neurons")
    elif not hasattr(rec, "V"):
        raise ConversionError(f"{kind} {module_name!r}: recurrent {type(rec).__name__} is not supported; use "
                              "linear_features=... or all_to_all=False")


def _make_stage(stage_name: str, ops: list[tuple[str, Any]], neuron: Any, shape: tuple[int, ...],
                neuron_name: str) -> Stage:
    import torch.nn as nn

    mains = [(n, m) for n, m in ops if isinstance(m, (nn.Linear, nn.Conv2d))]
    if len(mains) != 1:
        raise ConversionError(f"{stage_name} ({type(neuron).__name__} {neuron_name!r}): needs exactly one Linear or "
                              f"Conv2d before it, found {[n for n, _ in mains] or 'none'}; two weight layers in a "
                              "row cannot share one chip projection")
    main_name, main = mains[0]
    idx = [m for _, m in ops].index(main)
    before, after = ops[:idx], ops[idx + 1:]
    if isinstance(main, nn.Linear):
        return _dense_stage(stage_name, ops, before, after, main, main_name, shape, neuron)
    return _conv_stage(stage_name, ops, before, after, main, main_name, shape, neuron)


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


def _dense_stage(stage_name, ops, before, after, main, main_name, shape, neuron) -> Stage:
    import torch.nn as nn

    if after:
        raise ConversionError(f"{stage_name}: modules {[n for n, _ in after]} between Linear {main_name!r} and "
                              "its neuron layer are not supported")
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
    return Stage(stage_name, geo, [op for _, op in ops], neuron)


def _conv_stage(stage_name, ops, before, after, main, main_name, shape, neuron) -> Stage:
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
                                  f"neuron layer, found {type(op).__name__} {name!r}")
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
    return Stage(stage_name, geo, [op for _, op in ops], neuron, post_pool)


# -- the float reference ------------------------------------------------------------------------------------------
def float_run(stages: list[Stage], x: Any) -> list[Any]:
    """The float model as snnTorch computes it (no hop delay, spike when ``mem > threshold``, snnTorch's resets
    including ``reset_delay``, recurrent input from the previous step's spikes): per stage the spikes
    [T, B, n_out]."""
    import torch

    out = []
    with torch.no_grad():
        for stage in stages:
            t, b = x.shape[:2]
            cur = stage.synapse_float(x.reshape(t * b, *x.shape[2:])).reshape(t, b, -1)
            x = _snntorch_neuron(stage, cur)
            out.append(x)
            x = x.reshape(t, b, *stage.geometry.out_shape)
    return out


def _snntorch_neuron(stage: Stage, cur: Any) -> Any:
    """One snnTorch neuron layer step by step, in its class's own operation order (snnTorch 1.0's
    ``_base_sub`` / ``_base_zero`` of Leaky, RLeaky, Synaptic and RSynaptic)."""
    import torch

    p = stage.neuron_params()
    beta, thr = p.beta, p.threshold
    rec = stage.neuron.recurrent if stage.recurrent else None
    zero_reset = stage.neuron.reset_mechanism == "zero"
    mem, syn, spk = (torch.zeros_like(cur[0]) for _ in range(3))
    spikes = torch.empty_like(cur)
    for t in range(cur.shape[0]):
        reset = (mem - thr > 0).float()
        if stage.kind == "curr_exp":
            syn = p.syn_decay * syn + cur[t]
            syn = syn + rec(spk) if rec is not None else syn
            mem = beta * mem + syn
            mem = mem - mem * reset if zero_reset else mem - reset * thr
        elif rec is not None:
            mem = beta * mem + cur[t] + rec(spk)
            mem = mem - reset * mem if zero_reset else mem - reset * thr
        elif zero_reset:
            mem = beta * ((1 - reset) * mem) + cur[t]
        else:
            mem = beta * mem + cur[t] - reset * thr
        spk = (mem - thr > 0).float()
        if not stage.reset_delay:
            do_reset = spk - reset  # snnTorch's "avoid double reset"
            mem = mem - do_reset * mem if zero_reset else mem - do_reset * thr
        spikes[t] = spk
    return spikes
