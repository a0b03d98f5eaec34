"""Simulator: runs a Network in the C core, one sample or a whole batch across all cores.

``Simulator(profile).run(net, T)`` behaves like py-spinnaker2's backend (results land on the populations);
``run_batch`` takes input arrays [batch, tick, neuron] and returns a BatchResult. The batch is split over
threads; each thread's C call releases the GIL and works on its own workspace and its own slice of the output.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping, Sequence

import numpy as np

from .core import CoreNetwork
from .errors import ConfigError
from .lowering import LoweredNetwork, lower
from .profile import ChipProfile
from .results import BatchResult
from .snn import Network
from .spec import DIAGNOSTIC_RECORDABLES, NetworkSpec, raw_fingerprint


class LoadedNetwork:
    """A network lowered and validated for one ChipProfile, ready to run many batches.

    Obtain it with :meth:`Simulator.load`; reuse it when running the same network repeatedly (lowering a large
    network costs more than a short run). The network may still be edited between runs, as py-spinnaker2 scripts
    do: every run first validates it as it is then and lowers it again when what the C core holds has changed
    (sizes, parameters, models, projections), so an edit is never ignored and the core never sees a description
    that does not match its buffers. Changing only spike_list inputs or ``record`` costs no re-lowering.
    """

    def __init__(self, net: Network, profile: ChipProfile, num_threads: int) -> None:
        self.net = net
        self.profile = profile
        self.num_threads = num_threads
        # The workspaces are scratch shared by successive runs: concurrent callers take turns.
        self._lock = threading.Lock()
        self._load(net.validated())

    def _load(self, spec: NetworkSpec) -> None:
        self.lowered: LoweredNetwork = lower(spec, self.profile)
        self.core = CoreNetwork(self.lowered)
        self._workspaces: list = []
        self.spec = spec

    def refresh(self) -> NetworkSpec:
        """Validate the network as it is now and re-lower it if what the C core holds has changed."""
        spec = self.net.validated()
        if spec.lowering_key != self.lowered.spec.lowering_key:
            self._load(spec)
        self.spec = spec
        return spec

    def run_batch(self, inputs: Mapping[str, np.ndarray] | None = None, timesteps: int | None = None,
                  all_spikes: bool = False) -> BatchResult:
        """Run a batch; see :meth:`Simulator.run_batch`. Safe to call from several threads (calls take turns).

        Raises ConfigError when the network was edited while the run was going on (the results would belong to
        neither version).
        """
        with self._lock:
            spec = self.refresh()
            result = self._run_batch(spec, dict(inputs or {}), timesteps, all_spikes)
            if raw_fingerprint(self.net) != spec.fingerprint:
                raise ConfigError(f"network {self.net.name!r} was changed while it was running; the results are "
                                  "discarded (edit a network between runs, not during one)")
            return result

    def _run_batch(self, spec: NetworkSpec, inputs: dict, timesteps: int | None, all_spikes: bool) -> BatchResult:
        batch, timesteps = self._batch_shape(spec, inputs, timesteps)
        buffers = self._buffers(spec, inputs, batch, timesteps, all_spikes)
        io = self.core.make_io(buffers, batch, timesteps)
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
        return self._result(spec, buffers, timesteps)

    @staticmethod
    def _batch_shape(spec: NetworkSpec, inputs: dict, timesteps: int | None) -> tuple[int, int]:
        shapes = {}
        for name, arr in inputs.items():
            pop = spec.population(name)
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

    def _buffers(self, spec: NetworkSpec, inputs: dict, batch: int, timesteps: int,
                 all_spikes: bool = False) -> list[dict[str, np.ndarray]]:
        # Sized from the lowered network (what the core was validated with), never from the live objects.
        ftype = np.float64 if self.core.float64 else np.float32
        buffers = []
        for pop, low in zip(spec.populations, self.lowered.populations):
            n = low.n
            buf: dict[str, np.ndarray] = {"counts": np.zeros((batch, timesteps, 2), np.int64)}
            if pop.model.is_input:
                given = inputs.get(pop.name)
                buf["input"] = (np.ascontiguousarray(np.broadcast_to(pop.input_array(timesteps), (batch, timesteps, n)))
                                if given is None else pop.check_input(given))
            if all_spikes or "spikes" in pop.record:
                buf["spikes"] = np.zeros((batch, timesteps, n), np.uint8)
            if "v" in pop.record:
                buf["v"] = np.zeros((batch, timesteps, n), ftype)
            elif "v_last" in pop.record:
                buf["v_last"] = np.zeros((batch, n), ftype)
            buffers.append(buf)
        return buffers

    def _result(self, spec: NetworkSpec, buffers: list[dict[str, np.ndarray]], timesteps: int) -> BatchResult:
        res = BatchResult(timesteps)
        for pop, low, buf in zip(spec.populations, self.lowered.populations, buffers):
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
    timing : s2sim.timing.TimingConfig, optional
        Also estimate every run's PE time, DVFS levels and energy (tick length, DVFS mode; see docs/timing.md).
        Without it, runs are timed only when a population records a PE diagnostic (with the default
        TimingConfig: 1 ms ticks, high performance level).
    """

    def __init__(self, profile: ChipProfile | None = None, num_threads: int | None = None,
                 timing: Any = None) -> None:
        self.profile = profile or ChipProfile()
        if not isinstance(self.profile, ChipProfile):
            raise ConfigError(f"profile must be a ChipProfile, got {type(self.profile).__name__}")
        if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                        or num_threads < 1):
            raise ConfigError(f"num_threads must be a positive int, got {num_threads!r}")
        self.num_threads = num_threads or os.cpu_count() or 1
        from .timing import TimingConfig

        if timing is not None and not isinstance(timing, TimingConfig):
            raise ConfigError(f"timing must be an s2sim.timing.TimingConfig, got {type(timing).__name__}")
        self.timing = timing

    def load(self, net: Network) -> LoadedNetwork:
        """Lower and validate ``net`` once, for repeated runs (edits between runs are picked up, see
        :class:`LoadedNetwork`)."""
        return LoadedNetwork(net, self.profile, self.num_threads)

    def _loaded(self, net: Network) -> LoadedNetwork:
        """The network's lowering for this profile, kept on the network so that a script which runs it once per
        sample (often with a new Simulator or hardware object each time) lowers it once."""
        if not isinstance(net, Network):
            raise ConfigError(f"expected an s2sim Network, got {type(net).__name__}")
        key = repr(self.profile)
        cached = net.__dict__.get("_loaded")
        if cached is None or cached[0] != key:
            cached = (key, self.load(net))
            net.__dict__["_loaded"] = cached
        loaded = cached[1]
        loaded.num_threads = self.num_threads
        return loaded

    def run_batch(self, net: Network, inputs: Mapping[str, np.ndarray] | None = None,
                  timesteps: int | None = None, all_spikes: bool = False) -> BatchResult:
        """Run a batch of independent samples.

        Parameters
        ----------
        net : Network
        inputs : dict, optional
            spike_list population name -> 0/1 array [batch, ticks, size]. Sources not given replay their own
            ``params`` spike times in every sample.
        timesteps : int, optional
            Ticks to run; taken from the inputs when omitted.
        all_spikes : bool
            Keep every population's spikes, whatever its ``record`` says.

        Returns
        -------
        BatchResult
            spikes / voltages / v_last in each population's py-spinnaker2 neuron order, counts for every population;
            ``timing`` (a :class:`s2sim.timing.TimingReport`) when the Simulator was given a TimingConfig or a
            population records a PE diagnostic (``time_done``, ``n_packets``, ``performance_level``).
        """
        loaded = self._loaded(net)
        if not self._times(net.validated()):
            return loaded.run_batch(inputs, timesteps, all_spikes)
        from .timing import TimingConfig, estimate

        res = loaded.run_batch(inputs, timesteps, True)
        spec = loaded.spec
        res.timing = estimate(spec, res, self.timing or TimingConfig(), placement=_placement(net, self.profile),
                              profile=self.profile)
        if not all_spikes:
            for pop in spec.populations:
                if "spikes" not in pop.record:
                    res.spikes.pop(pop.name, None)
        return res

    def _times(self, spec: NetworkSpec) -> bool:
        return self.timing is not None or any(d in p.record for p in spec.populations for d in DIAGNOSTIC_RECORDABLES)

    def run(self, net: Network, timesteps: int) -> BatchResult:
        """Run one sample, as py-spinnaker2's ``hw.run(net, timesteps)``; results go to the populations."""
        res = self.run_batch(net, None, timesteps)
        diagnostics = {}
        if res.timing is not None:
            diagnostics = {p.name: {d: res.timing.per_population(p.name, d) for d in DIAGNOSTIC_RECORDABLES
                                    if d in p.record} for p in net.populations}
        publish_results(net, res, diagnostics)
        return res


def _placement(net: Network, profile: ChipProfile) -> Any:
    from .placement import place

    return place(net, profile)


def publish_results(net: Network, res: BatchResult, extra: Mapping[str, dict] | None = None) -> None:
    """Put sample 0 of ``res`` on the populations, in py-spinnaker2's formats (``get_spikes()``, ...), each
    population's whole set at once; ``extra`` adds results by population name (the PE diagnostics)."""
    for pop in net.populations:
        pop._results = {**_population_results(res, pop.name, pop.record), **(extra or {}).get(pop.name, {})}


def _population_results(res: BatchResult, name: str, record: Sequence[str]) -> dict:
    """One population's results of sample 0 in py-spinnaker2's formats, built whole before it is published (so a
    reader in another thread never sees half of it)."""
    out: dict = {}
    if name in res.counts:
        out["counts"] = {"spikes": res.counts[name][0, :, 0].copy(), "synaptic_events": res.counts[name][0, :, 1].copy()}
    if name in res.spikes and "spikes" in record:
        out["spikes"] = res.spike_dict(name)
    if name in res.voltages:
        out["v"] = res.voltage_dict(name)
    if name in res.v_last:
        out["v_last"] = {i: res.v_last[name][0, i:i + 1].copy() for i in range(res.v_last[name].shape[1])}
    return out
