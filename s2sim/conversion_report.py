"""ConversionReport: what a NIR graph became on the chip, parameter by parameter.

For every population it lists each NIR parameter, the value the chip gets (float32 as uploaded, or the integer
weight after rounding) and the effective value that chip value represents back in NIR units, with the error.
For every projection it lists the weight scale, how many weights were clipped and the rounding error of the
float weights under the two rounding modes a ChipProfile most often uses (``trunc`` and ``nearest_even``).
It also states the latency of each output: every population hop adds one tick (plus the connection delay), so
chip tick ``t + latency`` corresponds to step ``t`` of a framework such as snnTorch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Rounding modes the report evaluates for every weight (ChipProfile.weight_rounding picks one at simulation).
REPORTED_ROUNDINGS = ("trunc", "nearest_even")


def summarize(values: Any) -> Any:
    """JSON-safe summary of a per-neuron array: the value when uniform, else min / max / mean."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        return None
    if np.all(arr == arr[0]):
        return float(arr[0])
    return {"min": float(arr.min()), "max": float(arr.max()), "mean": float(arr.mean()), "n": int(arr.size)}


def _fmt(summary: Any) -> str:
    if summary is None:
        return "-"
    if isinstance(summary, dict):
        return f"[{summary['min']:.6g} .. {summary['max']:.6g}]"
    return f"{summary:.6g}"


@dataclass
class ParameterMapping:
    """One chip parameter of a population and where it came from.

    Attributes
    ----------
    chip_param : str
        Name of the chip parameter (``threshold``, ``alpha_decay``, ...).
    source : str
        The NIR parameter(s) and formula it was computed from.
    nir_value : np.ndarray or None
        The NIR value it represents (per neuron), or None when it has no single NIR counterpart.
    chip_value : np.ndarray
        The float32 value uploaded to the chip (per neuron).
    effective : np.ndarray or None
        ``chip_value`` converted back to NIR units.
    """

    chip_param: str
    source: str
    nir_value: np.ndarray | None
    chip_value: np.ndarray
    effective: np.ndarray | None

    @property
    def max_abs_error(self) -> float | None:
        """Largest ``|effective - nir_value|`` over the neurons (None when there is no NIR counterpart)."""
        if self.nir_value is None or self.effective is None:
            return None
        return float(np.max(np.abs(np.asarray(self.effective, np.float64) - np.asarray(self.nir_value, np.float64))))

    def to_dict(self) -> dict[str, Any]:
        return {
            "chip_param": self.chip_param,
            "source": self.source,
            "nir_value": None if self.nir_value is None else summarize(self.nir_value),
            "chip_value": summarize(self.chip_value),
            "effective": None if self.effective is None else summarize(self.effective),
            "max_abs_error": self.max_abs_error,
        }


@dataclass
class WeightRounding:
    """What one rounding mode does to a projection's float weights.

    Attributes
    ----------
    max_abs_error : float
        Largest ``|integer weight - float weight|`` in NIR units (divided by the weight scale).
    zeroed : int
        Non-zero weights that become 0.
    overflow : int
        Weights that fall outside the chip range after this rounding (a LimitError at simulation).
    """

    max_abs_error: float
    zeroed: int
    overflow: int

    def to_dict(self) -> dict[str, Any]:
        return {"max_abs_error": self.max_abs_error, "zeroed": self.zeroed, "overflow": self.overflow}


@dataclass
class ProjectionReport:
    """One projection: which NIR nodes it came from and what happened to its weights.

    ``synapses`` counts connection-list entries, or kernel weights for a conv2d projection.
    """

    name: str
    pre: str
    post: str
    kind: str
    nir_nodes: tuple[str, ...]
    synapses: int
    weight_scale: float
    weight_range: tuple[int, int]
    max_abs_nir_weight: float
    max_abs_chip_weight: float
    clipped: int
    delay: int
    rounding: dict[str, WeightRounding] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "pre": self.pre, "post": self.post, "kind": self.kind,
            "nir_nodes": list(self.nir_nodes), "synapses": self.synapses, "weight_scale": self.weight_scale,
            "weight_range": list(self.weight_range), "max_abs_nir_weight": self.max_abs_nir_weight,
            "max_abs_chip_weight": self.max_abs_chip_weight, "clipped": self.clipped, "delay": self.delay,
            "rounding": {k: v.to_dict() for k, v in self.rounding.items()},
        }


@dataclass
class PopulationReport:
    """One population: its NIR origin, chip model, scales, parameter mapping and latency."""

    name: str
    nir_type: str
    model: str
    size: int
    shape: tuple[int, ...]
    reset: str | None
    weight_scale: float | None
    voltage_scale: np.ndarray | None
    parameters: list[ParameterMapping] = field(default_factory=list)
    hops: int | None = None
    latency_ticks: int | None = None
    is_input: bool = False
    is_output: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "nir_type": self.nir_type, "model": self.model, "size": self.size,
            "shape": list(self.shape), "reset": self.reset, "weight_scale": self.weight_scale,
            "voltage_scale": None if self.voltage_scale is None else summarize(self.voltage_scale),
            "parameters": [p.to_dict() for p in self.parameters], "hops": self.hops,
            "latency_ticks": self.latency_ticks, "is_input": self.is_input, "is_output": self.is_output,
            "notes": list(self.notes),
        }


@dataclass
class ConversionReport:
    """Everything a conversion decided, for people and for tools (``to_dict`` is JSON-safe)."""

    config: dict[str, Any]
    populations: list[PopulationReport] = field(default_factory=list)
    projections: list[ProjectionReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def population(self, name: str) -> PopulationReport:
        """The report of population ``name``."""
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise KeyError(f"no population {name!r} in the conversion report; have {[p.name for p in self.populations]}")

    @property
    def output_latency(self) -> dict[str, int | None]:
        """Output population -> ticks between an input spike and the earliest response it can cause."""
        return {p.name: p.latency_ticks for p in self.populations if p.is_output}

    @property
    def clipped(self) -> int:
        """Total number of weights clipped into the chip range (on_overflow="clip")."""
        return sum(p.clipped for p in self.projections)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": dict(self.config),
            "populations": [p.to_dict() for p in self.populations],
            "projections": [p.to_dict() for p in self.projections],
            "output_latency": self.output_latency,
            "clipped": self.clipped,
            "notes": list(self.notes),
        }

    def format(self) -> str:
        """Readable multi-line text."""
        lines = ["NIR -> SpiNNaker2 conversion report",
                 "config: " + ", ".join(f"{k}={v}" for k, v in self.config.items())]
        for note in self.notes:
            lines.append(f"note: {note}")
        lines.append("")
        lines.append("populations:")
        for p in self.populations:
            lines.extend(_format_population(p))
        lines.append("")
        lines.append("projections:")
        for j in self.projections:
            lines.extend(_format_projection(j))
        if self.output_latency:
            lines.append("")
            lines.append("output latency (chip tick = framework step + latency):")
            for name, lat in self.output_latency.items():
                lines.append(f"  {name}: {lat} tick(s)")
        return "\n".join(lines)


def _format_population(p: PopulationReport) -> list[str]:
    role = " [input]" if p.is_input else (" [output]" if p.is_output else "")
    head = f"  {p.name}{role}: NIR {p.nir_type} -> {p.model}, {p.size} neurons, shape {tuple(p.shape)}"
    if p.reset:
        head += f", {p.reset}"
    out = [head]
    if p.weight_scale is not None:
        out.append(f"    weight scale {p.weight_scale:.6g}, voltage scale S {_fmt(summarize(p.voltage_scale))} "
                   "(V_nir = V_chip / S)")
    if p.hops is not None:
        out.append(f"    {p.hops} hop(s) from an input, latency {p.latency_ticks} tick(s)")
    for m in p.parameters:
        err = m.max_abs_error
        err_text = "" if err is None else f", max |error| {err:.3g}"
        nir_text = "" if m.nir_value is None else f"NIR {_fmt(summarize(m.nir_value))} -> "
        eff_text = "" if m.effective is None else f" -> effective {_fmt(summarize(m.effective))}"
        out.append(f"    {m.chip_param:<12} {nir_text}chip {_fmt(summarize(m.chip_value))}{eff_text}{err_text}"
                   f"  ({m.source})")
    out.extend(f"    note: {n}" for n in p.notes)
    return out


def _format_projection(j: ProjectionReport) -> list[str]:
    count = "kernel weights" if j.kind == "conv2d" else "synapses"
    out = [f"  {j.name}: {j.pre} -> {j.post}, {j.kind} from {', '.join(j.nir_nodes) or '(direct)'}, "
           f"{j.synapses} {count}, delay {j.delay}",
           f"    weight scale {j.weight_scale:.6g}, max |w| NIR {j.max_abs_nir_weight:.6g} -> chip "
           f"{j.max_abs_chip_weight:.6g} (range {j.weight_range[0]}..{j.weight_range[1]}), clipped {j.clipped}"]
    for mode, r in j.rounding.items():
        out.append(f"    {mode:<12} max |error| {r.max_abs_error:.3g} (NIR units), {r.zeroed} weight(s) -> 0, "
                   f"{r.overflow} overflow(s)")
    return out
