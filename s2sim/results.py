"""BatchResult: what one run of a network returns, from the C core, the numpy oracle or a board.

Arrays are in each population's own (external, py-spinnaker2) neuron order: flat index ``c*H*W + h*W + w``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class BatchResult:
    """Recorded output of a batched run.

    Attributes
    ----------
    timesteps : int
        Ticks simulated (tick 0 is the first).
    spikes : dict[str, np.ndarray]
        Population name -> uint8 [batch, timesteps, size], 1 where the neuron spiked.
    voltages : dict[str, np.ndarray]
        Population name -> [batch, timesteps, size] membrane after reset (float32; float64 when the profile's
        state_precision is float64).
    v_last : dict[str, np.ndarray]
        Population name -> [batch, size], the membrane after the last tick.
    counts : dict[str, np.ndarray]
        Population name -> int64 [batch, timesteps, 2]: spikes emitted and synaptic events received per tick.
    """

    timesteps: int
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    voltages: dict[str, np.ndarray] = field(default_factory=dict)
    v_last: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    #: The PE time and energy estimate of the run (s2sim.timing.TimingReport), when it was asked for.
    timing: Any = None

    @property
    def batch(self) -> int:
        """Number of samples in the result (0 when nothing was recorded)."""
        for group in (self.spikes, self.voltages, self.v_last, self.counts):
            for arr in group.values():
                return int(arr.shape[0])
        return 0

    def spike_dict(self, name: str, sample: int = 0) -> dict[int, list[int]]:
        """py-spinnaker2's spike format for one sample: neuron -> list of ticks (every neuron present)."""
        arr = self.spikes[name][sample]
        ticks, neurons = np.nonzero(arr)
        out: dict[int, list[int]] = {i: [] for i in range(arr.shape[1])}
        for t, i in zip(ticks.tolist(), neurons.tolist(), strict=True):
            out[i].append(t)
        return out

    def voltage_dict(self, name: str, sample: int = 0) -> dict[int, np.ndarray]:
        """py-spinnaker2's voltage format for one sample: neuron -> array, one value per tick."""
        arr = self.voltages[name][sample]
        return {i: arr[:, i].copy() for i in range(arr.shape[1])}
