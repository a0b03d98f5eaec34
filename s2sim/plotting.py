"""Spike rasters and voltage traces of a recorded run, drawn to PNG for a paper.

Reads the NIR data files ``s2sim run`` writes (``nir.write_data``: per node, ``spikes`` and ``v`` as
TimeGriddedData, and the voltage scale and threshold per population in the file's attributes). Time runs in ms
(ticks times the recording's dt), voltages are in chip units with NIR units on a second axis where the scale is
known, thresholds are drawn, output neurons carry class names when given, legends sit outside the data, and
files are written at :data:`DPI` dots per inch.

Every figure is a :class:`matplotlib.figure.Figure` on its own Agg canvas: nothing here touches pyplot's state
or switches the user's matplotlib backend, and matplotlib is imported only when something is drawn.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import memory
from .errors import ConfigError, TraceError

#: Resolution of every PNG this module writes.
DPI = 200


@dataclass(frozen=True)
class NodeRecording:
    """What one population recorded: spikes and voltages [samples, ticks, neurons], either may be None.

    Attributes
    ----------
    dt : float
        Seconds per tick.
    voltage_scale : float, optional
        S of the conversion (V_NIR = V_chip / S), when one number holds for the whole population.
    threshold : float, optional
        Firing threshold in chip units, when one number holds for the whole population.
    class_names : sequence of str, optional
        Names of the neurons (e.g. the classes of an output layer), drawn as the raster's neuron labels.
    """

    name: str
    spikes: np.ndarray | None
    voltages: np.ndarray | None
    dt: float
    voltage_scale: float | None = None
    threshold: float | None = None
    class_names: Sequence[str] | None = None


def load_recording(path: str) -> dict[str, NodeRecording]:
    """Read a NIR data file into NodeRecording per node (TimeGriddedData ``spikes`` and ``v`` observables)."""
    import h5py
    import nir

    if not os.path.isfile(path):
        raise TraceError(f"recording file {path!r} does not exist")
    try:
        with h5py.File(path, "r") as f:
            kind = f.attrs.get("__type__")
            attrs = {k: f.attrs.get(f"s2sim_{k}") for k in ("node_order", "voltage_scale", "threshold")}
            declared = memory.hdf5_bytes(f)
    except Exception as exc:  # OSError, RuntimeError, ...: whatever a damaged file makes h5py raise
        raise TraceError(f"recording file {path!r} is not a readable HDF5 file: {exc}") from None
    if kind != "NIRGraphData":
        raise TraceError(f"recording file {path!r} is not NIR data (nir.write_data); root type is {kind!r}")
    memory.check(declared, f"reading recording file {path!r} (the arrays it declares)")
    try:
        data = nir.read_data(path)
    except Exception as exc:  # nir and h5py raise OSError, KeyError, ValueError, RuntimeError, ...
        raise TraceError(f"recording file {path!r} is damaged: {type(exc).__name__}: {exc}") from None
    scales, thresholds = _json_attr(attrs["voltage_scale"], {}), _json_attr(attrs["threshold"], {})
    out = {}
    for name, node in data.nodes.items():
        obs = getattr(node, "observables", None)
        if obs is None:
            continue
        spikes, volts = _gridded(obs.get("spikes"), path, name), _gridded(obs.get("v"), path, name)
        if spikes is None and volts is None:
            continue
        dt = next(o.dt for o in (obs.get("spikes"), obs.get("v")) if o is not None)
        out[name] = NodeRecording(name, spikes, volts, float(dt), _uniform(scales.get(name)),
                                  _uniform(thresholds.get(name)))
    if not out:
        raise TraceError(f"recording file {path!r} holds no 'spikes' or 'v' observables")
    return _in_order(out, _json_attr(attrs["node_order"], []))


def _json_attr(text: Any, default: Any) -> Any:
    try:
        return json.loads(text) if text is not None else default
    except (TypeError, ValueError):
        return default


def _uniform(value: Any) -> float | None:
    """One number for the population, or None (unknown, or different per neuron)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
        return float(value)
    return None


def _in_order(recs: dict[str, NodeRecording], names: list) -> dict[str, NodeRecording]:
    """Populations in network order when the writer stored it (HDF5 lists groups alphabetically)."""
    first = [n for n in names if n in recs]
    return {n: recs[n] for n in first + [n for n in recs if n not in first]}


def _gridded(obs: Any, path: str, node: str) -> np.ndarray | None:
    import nir

    if obs is None:
        return None
    if not isinstance(obs, nir.TimeGriddedData):
        raise TraceError(f"recording file {path!r}: node {node!r} holds {type(obs).__name__}; expected "
                         "TimeGriddedData")
    return obs.data


def draw_raster(ax: Any, spikes: np.ndarray, title: str, dt: float,
                class_names: Sequence[str] | None = None) -> None:
    """Spike raster of one sample: spikes [ticks, neurons] as marks at (time in ms, neuron)."""
    from matplotlib.ticker import MaxNLocator

    ms = dt * 1e3
    ticks, neurons = np.nonzero(spikes)
    # Marker height follows the row height so small populations do not get specks.
    size = float(np.clip(3000.0 / max(spikes.shape[1], 1), 4.0, 80.0))
    ax.scatter(ticks * ms, neurons, s=size, marker="|", color="black", linewidths=0.9)
    ax.set_xlim(-0.5 * ms, (spikes.shape[0] - 0.5) * ms)
    ax.set_ylim(-0.5, spikes.shape[1] - 0.5)
    if class_names is not None and len(class_names) == spikes.shape[1]:
        ax.set_yticks(np.arange(spikes.shape[1]), list(class_names), fontsize=max(5, min(8, 160 // spikes.shape[1])))
        ax.set_ylabel("class")
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("neuron")
    ax.set_title(f"{title}: spikes ({int(spikes.sum())})", fontsize=9)


def draw_voltages(ax: Any, voltages: np.ndarray, neurons: np.ndarray, title: str, dt: float,
                  threshold: float | None = None, voltage_scale: float | None = None,
                  class_names: Sequence[str] | None = None) -> None:
    """Draw the voltage traces of one sample, voltages [ticks, neurons], one line per neuron in ``neurons``.

    In chip units (NIR units on a right-hand axis when ``voltage_scale`` is known), the threshold dashed.
    """
    times = np.arange(voltages.shape[0]) * dt * 1e3
    named = class_names is not None and len(class_names) == voltages.shape[1]
    for i in neurons:
        ax.plot(times, voltages[:, i], linewidth=0.8, label=class_names[i] if named else f"neuron {int(i)}")
    if threshold is not None:
        ax.axhline(threshold, color="red", linestyle="--", linewidth=0.8, label=f"threshold {threshold:g}")
    ax.set_xlim(0, max(times[-1], dt * 1e3) if times.size else 1)
    ax.set_ylabel("V (chip units)")
    if voltage_scale:
        ax.secondary_yaxis("right", functions=(lambda v: v / voltage_scale, lambda v: v * voltage_scale)) \
            .set_ylabel(f"V (NIR units, chip / {voltage_scale:.4g})")
    ax.set_title(f"{title}: membrane", fontsize=9)
    if len(neurons) <= 12:
        # outside the axes (right of the NIR axis), so no trace is hidden behind it
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.12 if voltage_scale else 1.01, 1.0),
                  borderaxespad=0.0)


def pick_neurons(rec: NodeRecording, sample: int, count: int) -> np.ndarray:
    """The ``count`` neurons to draw: the most active ones (by spikes, then by voltage range), in index order."""
    size = (rec.voltages if rec.voltages is not None else rec.spikes).shape[2]
    score = np.zeros(size)
    if rec.spikes is not None:
        score += rec.spikes[sample].sum(axis=0) * 1e6
    if rec.voltages is not None:
        v = rec.voltages[sample].astype(np.float64)
        score += np.ptp(v, axis=0)
    return np.sort(np.argsort(-score, kind="stable")[:count])


def new_figure(width: float, height: float) -> Any:
    """Make a Figure on its own Agg canvas: drawn and saved without pyplot or a backend switch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, out: str, what: str) -> str:
    """Write ``fig`` as PNG at :data:`DPI`; an unwritable path is a TraceError naming ``what`` and the path."""
    try:
        fig.savefig(out, dpi=DPI)
    except OSError as exc:
        raise TraceError(f"{what} {out!r} cannot be written: {exc}") from None
    return out


def plot_recording(recording: Mapping[str, NodeRecording], out: str, sample: int = 0, max_neurons: int = 5,
                   nodes: list[str] | None = None) -> str:
    """Draw one row per population (raster left, voltages right) for one sample and save it as PNG.

    Returns the path written.
    """
    names = list(nodes) if nodes else list(recording)
    unknown = [n for n in names if n not in recording]
    if unknown:
        raise ConfigError(f"plot: node(s) {unknown} not in the recording; have {list(recording)}")
    for name in names:
        batch = _batch(recording[name])
        if not 0 <= sample < batch:
            raise ConfigError(f"plot: sample {sample} out of range; node {name!r} has {batch} sample(s)")
    if max_neurons < 1:
        raise ConfigError(f"plot: max_neurons must be at least 1, got {max_neurons}")
    fig = new_figure(13, 2.4 * len(names) + 0.6)
    axes = fig.subplots(len(names), 2, squeeze=False)
    for row, name in zip(axes, names):
        rec = recording[name]
        if rec.spikes is not None:
            draw_raster(row[0], rec.spikes[sample], name, rec.dt, rec.class_names)
        else:
            _empty(row[0], f"{name}: no spikes recorded")
        if rec.voltages is not None:
            draw_voltages(row[1], rec.voltages[sample], pick_neurons(rec, sample, max_neurons), name, rec.dt,
                          rec.threshold, rec.voltage_scale, rec.class_names)
        else:
            _empty(row[1], f"{name}: no membrane recorded")
    for ax in axes[-1]:
        ax.set_xlabel("time (ms)")
    fig.suptitle(f"sample {sample}", fontsize=10)
    return save_figure(fig, out, "plot file")


def _batch(rec: NodeRecording) -> int:
    return int((rec.spikes if rec.spikes is not None else rec.voltages).shape[0])


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_timing(report: Any, out: str, sample: int = 0) -> str:
    """Two panels of a PE time estimate (s2sim.timing.TimingReport), saved as PNG at :data:`DPI`: time_done per PE
    and tick as a heat map (deadline misses outlined), and time_done against the packets each PE received in the
    tick (the calibration plot py-spinnaker2 users draw by hand), with the deadline at 1.

    Draws on its own Figure (no pyplot state, the user's matplotlib backend untouched). Returns the path.
    """
    done, packets = report.time_done, report.load.packets_in
    if not 0 <= sample < done.shape[0]:
        raise ConfigError(f"timing plot: sample {sample} out of range; the report has {done.shape[0]} sample(s)")
    tick_ms = report.config.sys_tick_in_s * 1e3
    rows = [f"PE {pe} {pop}" for pe, pop in zip(report.load.pes, report.load.populations)]
    fig = new_figure(13, max(3.0, 0.22 * len(rows) + 1.6))
    heat, scatter = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    image = heat.imshow(done[sample], aspect="auto", interpolation="nearest", cmap="viridis",
                        extent=(-0.5 * tick_ms, (done.shape[2] - 0.5) * tick_ms, len(rows) - 0.5, -0.5))
    missed = done[sample] > 1.0
    if missed.any():
        heat.contour(np.arange(done.shape[2]) * tick_ms, np.arange(len(rows)), missed.astype(float), levels=[0.5],
                     colors="red", linewidths=0.8)
    heat.set_yticks(np.arange(len(rows)), rows, fontsize=max(4, min(8, 300 // max(len(rows), 1))))
    heat.set_xlabel("time (ms)")
    heat.set_title(f"time_done per PE (estimate; tick {tick_ms:g} ms; red: deadline missed)", fontsize=9)
    fig.colorbar(image, ax=heat, label="time_done (fraction of the tick)")
    for pop in dict.fromkeys(report.load.populations):
        sel = [i for i, p in enumerate(report.load.populations) if p == pop]
        scatter.scatter(packets[sample, sel].ravel(), done[sample, sel].ravel(), s=6, alpha=0.6, label=pop)
    scatter.axhline(1.0, color="red", linewidth=0.8, linestyle="--", label="deadline")
    scatter.set_xlabel("packets received in the tick")
    scatter.set_ylabel("time_done")
    scatter.set_title("time_done vs received packets, per PE and tick", fontsize=9)
    scatter.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return save_figure(fig, out, "timing plot")
