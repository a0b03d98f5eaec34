"""Views of a network's connectivity that placement needs.

What reaches each population, the SRAM a slice of it would use, and the PEs a spike is sent to.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..snn import Conv2DProjection, Network, Population, Projection
from .pe_memory import MemoryBreakdown, MemoryModel


@dataclass
class _Incoming:
    """Connection-list synapses into one population, sorted by target neuron (for range queries)."""

    post: np.ndarray
    pre: np.ndarray
    n_pre: int

    @classmethod
    def of(cls, proj: Projection) -> "_Incoming":
        order = np.argsort(proj.post_idx, kind="stable")
        return cls(post=np.asarray(proj.post_idx)[order], pre=np.asarray(proj.pre_idx)[order], n_pre=proj.pre.size)

    def range(self, start: int, stop: int) -> tuple[int, int]:
        """Synapse words and distinct source rows with a target in ``start .. stop-1``."""
        lo, hi = np.searchsorted(self.post, [start, stop])
        if hi == lo:
            return 0, 0
        # A mask over source neurons counts distinct rows several times faster than np.unique here.
        seen = np.zeros(self.n_pre, dtype=bool)
        seen[self.pre[lo:hi]] = True
        return int(hi - lo), int(np.count_nonzero(seen))


@dataclass
class _Load:
    """What lands on the PEs of one population: its incoming synapses, conv kernels and spike ticks."""

    pop: Population
    lists: list[_Incoming]
    convs: list[Conv2DProjection]
    #: cumulative listed spike ticks of a spike_list source (ticks of neurons < i at index i)
    tick_cumsum: np.ndarray

    @classmethod
    def of(cls, net: Network, pop: Population) -> "_Load":
        lists = [_Incoming.of(p) for p in net.projections if isinstance(p, Projection) and p.post is pop]
        convs = [p for p in net.projections if isinstance(p, Conv2DProjection) and p.post is pop]
        ticks = np.zeros(pop.size + 1, dtype=np.int64)
        for i, listed in pop.spike_times.items():
            ticks[i + 1] = len(listed)
        return cls(pop, lists, convs, np.cumsum(ticks))


def _slice_memory(load: _Load, start: int, stop: int, mm: MemoryModel) -> tuple[MemoryBreakdown, int]:
    """SRAM of neurons ``start .. stop-1`` of one population on one PE, and the synapse words among it."""
    pop, n = load.pop, stop - start
    words = rows = tables = 0
    for inc in load.lists:
        w, r = inc.range(start, stop)
        words, rows, tables = words + w, rows + r, tables + (w > 0)
    kernels = 0
    for conv in load.convs:
        c_in, _, kh, kw = conv.weights.shape
        per_channel = conv.out_shape[1] * conv.out_shape[2]
        channels = (stop - 1) // per_channel - start // per_channel + 1
        kernels += c_in * channels * kh * kw + mm.conv_header_bytes
    spike_list = 0
    if pop.model.is_input:
        ticks = int(load.tick_cumsum[stop] - load.tick_cumsum[start])
        spike_list = n * mm.spike_list_neuron_bytes + ticks * mm.spike_tick_bytes
    memory = MemoryBreakdown(
        reserved=mm.reserved_bytes,
        neuron_state=n * mm.state_words(pop) * mm.word_bytes,
        ring_buffer=n * mm.ring_bytes(pop),
        synapse_rows=words * mm.word_bytes + rows * mm.row_header_bytes + tables * mm.table_entry_bytes,
        conv_kernels=kernels,
        spike_list=spike_list,
    )
    return memory, words


def _conv_reaches(conv: Conv2DProjection, x_axis: str) -> np.ndarray:
    """Bool per pre neuron: whether any kernel tap carries its spikes to an output neuron."""
    geometry = conv.geometry(x_axis)
    p = geometry.params
    _, _, kh, kw = conv.weights.shape
    c_in, h, w = geometry.in_shape
    _, oh, ow = geometry.out_shape

    def axis(size: int, pool: int, pad: int, k: int, stride: int, out: int) -> np.ndarray:
        pooled = np.arange(size) // pool
        shifted = pooled[:, None] + pad - np.arange(k)[None, :]
        ok = (shifted % stride == 0) & (shifted >= 0) & (shifted // stride < out)
        return ok.any(axis=1)

    ys = axis(h, p["pool_y"], p["pad_top"], kh, p["stride_y"], oh)
    xs = axis(w, p["pool_x"], p["pad_left"], kw, p["stride_x"], ow)
    return np.broadcast_to((ys[:, None] & xs[None, :])[None], (c_in, h, w)).reshape(-1)


def packet_targets(net: Network, conv_x_axis: str = "width") -> dict[str, np.ndarray]:
    """Per population, per neuron: multicast packets one spike sends (one per target population reached).

    ``conv_x_axis`` is the chip's reading of conv x/y parameters (ChipProfile.conv_x_axis)."""
    out = {pop.name: np.zeros(pop.size, dtype=np.int64) for pop in net.populations}
    for pop in net.populations:
        for target in {id(p.post): p.post for p in net.projections if p.pre is pop}.values():
            reaches = np.zeros(pop.size, dtype=bool)
            for proj in net.projections:
                if proj.pre is not pop or proj.post is not target:
                    continue
                if isinstance(proj, Projection):
                    reaches[np.asarray(proj.pre_idx)] = True
                else:
                    reaches |= _conv_reaches(proj, conv_x_axis)
            out[pop.name] += reaches
    return out


def _fan_in(net: Network, pop: Population, conv_x_axis: str) -> np.ndarray:
    """Synapses (connection-list words and conv taps) arriving at each neuron of ``pop``."""
    fan = np.zeros(pop.size, dtype=np.float64)
    for proj in net.projections:
        if proj.post is not pop:
            continue
        if isinstance(proj, Projection):
            fan += np.bincount(np.asarray(proj.post_idx), minlength=pop.size)
        else:
            fan += _conv_fan_in(proj, conv_x_axis)
    return fan


def _conv_fan_in(conv: Conv2DProjection, x_axis: str) -> np.ndarray:
    geometry = conv.geometry(x_axis)
    p = geometry.params
    c_in, _, kh, kw = conv.weights.shape
    _, ph, pw = geometry.pooled_shape
    c_out, oh, ow = geometry.out_shape

    def axis(out: int, stride: int, pad: int, k: int, size: int) -> np.ndarray:
        src = np.arange(out)[:, None] * stride - pad + np.arange(k)[None, :]
        return ((src >= 0) & (src < size)).sum(axis=1)

    taps = axis(oh, p["stride_y"], p["pad_top"], kh, ph)[:, None] * axis(ow, p["stride_x"], p["pad_left"], kw, pw)
    per_neuron = c_in * p["pool_y"] * p["pool_x"] * taps
    return np.broadcast_to(per_neuron[None], (c_out, oh, ow)).reshape(-1).astype(np.float64)
