"""Explaining a divergence: the inputs the diverging neuron received, from the traces or from a re-run."""
from __future__ import annotations

import numpy as np

from ..network_io import network_from_dict, network_to_dict
from ..profile import ChipProfile
from ..snn import Conv2DProjection
from ..traces import Trace
from .agreement import Divergence, NeuronInputs
from .alignment import _ticks, population_depths
from .formatting import profile_label
from .reference import simulate


def _explain(div: Divergence, expected: Trace, observed: Trace, notes: list[str]) -> NeuronInputs | None:
    """The diverging neuron's synaptic input at that tick, from pre spikes in expected (or a re-run of it)."""
    from ..list_rows import round_weights

    net = expected.network
    post = net.population(div.population)
    if post.model.is_input:
        return None
    profile = expected.profile or ChipProfile()
    incoming = [p for p in net.projections if p.post is post]
    spikes, origin = _pre_spikes(expected, {p.pre.name for p in incoming}, profile, notes)
    rows = []
    settings = profile.model_settings(post.neuron_model)
    for proj in incoming:
        is_conv = isinstance(proj, Conv2DProjection)
        rounding = settings.conv_weight_rounding if is_conv else settings.weight_rounding
        w = round_weights(proj.weights, rounding, proj.name)
        summed = _conv_input if is_conv else _list_input
        exc, inh, n = summed(proj, w, spikes[proj.pre.name], div.tick, div.neuron, profile)
        rows.append((proj.name, proj.pre.name, exc, inh, n))
    post_params = post.validated().params
    params = {k: float(np.float32(v[div.neuron])) for k, v in post_params.items() if k != "t_refrac"}
    if "t_refrac" in post_params:
        params["t_refrac"] = float(post_params["t_refrac"][div.neuron])
    return NeuronInputs(div.tick, sum(r[2] for r in rows), sum(r[3] for r in rows), rows, params,
                        _v_at(expected, post.name, div.neuron, div.tick - 1),
                        _v_at(observed, post.name, div.neuron, div.tick - 1), origin)


def _pre_spikes(trace: Trace, names: set[str], profile: ChipProfile,
                notes: list[str]) -> tuple[dict[str, np.ndarray], str]:
    """Spikes of ``names`` in the chip frame, every tick from 0: from the trace when it has them all."""
    def from_trace(name: str) -> np.ndarray | None:
        if name in trace.inputs:
            return trace.inputs[name]
        if name in trace.spikes and trace.tick_offset == 0 and trace.latency_per_hop == 1:
            return trace.spikes[name]
        return None

    found = {n: from_trace(n) for n in names}
    if all(v is not None for v in found.values()):
        return found, "the expected trace"
    data = network_to_dict(trace.network)
    for pop in data["populations"]:
        if pop["name"] in names and "spikes" not in pop["record"]:
            pop["record"].append("spikes")
    rerun = simulate(network_from_dict(data), trace.timesteps, profile, trace.inputs)
    notes.append("pre-synaptic spikes for the divergence report come from a re-run of the expected network under "
                 f"{profile_label(profile)}")
    return {n: rerun.inputs.get(n, rerun.spikes.get(n)) for n in names}, f"a re-run under {profile_label(profile)}"


def _list_input(proj, weights: np.ndarray, pre: np.ndarray, tick: int, neuron: int,
                profile: ChipProfile) -> tuple[int, int, int]:
    sel = np.flatnonzero(proj.post_idx == neuron)
    ticks = tick - 1 - proj.delays[sel]
    ok = ticks >= 0
    fired = np.zeros(sel.size, dtype=bool)
    fired[ok] = pre[ticks[ok], proj.pre_idx[sel][ok]] == 1
    w = weights[sel][fired]
    return int(w[w > 0].sum()), int(-w[w < 0].sum()), int(fired.sum())


def _conv_input(proj: Conv2DProjection, weights: np.ndarray, pre: np.ndarray, tick: int,
                neuron: int, profile: ChipProfile) -> tuple[int, int, int]:
    if tick < 1:
        return 0, 0, 0
    geometry = proj.geometry(profile.conv_x_axis)   # the chip's reading of the x/y parameters
    c_in, h, w_in = geometry.in_shape
    p = geometry.params
    _, ph, pw = geometry.pooled_shape
    pooled = pre[tick - 1].reshape(c_in, ph, p["pool_y"], pw, p["pool_x"]).sum(axis=(2, 4)).astype(np.int64)
    _, oh, ow = geometry.out_shape
    co, rest = divmod(neuron, oh * ow)
    oy, ox = divmod(rest, ow)
    exc = inh = events = 0
    for ky in range(weights.shape[2]):
        for kx in range(weights.shape[3]):
            y = oy * p["stride_y"] - p["pad_top"] + ky
            x = ox * p["stride_x"] - p["pad_left"] + kx
            if 0 <= y < ph and 0 <= x < pw:
                contrib = weights[:, co, ky, kx].astype(np.int64) * pooled[:, y, x]
                exc += int(contrib[contrib > 0].sum())
                inh += int(-contrib[contrib < 0].sum())
                events += int(pooled[:, y, x].sum())
    return exc, inh, events


def _v_at(trace: Trace, name: str, neuron: int, tick: int) -> float | None:
    if name not in trace.voltages:
        return None
    depth = population_depths(trace.network)[name]
    row = tick - _ticks(trace, depth)[0]
    return float(trace.voltages[name][row, neuron]) if 0 <= row < trace.rows else None
