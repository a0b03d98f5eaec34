"""How a NIR graph is converted (:class:`ConversionConfig`), and the result (:class:`Conversion`).

The config holds the integrator, reset, dt, weight scaling and strictness.
"""
from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from .. import snn
from ..conversion_report import ConversionReport
from ..errors import ConversionError
from ..spec import DIAGNOSTIC_RECORDABLES, RECORDABLES

#: Metadata key that marks a graph written by s2sim.nir_export (value: format version).
S2SIM_FORMAT_KEY = "s2sim_format"


S2SIM_FORMAT_VERSION = 1


class Integrator(str, enum.Enum):
    """How NIR's continuous time constants become per-tick decays."""

    FORWARD = "forward"
    EXPONENTIAL = "exponential"


class Reset(str, enum.Enum):
    """Reset mechanism of the chip populations."""

    SUBTRACT = "subtract"
    ZERO = "zero"


CHIP_RESET = {Reset.SUBTRACT: "reset_by_subtraction", Reset.ZERO: "reset_to_v_reset"}


_RESET_ALIASES = {"subtract": Reset.SUBTRACT, "zero": Reset.ZERO, "reset_by_subtraction": Reset.SUBTRACT,
                  "reset_to_v_reset": Reset.ZERO}


@dataclass(frozen=True)
class ConversionConfig:
    """NIR -> SpiNNaker2 conversion settings (py-spinnaker2's fields and defaults, plus s2sim's own).

    Parameters
    ----------
    dt : float or None
        Discretisation step in the graph's time unit (seconds for snnTorch graphs: 1e-4). None (the default):
        the graph's ``dt`` metadata, else py-spinnaker2's default 1.0 with a MetadataWarning.
    output_record : tuple of str
        What output populations record ("spikes", "v", "v_last", "counts").
    conn_delay : int
        Delay field of every connection-list projection. 0 selects the no-delay models (weights -127..127),
        1..7 the models with a delay field (weights -15..15). Conv projections need 0.
    scale_weights : bool
        Scale the weights feeding each population to its weight limit.
    weight_scale_percentile : float
        With ``scale_weights``: scale so that this percentile of ``|W|`` maps to the limit (100 = max).
        Below 100 some weights exceed the range: use ``on_overflow="clip"``.
    integrator : Integrator
        FORWARD (exact for snnTorch graphs) or EXPONENTIAL (py-spinnaker2's default).
    reset : Reset
        SUBTRACT -> "reset_by_subtraction", ZERO -> "reset_to_v_reset".
    on_overflow : {"error", "clip"}
        A weight whose magnitude exceeds the chip range even when truncated: "error" raises ConversionError,
        "clip" clips it into the range and counts it in the report. Nothing ever wraps.
    fuse_weight_layers : bool
        Fuse two weight layers in a row into one projection when the product fits the chip range.
    use_metadata : bool
        Let graph metadata (``dt``, ``reset_mechanism``/``reset``, ``integrator``) override the fields above.
    strict : bool
        Raise ConversionError instead of warning (WeightLossWarning, TimeConstantWarning, MetadataWarning): no
        graph converts with weights that all round to zero, a time constant shorter than ``dt`` or an assumed
        ``dt``.
    """

    dt: float | None = None
    output_record: tuple[str, ...] = ("spikes",)
    conn_delay: int = 1
    scale_weights: bool = False
    weight_scale_percentile: float = 100.0
    integrator: Integrator = Integrator.EXPONENTIAL
    reset: Reset = Reset.SUBTRACT
    on_overflow: Literal["error", "clip"] = "error"
    fuse_weight_layers: bool = True
    use_metadata: bool = True
    strict: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for flag in ("scale_weights", "fuse_weight_layers", "use_metadata", "strict"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise ConversionError(f"ConversionConfig.{flag} = {getattr(self, flag)!r} must be True or False")
        try:
            # py-spinnaker2 users write the enum name ("FORWARD"); accept it in any case
            name = self.integrator.lower() if isinstance(self.integrator, str) else self.integrator
            set_(self, "integrator", Integrator(name))
        except ValueError:
            raise ConversionError(f"ConversionConfig.integrator = {self.integrator!r} is not one of "
                                  f"{[i.value for i in Integrator]}") from None
        reset = _RESET_ALIASES.get(self.reset.value if isinstance(self.reset, Reset) else str(self.reset).lower())
        if reset is None:
            raise ConversionError(f"ConversionConfig.reset = {self.reset!r} is not one of {[r.value for r in Reset]}")
        set_(self, "reset", reset)
        record = (self.output_record,) if isinstance(self.output_record, str) else tuple(self.output_record)
        known = RECORDABLES + DIAGNOSTIC_RECORDABLES
        bad = [r for r in record if r not in known]
        if bad:
            raise ConversionError(f"ConversionConfig.output_record: unknown {bad}; known {known}")
        set_(self, "output_record", record)
        if self.dt is not None and not _positive_real(self.dt):
            raise ConversionError(f"ConversionConfig.dt = {self.dt!r} must be a positive finite number or None")
        if isinstance(self.conn_delay, bool) or not isinstance(self.conn_delay, (int, np.integer)) \
                or not 0 <= self.conn_delay <= 7:
            raise ConversionError(f"ConversionConfig.conn_delay = {self.conn_delay!r} must be an int 0..7")
        if not _real(self.weight_scale_percentile) or not 0 < self.weight_scale_percentile <= 100:
            raise ConversionError(f"ConversionConfig.weight_scale_percentile = {self.weight_scale_percentile!r} "
                                  "must be in (0, 100]")
        if self.on_overflow not in ("error", "clip"):
            raise ConversionError(f"ConversionConfig.on_overflow = {self.on_overflow!r} is not 'error' or 'clip'")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        out = asdict(self)
        out["integrator"] = self.integrator.value
        out["reset"] = self.reset.value
        out["output_record"] = list(self.output_record)
        return out


def _real(value: Any) -> bool:
    """A real number given as a number (not a bool, a string or a complex)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) \
        and math.isfinite(value)


def _positive_real(value: Any) -> bool:
    return _real(value) and value > 0


class Conversion(NamedTuple):
    """Result of :func:`convert`."""

    net: snn.Network
    input_pops: dict[str, snn.Population]
    output_pops: dict[str, snn.Population]
    report: ConversionReport
