"""A population of neurons as the user wrote it (:class:`Population`), shaped like py-spinnaker2's.

Only holds and checks what the user wrote; :mod:`s2sim.spec` validates it and :mod:`s2sim.lowering` turns it into
the chip's arrays.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import ConfigError, NotModelledError
from .models import NeuronModel, get_model
from .spec import PopulationSpec, check_max_atoms, check_record, population_spec

_auto_names = itertools.count()


class Population:
    """A group of neurons of one model.

    The attributes ``size``, ``params``, ``record`` and ``max_atoms_per_core`` hold what the user wrote and may be
    changed between runs, in place or by assignment, as py-spinnaker2 scripts do; every change takes effect at the
    next run and is validated then (:meth:`validated`), with the same errors as at construction.

    Parameters
    ----------
    size : int
        Number of neurons (at least 1).
    neuron_model : str
        One of :data:`s2sim.models.MODELS` ("spike_list", "lif", "lif_no_delay", "lif_conv2d", "lif_curr_exp",
        "lif_curr_exp_no_delay").
    params : dict
        For ``spike_list``: ``{neuron_index: [tick, ...]}``. Otherwise parameter name -> scalar or one value per
        neuron, plus ``reset`` ("reset_by_subtraction" or "reset_to_v_reset"); missing parameters take the model
        defaults, unknown names are an error. Kept as given (not copied), as py-spinnaker2 does: editing the
        dict or an array in it, or assigning a new dict to ``pop.params``, changes the next run.
    name : str, optional
        Unique name within its network (generated when omitted).
    record : list of str, optional
        Any of "spikes", "v", "v_last", "counts" (and py-spinnaker2's diagnostics "time_done", "n_packets",
        "performance_level"). Default ``["spikes"]``.

    Notes
    -----
    A size of 0 is accepted at construction, as py-spinnaker2 scripts grow populations with ``pop.size += 1``;
    running a population that still has no neuron is an error.
    """

    def __init__(self, size: int, neuron_model: str, params: Mapping | None = None, name: str | None = None,
                 record: Sequence[str] | None = None) -> None:
        self.name = str(name) if name is not None else f"pop{next(_auto_names)}"
        model = get_model(neuron_model, self.name)
        self.neuron_model = model.name
        self.size = size
        self.params: Any = params if params is not None else {}
        # anything but a name or a list of names is kept as given and refused by the validation below
        self.record: list[str] = ["spikes"] if record is None else ([record] if isinstance(record, str) else
                                                                     list(record) if isinstance(record, (list, tuple))
                                                                     else record)
        self.max_atoms_per_core: int | None = None
        self._results: dict[str, Any] = {}
        if not (isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size == 0):
            self.validated()
        else:
            check_record(self.record, self.name, model)

    def validated(self) -> PopulationSpec:
        """The population as it is now, checked: an immutable :class:`~s2sim.spec.PopulationSpec`.

        Raises ConfigError / LimitError naming the population, parameter, value and limit.
        """
        return population_spec(self)

    # -- derived, read-only views --------------------------------------------------------------------------
    @property
    def model(self) -> NeuronModel:
        """The neuron model (from ``neuron_model``)."""
        return get_model(self.neuron_model, self.name)

    @property
    def reset(self) -> str:
        """The reset mode as validated ("reset_by_subtraction" or "reset_to_v_reset")."""
        return self.validated().reset

    @property
    def spike_times(self) -> dict[int, list[int]]:
        """A spike_list's input as validated: neuron -> sorted ticks. The same data as ``params``."""
        return {i: list(t) for i, t in self.validated().spike_times.items()}

    @spike_times.setter
    def spike_times(self, value: Mapping) -> None:
        if not self.model.is_input:
            raise ConfigError(f"population {self.name!r}: spike_times belong to spike_list populations, not "
                              f"{self.neuron_model!r}")
        self.params = value

    def param(self, key: str) -> np.ndarray:
        """One parameter as validated: a read-only float64 array of length ``size`` (before the float32 upload)."""
        return self.validated().param(key)

    def input_array(self, timesteps: int) -> np.ndarray:
        """The spike_list as a dense uint8 [timesteps, size] array (see PopulationSpec.input_array)."""
        return self.validated().input_array(timesteps)

    def check_input(self, spikes: Any, where: str = "inputs") -> np.ndarray:
        """Validate a 0/1 spike array [..., ticks, size] for this spike_list (see PopulationSpec.check_input)."""
        return self.validated().check_input(spikes, where)

    # -- py-spinnaker2 API ---------------------------------------------------------------------------------
    def set_max_atoms_per_core(self, n: int) -> None:
        """Limit neurons per PE for this population (as py-spinnaker2)."""
        self.max_atoms_per_core = check_max_atoms(n, self.name)

    def get_spikes(self) -> dict[int, list[int]]:
        """Recorded spikes of the last run: neuron -> list of ticks (every neuron present, as py-spinnaker2)."""
        return self._result("spikes")

    def get_voltages(self) -> dict[int, np.ndarray]:
        """Recorded membrane voltages of the last run: neuron -> array, one value per tick, after reset.

        With ``record=["v_last"]`` each array holds the last tick only.
        """
        results = self._results
        if "v" in results or "v_last" in results:
            return results["v"] if "v" in results else results["v_last"]
        return self._result("v_last" if "v_last" in self.record and "v" not in self.record else "v")

    def get_counts(self) -> dict[str, np.ndarray]:
        """Per-tick counts of the last run: ``{"spikes": int64[T], "synaptic_events": int64[T]}``."""
        return self._result("counts")

    def get_time_done_times(self) -> dict[str, np.ndarray]:
        """py-spinnaker2's per-PE ``time_done`` record (fraction of the tick each PE needed).

        Raises NotModelledError: the PE time model is not part of the bit-exact simulator yet.
        """
        return self._diagnostic("time_done")

    def get_n_packets(self) -> dict[str, np.ndarray]:
        """py-spinnaker2's per-PE count of received spike packets per tick (see get_time_done_times)."""
        return self._diagnostic("n_packets")

    def get_performance_levels(self) -> dict[str, np.ndarray]:
        """py-spinnaker2's per-PE DVFS performance level per tick (see get_time_done_times)."""
        return self._diagnostic("performance_level")

    def _diagnostic(self, key: str) -> Any:
        if key in self._results:
            return self._results[key]
        if key not in self.record:
            raise ConfigError(f"population {self.name!r}: {key!r} was not recorded (record={self.record})")
        raise NotModelledError(f"population {self.name!r}: {key!r} is a PE diagnostic, estimated by s2sim's PE time "
                               "model (s2sim.timing) when a py-spinnaker2 backend (s2sim.spinnaker2.hardware) runs "
                               "the network; Simulator.run does not time PEs: use s2sim.timing.estimate")

    def _result(self, key: str) -> Any:
        results = self._results
        if key not in results:
            if key not in self.record and not (key == "v_last" and "v" in self.record):
                raise ConfigError(f"population {self.name!r}: {key!r} was not recorded in the last run "
                                  f"(record={self.record})")
            raise ConfigError(f"population {self.name!r}: no {key!r} results; run the network first")
        return results[key]

    def __repr__(self) -> str:
        return f"Population({self.size}, {self.neuron_model!r}, name={self.name!r})"

