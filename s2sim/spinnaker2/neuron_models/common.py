"""``spinnaker2.neuron_models.common``: DVFS settings of an application."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError


class PmgtMode(enum.Enum):
    """DVFS mode of the PEs running an application.

    Always the low or the high performance level, or per tick by the number of received packets (AUTO).
    """

    PL_MODE_LOW = "low"
    PL_MODE_HIGH = "high"
    PL_MODE_AUTO = "auto"


@dataclass
class DVFSParams:
    """DVFS parameters of an application.

    Parameters
    ----------
    mode : PmgtMode
    pl_threshold : int
        In AUTO mode, a PE runs a tick at the high performance level when it received more spike packets than
        this in the tick.
    """

    mode: PmgtMode
    pl_threshold: int

    def __post_init__(self) -> None:
        if not isinstance(self.mode, PmgtMode):
            raise ConfigError(
                f"DVFSParams.mode must be a PmgtMode (PL_MODE_LOW, PL_MODE_HIGH, PL_MODE_AUTO), got {self.mode!r}"
            )
        if isinstance(self.pl_threshold, bool) or not isinstance(self.pl_threshold, int) or self.pl_threshold < 0:
            raise ConfigError(f"DVFSParams.pl_threshold must be a non-negative int, got {self.pl_threshold!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for run records."""
        return {"mode": self.mode.name, "pl_threshold": self.pl_threshold}
