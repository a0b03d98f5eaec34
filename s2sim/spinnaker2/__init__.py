"""py-spinnaker2's module tree on the bit-exact simulator: a stand-in for the vendor SDK.

Scripts written for py-spinnaker2 (import name ``spinnaker2``) run here in one of two ways:

* change the import: ``from spinnaker2 import snn, hardware`` becomes ``from s2sim.spinnaker2 import snn, hardware``;
* change nothing: ``s2sim exec script.py`` makes ``import spinnaker2`` resolve to this package for that process only.

Submodules, each named as in py-spinnaker2: :mod:`.snn` (the network API, the same classes as :mod:`s2sim.snn`),
:mod:`.hardware` (``SpiNNaker2Chip``, ``SpiNNcloud48NodeBoard``, ``FPGA_Rev2``: each runs on the simulator),
:mod:`.brian2_sim` (``Brian2Backend``: float64 state, as py-spinnaker2's software backend), :mod:`.helpers`,
:mod:`.ann2snn_helpers`, :mod:`.s2_nir` (NIR conversion), and the board-only settings scripts import
(:mod:`.experiment_backends`, :mod:`.neuron_models`), which are accepted and carried into each run's record.

Which chip variant the hardware classes reproduce is a :class:`s2sim.ChipProfile`: :func:`use_profile` sets it
(``s2sim exec --profile profile.json`` does so from a file).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .backend import RunRecord, add_run_observer, current_profile, remove_run_observer, use_profile

#: Submodules a script may import, as in py-spinnaker2.
SUBMODULES = (
    "snn",
    "hardware",
    "brian2_sim",
    "helpers",
    "ann2snn_helpers",
    "s2_nir",
    "experiment_backends",
    "neuron_models",
    "logger",
    "mapper",
)


def __getattr__(name: str) -> Any:
    # `import spinnaker2; spinnaker2.hardware.SpiNNaker2Chip()` works without importing every submodule up front
    if name in SUBMODULES:
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SUBMODULES", "RunRecord", "add_run_observer", "current_profile", "remove_run_observer", "use_profile"]
