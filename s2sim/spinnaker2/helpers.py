"""``spinnaker2.helpers``: converting recorded spike dicts for plotting and analysis."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError
from ..spec import as_index


def spike_times_dict_to_arrays(spike_times: Mapping[Any, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``{neuron: [tick, ...]}`` (``pop.get_spikes()`` or a spike_list's params) -> ``(indices, times)``, two flat
    int arrays of equal length, one entry per spike, neurons in key order (for a raster plot)."""
    if not isinstance(spike_times, Mapping):
        raise ConfigError(f"spike_times_dict_to_arrays: expected a dict neuron -> list of ticks, got "
                          f"{type(spike_times).__name__}")
    indices: list[int] = []
    times: list[int] = []
    for key, ticks in spike_times.items():
        idx = as_index(key, "spike_times_dict_to_arrays: neuron index")
        ticks = [as_index(t, f"spike_times_dict_to_arrays: tick of neuron {idx}") for t in np.ravel(ticks)]
        indices += [idx] * len(ticks)
        times += ticks
    return np.asarray(indices, dtype=np.int64), np.asarray(times, dtype=np.int64)


def spike_times_to_matrix(spike_times: Mapping[Any, Any], n_timesteps: int) -> np.ndarray:
    """``{neuron: [tick, ...]}`` -> uint8 matrix [n_neurons, n_timesteps] (n_neurons = largest index + 1), 1 where
    the neuron spiked. A tick at or beyond ``n_timesteps`` is an error, not dropped."""
    n_timesteps = as_index(n_timesteps, "spike_times_to_matrix: n_timesteps")
    indices, times = spike_times_dict_to_arrays(spike_times)
    n = int(max(spike_times.keys(), default=-1)) + 1 if spike_times else 0
    late = np.flatnonzero((times >= n_timesteps) | (times < 0))
    if late.size:
        raise ConfigError(f"spike_times_to_matrix: neuron {indices[late[0]]} spikes at tick {times[late[0]]}, "
                          f"outside 0..{n_timesteps - 1}")
    out = np.zeros((n, n_timesteps), dtype=np.uint8)
    out[indices, times] = 1
    return out
