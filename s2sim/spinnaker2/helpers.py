"""``spinnaker2.helpers``: converting recorded spike dicts for plotting and analysis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..spec import as_index


def spike_times_dict_to_arrays(spike_times: Mapping[Any, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Turn ``{neuron: [tick, ...]}`` into ``(indices, times)`` for a raster plot.

    The input is ``pop.get_spikes()`` or a spike_list's params; the output is two flat int arrays of equal length, one
    entry per spike, neurons in key order.
    """
    if not isinstance(spike_times, Mapping):
        raise ConfigError(
            f"spike_times_dict_to_arrays: expected a dict neuron -> list of ticks, got {type(spike_times).__name__}"
        )
    indices: list[int] = []
    times: list[int] = []
    for key, ticks in spike_times.items():
        idx = as_index(key, "spike_times_dict_to_arrays: neuron index")
        ticks = [as_index(t, f"spike_times_dict_to_arrays: tick of neuron {idx}") for t in np.ravel(ticks)]
        indices += [idx] * len(ticks)
        times += ticks
    return np.asarray(indices, dtype=np.int64), np.asarray(times, dtype=np.int64)


def spike_times_to_matrix(spike_times: Mapping[Any, Any], n_timesteps: int) -> np.ndarray:
    """Turn ``{neuron: [tick, ...]}`` into a uint8 matrix [n_neurons, n_timesteps], 1 where the neuron spiked.

    n_neurons is the largest index + 1. A tick at or beyond ``n_timesteps`` is an error, not dropped.
    """
    n_timesteps = as_index(n_timesteps, "spike_times_to_matrix: n_timesteps")
    indices, times = spike_times_dict_to_arrays(spike_times)
    n = int(max(spike_times.keys(), default=-1)) + 1 if spike_times else 0
    late = np.flatnonzero((times >= n_timesteps) | (times < 0))
    if late.size:
        raise ConfigError(
            f"spike_times_to_matrix: neuron {indices[late[0]]} spikes at tick {times[late[0]]}, "
            f"outside 0..{n_timesteps - 1}"
        )
    out = np.zeros((n, n_timesteps), dtype=np.uint8)
    out[indices, times] = 1
    return out


def plot_times_done_multiple_pes_one_plot_vertical(filepath: str, sys_tick_in_s: float | None = None) -> Any:
    """Plot a ``time_done`` file (npz with ``pes``: PE labels and ``times``: [n_pes, T] fractions of the tick).

    One row per PE, stacked vertically, with the deadline marked; in seconds when ``sys_tick_in_s`` is given.

    Uses pyplot, as the scripts that call it expect (they leave showing or saving to plt); returns the figure.
    """
    import matplotlib.pyplot as plt

    try:
        data = np.load(filepath, allow_pickle=False)
        pes, times = np.asarray(data["pes"]).astype(str), np.asarray(data["times"], dtype=np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(
            f"plot_times_done_multiple_pes_one_plot_vertical: {filepath!r} is not a time_done file "
            f"with arrays 'pes' and 'times' ({exc})"
        ) from None
    if times.ndim != 2 or times.shape[0] != pes.size:
        raise ConfigError(
            f"plot_times_done_multiple_pes_one_plot_vertical: {filepath!r}: 'times' has shape "
            f"{times.shape}, expected ({pes.size}, ticks)"
        )
    scale, unit = (sys_tick_in_s, "time done [s]") if sys_tick_in_s else (1.0, "time done [tick]")
    fig, axes = plt.subplots(pes.size, 1, sharex=True, squeeze=False, figsize=(8, 1.2 * pes.size + 1))
    for ax, pe, row in zip(axes[:, 0], pes, times, strict=True):
        ax.plot(np.arange(row.size), row * scale, linewidth=0.8)
        ax.axhline(scale, color="red", linewidth=0.6, linestyle="--")
        ax.set_ylabel(pe, fontsize=7)
    axes[-1, 0].set_xlabel("tick")
    fig.supylabel(unit)
    return fig
