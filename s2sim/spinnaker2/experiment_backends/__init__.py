"""``spinnaker2.experiment_backends``: how py-spinnaker2 talks to a board. Accepted, recorded, otherwise inert."""

from __future__ import annotations

from .backend_settings import ROUTING, BackendSettings
from .base_experiment_backend import ExperimentBackendType

__all__ = ["ROUTING", "BackendSettings", "ExperimentBackendType"]
