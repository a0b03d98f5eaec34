"""Checks the commands make before they start work, so a mistake costs nothing (not a whole run)."""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

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


# -- option values (argparse then names the flag: "argument --threads: must be a positive integer, got 0") ---------

def positive_int(text: str) -> int:
    """Parse an int >= 1 (argparse ``type=``)."""
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """Parse an int >= 0 (argparse ``type=``)."""
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """Parse a finite number > 0 (argparse ``type=``)."""
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a positive finite number")


def _number(text: str, kind: type, ok: Callable[[Any], bool], what: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


# -- optional dependencies -------------------------------------------------------------------------------------------

#: The extra of s2sim that installs each optional module (pyproject.toml's [project.optional-dependencies]).
EXTRAS = {"matplotlib": "io", "h5py": "io", "scipy": "io", "tonic": "data", "sklearn": "data", "torch": "torch",
          "snntorch": "torch", "dask": "dask"}


def require(command: str, needs: dict[str, str]) -> None:
    """Refuse to start when an optional module is missing: ``needs`` maps module -> what needs it.

    Called before a command does any work, so a missing plotting library is not found after a long simulation.
    """
    missing = {mod: why for mod, why in needs.items() if importlib.util.find_spec(mod) is None}
    if not missing:
        return
    extras = sorted({EXTRAS.get(mod, mod) for mod in missing})
    reasons = "; ".join(f"{why} needs {mod}" for mod, why in missing.items())
    hint = " ".join(f"'s2sim[{e}]'" for e in extras)
    torch = (" (install torch first, e.g. pip install torch --index-url https://download.pytorch.org/whl/cpu, so "
             "pip does not pick a multi-GB CUDA build)") if "torch" in extras else ""
    raise ConfigError(f"{command}: {reasons}, which is not installed; install it with pip install {hint}{torch}. "
                      "Nothing was run.")


@contextlib.contextmanager
def fields_as_flags(owner: str, flags: dict[str, str]) -> Iterator[None]:
    """Re-raise an s2sim error with the options that set the fields it names.

    ``owner.field`` (e.g. ``Tolerance.v_atol``) becomes the option (``--atol``), a suggested
    ``owner(field=value)`` becomes ``--option value``: a command-line user never typed the field's name.
    """
    from ..errors import S2SimError

    try:
        yield
    except S2SimError as exc:
        message = re.sub(rf"{owner}\((\w+)=([^)]*)\)", lambda m: _as_flag(flags, m[1], m[2], m[0]), str(exc))
        for field, flag in flags.items():
            message = message.replace(f"{owner}.{field}", flag)
        if message == str(exc):
            raise
        raise type(exc)(message) from None


def _as_flag(flags: dict[str, str], field: str, value: str, text: str) -> str:
    flag = flags.get(field)
    if flag is None:
        return text
    value = value.strip().strip("'\"")
    return flag if value == "True" else f"{flag} {value}"
