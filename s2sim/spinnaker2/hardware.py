"""``spinnaker2.hardware``: the board classes, each running the network on the bit-exact simulator.

``hw = hardware.SpiNNaker2Chip(eth_ip=...)``, ``hw.run(net, timesteps, sys_tick_in_s=1e-3, ...)``, then the
populations' ``get_spikes()`` / ``get_voltages()``: what a board run gives, computed as the chip's PEs compute it
under the profile set with :func:`s2sim.spinnaker2.use_profile`. Constructor and run keywords that only mean
something for a board (addresses, debug output, board reset) are accepted and named once in an
IgnoredSettingWarning; nothing a public script passes is a TypeError.
"""
from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigError, NotModelledError
from ..placement import Placement, place
from ..profile import ChipProfile
from ..results import BatchResult
from ..simulator import Simulator, publish_results
from ..spec import DIAGNOSTIC_RECORDABLES
from ..timing import DEFAULT_PL_THRESHOLD, TimingConfig
from ..snn import Network
from .backend import BoardTarget, RunRecord, board_suspended, board_target, current_profile, notify, say_once
from .experiment_backends import BackendSettings, ExperimentBackendType
from .neuron_models import application_settings

#: run() keywords that mean nothing without a board: named once, then ignored.
BOARD_ONLY_RUN_KEYWORDS = {
    "debug": "the simulator prints no board debug output",
    "reset_board": "there is no board to reset",
}


class _SimulatedBoard:
    """A py-spinnaker2 hardware object that runs on the simulator (base of the three board classes)."""

    def __init__(self, **board_settings: Any) -> None:
        name = type(self).__name__
        for key, value in board_settings.items():
            if value is None:
                continue
            if key == "experiment_backend_type":
                ExperimentBackendType(value)  # an unknown backend name is an error there too
            say_once(f"{name}.{key}", f"{name}({key}=...) only addresses a board; the simulator contacts none and "
                                      "ignores it")
        self.experiment_backend = _ExperimentBackend(board_settings.get("stm_ip"))
        self.placement: Placement | None = None
        self.last_run: RunRecord | None = None
        self._measure_power = False
        self._energy: float | None = None

    @property
    def energy(self) -> float | None:
        """Energy of the last run in joules, as py-spinnaker2 reports after ``run(..., measure_power=True)``:
        s2sim's estimate (s2sim.timing: the chip paper's power figures and the PE time model), None when power was
        not measured. NotModelledError after a board run (s2sim exec --board), where the board's own reading is
        not collected."""
        if self._measure_power and self._energy is None:
            raise NotModelledError(f"{type(self).__name__}.energy: the run went to a board, whose power reading "
                                   "s2sim does not collect")
        return self._energy

    def run(self, network: Network, time_steps: int, **kwargs: Any) -> None:
        """Run ``network`` for ``time_steps`` ticks; results land on the populations (``get_spikes()``, ...).

        Keywords: ``sys_tick_in_s`` (tick length in seconds; recorded for the PE time model),
        ``measure_power`` (recorded; see :attr:`energy`), ``mapping_only`` (place the network on PEs and stop,
        as on a board: :attr:`placement`); ``debug`` and ``reset_board`` mean nothing here and are named once.
        Any other keyword is named once and ignored.
        """
        settings = self._settings(kwargs)
        self.placement = None
        profile = self._profile()
        if settings["mapping_only"]:
            self.placement = place(network, profile)
            return
        target = board_target() if self.runs_on_boards else None
        if target is None:
            timed = self._measure_power or any(d in p.record for p in network.populations
                                               for d in DIAGNOSTIC_RECORDABLES)
            timing = timing_config(settings) if timed else None
            result = Simulator(profile, timing=timing).run(network, time_steps)
            self._energy = None if result.timing is None else float(result.timing.energy_j[0])
            self.last_run = RunRecord(network, int(time_steps), result, profile, type(self).__name__, settings)
        else:
            result = _run_on_board(network, int(time_steps), target)
            self.last_run = RunRecord(network, int(time_steps), result, None, type(self).__name__,
                                      {**settings, "board": target.address}, source="spinnaker2")
        notify(self.last_run)

    #: Whether ``s2sim exec --board`` sends this class's runs to the board (not the software backend's).
    runs_on_boards = True

    def _profile(self) -> ChipProfile:
        return current_profile()

    def _settings(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        name = type(self).__name__
        kwargs = dict(kwargs)
        tick = kwargs.pop("sys_tick_in_s", 1e-3)
        if isinstance(tick, bool) or not isinstance(tick, (int, float)) or not math.isfinite(tick) or tick <= 0:
            raise ConfigError(f"{name}.run: sys_tick_in_s must be a positive number of seconds, got {tick!r}")
        self._measure_power = bool(kwargs.pop("measure_power", False))
        mapping_only = bool(kwargs.pop("mapping_only", False))
        for key in kwargs:
            why = BOARD_ONLY_RUN_KEYWORDS.get(key, "it is not a run() keyword s2sim knows")
            say_once(f"{name}.run.{key}", f"{name}.run({key}=...) is ignored: {why}")
        return {"sys_tick_in_s": float(tick), "measure_power": self._measure_power, "mapping_only": mapping_only,
                "applications": application_settings(), "backend_settings": BackendSettings().to_dict()}


def timing_config(settings: dict[str, Any]) -> TimingConfig:
    """The PE time model's configuration of a run: its tick, and each application's DVFS parameters."""
    modes, thresholds = {}, dict(DEFAULT_PL_THRESHOLD)
    for model, app in settings["applications"].items():
        dvfs = app.get("dvfs_params")
        if dvfs is not None:
            modes[model] = DVFS_MODE_OF[dvfs["mode"]]
            thresholds[model] = dvfs["pl_threshold"]
    return TimingConfig(sys_tick_in_s=settings["sys_tick_in_s"], dvfs=modes, pl_threshold=thresholds)


#: py-spinnaker2's PmgtMode member names -> s2sim's DVFS modes.
DVFS_MODE_OF = {"PL_MODE_LOW": "low", "PL_MODE_HIGH": "high", "PL_MODE_AUTO": "auto"}


def _run_on_board(network: Network, time_steps: int, target: BoardTarget) -> BatchResult:
    """One run through py-spinnaker2 on a board (s2sim exec --board); the results land on the populations as a
    simulator run's do. UNTESTED against a real board: checked with s2sim's stand-in as the vendor package."""
    from ..chip import run_on_board

    with target.vendor_imports(), board_suspended():
        trace = run_on_board(network, time_steps, target.address, modules=(target.snn, target.hardware))
    result = BatchResult(time_steps)
    for name, arr in trace.spikes.items():
        result.spikes[name] = arr[None]
    for name, arr in trace.voltages.items():
        result.voltages[name] = arr[None]
    for name, arr in trace.v_last.items():
        result.v_last[name] = arr[None]
    publish_results(network, result)
    return result


class _ExperimentBackend:
    """``hw.experiment_backend``: board attributes scripts set (``board_type``, ``stm_ip``); inert here."""

    def __init__(self, stm_ip: Any = None) -> None:
        self.board_type: Any = None
        self.stm_ip = stm_ip


class SpiNNaker2Chip(_SimulatedBoard):
    """A single SpiNNaker2 chip (py-spinnaker2: ``SpiNNaker2Chip(eth_ip=..., experiment_backend_type=...)``)."""

    def __init__(self, eth_ip: str | None = None, experiment_backend_type: Any = None, **board_settings: Any) -> None:
        super().__init__(eth_ip=eth_ip, experiment_backend_type=experiment_backend_type, **board_settings)


class SpiNNcloud48NodeBoard(_SimulatedBoard):
    """The 48-chip board (py-spinnaker2: ``SpiNNcloud48NodeBoard(stm_ip=..., eth_ip=...)``)."""

    def __init__(self, stm_ip: str | None = None, eth_ip: str | None = None, experiment_backend_type: Any = None,
                 **board_settings: Any) -> None:
        super().__init__(stm_ip=stm_ip, eth_ip=eth_ip, experiment_backend_type=experiment_backend_type,
                         **board_settings)


class FPGA_Rev2(_SimulatedBoard):  # noqa: N801 - py-spinnaker2's name
    """The FPGA prototype board (py-spinnaker2: ``FPGA_Rev2()``); simulated as the chip."""
