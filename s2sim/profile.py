"""ChipProfile: every point of the datapath that only a board can settle, as a value.

A chip variant is a profile, never a copied module: the C core, the numpy oracle and conformance inference all
read the same fields. docs/datapath.md explains each default and the evidence behind it.

Each neuron model is its own ARM binary (and its own host-side weight conversion), so the points a compiler or a
converter decides (spike test, fused multiply-adds, weight rounding) can differ between models: the top-level
fields are the default for every model and ``overrides`` replaces them for named models.
:meth:`ChipProfile.model_settings` gives the settings one model runs with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from .errors import ConfigError
from .models import DEFAULT_MAX_ATOMS_PER_CORE, KIND_CURR_EXP, MAX_TARGETS_PER_CORE, MODELS

ThresholdOp = Literal[">=", ">"]
WeightRounding = Literal["trunc", "nearest_even", "nearest_away", "floor", "exact"]
StatePrecision = Literal["float32", "float64"]
ConvXAxis = Literal["width", "height"]
InputGrouping = Literal["input_first", "leak_first", "left_to_right"]
RefractoryRule = Literal["held_v_tested", "no_spike"]

THRESHOLD_OPS = (">=", ">")
WEIGHT_ROUNDINGS = ("trunc", "nearest_even", "nearest_away", "floor", "exact")
STATE_PRECISIONS = ("float32", "float64")
CONV_X_AXES = ("width", "height")
INPUT_GROUPINGS = ("input_first", "leak_first", "left_to_right")
REFRACTORY_RULES = ("held_v_tested", "no_spike")

#: The fields a model's binary or converter decides, which ``overrides`` may set per model.
PER_MODEL_FIELDS = (
    "threshold_op",
    "fused_multiply_add",
    "current_fused_multiply_add",
    "weight_rounding",
    "conv_weight_rounding",
)
#: Neuron models (everything but the spike_list source), the keys ``overrides`` accepts.
NEURON_MODELS = tuple(name for name, m in MODELS.items() if not m.is_input)
#: Models a per-model field means something for: synaptic currents exist only in the curr_exp models, and only
#: lif_conv2d is the target of a conv kernel.
_FIELD_MODELS = {
    "current_fused_multiply_add": tuple(m for m in NEURON_MODELS if MODELS[m].kind == KIND_CURR_EXP),
    "conv_weight_rounding": tuple(m for m in NEURON_MODELS if MODELS[m].conv_target),
}


def field_models(name: str) -> tuple[str, ...]:
    """Return the neuron models whose behaviour the per-model field ``name`` can change."""
    return _FIELD_MODELS.get(name, NEURON_MODELS)


@dataclass(frozen=True)
class ModelSettings:
    """The per-model fields of a profile resolved for one neuron model (no defaults left to fill in).

    ``weight_rounding`` applies to connection lists into the model, ``conv_weight_rounding`` to conv kernels into
    it; ``current_fused_multiply_add`` to the synaptic-current decay of the curr_exp models.
    """

    threshold_op: ThresholdOp
    fused_multiply_add: bool
    current_fused_multiply_add: bool
    weight_rounding: WeightRounding
    conv_weight_rounding: WeightRounding


@dataclass(frozen=True)
class ChipProfile:
    """The open points of the SpiNNaker2 PE datapath, each with a documented default.

    Parameters
    ----------
    threshold_op : {">=", ">"}
        Spike test. ``">="`` is what the public copy of the lif_curr_exp ARM code does (verified for that model);
        one third-party Brian2-backend measurement saw ``">"`` for ``lif`` (open).
    fused_multiply_add : bool
        Whether the membrane update ``V * alpha_decay + input`` is rounded once (``vfma.f32``) or twice. Default
        True: GCC contracts ``a * b + c`` by default in GNU C dialects on an FPU that has FMA, as the Cortex-M4F
        does (a verified fact about the compiler; which dialect the vendor builds with is open).
    current_fused_multiply_add : bool or None
        The same for the synaptic-current decay ``I * decay + ring`` of the curr_exp models. None (default): as
        ``fused_multiply_add`` (one compilation contracts both or neither).
    weight_rounding : {"trunc", "nearest_even", "nearest_away", "floor", "exact"}
        How non-integer float weights of connection lists become integers. Default ``"trunc"``: py-spinnaker2's
        conv path casts with ``astype(int8)`` (verified), which truncates toward zero. ``"exact"`` refuses
        non-integer weights.
    conv_weight_rounding : same choices, or None
        The same for conv kernels (``Conv2DProjection``). None (default): as ``weight_rounding``.
    state_precision : {"float32", "float64"}
        ``"float32"`` is the chip. ``"float64"`` keeps membrane and synaptic state in float64 with float32
        parameters and integer weights, as py-spinnaker2's Brian2 backend does, to compare with its traces.
    input_grouping : {"input_first", "leak_first", "left_to_right"}
        Where ``i_offset`` and the synaptic input join the membrane update (``E``, ``I``: this tick's excitatory
        and inhibitory input as float, or the currents ``I_exc``, ``I_inh`` of the curr_exp models).
        ``"input_first"``: ``V * alpha + ((E - I) + i_offset)``, the grouping the reference reads from the chip
        code (inferred). ``"leak_first"``: ``(V * alpha + (E - I)) + i_offset``. ``"left_to_right"``:
        ``((V * alpha + E) - I) + i_offset``, what C's left-to-right evaluation of
        ``V * alpha + E - I + i_offset`` gives. With FMA the product joins the first addition in one rounding.
    conv_x_axis : {"width", "height"}
        Which image axis the conv parameters ``stride_x``, ``pool_x``, ``pad_left``/``pad_right`` act along on the
        chip. Default ``"width"``, the reading of the names. Open: py-spinnaker2's converter feeds NIR's
        ``stride[0]`` (torch's height axis) into ``stride_x``, which is only right if the chip reads x as height.
    flush_to_zero : bool
        The FPU's flush-to-zero mode (FPSCR.FZ): subnormal operands read as zero and results that are tiny before
        rounding become zero (of the same sign). Off by default on the M4F (verified for the core); whether the
        firmware sets it is open. float32 state only.
    refractory_rule : {"held_v_tested", "no_spike"}
        curr_exp models while the refractory counter is positive: the update only counts down and holds V, then
        the threshold test runs as for every neuron, so a held V at or above threshold spikes, resets and restarts
        the counter (``"held_v_tested"``, what the public copy of the lif_curr_exp code does, verified there);
        ``"no_spike"``: no spike while refractory.
    overrides : mapping of model name to {field: value}
        Per-model values of the fields in :data:`PER_MODEL_FIELDS`, e.g. ``{"lif": {"threshold_op": ">"}}``.
        A field that cannot affect the model (currents of a lif model, conv rounding of a non-conv model) is
        refused rather than ignored.
    max_atoms_per_core : int
        Default neurons per PE (py-spinnaker2: 250 for the lif family); populations may lower it.
    max_targets_per_core : int
        Target neurons one synapse word can address on a PE (256).
    """

    threshold_op: ThresholdOp = ">="
    fused_multiply_add: bool = True
    current_fused_multiply_add: bool | None = None
    weight_rounding: WeightRounding = "trunc"
    conv_weight_rounding: WeightRounding | None = None
    state_precision: StatePrecision = "float32"
    input_grouping: InputGrouping = "input_first"
    conv_x_axis: ConvXAxis = "width"
    flush_to_zero: bool = False
    refractory_rule: RefractoryRule = "held_v_tested"
    overrides: Any = ()
    max_atoms_per_core: int = DEFAULT_MAX_ATOMS_PER_CORE
    max_targets_per_core: int = MAX_TARGETS_PER_CORE

    def __post_init__(self) -> None:
        _check_choice("threshold_op", self.threshold_op, THRESHOLD_OPS)
        _check_choice("weight_rounding", self.weight_rounding, WEIGHT_ROUNDINGS)
        _check_choice("state_precision", self.state_precision, STATE_PRECISIONS)
        _check_choice("conv_x_axis", self.conv_x_axis, CONV_X_AXES)
        _check_choice("input_grouping", self.input_grouping, INPUT_GROUPINGS)
        _check_choice("refractory_rule", self.refractory_rule, REFRACTORY_RULES)
        for name in ("fused_multiply_add", "flush_to_zero"):
            _check_bool(f"ChipProfile.{name}", getattr(self, name))
        if self.current_fused_multiply_add is not None:
            _check_bool("ChipProfile.current_fused_multiply_add", self.current_fused_multiply_add)
        if self.conv_weight_rounding is not None:
            _check_choice("conv_weight_rounding", self.conv_weight_rounding, WEIGHT_ROUNDINGS)
        if self.flush_to_zero and self.state_precision != "float32":
            raise ConfigError(
                "ChipProfile.flush_to_zero is a setting of the chip's float32 FPU; state_precision "
                f"{self.state_precision!r} (the Brian2 backend's host arithmetic) has no such mode"
            )
        object.__setattr__(self, "overrides", _normalise_overrides(self.overrides))
        for name in ("max_atoms_per_core", "max_targets_per_core"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"ChipProfile.{name} must be a positive int, got {value!r}")

    def model_settings(self, model: str) -> ModelSettings:
        """Return the per-model fields as neuron model ``model`` runs with them (its overrides, else the defaults)."""
        if model not in NEURON_MODELS:
            raise ConfigError(f"ChipProfile.model_settings: {model!r} is not a neuron model; known: {NEURON_MODELS}")
        own = dict(self.overrides_dict().get(model, {}))
        fma = own.get("fused_multiply_add", self.fused_multiply_add)
        current = self.current_fused_multiply_add if self.current_fused_multiply_add is not None else fma
        rounding = own.get("weight_rounding", self.weight_rounding)
        conv = self.conv_weight_rounding if self.conv_weight_rounding is not None else rounding
        return ModelSettings(
            threshold_op=own.get("threshold_op", self.threshold_op),
            fused_multiply_add=fma,
            current_fused_multiply_add=own.get("current_fused_multiply_add", current),
            weight_rounding=rounding,
            conv_weight_rounding=own.get("conv_weight_rounding", conv),
        )

    def overrides_dict(self) -> dict[str, dict[str, Any]]:
        """Return ``overrides`` as a plain dict model -> {field: value}."""
        return {model: dict(items) for model, items in self.overrides}

    def to_dict(self) -> dict[str, Any]:
        """Plain dict form (for traces, NIR metadata and JSON reports)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["overrides"] = self.overrides_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChipProfile:
        """Inverse of :meth:`to_dict`; unknown keys are an error, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"ChipProfile: unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


def _normalise_overrides(overrides: Any) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    """Check ``overrides`` and freeze it into sorted tuples (so profiles stay hashable and compare by value)."""
    if isinstance(overrides, tuple) and all(isinstance(o, tuple) and len(o) == 2 for o in overrides):
        overrides = {model: dict(items) for model, items in overrides}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"ChipProfile.overrides must be a dict model -> {{field: value}}, got {overrides!r}")
    out = []
    for model, settings in overrides.items():
        if model not in NEURON_MODELS:
            raise ConfigError(f"ChipProfile.overrides: {model!r} is not a neuron model; known: {NEURON_MODELS}")
        if not isinstance(settings, Mapping):
            raise ConfigError(f"ChipProfile.overrides[{model!r}] must be a dict field -> value, got {settings!r}")
        for name, value in settings.items():
            where = f"ChipProfile.overrides[{model!r}][{name!r}]"
            if name not in PER_MODEL_FIELDS:
                raise ConfigError(f"{where}: not a per-model field; per-model fields: {PER_MODEL_FIELDS}")
            if model not in field_models(name):
                raise ConfigError(
                    f"{where}: has no effect on {model!r} (it applies to {field_models(name)}); "
                    "refused rather than ignored"
                )
            if name in ("fused_multiply_add", "current_fused_multiply_add"):
                _check_bool(where, value)
            else:
                _check_choice(
                    f"overrides[{model!r}][{name!r}]",
                    value,
                    THRESHOLD_OPS if name == "threshold_op" else WEIGHT_ROUNDINGS,
                )
        if settings:
            out.append((model, tuple(sorted(settings.items()))))
    return tuple(sorted(out))


def _check_bool(where: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be a bool, got {value!r}")


def _check_choice(name: str, value: object, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"ChipProfile.{name} = {value!r} is not one of {choices}")
