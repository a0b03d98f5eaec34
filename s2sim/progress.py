"""Progress of long work: tqdm bars and step messages, both on stderr, so stdout stays the command's result.

Bars are drawn only where someone watches: by default (mode ``"auto"``) when stderr is a terminal, never in a
pipe, a log file or a test. A function that draws one takes ``progress: bool | None``; None follows the mode set
here, which the command line sets from ``--progress`` and ``--quiet``.

Step messages ("quantizing", "wrote out.h5") go to the ``s2sim`` logger at INFO level: the command line shows them
(``--quiet`` hides them); a library user sees them after ``logging.basicConfig(level=logging.INFO)``.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

from .errors import ConfigError

#: The logger of every s2sim module (messages about steps and outputs, never results).
logger = logging.getLogger("s2sim")

MODES = ("auto", "on", "off")
_mode = "auto"


def set_mode(mode: str) -> str:
    """Set when bars are drawn (``auto``: when stderr is a terminal; ``on``; ``off``); returns the previous mode."""
    global _mode
    if mode not in MODES:
        raise ConfigError(f"progress mode {mode!r} is not one of {MODES}")
    previous, _mode = _mode, mode
    return previous


def enabled(progress: bool | None = None) -> bool:
    """Whether to draw a bar: ``progress`` when given, else the mode's answer."""
    if progress is not None:
        return bool(progress)
    if _mode == "auto":
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return _mode == "on"


def bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str | None = None,
        unit: str = "it", progress: bool | None = None) -> tqdm:
    """Make a tqdm bar on stderr, disabled (it then costs nothing and prints nothing) unless :func:`enabled`."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=not enabled(progress),
                dynamic_ncols=True)


def step(message: str, *args: Any) -> None:
    """Log a step of long work (INFO on the ``s2sim`` logger)."""
    logger.info(message, *args)
