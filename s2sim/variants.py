"""The open points of the datapath as named coordinates: what chip-variant inference searches.

A ChipProfile fixes every open point. Here each one is a :class:`Point`: a global field (``state_precision``) or a
per-model field for one model (``threshold_op[lif]``), with the values inference tries. :func:`relevant_points`
says, from a network's structure alone, which points can change what one population records (its own model's
settings, the global arithmetic, and everything upstream of it), so :func:`s2sim.conformance.infer` can search each
population over its own few points instead of the product of all of them.

    from s2sim import variants
    [p.name for p in variants.open_points()]     # 'threshold_op[lif]', ..., 'flush_to_zero', ...
    variants.profile_of({variants.Point("threshold_op", "lif"): ">"})   # ChipProfile(overrides={'lif': ...})
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np

from .errors import ConfigError
from .models import KIND_CURR_EXP
from .profile import (
    CONV_X_AXES,
    INPUT_GROUPINGS,
    NEURON_MODELS,
    PER_MODEL_FIELDS,
    REFRACTORY_RULES,
    STATE_PRECISIONS,
    THRESHOLD_OPS,
    WEIGHT_ROUNDINGS,
    ChipProfile,
    field_models,
)
from .snn import CONV_AXIS_PAIRS, Conv2DProjection, Network, Population

#: Rounding modes a chip could use ("exact" is s2sim's refusal of non-integer weights, not a chip behaviour).
CHIP_ROUNDINGS = tuple(r for r in WEIGHT_ROUNDINGS if r != "exact")
#: The values inference tries for each field.
FIELD_VALUES: Mapping[str, tuple] = {
    "threshold_op": THRESHOLD_OPS,
    "fused_multiply_add": (False, True),
    "current_fused_multiply_add": (False, True),
    "weight_rounding": CHIP_ROUNDINGS,
    "conv_weight_rounding": CHIP_ROUNDINGS,
    "state_precision": STATE_PRECISIONS,
    "input_grouping": INPUT_GROUPINGS,
    "conv_x_axis": CONV_X_AXES,
    "flush_to_zero": (False, True),
    "refractory_rule": REFRACTORY_RULES,
}
#: Fields that hold for every model at once.
GLOBAL_FIELDS = ("state_precision", "input_grouping", "conv_x_axis", "flush_to_zero", "refractory_rule")


@dataclass(frozen=True, order=True)
class Point:
    """One open point: a global field (``model`` None) or a per-model field of one neuron model."""

    field: str
    model: str | None = None

    @property
    def name(self) -> str:
        """The point's name: ``field[model]`` for a per-model field, else the field."""
        return f"{self.field}[{self.model}]" if self.model else self.field

    @property
    def values(self) -> tuple:
        """The values the point's field can take."""
        return FIELD_VALUES[self.field]

    def __str__(self) -> str:
        return self.name


def open_points() -> tuple[Point, ...]:
    """Every open point: each per-model field for each model it can affect, then the global fields."""
    per_model = [Point(f, m) for f in PER_MODEL_FIELDS for m in field_models(f)]
    return tuple(per_model) + tuple(Point(f) for f in GLOBAL_FIELDS)


def point_named(name: str) -> Point:
    """Return the point called ``name`` (as :attr:`Point.name` spells it)."""
    for point in open_points():
        if point.name == name:
            return point
    raise ConfigError(f"no open point named {name!r}; known: {[p.name for p in open_points()]}")


def value_of(profile: ChipProfile, point: Point) -> Any:
    """Return the value ``profile`` gives ``point``."""
    if point.model is None:
        return getattr(profile, point.field)
    return getattr(profile.model_settings(point.model), point.field)


def profile_of(assignment: Mapping[Point, Any], base: ChipProfile | None = None) -> ChipProfile:
    """Return the profile that gives every point of ``assignment`` its value and every other point ``base``'s value.

    The result is canonical: each per-model field's top-level value is the one most models use, and the others are
    overrides, so equal assignments give equal profiles. Raises ConfigError for an impossible combination (e.g.
    flush-to-zero with float64 state).
    """
    base = base or ChipProfile()
    values = {p: value_of(base, p) for p in open_points()}
    for point, value in assignment.items():
        if value not in point.values:
            raise ConfigError(f"{point.name} = {value!r} is not one of {point.values}")
        values[point] = value
    top = {f: values[Point(f)] for f in GLOBAL_FIELDS}
    for f in ("threshold_op", "fused_multiply_add", "weight_rounding"):
        top[f] = _majority([values[Point(f, m)] for m in field_models(f)], getattr(base, f))
    fixed = {k: v for k, v in base.to_dict().items() if k in ("max_atoms_per_core", "max_targets_per_core")}
    profile = ChipProfile(**top, **fixed)
    overrides: dict[str, dict[str, Any]] = {}
    for f in PER_MODEL_FIELDS:  # in order: current follows fma and conv rounding follows list rounding
        for m in field_models(f):
            if value_of(profile, Point(f, m)) != values[Point(f, m)]:
                overrides.setdefault(m, {})[f] = values[Point(f, m)]
                profile = ChipProfile(**top, **fixed, overrides=overrides)
    return profile


def _majority(values: Sequence[Any], tie: Any) -> Any:
    counts = {v: values.count(v) for v in values}
    best = max(counts.values())
    winners = [v for v in counts if counts[v] == best]
    return tie if tie in winners else winners[0]


def combinations(
    points: Sequence[Point],
    restrict: Mapping[str, Sequence[Any]] | None = None,
) -> Iterator[dict[Point, Any]]:
    """Yield every assignment of ``points``, skipping impossible ones (flush-to-zero with float64 state).

    ``restrict`` limits the values, keyed by point or field name.
    """
    points = sorted(points)
    choices = [allowed_values(p, restrict) for p in points]
    for values in product(*choices):
        combo = dict(zip(points, values, strict=True))
        if combo.get(Point("flush_to_zero")) and combo.get(Point("state_precision")) == "float64":
            continue
        yield combo


def allowed_values(point: Point, restrict: Mapping[str, Sequence[Any]] | None) -> tuple:
    """Return the values of ``point`` that ``restrict`` (point name or field name -> values) leaves."""
    restrict = restrict or {}
    allowed = restrict.get(point.name, restrict.get(point.field))
    if allowed is None:
        return point.values
    bad = [v for v in allowed if v not in point.values]
    if bad:
        raise ConfigError(f"restriction of {point.name}: {bad} not among its values {point.values}")
    return tuple(v for v in point.values if v in allowed)


def combination_count(points: Sequence[Point], restrict: Mapping[str, Sequence[Any]] | None = None) -> int:
    """How many assignments :func:`combinations` would try (an upper bound: impossible ones included)."""
    return int(np.prod([len(allowed_values(p, restrict)) for p in points], dtype=np.int64))


# -- structural relevance -------------------------------------------------------------------------------------
def relevant_points(network: Network) -> dict[str, frozenset[Point]]:
    """For each population, the points that can change what it records, from the network's structure alone.

    A neuron population depends on its model's spike test and membrane FMA, the global arithmetic (state
    precision, input grouping, flush-to-zero), for curr_exp models the current FMA and, when some t_refrac is
    positive, the refractory rule; on the weight rounding of incoming projections with a non-integer weight (every
    mode leaves an integer unchanged); on the conv x-axis reading when an incoming conv has different x and y
    parameters (swapping equal ones changes nothing); and on everything its pre populations depend on. A
    spike_list depends on nothing. The list errs on the side of too many points, never too few.
    """
    own = {pop.name: set(_own_points(network, pop)) for pop in network.populations}
    pres: dict[str, set[str]] = {pop.name: set() for pop in network.populations}
    for proj in network.projections:
        pres[proj.post.name].add(proj.pre.name)
    closed = {name: set(points) for name, points in own.items()}
    changed = True
    while changed:  # upstream closure (recurrent projections make this a fixpoint, not one pass)
        changed = False
        for name, sources in pres.items():
            for src in sources:
                if not closed[src] <= closed[name]:
                    closed[name] |= closed[src]
                    changed = True
    return {name: frozenset(points) for name, points in closed.items()}


def _own_points(network: Network, pop: Population) -> Iterator[Point]:
    if pop.model.is_input:
        return
    model = pop.neuron_model
    yield from (Point("threshold_op", model), Point("fused_multiply_add", model))
    yield from (Point(f) for f in ("state_precision", "input_grouping", "flush_to_zero"))
    if pop.model.kind == KIND_CURR_EXP:
        yield Point("current_fused_multiply_add", model)
        if np.any(pop.param("t_refrac") > 0):
            yield Point("refractory_rule")
    for proj in network.projections:
        if proj.post is not pop:
            continue
        weights = np.asarray(proj.weights, dtype=np.float64)
        is_conv = isinstance(proj, Conv2DProjection)
        if np.any(weights != np.trunc(weights)):
            yield Point("conv_weight_rounding" if is_conv else "weight_rounding", model)
        if isinstance(proj, Conv2DProjection) and any(
            proj.conv_params[x] != proj.conv_params[y] for x, y in CONV_AXIS_PAIRS
        ):
            yield Point("conv_x_axis")


__all__ = [
    "CHIP_ROUNDINGS",
    "FIELD_VALUES",
    "GLOBAL_FIELDS",
    "NEURON_MODELS",
    "Point",
    "allowed_values",
    "combination_count",
    "combinations",
    "open_points",
    "point_named",
    "profile_of",
    "relevant_points",
    "value_of",
]
