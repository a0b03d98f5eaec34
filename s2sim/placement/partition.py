"""The placement algorithm: :func:`place` splits every population into the largest slices that fit a PE."""
from __future__ import annotations

from ..errors import LimitError
from ..profile import ChipProfile
from ..snn import Network, Population
from .connectivity import _fan_in, _Load, _slice_memory, packet_targets
from .pe_memory import MemoryBreakdown, MemoryModel
from .slices import LIMIT_ATOMS, LIMIT_SIZE, LIMIT_SRAM, LIMIT_TARGETS, Placement, PopulationPlacement, Slice


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
