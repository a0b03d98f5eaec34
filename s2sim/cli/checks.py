"""Checks the commands make before they start work, so a mistake costs nothing (not a whole run)."""
from __future__ import annotations

import os

from ..errors import ConfigError


def check_output(path: str, option: str) -> None:
    """Refuse an output path whose folder is missing or not writable, or that names a folder."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ConfigError(f"{option} {path!r} is a folder; give a file name")
    if not os.path.isdir(folder):
        raise ConfigError(f"{option} {path!r}: folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"{option} {path!r}: folder {folder!r} is not writable")
