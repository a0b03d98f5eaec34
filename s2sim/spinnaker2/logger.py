"""``spinnaker2.logger``: py-spinnaker2's logging set-up (scripts import it; s2sim logs through ``logging``)."""

from __future__ import annotations

import logging
from typing import Any


class SpiNNaker2Logger:
    """``SpiNNaker2Logger.setup(level=...)`` sets the level of s2sim's loggers (py-spinnaker2's logs its own)."""

    @staticmethod
    def setup(level: Any = logging.INFO) -> None:
        """Set the level of s2sim's logger."""
        logging.getLogger("s2sim").setLevel(level)
