"""s2sim's model of a PE's SRAM (:class:`MemoryModel`) and its sum per slice (:class:`MemoryBreakdown`).

The bytes each thing a PE holds needs are inferred from the data each model needs, not read from the chip's code.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import ConfigError
from ..models import KIND_CURR_EXP
from ..snn import Population


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
