"""ChipProfile: every point of the datapath that only a board can settle, as a value.

A chip variant is a profile, never a copied module: the C core, the numpy oracle and conformance inference all
read the same fields. docs/datapath.md explains each default and the evidence behind it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from .errors import ConfigError
from .models import DEFAULT_MAX_ATOMS_PER_CORE, MAX_TARGETS_PER_CORE

ThresholdOp = Literal[">=", ">"]
WeightRounding = Literal["trunc", "nearest_even", "nearest_away", "floor", "exact"]
StatePrecision = Literal["float32", "float64"]
ConvXAxis = Literal["width", "height"]
InputGrouping = Literal["input_first", "leak_first"]

THRESHOLD_OPS = (">=", ">")
WEIGHT_ROUNDINGS = ("trunc", "nearest_even", "nearest_away", "floor", "exact")
STATE_PRECISIONS = ("float32", "float64")
CONV_X_AXES = ("width", "height")
INPUT_GROUPINGS = ("input_first", "leak_first")


@dataclass(frozen=True)
class ChipProfile:
    """The open points of the SpiNNaker2 PE datapath, each with a documented default.

    Parameters
    ----------
    threshold_op : {">=", ">"}
        Spike test. ``">="`` is what the public copy of the lif_curr_exp ARM code does (verified for that model);
        one third-party Brian2-backend measurement saw ``">"`` for ``lif`` (open).
    fused_multiply_add : bool
        Whether ``V * alpha_decay + input`` (and the synaptic-current decay ``I * decay + ring``) is rounded once
        (``vfma.f32``) or twice. Default True: GCC contracts ``a * b + c`` by default in GNU C dialects on an FPU
        that has FMA, as the Cortex-M4F does (inferred; open until probed on a board).
    weight_rounding : {"trunc", "nearest_even", "nearest_away", "floor", "exact"}
        How non-integer float weights handed to a Projection or Conv2DProjection become integers. Default
        ``"trunc"``: py-spinnaker2's conv path casts with ``astype(int8)`` (verified), which truncates toward zero.
        ``"exact"`` refuses non-integer weights.
    input_grouping : {"input_first", "leak_first"}
        Where ``i_offset`` joins the membrane update (``syn`` = the tick's synaptic input, ``I_exc - I_inh`` for
        curr_exp). ``"input_first"``: ``V = V * alpha_decay + (syn + i_offset)``, the grouping the reference reads
        from the chip code (inferred). ``"leak_first"``: ``V = (V * alpha_decay + syn) + i_offset``, what C's
        left-to-right evaluation of ``V * alpha + syn + i_offset`` would give (with FMA: ``fma(V, alpha, syn) +
        i_offset``). Open until probed on a board.
    state_precision : {"float32", "float64"}
        ``"float32"`` is the chip. ``"float64"`` keeps membrane and synaptic state in float64 with float32
        parameters and integer weights, as py-spinnaker2's Brian2 backend does, to compare with its traces.
    conv_x_axis : {"width", "height"}
        Which image axis the conv parameters ``stride_x``, ``pool_x``, ``pad_left``/``pad_right`` act along on the
        chip. Default ``"width"``, the reading of the names. Open: py-spinnaker2's converter feeds NIR's
        ``stride[0]`` (torch's height axis) into ``stride_x``, which is only right if the chip reads x as height.
    max_atoms_per_core : int
        Default neurons per PE (py-spinnaker2: 250 for the lif family); populations may lower it.
    max_targets_per_core : int
        Target neurons one synapse word can address on a PE (256).
    """

    threshold_op: ThresholdOp = ">="
    fused_multiply_add: bool = True
    weight_rounding: WeightRounding = "trunc"
    state_precision: StatePrecision = "float32"
    input_grouping: InputGrouping = "input_first"
    conv_x_axis: ConvXAxis = "width"
    max_atoms_per_core: int = DEFAULT_MAX_ATOMS_PER_CORE
    max_targets_per_core: int = MAX_TARGETS_PER_CORE

    def __post_init__(self) -> None:
        _check_choice("threshold_op", self.threshold_op, THRESHOLD_OPS)
        _check_choice("weight_rounding", self.weight_rounding, WEIGHT_ROUNDINGS)
        _check_choice("state_precision", self.state_precision, STATE_PRECISIONS)
        _check_choice("conv_x_axis", self.conv_x_axis, CONV_X_AXES)
        _check_choice("input_grouping", self.input_grouping, INPUT_GROUPINGS)
        if not isinstance(self.fused_multiply_add, bool):
            raise ConfigError(f"ChipProfile.fused_multiply_add must be a bool, got {self.fused_multiply_add!r}")
        for name in ("max_atoms_per_core", "max_targets_per_core"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"ChipProfile.{name} must be a positive int, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict form (for traces, NIR metadata and JSON reports)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ChipProfile":
        """Inverse of :meth:`to_dict`; unknown keys are an error, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"ChipProfile: unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def variants(cls, **fixed: Any) -> list["ChipProfile"]:
        """Every combination of the open arithmetic points (threshold, FMA, input grouping, rounding), other fields
        from ``fixed``."""
        roundings = [r for r in WEIGHT_ROUNDINGS if r != "exact"]
        return [cls(**{"threshold_op": op, "fused_multiply_add": fma, "input_grouping": grouping,
                       "weight_rounding": rounding, **fixed})
                for op in THRESHOLD_OPS for fma in (False, True) for grouping in INPUT_GROUPINGS
                for rounding in roundings]


def _check_choice(name: str, value: object, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"ChipProfile.{name} = {value!r} is not one of {choices}")
