"""Simulator: runs a Network in the C core, one sample or a whole batch across all cores.

``Simulator(profile).run(net, T)`` behaves like py-spinnaker2's backend (results land on the populations);
``run_batch`` takes input arrays [batch, tick, neuron] and returns a BatchResult. The batch is split over
threads; each thread's C call releases the GIL and works on its own workspace and its own slice of the output.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping

import numpy as np

from .core import CoreNetwork
from .errors import ConfigError
from .lowering import LoweredNetwork, lower
from .profile import ChipProfile
from .results import BatchResult
from .snn import Network


class LoadedNetwork:
    """A network lowered and validated for one ChipProfile, ready to run many batches.

    Obtain it with :meth:`Simulator.load`; reuse it when running the same network repeatedly (lowering a large
    network costs more than a short run).
    """

    def __init__(self, net: Network, profile: ChipProfile, num_threads: int) -> None:
        self.net = net
        self.profile = profile
        self.num_threads = num_threads
        self._shape = self._structure(net)
        self.lowered: LoweredNetwork = lower(net, profile)
        self.core = CoreNetwork(self.lowered)
        self._workspaces = []
        # The workspaces are scratch shared by successive runs: concurrent callers take turns.
        self._lock = threading.Lock()

    def run_batch(self, inputs: Mapping[str, np.ndarray] | None = None, timesteps: int | None = None) -> BatchResult:
        """Run a batch; see :meth:`Simulator.run_batch`. Safe to call from several threads (calls take turns)."""
        if self._structure(self.net) != self._shape:
            raise ConfigError(f"network {self.net.name!r} gained or lost populations or projections since it was "
                              "loaded; load it again (Simulator.load)")
        with self._lock:
            return self._run_batch(dict(inputs or {}), timesteps)

    @staticmethod
    def _structure(net: Network) -> tuple:
        return tuple(map(id, net.populations)), tuple(map(id, net.projections))

    def _run_batch(self, inputs: dict, timesteps: int | None) -> BatchResult:
        batch, timesteps = self._batch_shape(inputs, timesteps)
        buffers = self._buffers(inputs, batch, timesteps)
        io = self.core.make_io(buffers)
        threads = max(1, min(self.num_threads, batch))
        while len(self._workspaces) < threads:
            self._workspaces.append(self.core.workspace())
        bounds = np.linspace(0, batch, threads + 1).astype(int)
        if threads == 1:
            self.core.run(io, self._workspaces[0], batch, timesteps, 0, batch)
        else:
            with ThreadPoolExecutor(threads) as pool:
                jobs = [pool.submit(self.core.run, io, self._workspaces[i], batch, timesteps, int(bounds[i]),
                                    int(bounds[i + 1])) for i in range(threads)]
                for job in jobs:
                    job.result()
        return self._result(buffers, timesteps)

    def _batch_shape(self, inputs: dict, timesteps: int | None) -> tuple[int, int]:
        shapes = {}
        for name, arr in inputs.items():
            pop = self.net.population(name)
            if not pop.model.is_input:
                raise ConfigError(f"inputs: population {name!r} is a {pop.neuron_model!r}, not a spike_list source")
            shape = np.shape(arr)
            if len(shape) != 3 or shape[2] != pop.size:
                raise ConfigError(f"inputs[{name!r}] has shape {shape}; expected [batch, ticks, {pop.size}]")
            if shape[0] < 1:
                raise ConfigError(f"inputs[{name!r}] has a batch of {shape[0]} samples; at least 1 is needed")
            shapes[name] = shape
        batches = {s[0] for s in shapes.values()}
        ticks = {s[1] for s in shapes.values()}
        if len(batches) > 1 or len(ticks) > 1:
            raise ConfigError(f"inputs disagree on [batch, ticks]: { {k: s[:2] for k, s in shapes.items()} }")
        if timesteps is None:
            if not ticks:
                raise ConfigError("timesteps must be given when no input arrays are")
            timesteps = ticks.pop()
        if isinstance(timesteps, bool) or not isinstance(timesteps, (int, np.integer)) or timesteps < 1:
            raise ConfigError(f"timesteps must be a positive int, got {timesteps!r}")
        if ticks and ticks != {timesteps}:
            raise ConfigError(f"inputs have {ticks.pop()} ticks but timesteps is {timesteps}")
        return (batches.pop() if batches else 1), int(timesteps)

    def _buffers(self, inputs: dict, batch: int, timesteps: int) -> list[dict[str, np.ndarray]]:
        ftype = np.float64 if self.core.float64 else np.float32
        buffers = []
        for pop in self.net.populations:
            buf: dict[str, np.ndarray] = {"counts": np.zeros((batch, timesteps, 2), np.int64)}
            if pop.model.is_input:
                buf["input"] = self._input_array(pop, inputs.get(pop.name), batch, timesteps)
            if "spikes" in pop.record:
                buf["spikes"] = np.zeros((batch, timesteps, pop.size), np.uint8)
            if "v" in pop.record:
                buf["v"] = np.zeros((batch, timesteps, pop.size), ftype)
            elif "v_last" in pop.record:
                buf["v_last"] = np.zeros((batch, pop.size), ftype)
            buffers.append(buf)
        return buffers

    @staticmethod
    def _input_array(pop, given, batch: int, timesteps: int) -> np.ndarray:
        if given is None:
            return np.ascontiguousarray(np.broadcast_to(pop.input_array(timesteps), (batch, timesteps, pop.size)))
        return pop.check_input(given)

    def _result(self, buffers: list[dict[str, np.ndarray]], timesteps: int) -> BatchResult:
        res = BatchResult(timesteps)
        for pop, low, buf in zip(self.net.populations, self.lowered.populations, buffers):
            ext = low.to_external_order
            res.counts[pop.name] = buf["counts"]
            if "spikes" in buf:
                res.spikes[pop.name] = ext(buf["spikes"])
            if "v" in buf:
                res.voltages[pop.name] = ext(buf["v"])
                if "v_last" in pop.record:
                    res.v_last[pop.name] = res.voltages[pop.name][:, -1].copy()
            elif "v_last" in buf:
                res.v_last[pop.name] = ext(buf["v_last"])
        return res


class Simulator:
    """Bit-exact SpiNNaker2 simulator.

    Parameters
    ----------
    profile : ChipProfile, optional
        The chip variant to reproduce (default ChipProfile()).
    num_threads : int, optional
        Threads a batch is spread over (default: all cores).
    """

    def __init__(self, profile: ChipProfile | None = None, num_threads: int | None = None) -> None:
        self.profile = profile or ChipProfile()
        if not isinstance(self.profile, ChipProfile):
            raise ConfigError(f"profile must be a ChipProfile, got {type(self.profile).__name__}")
        if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                        or num_threads < 1):
            raise ConfigError(f"num_threads must be a positive int, got {num_threads!r}")
        self.num_threads = num_threads or os.cpu_count() or 1

    def load(self, net: Network) -> LoadedNetwork:
        """Lower and validate ``net`` once, for repeated runs."""
        return LoadedNetwork(net, self.profile, self.num_threads)

    def run_batch(self, net: Network, inputs: Mapping[str, np.ndarray] | None = None,
                  timesteps: int | None = None) -> BatchResult:
        """Run a batch of independent samples.

        Parameters
        ----------
        net : Network
        inputs : dict, optional
            spike_list population name -> 0/1 array [batch, ticks, size]. Sources not given replay their own
            ``params`` spike times in every sample.
        timesteps : int, optional
            Ticks to run; taken from the inputs when omitted.

        Returns
        -------
        BatchResult
            spikes / voltages / v_last in each population's py-spinnaker2 neuron order, counts for every population.
        """
        return self.load(net).run_batch(inputs, timesteps)

    def run(self, net: Network, timesteps: int) -> BatchResult:
        """Run one sample, as py-spinnaker2's ``hw.run(net, timesteps)``; results go to the populations."""
        res = self.run_batch(net, None, timesteps)
        for pop in net.populations:
            pop._results = {"counts": {"spikes": res.counts[pop.name][0, :, 0].copy(),
                                       "synaptic_events": res.counts[pop.name][0, :, 1].copy()}}
            if pop.name in res.spikes:
                pop._results["spikes"] = res.spike_dict(pop.name)
            if pop.name in res.voltages:
                pop._results["v"] = res.voltage_dict(pop.name)
            if pop.name in res.v_last:
                pop._results["v_last"] = {i: res.v_last[pop.name][0, i:i + 1].copy() for i in range(pop.size)}
        return res
