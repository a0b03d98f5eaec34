"""s2sim network -> NIR graph, so a deployed (quantised) network can be inspected, shared and re-imported.

The NIR nodes describe the chip network in chip units and ticks (``dt`` = 1 tick by default, FORWARD
discretisation): a ``lif*`` population with ``alpha_decay < 1`` becomes ``LIF(tau = dt/(1-alpha), r = tau/dt,
v_leak = i_offset*tau/dt, v_threshold = threshold, v_reset)``, so the voltage scale S of a FORWARD import is 1;
``alpha_decay == 1`` becomes ``IF(r = 1)`` with ``i_offset`` as the bias of an incoming weight node; ``lif_curr_exp*``
becomes ``CubaLIF(tau_syn = dt/(1-exc_decay), w_in = tau_syn/dt, ...)``. A connection list becomes a dense
``Linear`` (or ``Affine``) ``[post, pre]`` matrix (duplicate synapses summed), a Conv2DProjection a ``Conv2d``
(weights back to NIR's ``[C_out, C_in, kH, kW]``, ``stride = (stride_y, stride_x)``) preceded by a ``SumPool2d``
when it pools.

NIR cannot say everything the chip holds (per-synapse delays, the exact connection list, subtractive reset,
float64 host values, model names, recording), so every node carries ``s2sim_*`` metadata and the graph carries
``s2sim_format``, ``dt``, ``integrator`` and ``conn_delay``. :func:`s2sim.nir_import.from_nir` uses that metadata
to rebuild the same network exactly, as long as the NIR parameters still describe it (an edited graph is
converted from its NIR parameters instead, and the report says so). What NIR cannot express at all (refractory
periods, different excitatory and inhibitory decays, a non-zero initial voltage, asymmetric conv padding) is
refused with a ConversionError rather than exported as something else.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import snn
from .errors import ConversionError
from .models import KIND_CURR_EXP, KIND_LIF
from .nir_import import S2SIM_FORMAT_KEY, S2SIM_FORMAT_VERSION

__all__ = ["to_nir"]


def to_nir(net: snn.Network, dt: float = 1.0) -> Any:
    """Write a network as a ``nir.NIRGraph`` with the metadata needed to re-import it exactly.

    Parameters
    ----------
    net : snn.Network
        The network (for example from :func:`s2sim.nir_import.from_nir`).
    dt : float
        Length of one tick in the graph's time unit (time constants are written as ``dt / (1 - decay)``).

    Returns
    -------
    nir.NIRGraph

    Raises
    ------
    ConversionError
        A population or projection holds something NIR cannot express (the message names it).
    """
    import nir  # optional heavy import

    if not isinstance(net, snn.Network):
        raise ConversionError(f"to_nir expects an s2sim.snn.Network, got {type(net).__name__}")
    shapes = _population_shapes(net)
    bias_host = _bias_hosts(net)
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    for index, pop in enumerate(net.populations):
        nodes[pop.name] = _population_node(nir, pop, shapes[pop.name], dt)
        nodes[pop.name].metadata["s2sim_index"] = index  # HDF5 lists groups alphabetically; keep the net's order
    taken = set(nodes)
    for index, proj in enumerate(net.projections):
        name = _unique(_node_name(proj.name), taken)
        bias = _projection_bias(proj, bias_host)
        if isinstance(proj, snn.Conv2DProjection):
            edges.extend(_conv_nodes(nir, proj, name, bias, nodes, taken))
        else:
            nodes[name] = _list_node(nir, proj, name, bias)
        nodes[name].metadata["s2sim_index"] = index
        if not isinstance(proj, snn.Conv2DProjection):
            source = _flat_source(nir, proj.pre.name, shapes, nodes, edges, taken)
            edges.extend([(source, name), (name, proj.post.name)])
    for pop in net.populations:
        if pop.record and not pop.model.is_input:
            out = _unique(f"{pop.name}_output", taken)
            nodes[out] = nir.Output(output_type={"output": np.array(shapes[pop.name])})
            edges.append((pop.name, out))
    has_conv = any(isinstance(p, snn.Conv2DProjection) for p in net.projections)
    list_delays = [int(p.delays.max(initial=0)) for p in net.projections if isinstance(p, snn.Projection)]
    resets = {p.reset for p in net.populations if not p.model.is_input}
    metadata = {
        S2SIM_FORMAT_KEY: S2SIM_FORMAT_VERSION,
        "dt": float(dt),
        "integrator": "forward",
        "conn_delay": 0 if has_conv or not list_delays else max(list_delays),
        "s2sim_network_name": net.name,
        "time_unit": "tick",
    }
    if len(resets) == 1:
        metadata["reset"] = "subtract" if resets.pop() == "reset_by_subtraction" else "zero"
    # NIR has no reshape: a connection list into a multi-dimensional (conv-shaped) population is written as it is,
    # which nir's type inference would reject, so that graph skips it (from_nir checks sizes itself)
    unflatten = any(isinstance(p, snn.Projection) and len(shapes[p.post.name]) > 1 for p in net.projections)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=not unflatten)


def _flat_source(nir: Any, pre: str, shapes: dict, nodes: dict, edges: list, taken: set[str]) -> str:
    """Return the node a Linear reads ``pre`` from.

    That is ``pre`` itself, or a Flatten after a multi-dimensional population.
    """
    if len(shapes[pre]) == 1:
        return pre
    flat = f"{pre}_flatten"
    if flat not in nodes:
        flat = _unique(flat, taken)
        nodes[flat] = nir.Flatten(input_type={"input": np.array(shapes[pre])}, start_dim=0, end_dim=-1)
        edges.append((pre, flat))
    return flat


# ---------------------------------------------------------------------------------------------------------------
def _node_name(name: str) -> str:
    # HDF5 group names cannot contain "/"; "." would read as a nested subgraph on import
    return name.replace("/", "_").replace(".", "_")


def _unique(name: str, taken: set[str]) -> str:
    out, k = name, 1
    while out in taken:
        k += 1
        out = f"{name}_{k}"
    taken.add(out)
    return out


def _population_shapes(net: snn.Network) -> dict[str, tuple[int, ...]]:
    """Return the NIR shape of each population: what import recorded, else what conv projections imply, else (size,)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for proj in net.projections:
        if isinstance(proj, snn.Conv2DProjection):
            shapes.setdefault(proj.pre.name, tuple(proj.in_shape))
            shapes.setdefault(proj.post.name, tuple(proj.out_shape))
    for pop in net.populations:
        recorded = getattr(pop, "nir_shape", None)
        if recorded is not None and int(np.prod(recorded)) == pop.size and pop.name not in shapes:
            shapes[pop.name] = tuple(int(x) for x in recorded)
        shapes.setdefault(pop.name, (pop.size,))
    return shapes


def _bias_hosts(net: snn.Network) -> dict[str, Any]:
    """For IF-like populations (alpha_decay == 1) with an i_offset: the incoming projection that carries it."""
    hosts: dict[str, Any] = {}
    for pop in net.populations:
        if pop.model.is_input or not np.all(pop.param("alpha_decay") == 1.0) or not np.any(pop.param("i_offset")):
            continue
        if pop.model.kind != KIND_LIF:
            continue
        for proj in net.projections:
            if proj.post is pop and _can_carry_bias(proj, pop.param("i_offset")):
                hosts[pop.name] = proj
                break
        else:
            raise ConversionError(
                f"population {pop.name!r}: alpha_decay is 1 (NIR IF) and i_offset is non-zero, but "
                "no incoming projection can carry it as a NIR bias (a connection list, or a conv "
                "with one i_offset per output channel)"
            )
    return hosts


def _can_carry_bias(proj: Any, i_offset: np.ndarray) -> bool:
    if isinstance(proj, snn.Projection):
        return True
    c_out = proj.out_shape[0]
    per_channel = i_offset.reshape(c_out, -1)
    return bool(np.all(per_channel == per_channel[:, :1]))


def _projection_bias(proj: snn.Projection | snn.Conv2DProjection, hosts: dict[str, Any]) -> np.ndarray | None:
    if hosts.get(proj.post.name) is not proj:
        return None
    i_offset = proj.post.param("i_offset")
    if isinstance(proj, snn.Conv2DProjection):
        return i_offset.reshape(proj.out_shape[0], -1)[:, 0].copy()
    return i_offset.copy()


def _refuse(pop: snn.Population, param: str, why: str) -> None:
    raise ConversionError(
        f"population {pop.name!r}: {param} = {pop.param(param).tolist()[:4]}... cannot be written to NIR ({why})"
    )


def _population_node(nir: Any, pop: snn.Population, shape: tuple[int, ...], dt: float) -> Any:
    md: dict[str, Any] = {
        "s2sim_model": pop.neuron_model,
        "s2sim_record": ",".join(pop.record),
        "s2sim_max_atoms_per_core": int(pop.max_atoms_per_core or 0),
    }
    if pop.model.is_input:
        neurons = [n for n, ticks in sorted(pop.spike_times.items()) for _ in ticks]
        ticks = [t for _, ts in sorted(pop.spike_times.items()) for t in ts]
        md["s2sim_spike_neurons"] = np.asarray(neurons, dtype=np.int64)
        md["s2sim_spike_ticks"] = np.asarray(ticks, dtype=np.int64)
        return nir.Input(input_type={"input": np.array(shape)}, metadata=md)
    md["s2sim_reset"] = pop.reset
    md["s2sim_weight_limit"] = int(pop.model.weight_limit)
    md["s2sim_max_delay"] = int(pop.model.max_delay)
    params = pop.validated().params
    for key, value in params.items():
        md[f"s2sim_param_{key}"] = np.asarray(value, dtype=np.float64)
    # set on populations that came from NIR (s2sim.nir_import)
    voltage_scale, weight_scale = getattr(pop, "voltage_scale", None), getattr(pop, "weight_scale", None)
    if voltage_scale is not None:
        md["s2sim_voltage_scale"] = np.asarray(voltage_scale, dtype=np.float64)
    if weight_scale is not None:
        md["s2sim_weight_scale"] = float(weight_scale)
    if np.any(pop.param("v_init") != 0):
        _refuse(pop, "v_init", "NIR neurons start at 0")
    p = {k: np.asarray(v, np.float64).reshape(shape) for k, v in params.items()}
    alpha = p["alpha_decay"]
    if pop.model.kind == KIND_CURR_EXP:
        if np.any(p["t_refrac"] != 0):
            _refuse(pop, "t_refrac", "NIR CubaLIF has no refractory period")
        if np.any(p["exc_decay"] != p["inh_decay"]):
            _refuse(pop, "inh_decay", "NIR CubaLIF has one synaptic time constant; exc_decay differs")
        if np.any(alpha == 1) or np.any(p["exc_decay"] == 1):
            _refuse(pop, "alpha_decay", "a decay of 1 is an infinite NIR time constant")
        tau_mem, tau_syn = dt / (1 - alpha), dt / (1 - p["exc_decay"])
        return nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=tau_mem / dt,
            v_leak=p["i_offset"] * tau_mem / dt,
            v_threshold=p["threshold"],
            v_reset=p["v_reset"],
            w_in=tau_syn / dt,
            metadata=md,
        )
    if np.all(alpha == 1):
        return nir.IF(r=np.ones(shape), v_threshold=p["threshold"], v_reset=p["v_reset"], metadata=md)
    if np.any(alpha == 1):
        _refuse(pop, "alpha_decay", "some neurons have alpha_decay 1 (NIR IF) and others not (NIR LIF)")
    tau = dt / (1 - alpha)
    return nir.LIF(
        tau=tau,
        r=tau / dt,
        v_leak=p["i_offset"] * tau / dt,
        v_threshold=p["threshold"],
        v_reset=p["v_reset"],
        metadata=md,
    )


def _list_node(nir: Any, proj: snn.Projection, name: str, bias: np.ndarray | None) -> Any:
    dense = np.zeros((proj.post.size, proj.pre.size))
    np.add.at(dense, (proj.post_idx, proj.pre_idx), proj.weights)
    md = {
        "s2sim_name": proj.name,
        "s2sim_pre_idx": np.asarray(proj.pre_idx, np.int64),
        "s2sim_post_idx": np.asarray(proj.post_idx, np.int64),
        "s2sim_weights": np.asarray(proj.weights, np.float64),
        "s2sim_delays": np.asarray(proj.delays, np.int64),
    }
    if bias is None:
        return nir.Linear(weight=dense, metadata=md)
    return nir.Affine(weight=dense, bias=bias, metadata=md)


def _conv_nodes(
    nir: Any, proj: snn.Conv2DProjection, name: str, bias: np.ndarray | None, nodes: dict, taken: set[str]
) -> list[tuple[str, str]]:
    p = proj.conv_params
    if p["pad_top"] != p["pad_bottom"] or p["pad_left"] != p["pad_right"]:
        raise ConversionError(
            f"conv projection {proj.name!r}: asymmetric padding (top {p['pad_top']}, bottom "
            f"{p['pad_bottom']}, left {p['pad_left']}, right {p['pad_right']}) cannot be written "
            "to NIR, whose Conv2d pads both sides equally"
        )
    _c_in, c_out = proj.weights.shape[:2]
    md: dict[str, Any] = {"s2sim_name": proj.name, "s2sim_weights": np.asarray(proj.weights, np.float64)}
    md.update({f"s2sim_conv_{k}": int(v) for k, v in p.items()})
    nodes[name] = nir.Conv2d(
        input_shape=np.array(proj.pooled_shape[1:]),
        weight=np.asarray(proj.weights, np.float64).swapaxes(0, 1).copy(),
        stride=np.array([p["stride_y"], p["stride_x"]]),
        padding=np.array([p["pad_top"], p["pad_left"]]),
        dilation=np.array([1, 1]),
        groups=1,
        bias=np.zeros(c_out) if bias is None else bias,
        metadata=md,
    )
    if p["pool_x"] == 1 and p["pool_y"] == 1:
        return [(proj.pre.name, name), (name, proj.post.name)]
    pool = _unique(f"{name}_pool", taken)
    kernel = np.array([p["pool_y"], p["pool_x"]])
    nodes[pool] = nir.SumPool2d(kernel_size=kernel, stride=kernel.copy(), padding=np.array([0, 0]))
    return [(proj.pre.name, pool), (pool, name), (name, proj.post.name)]
