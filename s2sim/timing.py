"""PE time, DVFS and energy: what a run would cost on the chip, tick by tick and PE by PE (an estimate).

For every PE and tick (counts from :mod:`s2sim.pe_load`)::

    cycles = fixed + neuron * neurons + word * synaptic_words + packet_in * packets_received
             + packet_out * packets_sent

with coefficients per neuron model (:class:`CycleCosts`; where they come from is said in each one's ``source``).
The PE runs the tick at one of two performance levels (:data:`LEVELS`: 150 MHz at 0.5 V, 300 MHz at 0.8 V);
under DVFS "auto" a PE takes the high level in a tick when it received more packets than its model's
``pl_threshold`` (py-spinnaker2's rule). ``time_done = cycles / (f_clk * sys_tick_in_s)`` is the fraction of the
tick the PE needed, as py-spinnaker2 reports it; above 1 the PE missed the tick's deadline.

Energy per tick: the chip's baseline (all PEs off) for every chip the placement uses, each used PE's sleep power at
its level for the whole tick, and its active energy per cycle at that level (:class:`EnergyConstants`, with the
public sources). Everything here is an estimate; docs/timing.md says how far to trust each number.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from .errors import ConfigError
from .pe_load import EVENTS, PELoad, pe_load
from .placement import PES_PER_CHIP, Placement, place
from .profile import ChipProfile
from .results import BatchResult
from .snn import Network
from .spec import NetworkSpec

DVFSMode = Literal["low", "high", "auto"]
DVFS_MODES = ("low", "high", "auto")


@dataclass(frozen=True)
class ClockLevel:
    """One performance level of a PE."""

    name: str
    volts: float
    hz: float


#: The two performance levels (SpiNNaker2 chip paper: 0.5 V / 150 MHz and 0.8 V / 300 MHz).
LEVELS = MappingProxyType({"low": ClockLevel("low", 0.5, 150e6), "high": ClockLevel("high", 0.8, 300e6)})


@dataclass(frozen=True)
class CycleCosts:
    """Cycles one PE spends per tick on one neuron model's work, per event of :data:`s2sim.pe_load.EVENTS`.

    Attributes
    ----------
    fixed : float
        Per tick, whatever the load.
    neuron : float
        Per neuron update.
    packets_in, table_entries, rows, words, conv_taps, conv_tap_tests, packets_out : float
        Per packet received, population-table entry checked, synapse row selected, synaptic word, conv tap
        applied, conv tap tested and packet sent.
    source : str
        Where the numbers come from, and how sure they are.
    """

    fixed: float
    neuron: float
    packets_in: float
    table_entries: float
    rows: float
    words: float
    conv_taps: float
    conv_tap_tests: float
    packets_out: float
    source: str

    def cycles(self, neurons: Any, events: Mapping[str, np.ndarray]) -> np.ndarray:
        """Cycles per PE and tick: ``events`` maps every name of :data:`EVENTS` to counts (broadcast together)."""
        total = self.fixed + self.neuron * np.asarray(neurons, dtype=np.float64)
        for name in EVENTS:
            total = total + getattr(self, name) * events[name]
        return total


#: Cycles per instruction assumed for the PE's Cortex-M4F running from its local SRAM (Arm's Cortex-M4 Technical
#: Reference Manual: one cycle for most data-processing instructions, two for a load, one to three extra for a
#: taken branch, three for VFMA.F32); the emulated program mixes them in a proportion not measured here.
CPI = 1.3
#: The range docs/timing.md carries for CPI (all single-cycle .. a load- and branch-heavy mix).
CPI_RANGE = (1.1, 1.8)

#: The emulated PE's instruction fits (tools/emulate_pe.py --write-calibration), field -> fit key.
_FIT_KEYS = {
    "neuron": "per_neuron_update",
    "packets_in": "per_packet",
    "table_entries": "per_table_entry_checked",
    "rows": "per_row",
    "words": "per_synaptic_word",
    "conv_taps": "per_conv_tap",
    "conv_tap_tests": "per_conv_tap_tested",
    "packets_out": "per_spike",
}


def calibrated_cycles(
    path: str | os.PathLike | None = None, cpi: float = CPI, whole_output_tap_tests: bool = False
) -> dict[str, CycleCosts]:
    """Return cycle costs per model: the emulated PE's instruction fits times ``cpi``.

    The fits default to the file shipped with s2sim. A cost the fit could not separate from another is 0 (it is part of
    the other's).

    The emulated program tests every kernel tap of a conv spike, over the whole output, against its PE's slice
    (about 59 instructions per tested tap); a firmware that computes the slice's taps directly does not, and the
    published DVS Gesture runs at 1 ms ticks rule the brute-force cost out for the chip. So tested taps cost
    nothing by default; ``whole_output_tap_tests=True`` charges them (an upper bound).
    """
    path = Path(path) if path is not None else Path(__file__).with_name("data") / "pe_instructions.json"
    data = json.loads(path.read_text())
    source = (
        f"calibrated: instructions of the emulated PE program ({data['build']} build, "
        f"{data['toolchain'].get('arm-none-eabi-gcc', '?')}, under QEMU; {data['date']}) x CPI {cpi:g} "
        f"(assumed, range {CPI_RANGE[0]:g}-{CPI_RANGE[1]:g}); s2sim's program, not the vendor's firmware"
    )
    out = {}
    for model, fit in data["instructions"].items():
        fixed = fit.get("base_delivery", 0.0) + fit.get("base_update", 0.0)
        costs = {name: cpi * fit.get(key, 0.0) for name, key in _FIT_KEYS.items()}
        if not whole_output_tap_tests:
            costs["conv_tap_tests"] = 0.0
        out[model] = CycleCosts(fixed=cpi * fixed, source=source, **costs)
    return out


#: Cycle costs per neuron model: the emulated PE's instruction counts times CPI.
DEFAULT_CYCLES: Mapping[str, CycleCosts] = MappingProxyType(calibrated_cycles())

#: py-spinnaker2's pl_threshold values seen in public scripts (a DVFS demo of the NIR paper's authors); the other
#: models take lif_no_delay's (an assumption).
DEFAULT_PL_THRESHOLD: Mapping[str, int] = MappingProxyType(
    {
        "lif_conv2d": 30,
        "lif_no_delay": 200,
        "lif": 200,
        "lif_curr_exp": 200,
        "lif_curr_exp_no_delay": 200,
        "spike_list": 200,
    }
)


@dataclass(frozen=True)
class EnergyConstants:
    """Power and energy figures of the chip, per level where they depend on it.

    Defaults: the SpiNNaker2 chip paper's measurements (Scholze et al., "The SpiNNaker2 chip", IEEE OJCAS 2026,
    as quoted in public summaries): chip with all PEs off 75.2 mW; all 152 PEs asleep 235.4 mW at 0.5 V and
    564.7 mW at 0.8 V; all PEs running CoreMark 424.6 mW at 0.5 V and 1247.9 mW at 0.8 V. Per PE this gives the
    sleep power ``(asleep - off) / 152`` and the active energy per cycle ``(coremark - asleep) / 152 / f_clk``.
    No public figure gives the energy of a spike packet in the network-on-chip; ``packet_j`` is 0 unless set.
    """

    chip_off_w: float = 75.2e-3
    chip_asleep_w: Mapping[str, float] = field(default_factory=lambda: {"low": 235.4e-3, "high": 564.7e-3})
    chip_coremark_w: Mapping[str, float] = field(default_factory=lambda: {"low": 424.6e-3, "high": 1247.9e-3})
    packet_j: float = 0.0

    def pe_sleep_w(self, level: str) -> float:
        """Power of one PE asleep at ``level``."""
        return (self.chip_asleep_w[level] - self.chip_off_w) / PES_PER_CHIP

    def pe_cycle_j(self, level: str) -> float:
        """Active energy of one PE per cycle at ``level``, above its sleep power."""
        return (self.chip_coremark_w[level] - self.chip_asleep_w[level]) / PES_PER_CHIP / LEVELS[level].hz


@dataclass(frozen=True)
class TimingConfig:
    """How a run is timed: tick length, DVFS, cycle costs and energy constants.

    Parameters
    ----------
    sys_tick_in_s : float
        Tick length (py-spinnaker2's ``sys_tick_in_s``; 1 ms by default, 2.5 ms was used for a CNN).
    dvfs : {"low", "high", "auto"} or dict
        Performance level policy, one for all models or per neuron model (py-spinnaker2 sets it per application
        with ``DVFSParams``); models left out of a dict run at "high".
    pl_threshold : dict
        Per neuron model, the received packets above which "auto" takes the high level in a tick.
    cycles : dict
        Per neuron model, :class:`CycleCosts`.
    energy : EnergyConstants
    """

    sys_tick_in_s: float = 1e-3
    dvfs: DVFSMode | Mapping[str, DVFSMode] = "high"
    pl_threshold: Mapping[str, int] = field(default_factory=lambda: DEFAULT_PL_THRESHOLD)
    cycles: Mapping[str, CycleCosts] = field(default_factory=lambda: DEFAULT_CYCLES)
    energy: EnergyConstants = field(default_factory=EnergyConstants)

    def __post_init__(self) -> None:
        tick = self.sys_tick_in_s
        if isinstance(tick, bool) or not isinstance(tick, (int, float)) or not math.isfinite(tick) or tick <= 0:
            raise ConfigError(f"TimingConfig.sys_tick_in_s must be a positive number of seconds, got {tick!r}")
        modes = self.dvfs.values() if isinstance(self.dvfs, Mapping) else [self.dvfs]
        bad = [m for m in modes if m not in DVFS_MODES]
        if bad:
            raise ConfigError(f"TimingConfig.dvfs = {bad[0]!r} is not one of {DVFS_MODES}")

    def mode(self, model: str) -> str:
        """Return the DVFS mode of ``model``'s PEs."""
        return self.dvfs.get(model, "high") if isinstance(self.dvfs, Mapping) else self.dvfs

    def costs(self, model: str) -> CycleCosts:
        """``model``'s cycle costs (ConfigError naming it when the table lacks it)."""
        try:
            return self.cycles[model]
        except KeyError:
            raise ConfigError(f"TimingConfig.cycles has no cycle costs for neuron model {model!r}") from None


@dataclass(frozen=True)
class DeadlineMiss:
    """A PE whose work in one tick took longer than the tick, as the chip logs it."""

    sample: int
    tick: int
    pe: int
    population: str
    neurons: tuple[int, int]
    time_done: float

    def describe(self) -> str:
        """Return a one-line description of the missed deadline."""
        return (
            f"deadline missed: PE {self.pe} ({self.population}[{self.neurons[0]}:{self.neurons[1]}]) in tick "
            f"{self.tick} of sample {self.sample}: time_done {self.time_done:.3f} ({self.time_done - 1:+.1%} "
            "over the tick)"
        )


@dataclass(frozen=True)
class TimingReport:
    """The estimated time and energy of a batch of runs, per PE and tick.

    Attributes
    ----------
    load : PELoad
        What each PE received, processed and sent per tick.
    cycles, time_done : np.ndarray
        float64 [batch, n_pe, T].
    high : np.ndarray
        bool [batch, n_pe, T]: the PE ran the tick at the high performance level.
    energy_j : np.ndarray
        float64 [batch]: energy per sample (whole run), joules.
    active_j : np.ndarray
        float64 [batch]: the part of ``energy_j`` spent executing cycles (it scales with the cycles per
        instruction; the rest is sleep and baseline power over the run's duration).
    slices : list of tuple
        Per PE row: (population, first neuron, end neuron).
    n_chips : int
    config : TimingConfig
    """

    load: PELoad
    cycles: np.ndarray
    time_done: np.ndarray
    high: np.ndarray
    energy_j: np.ndarray
    active_j: np.ndarray
    slices: list[tuple[str, int, int]]
    n_chips: int
    config: TimingConfig

    @property
    def timesteps(self) -> int:
        """Number of ticks of each sample."""
        return int(self.cycles.shape[2])

    @property
    def latency_s(self) -> float:
        """Wall time of one sample on the chip.

        Ticks x tick length (ticks never stretch; a missed deadline only leaves the PE behind).
        """
        return self.timesteps * self.config.sys_tick_in_s

    def misses(self) -> list[DeadlineMiss]:
        """Every (sample, tick, PE) whose time_done exceeds 1."""
        out = []
        for b, row, t in zip(*np.nonzero(self.time_done > 1.0), strict=True):
            pop, lo, hi = self.slices[row]
            out.append(
                DeadlineMiss(int(b), int(t), int(self.load.pes[row]), pop, (lo, hi), float(self.time_done[b, row, t]))
            )
        return out

    def bottleneck(self) -> dict[str, Any]:
        """Return the PE with the highest time_done and where it happens."""
        b, row, t = np.unravel_index(int(np.argmax(self.time_done)), self.time_done.shape)
        pop, lo, hi = self.slices[row]
        return {
            "pe": int(self.load.pes[row]),
            "population": pop,
            "neurons": [lo, hi],
            "sample": int(b),
            "tick": int(t),
            "time_done": float(self.time_done[b, row, t]),
            "packets_in": float(self.load.packets_in[b, row, t]),
            "synaptic_events": float(self.load.synaptic_events[b, row, t]),
        }

    def min_tick_s(self) -> float:
        """Return the shortest tick at which no PE would have missed a deadline (levels as they fell)."""
        hz = np.where(self.high, LEVELS["high"].hz, LEVELS["low"].hz)
        return float((self.cycles / hz).max())

    def suggestion(self, target: float = 0.9) -> dict[str, Any] | None:
        """When the busiest PE needs more than ``target`` of its tick.

        The ``max_atoms_per_core`` of its population that would bring it to ``target``, or None when it does not need
        one.

        Neuron updates and synaptic words scale with the neurons a PE holds; the fixed cost and the packets it
        receives do not (a packet reaches every PE holding a target of its neuron), so ``max_atoms_per_core`` is
        None when no split can help: then lengthen the tick (:meth:`min_tick_s`).
        """
        b = self.bottleneck()
        if b["time_done"] <= target:
            return None
        s, row, t = b["sample"], int(np.flatnonzero(self.load.pes == b["pe"])[0]), b["tick"]
        model, neurons = self.load.models[row], int(self.load.neurons[row])
        costs = self.config.costs(model)
        cycles = float(self.cycles[s, row, t])
        ev = {k: float(v[s, row, t]) for k, v in self.load.events.items()}
        fixed = costs.fixed + sum(
            getattr(costs, k) * ev[k] for k in ("packets_in", "table_entries", "rows", "conv_tap_tests")
        )
        budget = cycles * target / b["time_done"]  # the cycles that fit ``target`` of this tick
        atoms = int(neurons * (budget - fixed) / (cycles - fixed)) if cycles > fixed and neurons else 0
        return {
            "population": b["population"],
            "max_atoms_per_core": atoms if atoms >= 1 else None,
            "neurons_on_pe": neurons,
            "target_time_done": target,
            "min_tick_s": self.min_tick_s(),
        }

    def _energy_at_cpi(self, cpi: float) -> float:
        """Return the mean energy per sample had every cycle cost been counted at ``cpi`` instead of :data:`CPI`.

        docs/timing.md gives the range of ``cpi``.
        """
        return float((self.energy_j + self.active_j * (cpi / CPI - 1.0)).mean())

    def per_population(self, name: str, what: str, sample: int = 0) -> dict[str, np.ndarray]:
        """py-spinnaker2's format of one population's diagnostic: ``{"PE(x, y, p)": array[T]}`` per PE.

        ``what``: "time_done", "n_packets" (packets received) or "performance_level" (0 low, 1 high).
        """
        arrays = {
            "time_done": self.time_done,
            "n_packets": self.load.packets_in,
            "performance_level": self.high.astype(np.int64),
        }
        if what not in arrays:
            raise ConfigError(f"timing: unknown diagnostic {what!r}; known {sorted(arrays)}")
        out = {}
        for row, (pop, _, _) in enumerate(self.slices):
            if pop == name:
                out[pe_label(int(self.load.pes[row]))] = arrays[what][sample, row].copy()
        if not out:
            raise ConfigError(f"timing: no PE holds population {name!r}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """Summary, JSON-ready: latency, misses, energy per sample, the bottleneck and the constants' sources."""
        misses = self.misses()
        return {
            "sys_tick_in_s": self.config.sys_tick_in_s,
            "dvfs": self.config.dvfs if isinstance(self.config.dvfs, str) else dict(self.config.dvfs),
            "latency_ms": self.latency_s * 1e3,
            "deadline_misses": len(misses),
            "ticks_with_misses": len({(m.sample, m.tick) for m in misses}),
            "energy_per_sample_j": {
                "mean": float(self.energy_j.mean()),
                "min": float(self.energy_j.min()),
                "max": float(self.energy_j.max()),
                "cpi_range": [float(self._energy_at_cpi(c)) for c in CPI_RANGE],
            },
            "bottleneck": self.bottleneck(),
            "min_tick_s": self.min_tick_s(),
            "suggestion": self.suggestion(),
            "time_done_max_per_pe": {
                pe_label(int(pe)): float(self.time_done[:, row].max()) for row, pe in enumerate(self.load.pes)
            },
            "high_level_share": float(self.high.mean()),
            "calibration": sorted({self.config.costs(m).source for m in set(self.load.models)}),
            "estimate": True,
        }

    def format(self) -> str:
        """Format a short text report."""
        d = self.to_dict()
        b = d["bottleneck"]
        e = d["energy_per_sample_j"]
        lines = [
            f"PE time and energy (estimate; tick {self.config.sys_tick_in_s * 1e3:g} ms, DVFS {d['dvfs']})",
            f"latency per sample: {d['latency_ms']:.3g} ms ({self.timesteps} ticks)",
            (
                f"energy per sample: {e['mean'] * 1e3:.4g} mJ (samples {e['min'] * 1e3:.4g}..{e['max'] * 1e3:.4g}; "
                f"{e['cpi_range'][0] * 1e3:.4g}..{e['cpi_range'][1] * 1e3:.4g} over the CPI range "
                f"{CPI_RANGE[0]:g}-{CPI_RANGE[1]:g})"
            ),
            (
                f"bottleneck: PE {b['pe']} ({b['population']}[{b['neurons'][0]}:{b['neurons'][1]}]) time_done "
                f"{b['time_done']:.3f} in tick {b['tick']}; shortest tick without misses "
                f"{d['min_tick_s'] * 1e3:.3g} ms"
            ),
            f"deadline misses: {d['deadline_misses']} (PE, tick) pairs in {d['ticks_with_misses']} ticks",
        ]
        lines += [m.describe() for m in self.misses()[:5]]
        hint = d["suggestion"]
        if hint is not None:
            lines.append(
                f"suggestion: set_max_atoms_per_core({hint['max_atoms_per_core']}) on {hint['population']!r} "
                f"(now {hint['neurons_on_pe']} on its busiest PE) to bring that PE to time_done "
                f"{hint['target_time_done']}"
                if hint["max_atoms_per_core"]
                else f"suggestion: no split of {hint['population']!r} fits the tick; use a tick of at least "
                f"{hint['min_tick_s'] * 1e3:.3g} ms"
            )
        lines += [f"cycle costs: {src}" for src in d["calibration"]]
        return "\n".join(lines)


def merge_summaries(parts: list[dict[str, Any]], energies: list[np.ndarray]) -> dict[str, Any]:
    """One summary (:meth:`TimingReport.to_dict` form) of a run done in chunks of samples."""
    if not parts:
        raise ConfigError("timing: nothing to merge")
    energy = np.concatenate(energies)
    out = dict(parts[0])
    out["deadline_misses"] = sum(p["deadline_misses"] for p in parts)
    out["ticks_with_misses"] = sum(p["ticks_with_misses"] for p in parts)
    sizes = [len(e) for e in energies]
    out["energy_per_sample_j"] = {
        "mean": float(energy.mean()),
        "min": float(energy.min()),
        "max": float(energy.max()),
        "cpi_range": [
            float(np.average([p["energy_per_sample_j"]["cpi_range"][i] for p in parts], weights=sizes)) for i in (0, 1)
        ],
    }
    out["bottleneck"] = max((p["bottleneck"] for p in parts), key=lambda b: b["time_done"])
    out["min_tick_s"] = max(p["min_tick_s"] for p in parts)
    out["suggestion"] = next(
        (p["suggestion"] for p in parts if p["suggestion"] is not None and p["bottleneck"] == out["bottleneck"]), None
    )
    out["time_done_max_per_pe"] = {
        k: max(p["time_done_max_per_pe"][k] for p in parts) for k in parts[0]["time_done_max_per_pe"]
    }
    out["high_level_share"] = float(np.average([p["high_level_share"] for p in parts], weights=sizes))
    out["samples"] = int(sum(sizes))
    return out


def pe_label(pe: int) -> str:
    """py-spinnaker2's key for a PE, ``"PE(x, y, p)"``.

    quad-PE column and row on the chip (s2sim's placement numbering, eight quad-PEs to a row, counted from 1) and the
    core in the quad-PE.
    """
    quad = (pe % PES_PER_CHIP) // 4
    label = f"PE({quad % 8 + 1}, {quad // 8 + 1}, {pe % 4})"
    return label if pe < PES_PER_CHIP else f"chip{pe // PES_PER_CHIP}:{label}"


def estimate(
    net: Network | NetworkSpec,
    result: BatchResult,
    config: TimingConfig | None = None,
    placement: Placement | None = None,
    profile: ChipProfile | None = None,
) -> TimingReport:
    """Estimate the time and energy of ``result`` (a run of ``net`` with every population's spikes kept).

    Parameters
    ----------
    net : Network or NetworkSpec
    result : BatchResult
        From ``Simulator.run_batch(net, ..., all_spikes=True)``.
    config : TimingConfig, optional
    placement : Placement, optional
        Default :func:`s2sim.place` of ``net`` under ``profile``.
    profile : ChipProfile, optional
    """
    config = config or TimingConfig()
    profile = profile or ChipProfile()
    spec = net if isinstance(net, NetworkSpec) else net.validated()
    if placement is None:
        if isinstance(net, NetworkSpec):
            raise ConfigError("timing.estimate: give the placement when passing a NetworkSpec")
        placement = place(net, profile)
    load = pe_load(spec, placement, result, profile)
    cycles = np.zeros(load.shape)
    high = np.zeros(load.shape, dtype=bool)
    for row, model in enumerate(load.models):
        cycles[:, row] = config.costs(model).cycles(load.neurons[row], {k: v[:, row] for k, v in load.events.items()})
        mode = config.mode(model)
        high[:, row] = (
            mode == "high"
            if mode != "auto"
            else load.packets_in[:, row] > config.pl_threshold.get(model, DEFAULT_PL_THRESHOLD["lif_no_delay"])
        )
    hz = np.where(high, LEVELS["high"].hz, LEVELS["low"].hz)
    time_done = cycles / (hz * config.sys_tick_in_s)
    energy, active = _energy(cycles, high, load, placement.n_chips, config)
    slices = [(s.population, s.start, s.stop) for s in placement.slices]
    return TimingReport(load, cycles, time_done, high, energy, active, slices, placement.n_chips, config)


def _energy(
    cycles: np.ndarray, high: np.ndarray, load: PELoad, n_chips: int, config: TimingConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Energy per sample, and its part spent on cycles."""
    e, tick = config.energy, config.sys_tick_in_s
    sleep = (np.where(high, e.pe_sleep_w("high"), e.pe_sleep_w("low")) * tick).sum(axis=(1, 2))
    active = (cycles * np.where(high, e.pe_cycle_j("high"), e.pe_cycle_j("low"))).sum(axis=(1, 2))
    baseline = n_chips * e.chip_off_w * tick * cycles.shape[2] + e.packet_j * load.packets_out.sum(axis=(1, 2))
    return sleep + active + baseline, active
