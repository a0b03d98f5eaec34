"""``spinnaker2.mapper``: py-spinnaker2's mapping of populations onto PEs and its experiment configuration.

Scripts import it (often without using it). s2sim places networks itself (:func:`s2sim.place`, docs/placement.md)
and generates no board configuration, so the names exist and say so when used: importing works, calling them
raises NotModelledError.
"""

from __future__ import annotations

from typing import Any

from ..errors import NotModelledError

_WHY = (
    "s2sim places networks with its own model (s2sim.place, docs/placement.md) and generates no board "
    "configuration; set a population's neurons per PE with pop.set_max_atoms_per_core(n)"
)


class _Unmodelled:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotModelledError(f"spinnaker2.mapper.{type(self).__name__}: {_WHY}")


class Mapper(_Unmodelled):
    """py-spinnaker2's mapper (not modelled)."""

    def map_and_generate_experiment_config(self, *args: Any, **kwargs: Any) -> Any:
        """Raise NotModelledError: s2sim has no mapper of its own."""
        raise NotModelledError(f"spinnaker2.mapper.Mapper.map_and_generate_experiment_config: {_WHY}")


class IterativeMapper(Mapper):
    """py-spinnaker2's iterative mapper (not modelled)."""


class SynapseWordSize(_Unmodelled):
    """py-spinnaker2's synapse word layouts (not modelled; s2sim's are in docs/datapath.md)."""


class SynapseWordSpec(_Unmodelled):
    """py-spinnaker2's synapse word specification (not modelled)."""
