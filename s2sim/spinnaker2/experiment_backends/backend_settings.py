"""``spinnaker2.experiment_backends.backend_settings``: process-wide board settings."""

from __future__ import annotations

import enum
from typing import Any

from ..backend import say_once


class ROUTING(enum.Enum):
    """How spikes are routed between chips: multicast or chip-to-chip."""

    MC = "mc"
    C2C = "c2c"


class BackendSettings:
    """py-spinnaker2's board settings.

    One object per process (scripts create it, set fields, and never pass it on, so every ``BackendSettings()`` is the
    same object here too).

    Known fields: ``routing_type`` (ROUTING), ``rebuild_apps`` (bool), ``single_chip`` (bool, also written
    ``_single_chip``). Other fields are accepted with an IgnoredSettingWarning, since they mean nothing to s2sim.
    """

    _instance: BackendSettings | None = None
    _KNOWN = ("routing_type", "rebuild_apps", "single_chip", "_single_chip")

    def __new__(cls) -> BackendSettings:
        """Return the process's one settings object (created with py-spinnaker2's defaults)."""
        if cls._instance is None:
            inst = super().__new__(cls)
            object.__setattr__(inst, "routing_type", ROUTING.MC)
            object.__setattr__(inst, "rebuild_apps", False)
            object.__setattr__(inst, "single_chip", True)
            cls._instance = inst
        return cls._instance

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "_single_chip":
            key = "single_chip"
        if key not in self._KNOWN:
            say_once(
                f"BackendSettings.{key}",
                f"BackendSettings.{key} is not a setting s2sim knows; it is stored "
                "but changes nothing in the simulator",
            )
        object.__setattr__(self, key, value)

    def __getattr__(self, key: str) -> Any:
        if key == "_single_chip":
            return self.single_chip
        raise AttributeError(f"BackendSettings has no setting {key!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-able dict (for a run's record)."""
        return {
            k: (v.name if isinstance(v, enum.Enum) else v)
            for k, v in vars(self).items()
            if isinstance(v, (bool, int, float, str, enum.Enum, type(None)))
        }
