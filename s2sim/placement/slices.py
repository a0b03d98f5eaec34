"""What a placement is: slices of populations on PEs, per population and for the whole network.

:meth:`Placement.format` is the resource report.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..profile import ChipProfile
from .pe_memory import MemoryBreakdown, MemoryModel

#: Processing elements per quad-PE and per chip (38 quad-PEs).
PES_PER_QUAD_PE = 4


PES_PER_CHIP = 152


#: Why a slice holds the number of neurons it holds.
LIMIT_ATOMS = "max_atoms_per_core"


LIMIT_TARGETS = "max_targets_per_core"


LIMIT_SRAM = "sram"


LIMIT_SIZE = "population_size"


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
