"""Placement: splitting populations into slices that fit SpiNNaker2 processing elements, and the resource report.

A PE holds at most ``max_atoms_per_core`` neurons, a synapse word addresses at most ``max_targets_per_core``
targets on its PE, and neuron state, ring buffers, synapse rows and conv kernels share the PE's 128 KB of SRAM
with the application's code and stack. The byte counts come from :class:`MemoryModel`, which is s2sim's own
model of a PE's memory (inferred from the data each model needs, not read from the chip's code); docs/placement.md
writes it down.

    placement = place(net)                      # ChipProfile() limits, default MemoryModel
    print(placement.format())                   # PEs, quad-PEs, chips, SRAM per PE
    print(activity_report(placement, result).format())   # spikes and packets per PE per tick

Split by concept: :mod:`.pe_memory` (the PE's SRAM model), :mod:`.connectivity` (what reaches each population),
:mod:`.partition` (:func:`place`), :mod:`.slices` (what a placement is, and its report), :mod:`.activity`
(spikes and packets per PE).
"""
from __future__ import annotations

from .activity import ActivityReport, activity_report
from .connectivity import packet_targets
from .partition import place
from .pe_memory import MemoryBreakdown, MemoryModel
from .slices import (
                     LIMIT_ATOMS,
                     LIMIT_SIZE,
                     LIMIT_SRAM,
                     LIMIT_TARGETS,
                     PES_PER_CHIP,
                     PES_PER_QUAD_PE,
                     Placement,
                     PopulationPlacement,
                     Slice,
)

__all__ = ["place", "Placement", "PopulationPlacement", "Slice", "MemoryModel", "MemoryBreakdown", "ActivityReport",
           "activity_report", "packet_targets", "PES_PER_QUAD_PE", "PES_PER_CHIP", "LIMIT_ATOMS", "LIMIT_TARGETS",
           "LIMIT_SRAM", "LIMIT_SIZE"]
