"""``spinnaker2.s2_nir``: NIR graphs -> networks, with py-spinnaker2's names, config object and return types.

The conversion itself is s2sim's (:mod:`s2sim.nir_import`), which follows py-spinnaker2's and records in
``net.conversion_report`` every point where it differs (docs/conformance.md lists them). What this module adds
is py-spinnaker2's surface: a mutable :class:`ConversionConfig` (``cfg.dt = 1e-4``), the enums
:class:`ResetMethod` and :class:`IntegratorMethod`, ``from_nir`` returning lists and also accepting the older
keyword form (``outputs=``, ``discretization_timestep=``), populations carrying ``nir_v_scale`` and
``nir_w_scale``, and the graph helpers scripts call (``add_output_to_node``, ``model_summary``,
``replace_sumpool2d_by_sumpool2d_if``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConversionError
from ..nir_import import Conversion, Integrator, Reset, convert
from ..nir_import import ConversionConfig as _S2SimConfig
from ..snn import Network, Population


class HardwareConstraintError(ConversionError):
    """A graph the chip cannot hold (py-spinnaker2's name; s2sim raises it as a ConversionError)."""


class NotFoundError(ConversionError, KeyError):
    """A node named in a call is not in the graph."""


class IntegratorMethod(str, enum.Enum):
    """How time constants become per-tick decays: ``1 - dt/tau`` (FORWARD) or ``exp(-dt/tau)`` (EXPONENTIAL)."""

    FORWARD = "Forward-Euler"
    EXPONENTIAL = "Exponential-Euler"


class ResetMethod(str, enum.Enum):
    """Reset after a spike: subtract the threshold, or set to v_reset (zero)."""

    SUBTRACT = "subtract"
    ZERO = "zero"


@dataclass
class ConversionConfig:
    """py-spinnaker2's conversion settings, set by keyword or by attribute assignment (defaults as py-spinnaker2).

    Checked when :func:`from_nir` uses them, with errors naming the field.
    """

    dt: float = 1.0
    output_record: list[str] = field(default_factory=lambda: ["spikes"])
    conn_delay: int = 1
    scale_weights: bool = False
    weight_scale_percentile: float = 100.0
    integrator: IntegratorMethod = IntegratorMethod.EXPONENTIAL
    reset: ResetMethod = ResetMethod.SUBTRACT

    def to_s2sim(self) -> _S2SimConfig:
        """Return the equivalent :class:`s2sim.ConversionConfig` (validated)."""
        return _S2SimConfig(
            dt=self.dt,
            output_record=tuple(self.output_record),
            conn_delay=self.conn_delay,
            scale_weights=self.scale_weights,
            weight_scale_percentile=self.weight_scale_percentile,
            integrator=Integrator[_enum_name(self.integrator, IntegratorMethod, "integrator")],
            reset=Reset[_enum_name(self.reset, ResetMethod, "reset")],
        )


def _enum_name(value: Any, enum_type: type[enum.Enum], field_name: str) -> str:
    """Return the name of an enum member given the member, its value or its name (s2sim's enums share the names)."""
    for member in enum_type:
        if value is member or value == member.value or (isinstance(value, str) and value.upper() == member.name):
            return member.name
    raise ConversionError(f"ConversionConfig.{field_name} = {value!r} is not one of {[m.name for m in enum_type]}")


def from_nir(
    nir_model: Any,
    config: ConversionConfig | None = None,
    *,
    outputs: list[str] | None = None,
    discretization_timestep: float | None = None,
    conn_delay: int | None = None,
    scale_weights: bool | None = None,
) -> tuple[Network, list[Population], list[Population]]:
    """Convert a NIR graph into a network.

    Parameters
    ----------
    nir_model : nir.NIRGraph or path
    config : ConversionConfig, optional
    outputs, discretization_timestep, conn_delay, scale_weights
        py-spinnaker2's older keyword form (the NIR paper's scripts), used instead of ``config``: forward-Euler
        integration and zero reset, the settings with which the published NIR-paper benchmark is reproduced.

    Returns
    -------
    (net, input_pops, output_pops)
        Lists in the graph's node order. Every neuron population carries ``nir_v_scale`` (per neuron; recorded
        voltage / nir_v_scale is in NIR units) and ``nir_w_scale``; ``net.conversion_report`` explains the mapping.
    """
    legacy = {
        k: v
        for k, v in (
            ("outputs", outputs),
            ("discretization_timestep", discretization_timestep),
            ("conn_delay", conn_delay),
            ("scale_weights", scale_weights),
        )
        if v is not None
    }
    if legacy and config is not None:
        raise ConversionError(
            f"from_nir: give either a ConversionConfig or the older keywords {sorted(legacy)}, not both"
        )
    if config is None:
        config = (
            ConversionConfig(integrator=IntegratorMethod.FORWARD, reset=ResetMethod.ZERO)
            if legacy
            else ConversionConfig()
        )
        config.output_record = list(outputs if outputs is not None else config.output_record)
        config.dt = discretization_timestep if discretization_timestep is not None else config.dt
        config.conn_delay = conn_delay if conn_delay is not None else config.conn_delay
        config.scale_weights = scale_weights if scale_weights is not None else config.scale_weights
    if not isinstance(config, ConversionConfig):
        raise ConversionError(
            f"from_nir: config must be a spinnaker2 s2_nir.ConversionConfig, got {type(config).__name__}"
        )
    conv: Conversion = convert(nir_model, config.to_s2sim())
    for pop in conv.net.populations:
        pop.nir_v_scale = getattr(pop, "voltage_scale", None)
        pop.nir_w_scale = getattr(pop, "weight_scale", 1.0)
    return conv.net, list(conv.input_pops.values()), list(conv.output_pops.values())


def add_output_to_node(node_name: str, nir_model: Any, output_name: str) -> None:
    """Add an Output node ``output_name`` fed by ``node_name`` (so its population records ``output_record``)."""
    import nir

    if node_name not in nir_model.nodes:
        raise NotFoundError(f"add_output_to_node: no node {node_name!r} in the graph; nodes: {sorted(nir_model.nodes)}")
    if output_name in nir_model.nodes:
        raise ConversionError(f"add_output_to_node: the graph already has a node named {output_name!r}")
    node = nir_model.nodes[node_name]
    nir_model.nodes[output_name] = nir.Output(output_type=dict(node.output_type))
    nir_model.edges.append((node_name, output_name))


def model_summary(nir_model: Any) -> None:
    """Print every node: name, type, input and output shapes, and where its edges lead."""
    targets: dict[str, list[str]] = {}
    for src, dst in nir_model.edges:
        targets.setdefault(src, []).append(dst)
    for name, node in nir_model.nodes.items():
        shapes = [_shape_text(getattr(node, attr, None)) for attr in ("input_type", "output_type")]
        print(f"{name}: {type(node).__name__}, in {shapes[0]}, out {shapes[1]} -> {targets.get(name, [])}")


def _shape_text(types: Any) -> str:
    if not types:
        return "?"
    return ", ".join(f"{k}={tuple(np.asarray(v).tolist())}" for k, v in types.items())


def replace_sumpool2d_by_sumpool2d_if(nir_model: Any) -> Any:
    """Insert an IF node after every SumPool2d whose output does not go straight into a LIF/IF node.

    The IF node (``r = 1``, ``v_threshold = 1``) is named ``<pool>_if``, so the pooled sums become spikes; returns the
    graph.
    """
    import nir

    for name, node in list(nir_model.nodes.items()):
        if not isinstance(node, nir.SumPool2d):
            continue
        outgoing = [e for e in nir_model.edges if e[0] == name]
        if all(isinstance(nir_model.nodes[dst], (nir.LIF, nir.IF)) for _, dst in outgoing):
            continue
        shape = np.asarray(next(iter(node.output_type.values())))
        n = np.ones(tuple(int(s) for s in shape))
        if_name = f"{name}_if"
        nir_model.nodes[if_name] = nir.IF(r=n, v_threshold=n.copy(), v_reset=np.zeros_like(n))
        nir_model.edges[:] = [(if_name, dst) if src == name else (src, dst) for src, dst in nir_model.edges]
        nir_model.edges.append((name, if_name))
    return nir_model


__all__ = [
    "ConversionConfig",
    "HardwareConstraintError",
    "IntegratorMethod",
    "NotFoundError",
    "ResetMethod",
    "add_output_to_node",
    "from_nir",
    "model_summary",
    "replace_sumpool2d_by_sumpool2d_if",
]
