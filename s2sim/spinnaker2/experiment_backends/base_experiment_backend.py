"""``spinnaker2.experiment_backends.base_experiment_backend``: the board communication backends."""

from __future__ import annotations

import enum


class ExperimentBackendType(str, enum.Enum):
    """Which host-board protocol py-spinnaker2 uses.

    Scripts build it from a name (``ExperimentBackendType("spinnman2")``). The simulator contacts no board, so the
    choice changes nothing in a run.
    """

    SPINNMAN2 = "spinnman2"
    CPP = "cpp"
