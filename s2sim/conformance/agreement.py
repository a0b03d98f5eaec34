"""What a comparison finds: the tolerance, per population and variable the agreement, the first divergence.

The first divergence carries the diverging neuron's inputs when they can be recovered.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ConfigError
from .formatting import _jsonable

_VARIABLES = ("spikes", "v", "v_last")


_MAX_LISTED = 10


@dataclass(frozen=True)
class Tolerance:
    """Tolerances for sources that are not float32-exact (Brian2's float64 state, snnTorch, Norse).

    Attributes
    ----------
    v_atol, v_rtol : float
        Voltages agree when ``|obs * v_scale - exp| <= v_atol + v_rtol * |exp|``.
    v_scale : float
        Factor applied to observed voltages first (e.g. the NIR-to-chip scale ``S`` for a framework trace).
    spike_ticks : int
        A spike is matched by a spike of the same neuron up to this many ticks earlier or later.
    """

    v_atol: float = 0.0
    v_rtol: float = 0.0
    v_scale: float = 1.0
    spike_ticks: int = 0

    def __post_init__(self) -> None:
        for name in ("v_atol", "v_rtol"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"Tolerance.{name} must be >= 0, got {getattr(self, name)!r}")
        if not (isinstance(self.v_scale, (int, float)) and math.isfinite(self.v_scale) and self.v_scale > 0):
            raise ConfigError(f"Tolerance.v_scale must be a finite number > 0, got {self.v_scale!r}")
        if isinstance(self.spike_ticks, bool) or not isinstance(self.spike_ticks, int) or self.spike_ticks < 0:
            raise ConfigError(f"Tolerance.spike_ticks must be an int >= 0, got {self.spike_ticks!r}")

    def describe(self) -> str:
        return (f"TOLERANCE mode (v_atol={self.v_atol:g}, v_rtol={self.v_rtol:g}, v_scale={self.v_scale:g}, "
                f"spike_ticks={self.spike_ticks}): NOT a bit-exact comparison")


@dataclass
class NeuronInputs:
    """What one neuron received in one tick, under the expected trace's network and profile.

    ``exc`` / ``inh`` are the integer ring-buffer sums (``I`` enters the membrane with a minus sign);
    ``by_projection`` lists ``(projection, pre population, exc, inh, spikes delivered)``.
    """

    tick: int
    exc: int
    inh: int
    by_projection: list[tuple[str, str, int, int, int]]
    params: dict[str, float]
    v_before_expected: float | None
    v_before_observed: float | None
    pre_spikes_from: str


@dataclass
class Divergence:
    """One disagreement between the two traces (tick in the chip's frame)."""

    population: str
    neuron: int
    tick: int
    variable: str
    expected: float
    observed: float
    expected_bits: str | None = None
    observed_bits: str | None = None
    inputs: NeuronInputs | None = None

    def describe(self) -> str:
        def show(value: float, bits: str | None) -> str:
            return f"{value!r}" + (f" ({bits})" if bits else "")

        if self.variable == "spikes":
            what = {1: "spike", 0: "no spike"}
            return (f"population {self.population!r}, neuron {self.neuron}, tick {self.tick}, spikes: expected "
                    f"{what[int(self.expected)]}, observed {what[int(self.observed)]}")
        return (f"population {self.population!r}, neuron {self.neuron}, tick {self.tick}, {self.variable}: "
                f"expected {show(self.expected, self.expected_bits)}, observed "
                f"{show(self.observed, self.observed_bits)}")


@dataclass
class VariableAgreement:
    """Agreement of one recorded variable of one population."""

    variable: str
    compared: int
    mismatches: int
    mismatch_ticks: tuple[int, int] | None  # first and last tick with a mismatch
    expected_events: int | None = None
    observed_events: int | None = None
    max_abs_diff: float | None = None
    listed: list[Divergence] = field(default_factory=list)


@dataclass
class PopulationAgreement:
    """Agreement of one population over the ticks both traces cover."""

    population: str
    size: int
    depth: int
    ticks: tuple[int, int]
    variables: list[VariableAgreement]

    @property
    def match(self) -> bool:
        return all(v.mismatches == 0 for v in self.variables)


@dataclass
class Comparison:
    """Result of :func:`compare`; ``match`` is True when every compared value agrees."""

    mode: str
    tolerance: Tolerance | None
    expected_source: str
    observed_source: str
    populations: list[PopulationAgreement]
    first_divergence: Divergence | None
    notes: list[str] = field(default_factory=list)

    @property
    def match(self) -> bool:
        return all(p.match for p in self.populations)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``json.dumps(result.to_dict())``)."""
        out = asdict(self)
        out["match"] = self.match
        return _jsonable(out)

    def report(self) -> str:
        """Human-readable report: mode, one line per population and variable, then the first divergence."""
        lines = [f"mode: {self.tolerance.describe() if self.tolerance else 'EXACT (bit patterns of every value)'}",
                 f"expected: {self.expected_source}   observed: {self.observed_source}"]
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"{'population':<24} {'ticks':>11} {'variable':>8}  result")
        for pop in self.populations:
            for var in pop.variables:
                lines.append(f"{pop.population:<24} {pop.ticks[0]:>5}..{pop.ticks[1]:<4} {var.variable:>8}  "
                             f"{_describe_variable(var)}")
        lines.append(f"RESULT: {'MATCH' if self.match else 'MISMATCH'}")
        if self.first_divergence is not None:
            lines.append("first divergence: " + self.first_divergence.describe())
            if self.first_divergence.inputs is not None:
                lines += ["  " + s for s in _describe_inputs(self.first_divergence.inputs)]
        return "\n".join(lines)


def _describe_variable(var: VariableAgreement) -> str:
    if var.mismatches == 0:
        extra = f" ({var.expected_events} spikes)" if var.expected_events is not None else ""
        return f"agree on {var.compared} values{extra}"
    text = f"{var.mismatches} of {var.compared} differ, first at tick {var.mismatch_ticks[0]}"
    if var.expected_events is not None:
        text += f" (spikes: expected {var.expected_events}, observed {var.observed_events})"
    if var.max_abs_diff is not None:
        text += f" (max |diff| {var.max_abs_diff:.6g})"
    return text


def _describe_inputs(inp: NeuronInputs) -> list[str]:
    lines = [f"synaptic input at tick {inp.tick} (pre spikes from {inp.pre_spikes_from}): exc {inp.exc}, "
             f"inh {inp.inh}"]
    for proj, pre, exc, inh, n in inp.by_projection:
        lines.append(f"  from {pre!r} via {proj!r}: {n} synapse event(s), exc {exc}, inh {inh}")
    lines.append("parameters (float32 as uploaded): " + ", ".join(f"{k} {v!r}" for k, v in inp.params.items()))
    if inp.v_before_expected is not None or inp.v_before_observed is not None:
        lines.append(f"V at tick {inp.tick - 1}: expected {inp.v_before_expected!r}, observed "
                     f"{inp.v_before_observed!r}")
    return lines
