"""Simulator: runs a Network in the C core, one sample or a whole batch across all cores.

``Simulator(profile).run(net, T)`` behaves like py-spinnaker2's backend (results land on the populations);
``run_batch`` takes input arrays [batch, tick, neuron] and returns a BatchResult. The batch is split over
threads; each thread's C call releases the GIL and works on its own workspace and its own slice of the output.

The C calls always run in worker threads while the calling thread waits: Ctrl-C (which Python delivers to the
main thread) or a ``timeout`` then sets the run's cancel flag, which the kernel reads between ticks, so a run
stops within a tick, raises KeyboardInterrupt or :class:`~s2sim.errors.RunTimeout`, and the loaded network stays
usable (every run starts from the initial state).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from typing import Any

import numpy as np

from . import memory
from .core import CoreNetwork, InputRefused
from .errors import ConfigError, RunTimeout
from .lowering import LoweredNetwork, lower
from .profile import ChipProfile
from .results import BatchResult
from .snn import Network
from .spec import DIAGNOSTIC_RECORDABLES, NetworkSpec, raw_fingerprint
from .tuning import KernelTuning, split_threads


class LoadedNetwork:
    """A network lowered and validated for one ChipProfile, ready to run many batches.

    Obtain it with :meth:`Simulator.load`; reuse it when running the same network repeatedly (lowering a large
    network costs more than a short run). The network may still be edited between runs, as py-spinnaker2 scripts
    do: every run first validates it as it is then and lowers it again when what the C core holds has changed
    (sizes, parameters, models, projections), so an edit is never ignored and the core never sees a description
    that does not match its buffers. Changing only spike_list inputs or ``record`` costs no re-lowering.
    """

    def __init__(
        self,
        net: Network,
        profile: ChipProfile,
        num_threads: int,
        strict: bool = False,
        tuning: KernelTuning | None = None,
    ) -> None:
        self.net = net
        self.profile = profile
        self.num_threads = num_threads
        self.strict = strict
        self.tuning = tuning or KernelTuning()
        # The workspaces are scratch shared by successive runs: concurrent callers take turns.
        self._lock = threading.Lock()
        # Simulator.run holds this one across a run and the publication of its results onto the populations.
        self.publish_lock = threading.Lock()
        self._load(net.validated())

    def _load(self, spec: NetworkSpec) -> None:
        self.lowered: LoweredNetwork = lower(spec, self.profile, self.tuning, strict=self.strict)
        self.core = CoreNetwork(self.lowered)
        self._workspaces: list = []
        self._split: list = []  # the workspaces of a sample split over threads
        self.spec = spec

    def refresh(self) -> NetworkSpec:
        """Validate the network as it is now and re-lower it if what the C core holds has changed."""
        spec = self.net.validated()
        if spec.lowering_key != self.lowered.spec.lowering_key:
            self._load(spec)
        self.spec = spec
        return spec

    def run_batch(
        self,
        inputs: Mapping[str, np.ndarray] | None = None,
        timesteps: int | None = None,
        all_spikes: bool = False,
        timeout: float | None = None,
        event_counts: str = "error",
    ) -> BatchResult:
        """Run a batch; see :meth:`Simulator.run_batch`. Safe to call from several threads (calls take turns).

        Raises ConfigError when the network was edited while the run was going on (the results would belong to
        neither version).
        """
        deadline = _deadline(timeout)
        with self._lock:
            spec = self.refresh()
            given = spike_inputs(spec, inputs or {}, event_counts, self.strict)
            result = self._run_batch(spec, given, timesteps, all_spikes, deadline)
            if raw_fingerprint(self.net) != spec.fingerprint:
                raise ConfigError(
                    f"network {self.net.name!r} was changed while it was running; the results are "
                    "discarded (edit a network between runs, not during one)"
                )
            return result

    def _run_batch(
        self,
        spec: NetworkSpec,
        inputs: dict,
        timesteps: int | None,
        all_spikes: bool,
        deadline: tuple[float, float] | None,
    ) -> BatchResult:
        batch, timesteps = self._batch_shape(spec, inputs, timesteps)
        threads = max(1, min(self.num_threads, batch))
        memory.check(
            self._run_bytes(spec, inputs, batch, timesteps, threads, all_spikes),
            f"a run of network {spec.name!r} ({batch} sample(s) x {timesteps} ticks: recording buffers, "
            "inputs and workspaces)",
            "Record less (v_last instead of v, fewer populations), run fewer ticks, or split the batch",
        )
        buffers = self._buffers(spec, inputs, batch, timesteps, all_spikes)
        io = self.core.make_io(buffers, batch, timesteps)
        cancel = np.zeros(1, np.int32)
        calls = [
            _call(self.core.run, (io, ws, batch, timesteps, a, b, cancel), buffers) for ws, a, b in self._calls(batch)
        ]
        try:
            _supervise(calls, cancel, deadline, f"run of network {spec.name!r} ({batch} sample(s) x {timesteps} ticks)")
        except InputRefused:
            # uint8 inputs reach the core unchecked (it checks them as it reads them); name the bad value
            for name, arr in inputs.items():
                spec.population(name).check_input(arr)
            raise
        return self._result(spec, buffers, timesteps)

    def _calls(self, batch: int) -> list[tuple[Any, int, int]]:
        """Return the C calls of one batch, one per thread: (workspace, first sample, end).

        Either the samples are spread over the threads, or (a batch smaller than the thread count, a large network)
        every thread runs its share of each sample (csrc/s2sim.h, s2_workspace).
        """
        low = self.lowered
        per_sample = split_threads(
            self.tuning, batch, self.num_threads, low.n_neurons + sum(p.n_synapses for p in low.projections)
        )
        if per_sample > 1:
            if len(self._split) != per_sample:
                self._split = self.core.split_workspaces(per_sample)
            self._split[0].arrays["sync"][:] = 0
            return [(ws, 0, batch) for ws in self._split]
        threads = max(1, min(self.num_threads, batch))
        while len(self._workspaces) < threads:
            self._workspaces.append(self.core.workspace())
        return [(self._workspaces[i], batch * i // threads, batch * (i + 1) // threads) for i in range(threads)]

    @staticmethod
    def _batch_shape(spec: NetworkSpec, inputs: dict, timesteps: int | None) -> tuple[int, int]:
        shapes = {}
        for name, arr in inputs.items():
            pop = spec.population(name)
            if not pop.model.is_input:
                raise ConfigError(f"inputs: population {name!r} is a {pop.neuron_model!r}, not a spike_list source")
            try:
                shape = np.shape(arr)
            except ValueError:  # a ragged nested list
                raise ConfigError(f"inputs[{name!r}] is not a rectangular array [batch, ticks, {pop.size}]") from None
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
        if timesteps > MAX_TICKS:
            raise ConfigError(f"timesteps = {timesteps} exceeds the C core's limit of {MAX_TICKS} ticks per run")
        if ticks and ticks != {timesteps}:
            raise ConfigError(f"inputs have {ticks.pop()} ticks but timesteps is {timesteps}")
        return (batches.pop() if batches else 1), int(timesteps)

    def _run_bytes(
        self, spec: NetworkSpec, inputs: dict, batch: int, timesteps: int, threads: int, all_spikes: bool = False
    ) -> int:
        """Estimated bytes a run allocates.

        Recording buffers (twice for conv targets, whose records are reordered), dense inputs made from spike_list
        params, and the workspaces still to be allocated.
        """
        item = 8 if self.core.float64 else 4
        rows = batch * timesteps
        total = 0
        for pop, low in zip(spec.populations, self.lowered.populations, strict=True):
            record = pop.record
            per_row = (all_spikes or "spikes" in record) + item * ("v" in record)
            own = rows * low.n * per_row + batch * low.n * item * ("v_last" in record)
            total += own * (2 if low.channel_last_shape else 1) + rows * 16 * ("counts" in record)
            if pop.model.is_input and pop.name not in inputs:
                total += rows * low.n + timesteps * low.n
        lowered = self.lowered
        per_workspace = lowered.n_neurons * 13 + lowered.n_ring * 4 + lowered.n_curr * 3 * item
        return total + max(0, threads - len(self._workspaces)) * per_workspace

    def _buffers(
        self, spec: NetworkSpec, inputs: dict, batch: int, timesteps: int, all_spikes: bool = False
    ) -> list[dict[str, np.ndarray]]:
        # Sized from the lowered network (what the core was validated with), never from the live objects.
        ftype = np.float64 if self.core.float64 else np.float32
        buffers = []
        for pop, low in zip(spec.populations, self.lowered.populations, strict=True):
            n = low.n
            buf: dict[str, np.ndarray] = {}
            if "counts" in pop.record:
                buf["counts"] = np.zeros((batch, timesteps, 2), np.int64)
            if pop.model.is_input:
                given = inputs.get(pop.name)
                buf["input"] = (
                    np.ascontiguousarray(np.broadcast_to(pop.input_array(timesteps), (batch, timesteps, n)))
                    if given is None
                    else pop.kernel_input(given)
                )
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
        for pop, low, buf in zip(spec.populations, self.lowered.populations, buffers, strict=True):
            ext = low.to_external_order
            if "counts" in buf:
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


#: Ticks per run the C core indexes with int32.
MAX_TICKS = 2**31 - 1

#: What run_batch does with an input value above 1 (an event count): refuse it, or send one spike and report.
EVENT_COUNTS = ("error", "binarise")


def spike_inputs(
    spec: NetworkSpec, inputs: Mapping[str, Any], event_counts: str = "error", strict: bool = False
) -> dict[str, Any]:
    """Shape the inputs as [batch, ticks, size] spike arrays.

    A source's array may carry the frame shape after [batch, ticks] (tonic frames [B, T, C, H, W]): it is
    flattened in C order, i.e. neuron ``c*H*W + y*W + x`` as py-spinnaker2 numbers a conv layer's neurons. With
    ``event_counts="binarise"`` whole counts above 1 become one spike, as the gesture pipeline does, and an
    :class:`~s2sim.errors.InputCountsWarning` says how many were clipped (an error under ``strict``); with the
    default ``"error"`` such a value is refused (a spike_list sends at most one spike per neuron and tick).
    """
    if event_counts not in EVENT_COUNTS:
        raise ConfigError(f"event_counts = {event_counts!r}; expected one of {EVENT_COUNTS}")
    sources = {p.name: p for p in spec.populations if p.model.is_input}
    out = {}
    for name, arr in inputs.items():
        pop = sources.get(name)
        if pop is None:  # not a source: _batch_shape names the problem
            out[name] = arr
            continue
        if not isinstance(arr, np.ndarray):
            try:
                arr = np.asarray(arr)
            except (TypeError, ValueError):  # ragged lists: _batch_shape names the problem
                out[name] = arr
                continue
        if arr.ndim > 3 and int(np.prod(arr.shape[2:])) == pop.size:
            arr = arr.reshape(*arr.shape[:2], pop.size)
        if event_counts == "binarise":
            arr = binarise_counts(arr, f"inputs[{name!r}]", name, strict)
        out[name] = arr
    return out


def binarise_counts(arr: np.ndarray, where: str, subject: str, strict: bool = False) -> np.ndarray:
    """Binarise event counts (whole numbers >= 0) into 0/1 spikes.

    An InputCountsWarning (an error when ``strict``) says how many counts above 1 were clipped; ``where`` names
    the array in messages.
    """
    from .errors import InputCountsWarning, warn

    if arr.dtype == np.bool_ or arr.dtype.kind not in "iuf":
        return arr  # booleans are spikes already; other types are refused, with their name, by check_input
    whole = np.isfinite(arr) & (arr >= 0) & (arr == np.floor(arr)) if arr.dtype.kind == "f" else arr >= 0
    if not np.all(whole):
        index = tuple(int(i) for i in np.argwhere(~whole)[0])
        raise ConfigError(
            f"{where}{list(index)} = {np.asarray(arr[index]).item()!r}; event counts must be whole numbers >= 0"
        )
    over = arr > 1
    clipped = int(np.count_nonzero(over))
    if not clipped:
        return arr
    events = int(arr[over].sum(dtype=np.float64)) - clipped
    warn(
        InputCountsWarning,
        f"{where}: {clipped} count(s) above 1 (of {arr.size} values) were clipped to one "
        f"spike, merging {events} event(s): a spike_list sends at most one spike per neuron and tick",
        subject,
        strict=strict,
    )
    return (arr > 0).astype(np.uint8)


def _deadline(timeout: float | None) -> tuple[float, float] | None:
    """(monotonic deadline, timeout) for a run, or None without a timeout."""
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float, np.integer, np.floating))
        or not timeout > 0
        or not np.isfinite(timeout)
    ):
        raise ConfigError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    timeout = min(float(timeout), threading.TIMEOUT_MAX)  # longer waits overflow the platform's timer
    return time.monotonic() + timeout, timeout


def _call(fn: Callable[..., bool], args: tuple, keep: object) -> Callable[[], bool]:
    """Return ``fn(*args)`` as a callable that also holds ``keep`` (the buffers the C call writes).

    They stay alive for as long as the call runs, whatever happens to the frame that started it.
    """
    return functools.partial(_call_holding, fn, args, keep)


def _call_holding(fn: Callable[..., bool], args: tuple, keep: object) -> bool:
    return fn(*args)


def _supervise(
    calls: list[Callable[[], bool]], cancel: np.ndarray, deadline: tuple[float, float] | None, what: str
) -> None:
    """Run the C calls in worker threads and wait for them here, where Ctrl-C and the deadline can reach us.

    On KeyboardInterrupt (or any exception in this thread) or at the deadline, the cancel flag is set, the workers
    stop at the end of their current tick, and only then does the exception (or RunTimeout) leave this function:
    no C call ever outlives the run that started it. One plain thread per call, not a ThreadPoolExecutor: a pool
    costs about 0.1 ms more CPU time per run (measured: 0.09 ms of a 1.1 ms single-sample, 100-tick run of the
    benchmark's DVS-sized net).
    """
    futures: list[Future] = [Future() for _ in calls]
    pairs = zip(futures, calls, strict=True)
    threads = [threading.Thread(target=_settle, args=pair, name="s2sim-run") for pair in pairs]
    for thread in threads:
        thread.start()
    try:
        left = None if deadline is None else max(0.0, deadline[0] - time.monotonic())
        _, pending = wait(futures, timeout=left, return_when=FIRST_EXCEPTION)
    except BaseException:
        cancel[0] = 1
        _drain(futures)
        raise
    if pending:  # a worker failed, or the deadline passed
        cancel[0] = 1
        _drain(futures)
        if not any(f.exception() is not None for f in futures):
            assert deadline is not None  # without one, wait() only returns early on an exception
            raise RunTimeout(
                f"{what} stopped after its timeout of {deadline[1]:g} s; the results are discarded "
                "(the loaded network stays usable)"
            )
    for thread in threads:  # every call has returned: this only joins the threads, leaving none behind
        thread.join()
    errors = [e for e in (f.exception() for f in futures) if e is not None]
    if errors:  # a refused input first: the other threads of a split sample stopped because of it
        raise next((e for e in errors if isinstance(e, InputRefused)), errors[0])


def _settle(future: Future, call: Callable[[], bool]) -> None:
    """Run call in this thread and settle future with its result or exception."""
    future.set_running_or_notify_cancel()
    try:
        future.set_result(call())
    except BaseException as exc:  # handed to the waiting thread, which re-raises it
        future.set_exception(exc)


def _drain(futures: list[Future]) -> None:
    """Wait until every worker has returned, even through further Ctrl-C presses (they return within a tick)."""
    while True:
        try:
            wait(futures)
            return
        except KeyboardInterrupt:
            continue


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
    strict : bool
        Raise ConfigError instead of a WeightLossWarning / TimeConstantWarning when a network is lowered
        (weights that all round to zero, decays outside [0, 1]; see :mod:`s2sim.errors`).
    tuning : s2sim.tuning.KernelTuning, optional
        Force the kernel's paths (speed only; every path gives bit-identical results).
    """

    def __init__(
        self,
        profile: ChipProfile | None = None,
        num_threads: int | None = None,
        timing: Any = None,
        strict: bool = False,
        tuning: KernelTuning | None = None,
    ) -> None:
        self.profile = profile or ChipProfile()
        if not isinstance(self.profile, ChipProfile):
            raise ConfigError(f"profile must be a ChipProfile, got {type(self.profile).__name__}")
        if num_threads is not None and (
            isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
        ):
            raise ConfigError(f"num_threads must be a positive int, got {num_threads!r}")
        if not isinstance(strict, bool):
            raise ConfigError(f"strict must be True or False, got {strict!r}")
        self.num_threads = num_threads or os.cpu_count() or 1
        self.strict = strict
        from .timing import TimingConfig

        if timing is not None and not isinstance(timing, TimingConfig):
            raise ConfigError(f"timing must be an s2sim.timing.TimingConfig, got {type(timing).__name__}")
        self.timing = timing
        if tuning is not None and not isinstance(tuning, KernelTuning):
            raise ConfigError(f"tuning must be an s2sim.tuning.KernelTuning, got {type(tuning).__name__}")
        self.tuning = tuning or KernelTuning()

    def load(self, net: Network) -> LoadedNetwork:
        """Lower and validate ``net`` once, for repeated runs.

        Edits between runs are picked up, see :class:`LoadedNetwork`.
        """
        if not isinstance(net, Network):
            raise ConfigError(f"expected an s2sim Network, got {type(net).__name__}")
        return LoadedNetwork(net, self.profile, self.num_threads, self.strict, self.tuning)

    def _loaded(self, net: Network) -> LoadedNetwork:
        """Return the network's lowering for this profile, kept on the network.

        A script which runs the network once per sample (often with a new Simulator or hardware object each time)
        thus lowers it once.
        """
        if not isinstance(net, Network):
            raise ConfigError(f"expected an s2sim Network, got {type(net).__name__}")
        key = (repr(self.profile), self.strict, self.tuning)
        # one loaded network per network, also when several threads run it for the first time at once: its
        # publication lock is what keeps their published results whole
        with net.__dict__.setdefault("_load_lock", threading.Lock()):
            cached = net.__dict__.get("_loaded")
            if cached is None or cached[0] != key:
                cached = (key, self.load(net))
                net.__dict__["_loaded"] = cached
        loaded = cached[1]
        loaded.num_threads = self.num_threads
        return loaded

    def run_batch(
        self,
        net: Network,
        inputs: Mapping[str, np.ndarray] | None = None,
        timesteps: int | None = None,
        all_spikes: bool = False,
        timeout: float | None = None,
        event_counts: str = "error",
    ) -> BatchResult:
        """Run a batch of independent samples.

        Parameters
        ----------
        net : Network
        inputs : dict, optional
            spike_list population name -> 0/1 array ``[batch, ticks, size]``, or ``[batch, ticks, *frame]`` such
            as tonic frames ``[B, T, C, H, W]`` (flattened in C order, neuron ``c*H*W + y*W + x``). Sources not
            given replay their own ``params`` spike times in every sample.
        timesteps : int, optional
            Ticks to run; taken from the inputs when omitted.
        all_spikes : bool
            Keep every population's spikes, whatever its ``record`` says.
        timeout : float, optional
            Seconds the run may take; it is then stopped (between two ticks) and RunTimeout is raised.
        event_counts : {"error", "binarise"}
            What an input value above 1 (an event count, e.g. from tonic's ToFrame) means: an error (default), or
            one spike, reported by an :class:`~s2sim.errors.InputCountsWarning` that says how many counts were
            clipped (a ConfigError when the Simulator is ``strict``).

        Returns
        -------
        BatchResult
            spikes / voltages / v_last / counts of the populations that record them, in each population's
            py-spinnaker2 neuron order; ``timing`` (a :class:`s2sim.timing.TimingReport`) when the Simulator was
            given a TimingConfig or a population records a PE diagnostic (``time_done``, ``n_packets``,
            ``performance_level``).

        Raises
        ------
        ResourceError
            When the recording buffers would exceed the memory budget (:mod:`s2sim.memory`).
        KeyboardInterrupt
            On Ctrl-C, within about one tick; the network stays usable.
        """
        loaded = self._loaded(net)
        if not self._times(net.validated()):
            return loaded.run_batch(inputs, timesteps, all_spikes, timeout, event_counts)
        from .timing import TimingConfig, estimate

        res = loaded.run_batch(inputs, timesteps, True, timeout, event_counts)
        spec = loaded.spec
        res.timing = estimate(
            spec, res, self.timing or TimingConfig(), placement=_placement(net, self.profile), profile=self.profile
        )
        if not all_spikes:
            for pop in spec.populations:
                if "spikes" not in pop.record:
                    res.spikes.pop(pop.name, None)
        return res

    def _times(self, spec: NetworkSpec) -> bool:
        return self.timing is not None or any(d in p.record for p in spec.populations for d in DIAGNOSTIC_RECORDABLES)

    def run(self, net: Network, timesteps: int, timeout: float | None = None) -> BatchResult:
        """Run one sample, as py-spinnaker2's ``hw.run(net, timesteps)``; results go to the populations.

        The run and the publication of its results hold the network's publication lock, so when several threads
        run one network, every population ends up with the results of one and the same run, never a mix.
        """
        with self._loaded(net).publish_lock:
            res = self.run_batch(net, None, timesteps, timeout=timeout)
            diagnostics = {}
            if res.timing is not None:
                diagnostics = {
                    p.name: {d: res.timing.per_population(p.name, d) for d in DIAGNOSTIC_RECORDABLES if d in p.record}
                    for p in net.populations
                }
            publish_results(net, res, diagnostics)
        return res


def _placement(net: Network, profile: ChipProfile) -> Any:
    from .placement import place

    return place(net, profile)


def publish_results(net: Network, res: BatchResult, extra: Mapping[str, dict] | None = None) -> None:
    """Put sample 0 of ``res`` on the populations, in py-spinnaker2's formats (``get_spikes()``, ...).

    Each population's whole set is put at once; ``extra`` adds results by population name (the PE diagnostics).
    """
    for pop in net.populations:
        pop._results = {**_population_results(res, pop.name, pop.record), **(extra or {}).get(pop.name, {})}


def _population_results(res: BatchResult, name: str, record: Sequence[str]) -> dict:
    """Return one population's results of sample 0 in py-spinnaker2's formats.

    They are built whole before they are published, so a reader in another thread never sees half of them.
    """
    out: dict = {}
    if name in res.counts:
        out["counts"] = {
            "spikes": res.counts[name][0, :, 0].copy(),
            "synaptic_events": res.counts[name][0, :, 1].copy(),
        }
    if name in res.spikes and "spikes" in record:
        out["spikes"] = res.spike_dict(name)
    if name in res.voltages:
        out["v"] = res.voltage_dict(name)
    if name in res.v_last:
        out["v_last"] = {i: res.v_last[name][0, i : i + 1].copy() for i in range(res.v_last[name].shape[1])}
    return out
