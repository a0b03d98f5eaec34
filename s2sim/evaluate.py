"""Evaluate a whole test split in the simulator: in this process on every core, or on local processes or a Dask
cluster when asked.

    from s2sim.evaluate import evaluate
    result = evaluate(gesture_net, test_spikes)                         # this process, the kernel's threads
    result = evaluate(gesture_net, test_spikes, backend="processes")    # local processes, one per core
    result = evaluate(gesture_net, test_spikes, dask_address="tcp://scheduler:8786")   # an existing cluster
    print(result.accuracy, result.seconds)

By default the split runs in this process: ``Simulator.run_batch`` spreads each chunk over all cores with threads
(the C kernel releases the GIL), which costs no process start-up, no pickling and works in a plain script without
an ``if __name__ == "__main__":`` guard. Processes cannot beat that on one machine (the kernel's threads already
scale to every core); they are there for a machine whose cores the kernel's threads cannot use, and Dask for
several machines. There the split is cut into chunks; every worker lowers the network once (per process, cached by
the network's content hash) and runs its chunks on one thread. Networks travel as s2sim's exact dict form
(:mod:`s2sim.network_io`), so a worker runs bit-for-bit what the caller built. A Dask worker needs s2sim installed
in its own environment.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import time
import warnings
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from .errors import ConfigError, FallbackWarning
from .gesture_model import GestureNetwork, predict
from .profile import ChipProfile
from .spec import numeric_array


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs, as plain data (a Network itself does not pickle)."""

    key: str
    network: dict
    input: str
    output: str
    timesteps: int
    latency: int
    profile: dict


@dataclass
class EvaluationResult:
    """What the simulator did on a split.

    Attributes
    ----------
    labels : np.ndarray
        int64 [samples].
    output_spikes : np.ndarray
        uint8 [samples, T, n_classes], aligned with the float model's steps (the network's first ``latency``
        ticks dropped).
    spikes_per_population : dict[str, np.ndarray]
        Population name -> int64 [samples]: spikes it emitted over the whole run (activity per layer; a layer that
        is silent for every sample is what a broken quantisation looks like).
    seconds : float
        Wall-clock time of the simulation, chunking and transfer included.
    backend : str
        "threads" (this process), "processes" or "dask".
    workers : int
        Threads (this process) or processes that ran chunks (for Dask: the cluster's workers).
    chunks : int
        Tasks the split was cut into.
    """

    labels: np.ndarray
    output_spikes: np.ndarray
    spikes_per_population: dict[str, np.ndarray]
    seconds: float
    backend: str
    workers: int
    chunks: int

    @property
    def counts(self) -> np.ndarray:
        """Output spike counts [samples, n_classes]."""
        return self.output_spikes.sum(axis=1, dtype=np.int64)

    @property
    def predictions(self) -> np.ndarray:
        return predict(self.counts)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predictions == self.labels)) if len(self.labels) else float("nan")

    def silent_populations(self) -> list[str]:
        """Populations that emitted no spike in any sample."""
        return [name for name, n in self.spikes_per_population.items() if not n.any()]


def agreement(reference_spikes: np.ndarray, result: EvaluationResult) -> dict[str, float]:
    """How often the simulator matches a reference model's output (e.g. the QAT model), per sample.

    Parameters
    ----------
    reference_spikes : array [samples, T, n_classes]
        The reference's output spikes, step t aligned with ``result.output_spikes[:, t]``.

    Returns
    -------
    dict
        ``prediction``: share of samples with the same predicted class; ``spikes``: share of samples whose output
        spike trains are identical in every tick and neuron.
    """
    ref = np.asarray(reference_spikes)
    if ref.shape != result.output_spikes.shape:
        raise ConfigError(f"agreement: reference spikes have shape {ref.shape}; the simulator's are "
                          f"{result.output_spikes.shape}")
    if not len(ref):
        return {"prediction": float("nan"), "spikes": float("nan")}
    same_pred = predict(ref.sum(axis=1)) == result.predictions
    same_spikes = np.all(ref.astype(np.uint8) == result.output_spikes, axis=(1, 2))
    return {"prediction": float(same_pred.mean()), "spikes": float(same_spikes.mean())}


#: Samples per chunk in this process (bounds the memory of one run_batch; the kernel's threads split each chunk).
THREAD_CHUNK = 256
BACKENDS = ("auto", "threads", "processes")


def evaluate(network: GestureNetwork | Callable[[], GestureNetwork], data: Any, *,
             profile: ChipProfile | None = None, workers: int | None = None, dask_address: Any = None,
             chunk_size: int | None = None, progress: bool | None = None,
             backend: str = "auto") -> EvaluationResult:
    """Run every sample of ``data`` through the simulator and collect the output.

    Parameters
    ----------
    network : GestureNetwork or callable
        The chip network (:func:`s2sim.gesture_model.chip_network`), or a function that builds it.
    data : GestureSpikes or tuple
        A GestureSpikes, or a pair (spikes uint8 [samples, T, n_inputs], labels [samples]).
    profile : ChipProfile, optional
        The chip variant (default ChipProfile()).
    workers : int, optional
        Local processes (default: one per core, at most one per chunk); a number above 1 asks for processes
        when ``backend`` is "auto". With ``dask_address`` it only sets the default chunking.
    dask_address : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) or a ``dask.distributed.Client``; chunks then run
        on that cluster.
    chunk_size : int, optional
        Samples per task (default: in this process THREAD_CHUNK; otherwise the split divided evenly, about four
        chunks per worker).
    progress : bool, optional
        Show a progress bar over chunks on stderr (default: when stderr is a terminal, see :mod:`s2sim.progress`).
    backend : str
        "auto" (default: this process, unless ``workers`` > 1 or ``dask_address`` asks otherwise), "threads"
        (this process, the kernel's threads on every core) or "processes". A script without an
        ``if __name__ == "__main__":`` guard cannot start processes: its run falls back to threads with a warning.
    """
    spikes, labels = _unpack(data)
    gnet = network() if callable(network) else network
    if not isinstance(gnet, GestureNetwork):
        raise ConfigError(f"evaluate: network must be a GestureNetwork or a function returning one, got "
                          f"{type(gnet).__name__}")
    if spikes.shape[1] > gnet.timesteps:
        raise ConfigError(f"evaluate: samples have {spikes.shape[1]} ticks; the network runs {gnet.timesteps}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"evaluate: workers must be a positive int, got {workers!r}")
    if backend not in BACKENDS:
        raise ConfigError(f"evaluate: backend = {backend!r}; expected one of {BACKENDS}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ConfigError(f"evaluate: chunk_size must be a positive int, got {chunk_size!r}")
    job = _make_job(gnet, profile or ChipProfile())
    n = len(spikes)
    cores = os.cpu_count() or 1
    mode = "dask" if dask_address is not None else backend
    if mode == "auto":
        mode = "processes" if workers is not None and workers > 1 else "threads"
    n_workers = workers or cores
    size = chunk_size or (THREAD_CHUNK if mode == "threads" else max(1, -(-n // (4 * n_workers))))
    bounds = [(i, min(i + size, n)) for i in range(0, n, size)]
    t0 = time.perf_counter()
    if mode == "dask":
        parts, n_workers = _run_dask(job, spikes, bounds, dask_address, progress)
    elif mode == "processes" and len(bounds) > 1:
        n_workers = min(n_workers, len(bounds))
        parts = _run_processes(job, spikes, bounds, n_workers, progress)
        if parts is None:
            mode = "threads"
    else:
        mode = "threads"
    if mode == "threads":
        parts, n_workers = [_run_chunk(job, spikes[a:b], cores) for a, b in _bar(bounds, progress)], cores
    seconds = time.perf_counter() - t0
    out_spikes = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, spikes.shape[1], 0), np.uint8)
    names = list(parts[0][1]) if parts else []
    activity = {name: np.concatenate([p[1][name] for p in parts]) for name in names}
    return EvaluationResult(labels, out_spikes, activity, seconds, mode, n_workers, len(bounds))


def _unpack(data: Any) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(data, "spikes") and hasattr(data, "labels"):
        spikes, labels = data.spikes, data.labels
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        spikes, labels = data
    else:
        raise ConfigError("evaluate: data must be GestureSpikes or a (spikes, labels) pair")
    spikes = np.asarray(spikes)
    labels = numeric_array(labels, "evaluate: labels", "class indices")
    if labels.size and np.any(labels != np.round(labels)):
        raise ConfigError("evaluate: labels must be integer class indices")
    labels = labels.astype(np.int64)
    if spikes.ndim != 3:
        raise ConfigError(f"evaluate: spikes have shape {spikes.shape}; expected [samples, ticks, inputs]")
    if labels.shape != (spikes.shape[0],):
        raise ConfigError(f"evaluate: {spikes.shape[0]} samples but labels of shape {labels.shape}")
    if spikes.size and (spikes.min() < 0 or spikes.max() > 1):
        raise ConfigError("evaluate: spikes must be 0/1 (a spike_list sends at most one spike per neuron and tick)")
    return spikes.astype(np.uint8, copy=False), labels


def _make_job(gnet: GestureNetwork, profile: ChipProfile) -> _Job:
    from .network_io import network_to_dict

    network = network_to_dict(gnet.net)
    for pop in network["populations"]:  # the activity per layer comes from the counts, recorded only when asked
        pop["record"] = [*pop["record"], "counts"] if "counts" not in pop["record"] else pop["record"]
    text = json.dumps([network, gnet.input, gnet.output, gnet.timesteps, gnet.latency, profile.to_dict()],
                      sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()
    return _Job(key, network, gnet.input, gnet.output, gnet.timesteps, gnet.latency, profile.to_dict())


#: Networks a worker process has lowered already (key -> LoadedNetwork); the C core holds them for reuse.
_LOADED: dict[str, Any] = {}


def _loaded(job: _Job, threads: int = 1):
    key = f"{job.key}/{threads}"
    if key not in _LOADED:
        from .network_io import network_from_dict
        from .simulator import Simulator

        _LOADED.clear()  # one network per process at a time: loaded networks hold large buffers
        sim = Simulator(ChipProfile.from_dict(job.profile), num_threads=threads)
        _LOADED[key] = sim.load(network_from_dict(job.network))
    return _LOADED[key]


def _run_chunk(job: _Job, spikes: np.ndarray, threads: int = 1) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Simulate one chunk: (output spikes aligned with the float model, spikes per population per sample)."""
    loaded = _loaded(job, threads)
    pad = np.zeros((spikes.shape[0], job.timesteps - spikes.shape[1], spikes.shape[2]), np.uint8)
    res = loaded.run_batch({job.input: np.concatenate([spikes, pad], axis=1)}, job.timesteps)
    activity = {name: c[:, :, 0].sum(axis=1) for name, c in res.counts.items()}
    return res.spikes[job.output][:, job.latency:job.latency + spikes.shape[1]].copy(), activity


def _bar(items: Sequence, progress: bool | None, total: int | None = None) -> Any:
    from .progress import bar

    return bar(items, total=total or len(items), desc="simulating", unit="chunk", progress=progress)


#: The job a local worker process was started with (sent once, not with every chunk).
_WORKER_JOB: dict[str, _Job] = {}


def _remember_job(job: _Job) -> None:
    _WORKER_JOB.clear()
    _WORKER_JOB[job.key] = job
    _loaded(job)


def _chunk_in_worker(args: tuple[str, np.ndarray]):
    key, spikes = args
    return _run_chunk(_WORKER_JOB[key], spikes)


def _script_reimported() -> bool:
    """True in a spawned child while it re-runs the parent's main script (its __main__ is then __mp_main__)."""
    return multiprocessing.parent_process() is not None and \
        getattr(sys.modules.get("__main__"), "__name__", "") == "__mp_main__"


def _run_processes(job: _Job, spikes: np.ndarray, bounds: list[tuple[int, int]], workers: int,
                   progress: bool) -> list | None:
    """Chunks on spawned processes; None when they cannot start (a script without a __main__ guard, whose
    workers re-run it and stop at this call instead of starting processes of their own)."""
    from concurrent.futures import ProcessPoolExecutor

    if _script_reimported():
        raise RuntimeError("s2sim.evaluate: a worker process re-ran a script without an "
                           "if __name__ == '__main__' guard")
    # spawn, not fork: the caller may hold torch's or the simulator's threads, which a forked child cannot use
    ctx = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_remember_job, initargs=(job,)) as pool:
            results = pool.map(_chunk_in_worker, [(job.key, spikes[a:b]) for a, b in bounds])
            return list(_bar(results, progress, len(bounds)))
    except BrokenProcessPool:
        warnings.warn(FallbackWarning(
            "evaluate: worker processes could not start (a script run directly needs an "
            "`if __name__ == '__main__':` guard to use processes); evaluated in this process's threads instead, "
            "with identical results", "evaluate"), stacklevel=3)
        return None


def _run_dask(job: _Job, spikes: np.ndarray, bounds: list[tuple[int, int]], address: Any,
              progress: bool) -> tuple[list, int]:
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise ConfigError("evaluate: dask_address needs the optional package dask[distributed]") from exc
    client = address if isinstance(address, Client) else Client(address, set_as_default=False)
    try:
        job_future = client.scatter(job, broadcast=True)
        futures = [client.submit(_run_chunk, job_future, spikes[a:b], pure=False) for a, b in bounds]
        return [fut.result() for fut in _bar(futures, progress)], len(client.scheduler_info()["workers"])
    finally:
        if client is not address:
            client.close()


# -- the whole gesture pipeline: float -> PTQ -> QAT -> simulator -------------------------------------------------
@dataclass
class PipelineResult:
    """Outcome of :func:`run_gesture_pipeline`.

    Attributes
    ----------
    rows : list of (stage, accuracy or None, how it was measured)
    agreement : dict
        QAT model (torch chip forward) vs simulator, per sample: ``prediction`` and ``spikes`` (see
        :func:`agreement`); PTQ's when no QAT model was given (``reference``).
    ptq, qat : QuantizedModel
        The integer networks.
    network : GestureNetwork
        The simulated network (the QAT model's, or PTQ's when no QAT model is given).
    simulation : EvaluationResult
    samples : int
    """

    rows: list[tuple[str, float | None, str]]
    agreement: dict[str, float]
    ptq: Any
    qat: Any
    network: GestureNetwork
    simulation: EvaluationResult
    samples: int
    reference: str = "QAT"
    seconds: dict[str, float] = field(default_factory=dict)

    def format(self) -> str:
        """The accuracy table."""
        lines = [f"{'stage':<34} {'accuracy':>9}   measured by", "-" * 78]
        for stage, acc, how in self.rows:
            text = f"{100 * acc:8.2f} %" if acc is not None else "      n/a"
            lines.append(f"{stage:<34} {text:>9}   {how}")
        lines.append("-" * 78)
        a = self.agreement
        label = f"{self.reference} model vs simulator, per sample"
        lines.append(f"{label:<34}   prediction {100 * a['prediction']:.2f} %, "
                     f"output spike trains identical {100 * a['spikes']:.2f} %")
        lines.append(f"{self.samples} samples; simulator: {self.simulation.backend}, {self.simulation.workers} "
                     f"worker(s), {self.simulation.seconds:.2f} s")
        return "\n".join(lines)


def run_gesture_pipeline(float_model: Any, config: Any, test: Any, *, qat_model: Any = None,
                         qat_config: Any = None, calib: Any = None, ptq_config: Any = None,
                         workers: int | None = None, dask_address: Any = None, progress: bool | None = None,
                         batch_size: int = 64) -> PipelineResult:
    """Float, PTQ, QAT and simulator accuracy of the gesture network on ``test``, and QAT-vs-simulator agreement.

    Parameters
    ----------
    float_model : torch.nn.Module
        The trained snnTorch model (:func:`s2sim.gesture_model.build_torch_model`).
    config : GestureNetConfig
    test : GestureSpikes
    qat_model : torch.nn.Module, optional
        The QAT-trained snnTorch model (weights after ``tools/train_gesture.py --qat``); without it the simulator
        runs the PTQ network and the agreement is PTQ's.
    qat_config : QuantConfig, optional
        The settings the QAT model was trained with (stored in its file's metadata).
    calib : GestureSpikes, optional
        Calibration samples for PTQ (default: the first 64 test samples; use train samples for a fair number).
    ptq_config : QuantConfig, optional
        Default: py-spinnaker2's max rule in the QAT model's chip format (``qat_config`` with
        ``scale_rule="max"``: same rounding, weight widths and profile), so the PTQ and QAT rows compare the same
        chip; ``QuantConfig(scale_rule="max")`` without a QAT model.
    workers, dask_address, progress
        Passed to :func:`evaluate` for the simulator runs. Each stage is also logged (INFO, ``s2sim`` logger).
    """
    import torch

    from .gesture_model import chip_network, run_torch_model, time_first
    from .progress import step
    from .qat import QATModel
    from .quantize import QuantConfig, ptq

    n_bins = config.frames.n_time_bins
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    step("float model: snnTorch forward of %d samples", len(test))
    with torch.no_grad():
        float_counts = np.concatenate([run_torch_model(float_model, torch.from_numpy(
            test.spikes[i:i + batch_size]).float()).sum(dim=1).numpy() for i in range(0, len(test), batch_size)])
    float_acc = float(np.mean(predict(float_counts) == test.labels))
    seconds["float"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    calib = calib if calib is not None else test.subset(slice(0, 64))
    step("PTQ: quantizing on %d calibration samples, then simulating it", len(calib))
    ptq_model = ptq(float_model, time_first(calib.spikes), torch.from_numpy(calib.labels),
                    ptq_config or replace(qat_config or QuantConfig(), scale_rule="max", threshold_search="none"))
    ptq_net = chip_network(ptq_model, n_bins, name="dvs_gesture_ptq")
    ptq_sim = evaluate(ptq_net, test, profile=ptq_model.config.profile, workers=workers, dask_address=dask_address,
                       progress=progress)
    seconds["ptq"] = time.perf_counter() - t0

    rows = [("float (snnTorch)", float_acc, "snnTorch forward"),
            (f"PTQ ({describe_format(ptq_model.config)})", ptq_sim.accuracy,
             "simulator (PTQ forward is bit-identical)")]
    if qat_model is not None:
        t0 = time.perf_counter()
        step("QAT model: chip-arithmetic torch forward of %d samples", len(test))
        qat = QATModel(qat_model, config.frames.input_shape, qat_config or QuantConfig()).freeze()
        qat_spikes = _chip_forward_spikes(qat, test, n_bins, len(qat.layers), batch_size)
        seconds["qat_forward"] = time.perf_counter() - t0
        qat_acc = float(np.mean(predict(qat_spikes.sum(axis=1)) == test.labels))
        rows.append((f"QAT ({describe_format(qat.config)})", qat_acc,
                     "QAT model's chip-arithmetic torch forward"))
    else:
        qat, qat_spikes = ptq_model, _chip_forward_spikes(ptq_model, test, n_bins, len(ptq_model.layers), batch_size)
    t0 = time.perf_counter()
    step("simulator: %d samples on the bit-exact core", len(test))
    network = chip_network(qat, n_bins)
    sim = evaluate(network, test, profile=qat.config.profile, workers=workers, dask_address=dask_address,
                   progress=progress)
    seconds["simulator"] = time.perf_counter() - t0
    rows.append(("simulator (s2sim, bit-exact core)", sim.accuracy,
                 f"s2sim.Simulator on the {'QAT' if qat_model is not None else 'PTQ'} network"))
    return PipelineResult(rows, agreement(qat_spikes, sim), ptq_model, qat, network, sim, len(test),
                          "QAT" if qat_model is not None else "PTQ", seconds)


def describe_format(config: Any) -> str:
    """A short label of a QuantConfig's rule and chip format, e.g. "max, trunc, dense +-15"."""
    parts = [config.scale_rule]
    if config.rounding == "trunc":
        parts.append("trunc")
    if config.dense_model == "lif":
        parts.append("dense +-15")
    if config.max_weight is not None:
        parts.append(f"all +-{config.max_weight}")
    return ", ".join(parts)


def _chip_forward_spikes(quantized: Any, data: Any, n_bins: int, latency: int, batch_size: int) -> np.ndarray:
    """Output spikes [samples, n_bins, n] of a QuantizedModel's torch forward, aligned like the simulator's."""
    import torch

    from .gesture_model import time_first

    out = []
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            spk = quantized.forward(time_first(data.spikes[i:i + batch_size])).spikes[-1]
            out.append(spk.numpy().transpose(1, 0, 2)[:, latency:latency + n_bins].astype(np.uint8))
    return np.concatenate(out)
