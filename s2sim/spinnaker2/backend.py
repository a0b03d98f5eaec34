"""How the stand-in's hardware objects run a network: the chip profile, the run record and its observers.

py-spinnaker2 scripts configure the board through module-level state (``BackendSettings()``, application classes'
``dvfs_params``) and run through short-lived hardware objects; the stand-in keeps the equivalent per-process state
here: which ChipProfile the simulated chip reproduces, and who is told about each run (``s2sim exec --trace``
writes every run as a conformance trace through an observer).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, IgnoredSettingWarning, caller_stacklevel
from ..profile import ChipProfile
from ..results import BatchResult
from ..snn import Network


@dataclass
class RunRecord:
    """One run of a network by a stand-in backend, as observers receive it.

    Attributes
    ----------
    network : Network
        The network as it was run (observers run right after the run, before the script can edit it).
    timesteps : int
    result : BatchResult
        Sample 0 is the run.
    profile : ChipProfile
        The chip variant simulated.
    backend : str
        "SpiNNaker2Chip", "SpiNNcloud48NodeBoard", "FPGA_Rev2" or "Brian2Backend".
    settings : dict
        The run's settings that mean something for timing and energy (``sys_tick_in_s``, ``measure_power``, the
        applications' DVFS parameters, the routing type); JSON-able.
    """

    network: Network
    timesteps: int
    result: BatchResult
    profile: ChipProfile | None
    backend: str
    settings: dict[str, Any] = field(default_factory=dict)
    source: str = "s2sim"


@dataclass(frozen=True)
class BoardTarget:
    """Where ``s2sim exec --board`` sends the script's runs.

    A board address, py-spinnaker2's own ``snn`` and ``hardware`` modules, and a context in which the name
    ``spinnaker2`` means py-spinnaker2 again (inside the script it means the stand-in).
    """

    address: str
    snn: Any
    hardware: Any
    vendor_imports: Callable[[], contextlib.AbstractContextManager[Any]]


@dataclass
class _State:
    profile: ChipProfile = field(default_factory=ChipProfile)
    observers: list[Callable[[RunRecord], None]] = field(default_factory=list)
    said: set[str] = field(default_factory=set)
    board: BoardTarget | None = None


_STATE = _State()


def use_profile(profile: ChipProfile) -> None:
    """Make the stand-in's hardware classes reproduce ``profile`` (Brian2Backend uses it with float64 state)."""
    if not isinstance(profile, ChipProfile):
        raise ConfigError(f"use_profile: expected a ChipProfile, got {type(profile).__name__}")
    _STATE.profile = profile


def current_profile() -> ChipProfile:
    """Return the ChipProfile the stand-in's hardware classes reproduce."""
    return _STATE.profile


def use_board(target: BoardTarget | None) -> None:
    """Send the hardware classes' runs to a board through py-spinnaker2 (None: back to the simulator)."""
    _STATE.board = target


def board_target() -> BoardTarget | None:
    """Return the board the hardware classes' runs go to, or None (the simulator)."""
    return _STATE.board


@contextlib.contextmanager
def board_suspended() -> Iterator[None]:
    """Send runs inside the block to the simulator, unreported.

    When the vendor package is itself a stand-in, the board runner's own run must not loop back to the board or count as
    one of the script's runs.
    """
    saved = _STATE.board, _STATE.observers
    _STATE.board, _STATE.observers = None, []
    try:
        yield
    finally:
        _STATE.board, _STATE.observers = saved


def add_run_observer(observer: Callable[[RunRecord], None]) -> None:
    """Call ``observer(record)`` after every run of a stand-in backend (e.g. to write each run as a trace)."""
    _STATE.observers.append(observer)


def remove_run_observer(observer: Callable[[RunRecord], None]) -> None:
    """Stop calling ``observer``."""
    _STATE.observers.remove(observer)


def notify(record: RunRecord) -> None:
    """Hand ``record`` to every observer."""
    for observer in list(_STATE.observers):
        observer(record)


def forget_said() -> None:
    """Start a new "once" for say_once (``s2sim exec`` does, per script)."""
    _STATE.said.clear()


def say_once(key: str, message: str, category: type[Warning] = IgnoredSettingWarning) -> None:
    """Warn the first time ``key`` comes up in this process, never again.

    The warning points at the user's line, not at s2sim's.
    """
    if key not in _STATE.said:
        _STATE.said.add(key)
        warnings.warn(message, category, stacklevel=caller_stacklevel())
