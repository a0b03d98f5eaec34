"""The memory budget.

Every large allocation is estimated first and refused, with the estimate and the budget named, when it would not fit.

The budget is what the machine has available at the moment of the check (``psutil``), unless it is set with
:func:`set_budget` or the environment variable ``S2SIM_MEMORY_BUDGET`` (bytes, or a size such as ``"2G"``);
``s2sim --memory-budget SIZE`` sets it for one command. Checks compare one step's estimate (lowering a network,
recording buffers of a run, the arrays of a file being read, synapse lists of a conversion) with the budget at
that moment, so memory already taken by earlier steps counts through the smaller available figure.
"""

from __future__ import annotations

import os
import re

from .errors import ConfigError, ResourceError

ENV_VAR = "S2SIM_MEMORY_BUDGET"
#: Estimates below this are not checked (asking the OS costs more than such allocations).
SMALL = 32 << 20

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_budget: int | None = None


def parse_size(text: str | int) -> int:
    """Parse a byte count from an int or a string such as ``"512M"``, ``"2G"``, ``"1.5GiB"`` or ``"1000000"``."""
    if isinstance(text, bool):
        raise ConfigError(f"memory size must be a number of bytes or a size such as '2G', got {text!r}")
    if isinstance(text, int):
        value = float(text)
    else:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.IGNORECASE)
        if not match:
            raise ConfigError(f"memory size {text!r} is not a number of bytes or a size such as '512M' or '2G'")
        value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if value < 1:
        raise ConfigError(f"memory size {text!r} must be at least one byte")
    return int(value)


def set_budget(size: int | str | None) -> int | None:
    """Set the process-wide budget in bytes (or a size string); None returns to the default (available memory).

    Returns the previous setting (None when it was the default), so a caller can restore it.
    """
    global _budget
    previous = _budget
    _budget = None if size is None else parse_size(size)
    return previous


def available() -> int:
    """Bytes the machine can give this process now without swapping."""
    import psutil

    return int(psutil.virtual_memory().available)


def budget() -> tuple[int, str]:
    """Return the budget in bytes and where it comes from."""
    if _budget is not None:
        return _budget, "set with s2sim.memory.set_budget / --memory-budget"
    env = os.environ.get(ENV_VAR)
    if env:
        return parse_size(env), f"${ENV_VAR}"
    return available(), "memory available on this machine"


def fmt(n: float) -> str:
    """Format a byte count for messages: ``1.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def check(needed: float, what: str, hint: str = "") -> None:
    """Raise ResourceError when ``needed`` bytes (an estimate) exceed the budget.

    Parameters
    ----------
    needed : float
        Estimated bytes the step is about to allocate.
    what : str
        The step, naming the network / population / file ("recording buffers of network 'x' (...)").
    hint : str
        How to need less, appended to the message.
    """
    if needed < SMALL and _budget is None and not os.environ.get(ENV_VAR):
        return
    limit, source = budget()
    if needed > limit:
        raise ResourceError(
            f"{what} needs an estimated {fmt(needed)}, more than the memory budget of {fmt(limit)} "
            f"({source}); nothing was allocated" + (f". {hint}" if hint else "")
        )


def hdf5_bytes(f: object) -> int:
    """Bytes the datasets of an open h5py File declare (shape x item size, before any decompression).

    What reading them all would allocate, known before a byte of them is read.
    """
    import h5py
    import numpy as np

    total = [0]

    def add(_name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            total[0] += int(np.prod(obj.shape or (), dtype=np.float64)) * max(int(obj.dtype.itemsize), 1)

    f.visititems(add)  # type: ignore[attr-defined]
    return total[0]
