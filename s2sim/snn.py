"""The network API, shaped like py-spinnaker2's ``spinnaker2.snn`` so user scripts port by changing an import.

    from s2sim import snn
    stim = snn.Population(1, "spike_list", {0: [1, 5]}, name="stim")
    pop = snn.Population(10, "lif_no_delay", {"threshold": 5.0, "alpha_decay": 0.9}, name="pop", record=["spikes", "v"])
    net = snn.Network("demo"); net.add(stim, pop, snn.Projection(stim, pop, [[0, 3, 7, 0]]))

Objects here only hold and check what the user wrote. Turning them into the integer and float32 arrays the chip
holds happens in :mod:`s2sim.lowering`, because that depends on the ChipProfile (weight rounding).
"""
from __future__ import annotations

from typing import Any

from .errors import ConfigError
from .lowering import lower
from .population import Population
from .projections import (CONV_AXIS_PAIRS, CONV_PARAM_DEFAULTS, CONV_PARAM_REQUIRED, Conv2DProjection, ConvGeometry,
                          Projection)
from .spec import NetworkSpec, network_spec

__all__ = ["Network", "Population", "Projection", "Conv2DProjection", "ConvGeometry", "CONV_AXIS_PAIRS",
           "CONV_PARAM_DEFAULTS", "CONV_PARAM_REQUIRED"]


class Network:
    """A set of populations and projections, run as one by a Simulator."""

    def __init__(self, name: str = "network") -> None:
        self.name = name
        self.populations: list[Population] = []
        self.projections: list[Projection | Conv2DProjection] = []

    def add(self, *objects: Population | Projection | Conv2DProjection) -> "Network":
        """Add populations and projections (in any order); names must be unique."""
        for obj in objects:
            if isinstance(obj, Population):
                if any(p is obj for p in self.populations):
                    continue
                if any(p.name == obj.name for p in self.populations):
                    raise ConfigError(f"network {self.name!r}: a population named {obj.name!r} exists already")
                self.populations.append(obj)
            elif isinstance(obj, (Projection, Conv2DProjection)):
                if not any(p is obj for p in self.projections):
                    self.projections.append(obj)
            else:
                raise ConfigError(f"network {self.name!r}: cannot add {type(obj).__name__}; expected Population, "
                                  "Projection or Conv2DProjection")
        return self

    def population(self, name: str) -> Population:
        """The population called ``name``."""
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise ConfigError(f"network {self.name!r}: no population named {name!r}; have "
                          f"{[p.name for p in self.populations]}")

    def validated(self) -> NetworkSpec:
        """The network as it is now, checked: an immutable :class:`~s2sim.spec.NetworkSpec` (profile-independent
        checks; :meth:`validate` adds the chip limits that depend on a ChipProfile)."""
        return network_spec(self)

    def validate(self, profile: Any = None) -> None:
        """Check the network against the chip's limits under ``profile`` (default ChipProfile()).

        Raises ConfigError / LimitError naming population, parameter, value and limit.
        """
        lower(self, profile)

    def reset(self) -> None:
        """Forget results of earlier runs (every run starts from v_init anyway)."""
        for pop in self.populations:
            pop._results = {}

    def __repr__(self) -> str:
        return f"Network({self.name!r}, {len(self.populations)} populations, {len(self.projections)} projections)"
