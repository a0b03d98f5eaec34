"""snnTorch model -> NIR graph, written for s2sim (snnTorch's own ``export_to_nir`` breaks on ordinary models:
scalar beta/threshold fail NIR type inference, the batch dimension stays in the graph, the reset mechanism is lost).

Supported layers (in an ``nn.Sequential``, a ``ModuleList`` or a plain list, applied in order):
``nn.Conv2d`` -> Conv2d, ``nn.Linear`` -> Affine/Linear, ``nn.AvgPool2d`` -> AvgPool2d, ``nn.Flatten`` -> Flatten,
``snn.Leaky`` -> LIF (IF when beta == 1), ``snn.Synaptic`` -> CubaLIF, ``snn.RLeaky`` and ``snn.RSynaptic`` (linear
or one-to-one recurrence) -> a nested graph ``{input, lif, w_rec, output}`` as snnTorch writes it, with a LIF or a
CubaLIF. Neuron parameters are written as arrays of the layer's shape (no batch dimension; a per-neuron beta,
alpha or threshold is broadcast to it): ``tau = dt/(1-beta)``, ``r = tau/dt``, ``v_leak = 0``, ``v_reset = 0``;
Synaptic ``tau_syn = dt/(1-alpha)``, ``w_in = tau_syn/dt``. With FORWARD integration and the same dt, s2sim's
import then gives ``alpha_decay = beta``, ``exc_decay = inh_decay = alpha`` and ``S = w_scale``.

Graph metadata: ``dt``, ``reset_mechanism`` ("subtract"/"zero", one for the whole model), ``integrator``
("forward"), ``reset_delay`` (1/0), ``source`` ("snntorch").

How the chip's reset relates to snnTorch's (worked out from snnTorch 1.0's ``Leaky.forward``; checked by
tests/test_snntorch_export.py):

* zero reset, ``Leaky``: snnTorch zeroes the stored membrane at the step after a spike, before decay and input
  (``mem = beta*(1-reset)*mem + x``); the chip sets V = 0 in the spike tick, and the next tick computes
  ``0*alpha + x``. Identical arithmetic, identical spikes (the recorded V differs on spike ticks: the chip
  records 0, snnTorch the pre-reset value).
* subtract reset, ``reset_delay=True`` (snnTorch's default): snnTorch computes ``beta*mem + x - thr`` at the step
  after a spike, the chip ``beta*(mem - thr) + x``: they differ by ``(1-beta)*thr`` unless ``beta == 1``.
  So spikes agree exactly only for ``beta == 1`` (exported as IF); otherwise they are close but not equal.
* subtract reset, ``reset_delay=False``: identical to the chip as long as no membrane stays above the threshold
  after its reset (V > 2*thr in one tick); in that case snnTorch's "avoid double reset" logic can differ
  (a dense test network with V up to 6*thr did differ; a conv network with large V happened to agree).
* ``RLeaky``, ``Synaptic`` and ``RSynaptic`` with zero reset and ``reset_delay=True`` set the membrane to 0 in
  the step *after* a spike, which drops that step's input (for the synaptic models: the synaptic current's
  contribution; the current itself is kept); the chip sets V = 0 in the spike tick and integrates the next input.
  With ``reset_delay=False`` (RLeaky, Synaptic) snnTorch zeroes the membrane in the spike step and agrees with the
  chip. Their subtract reset behaves like Leaky's.
* ``RSynaptic`` ignores ``reset_delay=False``: its forward applies the immediate reset to a local variable and
  discards it (with ``init_hidden=True`` it raises a TypeError instead). It always resets one step late, as with
  ``reset_delay=True``; the graph metadata says so (``reset_delay`` 1).
* A recurrent projection costs the chip one tick, exactly as snnTorch's ``recurrent(spk)`` uses the previous
  step's spikes, so recurrence adds no timing difference.
* The synaptic models' bias: snnTorch adds a Linear's bias to the synaptic current, the chip has no current
  offset and the import turns it into ``i_offset = bias / (1 - alpha)`` on V, the steady state of snnTorch's
  current. Before the current has built up (about ``1 / (1 - alpha)`` steps) the membranes differ.
* Every population hop adds one chip tick: chip tick ``t + latency`` is snnTorch step ``t`` (the conversion
  report states ``latency`` per output). A bias is integrated from tick 0 by the chip, including the ``latency``
  ticks before the first input arrives, so exact agreement also needs zero biases (or a warm-up).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .errors import ConversionError

__all__ = ["export_snntorch"]


def export_snntorch(module: Any, sample: Any, dt: float = 1e-4) -> Any:
    """Export an snnTorch model to a ``nir.NIRGraph`` without batch dimension.

    Parameters
    ----------
    module : nn.Sequential, nn.ModuleList or list of modules
        The layers, applied in order.
    sample : torch.Tensor or np.ndarray
        One input time step of one sample, without batch dimension (e.g. ``(2, 32, 32)`` or ``(100,)``);
        only its shape is used.
    dt : float
        Time step written into the time constants and the metadata (snnTorch's exporter uses 1e-4).

    Returns
    -------
    nir.NIRGraph

    Raises
    ------
    ConversionError
        A layer is not supported, has a per-neuron setting that does not broadcast to its shape, or layers
        disagree on the reset mechanism (the message names the layer).
    """
    import nir  # noqa: PLC0415 - optional heavy imports
    import torch  # noqa: PLC0415

    layers = _named_layers(module)
    shape = tuple(int(s) for s in np.shape(sample.detach().cpu().numpy() if hasattr(sample, "detach") else sample))
    if not shape:
        raise ConversionError("export_snntorch: sample must have at least one dimension (no batch dimension)")
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(shape)})}
    edges: list[tuple[str, str]] = []
    prev = "input"
    resets: dict[str, str] = {}
    delays: dict[str, bool] = {}
    for name, layer in layers:
        node, out_shape = _export_layer(nir, torch, name, layer, shape, dt)
        if _is_neuron(layer):
            resets[name] = _reset_mechanism(name, layer)
            # RSynaptic's forward never applies reset_delay=False (module docstring)
            delays[name] = bool(getattr(layer, "reset_delay", True)) or type(layer).__name__ == "RSynaptic"
        nodes[name] = node
        edges.append((prev, name))
        prev, shape = name, out_shape
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((prev, "output"))
    if len(set(resets.values())) > 1:
        raise ConversionError(f"export_snntorch: layers use different reset mechanisms {resets}; the chip conversion "
                              "applies one reset to every population")
    metadata = {"source": "snntorch", "dt": float(dt), "integrator": "forward",
                "reset_mechanism": next(iter(resets.values()), "subtract"),
                "reset_delay": int(all(delays.values())) if delays else 1}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=True)


def _named_layers(module: Any) -> list[tuple[str, Any]]:
    import torch  # noqa: PLC0415

    if isinstance(module, (torch.nn.Sequential, torch.nn.ModuleList)):
        layers = [(str(name), layer) for name, layer in module.named_children()]
    elif isinstance(module, (list, tuple)):
        layers = [(str(i), layer) for i, layer in enumerate(module)]
    else:
        layers = None
    if layers is not None:
        # identities at inference (what is exported), as PTQ/QAT skip them
        return [(n, layer) for n, layer in layers if not isinstance(layer, (torch.nn.Dropout, torch.nn.Identity))]
    raise ConversionError(f"export_snntorch expects an nn.Sequential, an nn.ModuleList or a list of layers, got "
                          f"{type(module).__name__}")


def _is_neuron(layer: Any) -> bool:
    import snntorch as snn  # noqa: PLC0415

    return isinstance(layer, _neuron_classes(snn))


def _neuron_classes(snn: Any) -> tuple:
    return (snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic)


def _reset_mechanism(name: str, layer: Any) -> str:
    mech = getattr(layer, "reset_mechanism", "subtract")
    if mech not in ("subtract", "zero"):
        raise ConversionError(f"layer {name!r} ({type(layer).__name__}): reset_mechanism {mech!r} has no chip "
                              "equivalent; use 'subtract' or 'zero'")
    return mech


def _per_neuron(name: str, layer: Any, attr: str, shape: tuple[int, ...]) -> np.ndarray:
    """A neuron setting (scalar or per neuron, broadcast the way snnTorch's forward broadcasts it) as a float64
    array of the layer's shape."""
    value = getattr(layer, attr)
    arr = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=np.float64)
    try:
        return np.broadcast_to(arr, shape).copy()
    except ValueError:
        raise ConversionError(f"layer {name!r} ({type(layer).__name__}): {attr} has shape {arr.shape}, which does not "
                              f"broadcast to the layer's shape {shape}") from None


def _check_neuron_options(name: str, layer: Any) -> None:
    kind = type(layer).__name__
    if getattr(layer, "inhibition", False):
        raise ConversionError(f"layer {name!r} ({kind}): inhibition has no chip equivalent")
    if getattr(layer, "state_quant", False):
        raise ConversionError(f"layer {name!r} ({kind}): state_quant is not supported; export the float model")
    gsf = getattr(layer, "graded_spikes_factor", 1.0)
    if float(np.asarray(gsf.detach().cpu() if hasattr(gsf, "detach") else gsf).reshape(-1)[0]) != 1.0:
        raise ConversionError(f"layer {name!r} ({kind}): graded spikes are not supported (the chip sends 0/1 spikes)")


def _decay(name: str, layer: Any, attr: str, shape: tuple[int, ...]) -> np.ndarray:
    # snnTorch clamps decays to [0, 1] in its forward pass; export what it computes with
    return np.clip(_per_neuron(name, layer, attr, shape), 0.0, 1.0)


def _leaky_node(nir: Any, name: str, layer: Any, shape: tuple[int, ...], dt: float) -> Any:
    beta = _decay(name, layer, "beta", shape)
    thr = _per_neuron(name, layer, "threshold", shape)
    if np.all(beta == 1.0):
        return nir.IF(r=np.ones(shape), v_threshold=thr, v_reset=np.zeros(shape))
    if np.any(beta == 1.0):
        raise ConversionError(f"layer {name!r} ({type(layer).__name__}): beta is 1 for some neurons and below 1 for "
                              "others; NIR's LIF cannot hold an infinite time constant next to finite ones")
    tau = dt / (1.0 - beta)
    return nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(shape), v_threshold=thr, v_reset=np.zeros(shape))


def _synaptic_node(nir: Any, name: str, layer: Any, shape: tuple[int, ...], dt: float) -> Any:
    alpha, beta = _decay(name, layer, "alpha", shape), _decay(name, layer, "beta", shape)
    if np.any(alpha == 1.0) or np.any(beta == 1.0):
        raise ConversionError(f"layer {name!r} ({type(layer).__name__}): alpha = {alpha.max()}, beta = {beta.max()}; "
                              "a decay of 1 is an infinite NIR time constant (CubaLIF cannot express it)")
    tau_syn, tau_mem = dt / (1.0 - alpha), dt / (1.0 - beta)
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=np.zeros(shape),
                       v_threshold=_per_neuron(name, layer, "threshold", shape), v_reset=np.zeros(shape),
                       w_in=tau_syn / dt)


def _recurrent_node(nir: Any, name: str, layer: Any, shape: tuple[int, ...], dt: float) -> Any:
    """RLeaky (LIF) or RSynaptic (CubaLIF) with its recurrent weights, as the nested graph snnTorch writes."""
    import torch  # noqa: PLC0415

    kind = type(layer).__name__
    if len(shape) != 1:
        raise ConversionError(f"layer {name!r} ({kind}): only 1-D (linear) recurrent layers are supported, input "
                              f"shape {shape}")
    n = shape[0]
    rec = layer.recurrent
    if isinstance(rec, torch.nn.Linear):
        w = rec.weight.detach().cpu().numpy().astype(np.float64)
        w_rec = (nir.Affine(weight=w, bias=rec.bias.detach().cpu().numpy().astype(np.float64))
                 if rec.bias is not None else nir.Linear(weight=w))
    elif hasattr(rec, "V"):
        v = rec.V.detach().cpu().numpy().astype(np.float64).reshape(-1)
        w_rec = nir.Linear(weight=np.diag(np.broadcast_to(v, (n,)).copy()))
    else:
        raise ConversionError(f"layer {name!r} ({kind}): recurrent {type(rec).__name__} is not supported; use "
                              "linear_features=... or all_to_all=False")
    if np.asarray(w_rec.weight).shape != (n, n):
        raise ConversionError(f"layer {name!r} ({kind}): recurrent weight has shape {np.asarray(w_rec.weight).shape}, "
                              f"the layer has {n} neurons")
    neuron = (_synaptic_node if kind == "RSynaptic" else _leaky_node)(nir, name, layer, shape, dt)
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array(shape)}), "lif": neuron, "w_rec": w_rec,
               "output": nir.Output(output_type={"output": np.array(shape)})},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
        type_check=True)


def _conv_node(nir: Any, name: str, layer: Any, shape: tuple[int, ...]) -> Any:
    if len(shape) != 3:
        raise ConversionError(f"layer {name!r} (Conv2d): input shape {shape} is not (C, H, W)")
    if layer.padding_mode != "zeros":
        raise ConversionError(f"layer {name!r} (Conv2d): padding_mode {layer.padding_mode!r} is not supported "
                              "(zeros only)")
    padding = layer.padding if isinstance(layer.padding, str) else np.array(layer.padding)
    bias = layer.bias.detach().cpu().numpy() if layer.bias is not None else np.zeros(layer.out_channels)
    return nir.Conv2d(input_shape=np.array(shape[1:]), weight=layer.weight.detach().cpu().numpy().astype(np.float64),
                      stride=np.array(layer.stride), padding=padding, dilation=np.array(layer.dilation),
                      groups=int(layer.groups), bias=bias.astype(np.float64))


def _avgpool_node(nir: Any, name: str, layer: Any) -> Any:
    if layer.ceil_mode or layer.divisor_override is not None:
        raise ConversionError(f"layer {name!r} (AvgPool2d): ceil_mode / divisor_override are not supported")
    kernel = np.broadcast_to(np.asarray(layer.kernel_size), (2,)).copy()
    stride = kernel if layer.stride is None else np.broadcast_to(np.asarray(layer.stride), (2,)).copy()
    padding = np.broadcast_to(np.asarray(layer.padding), (2,)).copy()
    return nir.AvgPool2d(kernel_size=kernel, stride=stride, padding=padding)


def _flatten_node(nir: Any, name: str, layer: Any, shape: tuple[int, ...]) -> Any:
    if layer.start_dim == 0:
        raise ConversionError(f"layer {name!r} (Flatten): start_dim 0 would flatten the batch dimension")
    end = layer.end_dim - 1 if layer.end_dim > 0 else layer.end_dim
    return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=layer.start_dim - 1, end_dim=end)


def _export_layer(nir: Any, torch: Any, name: str, layer: Any, shape: tuple[int, ...], dt: float):
    """The NIR node of one layer and the layer's output shape (no batch dimension)."""
    import snntorch as snn  # noqa: PLC0415

    if isinstance(layer, _neuron_classes(snn)):
        if type(layer) not in _neuron_classes(snn):
            raise ConversionError(f"layer {name!r}: {type(layer).__name__} is not supported; use Leaky, Synaptic, "
                                  "RLeaky or RSynaptic")
        _check_neuron_options(name, layer)
        builder = {snn.Leaky: _leaky_node, snn.Synaptic: _synaptic_node, snn.RLeaky: _recurrent_node,
                   snn.RSynaptic: _recurrent_node}[type(layer)]
        return builder(nir, name, layer, shape, dt), shape
    if isinstance(layer, torch.nn.Linear):
        w = layer.weight.detach().cpu().numpy().astype(np.float64)
        node = (nir.Affine(weight=w, bias=layer.bias.detach().cpu().numpy().astype(np.float64))
                if layer.bias is not None else nir.Linear(weight=w))
    elif isinstance(layer, torch.nn.Conv2d):
        node = _conv_node(nir, name, layer, shape)
    elif isinstance(layer, torch.nn.AvgPool2d):
        node = _avgpool_node(nir, name, layer)
    elif isinstance(layer, torch.nn.Flatten):
        node = _flatten_node(nir, name, layer, shape)
    else:
        from .layer_support import refusal

        raise ConversionError(refusal(name, layer))
    return node, _torch_out_shape(torch, name, layer, shape)


def _torch_out_shape(torch: Any, name: str, layer: Any, shape: Sequence[int]) -> tuple[int, ...]:
    try:
        with torch.no_grad():
            out = layer(torch.zeros((1, *shape), dtype=torch.float32))
    except RuntimeError as exc:
        raise ConversionError(f"layer {name!r} ({type(layer).__name__}) does not accept input of shape "
                              f"{tuple(shape)} (without batch): {exc}") from None
    return tuple(int(s) for s in out.shape[1:])
