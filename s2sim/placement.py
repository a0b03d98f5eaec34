"""Placement: splitting populations into slices that fit SpiNNaker2 processing elements, and the resource report.

A PE holds at most ``max_atoms_per_core`` neurons, a synapse word addresses at most ``max_targets_per_core``
targets on its PE, and neuron state, ring buffers, synapse rows and conv kernels share the PE's 128 KB of SRAM
with the application's code and stack. The byte counts come from :class:`MemoryModel`, which is s2sim's own
model of a PE's memory (inferred from the data each model needs, not read from the chip's code); docs/placement.md
writes it down.

    placement = place(net)                      # ChipProfile() limits, default MemoryModel
    print(placement.format())                   # PEs, quad-PEs, chips, SRAM per PE
    print(activity_report(placement, result).format())   # spikes and packets per PE per tick
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from .errors import ConfigError, LimitError
from .models import KIND_CURR_EXP
from .profile import ChipProfile
from .results import BatchResult
from .snn import Conv2DProjection, Network, Population, Projection

#: Processing elements per quad-PE and per chip (38 quad-PEs).
PES_PER_QUAD_PE = 4
PES_PER_CHIP = 152

#: Why a slice holds the number of neurons it holds.
LIMIT_ATOMS = "max_atoms_per_core"
LIMIT_TARGETS = "max_targets_per_core"
LIMIT_SRAM = "sram"
LIMIT_SIZE = "population_size"


@dataclass(frozen=True)
class MemoryModel:
    """Bytes a PE needs for each thing it holds (s2sim's model; inferred, not read from the chip's code).

    Attributes
    ----------
    sram_bytes : int
        Local SRAM of one PE (128 KB).
    reserved_bytes : int
        Taken off the top for application code, stack, globals and recording/control headers.
    word_bytes : int
        One neuron state variable or parameter (float32 / int32), one ring-buffer accumulator (uint32) or one
        synapse word.
    row_header_bytes : int
        Per synapse row: one row per (incoming projection, source neuron) with at least one synapse on this PE.
    table_entry_bytes : int
        Per incoming projection with synapses on this PE: the entry that maps a packet's key to its rows.
    conv_header_bytes : int
        Per incoming Conv2DProjection: shapes, strides, pooling and padding.
    spike_list_neuron_bytes : int
        Per spike_list neuron: count and offset of its spike ticks.
    spike_tick_bytes : int
        Per listed spike tick of a spike_list neuron.
    """

    sram_bytes: int = 128 * 1024
    reserved_bytes: int = 24 * 1024
    word_bytes: int = 4
    row_header_bytes: int = 8
    table_entry_bytes: int = 12
    conv_header_bytes: int = 32
    spike_list_neuron_bytes: int = 8
    spike_tick_bytes: int = 4

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"MemoryModel.{f.name} must be a non-negative int, got {value!r}")
        if self.reserved_bytes >= self.sram_bytes:
            raise ConfigError(f"MemoryModel.reserved_bytes = {self.reserved_bytes} leaves nothing of "
                              f"sram_bytes = {self.sram_bytes} for data")

    @property
    def data_bytes(self) -> int:
        """SRAM left for neuron state, ring buffers, synapses and kernels."""
        return self.sram_bytes - self.reserved_bytes

    def state_words(self, pop: Population) -> int:
        """State variables plus parameters kept per neuron (0 for a spike_list source)."""
        if pop.model.is_input:
            return 0
        # V for every neuron model; curr_exp adds I_exc, I_inh and the refractory counter.
        state = 4 if pop.model.kind == KIND_CURR_EXP else 1
        return state + len(pop.model.defaults)

    def ring_bytes(self, pop: Population) -> int:
        """Ring buffer per neuron: one uint32 per slot and per exc/inh plane."""
        if pop.model.is_input:
            return 0
        return pop.model.ring_slots * 2 * self.word_bytes


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes of one PE's SRAM by use."""

    reserved: int = 0
    neuron_state: int = 0
    ring_buffer: int = 0
    synapse_rows: int = 0
    conv_kernels: int = 0
    spike_list: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}

    def describe(self) -> str:
        parts = [f"{f.name.replace('_', ' ')} {getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name)]
        return ", ".join(parts)


@dataclass(frozen=True)
class Slice:
    """Neurons ``start .. stop-1`` of one population on one PE.

    ``pe`` is a global PE index: chip ``pe // 152``, quad-PE ``(pe % 152) // 4`` on that chip, core ``pe % 4``.
    ``limited_by`` says which limit set the slice's size (see the LIMIT_* constants).
    """

    population: str
    pe: int
    start: int
    stop: int
    memory: MemoryBreakdown
    synapses: int
    limited_by: str

    @property
    def neurons(self) -> int:
        return self.stop - self.start

    @property
    def chip(self) -> int:
        return self.pe // PES_PER_CHIP

    @property
    def quad_pe(self) -> int:
        return (self.pe % PES_PER_CHIP) // PES_PER_QUAD_PE

    @property
    def core(self) -> int:
        return self.pe % PES_PER_QUAD_PE

    def to_dict(self) -> dict[str, Any]:
        return {"population": self.population, "pe": self.pe, "chip": self.chip, "quad_pe": self.quad_pe,
                "core": self.core, "start": self.start, "stop": self.stop, "neurons": self.neurons,
                "synapses": self.synapses, "limited_by": self.limited_by, "memory": self.memory.to_dict()}


@dataclass(frozen=True)
class PopulationPlacement:
    """How one population was split: its per-PE cap, which limit set it, and its traffic per neuron.

    ``packets_per_spike[i]`` is the number of multicast packets a spike of neuron ``i`` sends (one per target
    population it has synapses to); ``fan_in[i]`` counts the synapses (connection-list words and conv taps)
    arriving at neuron ``i``. Both feed :func:`activity_report`.
    """

    name: str
    model: str
    size: int
    max_neurons_per_pe: int
    cap_limited_by: str
    first_pe: int
    n_pes: int
    synapses: int
    packets_per_spike: np.ndarray = field(repr=False, compare=False)
    fan_in: np.ndarray = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "size": self.size,
                "max_neurons_per_pe": self.max_neurons_per_pe, "cap_limited_by": self.cap_limited_by,
                "first_pe": self.first_pe, "pes": self.n_pes, "synapses": self.synapses,
                "fan_in_max": int(self.fan_in.max()) if self.size else 0}


@dataclass(frozen=True)
class Placement:
    """Every population split into PE-sized slices; the resource report of a network.

    Attributes
    ----------
    slices : list of Slice
        One per PE, PEs numbered 0, 1, ... in network order.
    populations : dict
        Population name -> PopulationPlacement.
    memory_model : MemoryModel
    profile : ChipProfile
    """

    slices: list[Slice]
    populations: dict[str, PopulationPlacement]
    memory_model: MemoryModel = field(default_factory=MemoryModel)
    profile: ChipProfile = field(default_factory=ChipProfile)

    @property
    def n_pes(self) -> int:
        return len(self.slices)

    @property
    def n_quad_pes(self) -> int:
        return len({(s.chip, s.quad_pe) for s in self.slices})

    @property
    def n_chips(self) -> int:
        return max(1, math.ceil(self.n_pes / PES_PER_CHIP))

    @property
    def fits_one_chip(self) -> bool:
        return self.n_pes <= PES_PER_CHIP

    @property
    def synapses(self) -> int:
        return sum(s.synapses for s in self.slices)

    @property
    def neurons(self) -> int:
        return sum(s.neurons for s in self.slices)

    @property
    def memory_max(self) -> int:
        return max((s.memory.total for s in self.slices), default=0)

    @property
    def memory_mean(self) -> float:
        return float(np.mean([s.memory.total for s in self.slices])) if self.slices else 0.0

    def slices_of(self, population: str) -> list[Slice]:
        """The slices of one population, in neuron order."""
        if population not in self.populations:
            raise ConfigError(f"placement: no population named {population!r}; have {list(self.populations)}")
        return [s for s in self.slices if s.population == population]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict form (JSON-ready)."""
        return {
            "pes": self.n_pes, "quad_pes": self.n_quad_pes, "chips": self.n_chips,
            "fits_one_chip": self.fits_one_chip, "pes_per_chip": PES_PER_CHIP,
            "neurons": self.neurons, "synapses": self.synapses,
            "sram_bytes_per_pe": {"max": self.memory_max, "mean": self.memory_mean,
                                  "capacity": self.memory_model.sram_bytes},
            "memory_model": asdict(self.memory_model),
            "populations": [p.to_dict() for p in self.populations.values()],
            "slices": [s.to_dict() for s in self.slices],
        }

    def format(self) -> str:
        """The resource report as text."""
        mm = self.memory_model
        header = f"{'population':<20} {'model':<22} {'neurons':>8} {'PEs':>5} {'max/PE':>7} " \
                 f"{'limited by':<21} {'synapses':>10} {'max SRAM/PE':>12}"
        lines = ["Resource report (s2sim memory model, inferred; see docs/placement.md)", header,
                 "-" * len(header)]
        for pop in self.populations.values():
            own = self.slices_of(pop.name)
            mem = max(s.memory.total for s in own)
            widest = max(s.neurons for s in own)
            lines.append(f"{pop.name:<20} {pop.model:<22} {pop.size:>8} {pop.n_pes:>5} {widest:>7} "
                         f"{_limit_text(self, pop):<21} {pop.synapses:>10} {_kb(mem):>12}")
        lines.append("-" * len(header))
        lines.append(f"PEs used: {self.n_pes} in {self.n_quad_pes} quad-PE(s) "
                     f"({PES_PER_QUAD_PE} PEs each); neurons {self.neurons}, synapse words {self.synapses}")
        lines.append(f"SRAM per PE (including {_kb(mm.reserved_bytes)} reserved for code and stack): max "
                     f"{_kb(self.memory_max)}, mean {_kb(self.memory_mean)} of {_kb(mm.sram_bytes)}")
        if self.fits_one_chip:
            lines.append(f"Fits one chip: {self.n_pes} of {PES_PER_CHIP} PEs.")
        else:
            lines.append(f"Does not fit one chip: {self.n_pes} PEs need {self.n_chips} chips "
                         f"({PES_PER_CHIP} PEs each).")
        return "\n".join(lines)


def _limit_text(placement: Placement, pop: PopulationPlacement) -> str:
    reasons = {s.limited_by for s in placement.slices_of(pop.name)}
    if LIMIT_SRAM in reasons:
        return LIMIT_SRAM
    return pop.cap_limited_by


def _kb(nbytes: float) -> str:
    return f"{nbytes / 1024:.1f} KB"


# -- connectivity views ------------------------------------------------------------------------------------------

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


# -- placement ---------------------------------------------------------------------------------------------------

def _cap(pop: Population, has_synapse_words: bool, profile: ChipProfile) -> tuple[int, str]:
    atoms = pop.max_atoms_per_core or profile.max_atoms_per_core
    if has_synapse_words and profile.max_targets_per_core < atoms:
        return profile.max_targets_per_core, LIMIT_TARGETS
    return atoms, LIMIT_ATOMS


def _split(load: _Load, first_pe: int, cap: int, cap_reason: str, mm: MemoryModel) -> list[Slice]:
    """Greedy contiguous slices: each takes the most neurons (up to ``cap``) whose SRAM fits one PE."""
    pop = load.pop
    out: list[Slice] = []
    start = 0
    while start < pop.size:
        stop = min(start + cap, pop.size)
        reason = cap_reason if stop - start == cap else LIMIT_SIZE
        memory, words = _slice_memory(load, start, stop, mm)
        if memory.total > mm.sram_bytes:
            stop, memory, words = _largest_fitting(load, start, stop, mm)
            reason = LIMIT_SRAM
        out.append(Slice(pop.name, first_pe + len(out), start, stop, memory, words, reason))
        start = stop
    return out


def _largest_fitting(load: _Load, start: int, stop: int, mm: MemoryModel) -> tuple[int, MemoryBreakdown, int]:
    """Binary search for the largest ``stop`` whose slice fits (SRAM grows with every neuron added)."""
    pop = load.pop
    memory, words = _slice_memory(load, start, start + 1, mm)
    if memory.total > mm.sram_bytes:
        raise LimitError(
            f"population {pop.name!r}: neuron {start} alone needs {memory.total} bytes of PE SRAM "
            f"({memory.describe()}; {words} synapse words), more than the {mm.sram_bytes} bytes of one PE "
            f"({mm.data_bytes} for data after {mm.reserved_bytes} reserved); reduce its fan-in or split it "
            "over several neurons")
    good, bad = start + 1, stop
    best = (memory, words)
    while bad - good > 1:
        mid = (good + bad) // 2
        mem_mid, words_mid = _slice_memory(load, start, mid, mm)
        if mem_mid.total <= mm.sram_bytes:
            good, best = mid, (mem_mid, words_mid)
        else:
            bad = mid
    return good, best[0], best[1]


def place(net: Network, profile: ChipProfile | None = None, memory: MemoryModel | None = None) -> Placement:
    """Split every population of ``net`` into PE-sized slices under the chip's limits.

    Parameters
    ----------
    net : Network
    profile : ChipProfile, optional
        Supplies ``max_atoms_per_core`` (unless a population sets its own) and ``max_targets_per_core``
        (binding for populations that receive connection-list synapses).
    memory : MemoryModel, optional
        Byte counts of the SRAM model (default :class:`MemoryModel`).

    Returns
    -------
    Placement
        Slices are contiguous neuron ranges, PEs numbered in network order; a slice is made smaller than the
        per-PE cap when its SRAM would not fit.

    Raises
    ------
    LimitError
        When a single neuron does not fit one PE (naming the population, the bytes needed and the limit).
    """
    profile = profile or ChipProfile()
    mm = memory or MemoryModel()
    net.validated()     # edits since construction are checked before anything is placed
    slices: list[Slice] = []
    pops: dict[str, PopulationPlacement] = {}
    fanout = packet_targets(net, profile.conv_x_axis)
    for pop in net.populations:
        load = _Load.of(net, pop)
        cap, reason = _cap(pop, bool(load.lists), profile)
        own = _split(load, len(slices), cap, reason, mm)
        slices.extend(own)
        pops[pop.name] = PopulationPlacement(pop.name, pop.neuron_model, pop.size, cap, reason, own[0].pe, len(own),
                                             sum(s.synapses for s in own), fanout[pop.name],
                                             _fan_in(net, pop, profile.conv_x_axis))
    return Placement(slices, pops, mm, profile)


# -- activity ----------------------------------------------------------------------------------------------------

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


@dataclass(frozen=True)
class ActivityReport:
    """Traffic per PE and tick, averaged over the samples of a run.

    Attributes
    ----------
    pes : np.ndarray
        int [n_pes], the PE of each row (same order as ``placement.slices``).
    populations : list of str
        Population of each row.
    spikes : np.ndarray
        float64 [n_pes, T]: spikes the PE's neurons emitted per tick (mean over samples).
    packets : np.ndarray
        float64 [n_pes, T]: multicast packets the PE sent per tick (a spike is one packet per target population
        its neuron projects to).
    synaptic_events : np.ndarray
        float64 [n_pes, T]: synaptic events the PE processed per tick, the population's count divided over its
        slices in proportion to their fan-in (an estimate).
    exact : np.ndarray
        bool [n_pes]: spikes and packets come from recorded per-neuron spikes (True) or from the population's
        count divided over slices in proportion to their size (False).
    batch : int
        Samples averaged.
    """

    pes: np.ndarray
    populations: list[str]
    spikes: np.ndarray
    packets: np.ndarray
    synaptic_events: np.ndarray
    exact: np.ndarray
    batch: int

    @property
    def timesteps(self) -> int:
        return int(self.spikes.shape[1])

    def to_dict(self) -> dict[str, Any]:
        """Per-PE summaries (mean and peak per tick), JSON-ready."""
        return {
            "batch": self.batch, "timesteps": self.timesteps,
            "pes": [self._pe_summary(i) for i in range(len(self.pes))],
            "packets_per_tick": {"mean": float(self.packets.sum(axis=0).mean()) if self.timesteps else 0.0,
                                 "peak": float(self.packets.sum(axis=0).max()) if self.timesteps else 0.0},
        }

    def _pe_summary(self, i: int) -> dict[str, Any]:
        def stats(arr: np.ndarray) -> dict[str, float]:
            return {"mean": float(arr[i].mean()) if self.timesteps else 0.0,
                    "peak": float(arr[i].max()) if self.timesteps else 0.0}

        return {"pe": int(self.pes[i]), "population": self.populations[i], "exact": bool(self.exact[i]),
                "spikes_per_tick": stats(self.spikes), "packets_per_tick": stats(self.packets),
                "synaptic_events_per_tick": stats(self.synaptic_events)}

    def format(self, top: int = 10) -> str:
        """The busiest PEs (by peak packets per tick) and the chip-wide packet rate."""
        if not len(self.pes) or not self.timesteps:
            return "Activity: no PEs or no ticks recorded."
        total = self.packets.sum(axis=0)
        lines = [f"Activity per PE and tick (mean over {self.batch} sample(s), {self.timesteps} ticks)",
                 f"packets sent by all PEs per tick: mean {total.mean():.2f}, peak {total.max():.2f}",
                 f"{'PE':>5} {'population':<20} {'spikes/tick':>12} {'packets/tick':>13} {'peak pkts':>10} "
                 f"{'syn.events/tick':>16} {'source':>9}"]
        order = np.argsort(-self.packets.max(axis=1), kind="stable")[:top]
        for i in order:
            lines.append(f"{int(self.pes[i]):>5} {self.populations[i]:<20} {self.spikes[i].mean():>12.3f} "
                         f"{self.packets[i].mean():>13.3f} {self.packets[i].max():>10.2f} "
                         f"{self.synaptic_events[i].mean():>16.2f} {'exact' if self.exact[i] else 'prorated':>9}")
        if len(self.pes) > top:
            lines.append(f"... {len(self.pes) - top} more PE(s)")
        lines.append("synaptic events per PE are prorated by fan-in (estimate)")
        return "\n".join(lines)


def activity_report(placement: Placement, result: BatchResult) -> ActivityReport:
    """Spikes, packets and synaptic events per PE and tick from a run's recorded activity.

    Parameters
    ----------
    placement : Placement
        From :func:`place` on the same network.
    result : BatchResult
        Needs ``counts`` for every population (record "counts" on each); where ``spikes`` of a population
        were recorded, its per-slice counts are exact, otherwise the population count is divided over its slices
        in proportion to their size.
    """
    rows_spikes, rows_packets, rows_events, exact = [], [], [], []
    timesteps = result.timesteps
    batch = result.batch
    for pop in placement.populations.values():
        slices = placement.slices_of(pop.name)
        if pop.name not in result.counts:
            raise ConfigError(f"activity report: the result has no counts for population {pop.name!r}; "
                              "record 'counts' on every population")
        counts = np.asarray(result.counts[pop.name], dtype=np.float64)
        if counts.shape != (batch, timesteps, 2):
            raise ConfigError(f"activity report: counts of population {pop.name!r} have shape {counts.shape}; "
                              f"expected ({batch}, {timesteps}, 2)")
        fan = pop.fan_in
        fan_total = fan.sum()
        recorded = result.spikes.get(pop.name)
        for s in slices:
            if recorded is not None:
                spk = recorded[:, :, s.start:s.stop].astype(np.float64)
                rows_spikes.append(spk.sum(axis=2).mean(axis=0))
                rows_packets.append((spk @ pop.packets_per_spike[s.start:s.stop].astype(np.float64)).mean(axis=0))
            else:
                share = s.neurons / pop.size
                spk_est = counts[:, :, 0].mean(axis=0) * share
                rows_spikes.append(spk_est)
                mean_fanout = pop.packets_per_spike[s.start:s.stop].mean()
                rows_packets.append(spk_est * mean_fanout)
            ev_share = fan[s.start:s.stop].sum() / fan_total if fan_total else 0.0
            rows_events.append(counts[:, :, 1].mean(axis=0) * ev_share)
            exact.append(recorded is not None)
    n = len(placement.slices)
    shape = (n, timesteps)

    def stack(rows: list[np.ndarray]) -> np.ndarray:
        return np.stack(rows) if rows else np.zeros(shape)

    return ActivityReport(pes=np.array([s.pe for s in placement.slices], dtype=np.int64),
                          populations=[s.population for s in placement.slices], spikes=stack(rows_spikes),
                          packets=stack(rows_packets), synaptic_events=stack(rows_events),
                          exact=np.array(exact, dtype=bool), batch=batch)
