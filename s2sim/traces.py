"""The trace of one run: network, profile, inputs, recorded spikes and voltages, on disk as HDF5.

The simulator, the board runner (:mod:`s2sim.chip`) and a user's own py-spinnaker2 script all write the same
format, so any two runs can be compared with :func:`s2sim.conformance.compare`. Voltages are stored as the bit
patterns of their float32 (or float64) values, so a file holds exactly what was recorded, NaN payloads included.
The layout is specified, with its version history, in docs/conformance.md.

Rows and ticks: a trace of a run of ``timesteps`` ticks that dropped its first ``tick_offset`` ticks has
``timesteps - tick_offset`` rows; row ``r`` is tick ``r + tick_offset``. ``latency_per_hop`` is 1 for the chip
and s2sim (a spike reaches the next population one tick later) and 0 for frameworks that propagate a spike
through every layer in the same step (snnTorch, Norse).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, ResourceError, TraceError
from .network_io import network_bytes, network_from_dict, network_to_dict
from .profile import ChipProfile
from .snn import Network, Population
from .spec import key_index, numeric_array

#: Identifies the HDF5 layout; bump TRACE_FORMAT_VERSION when it changes (readers refuse newer versions).
TRACE_FORMAT = "s2sim-trace"
TRACE_FORMAT_VERSION = 1

_BITS = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}
_FLOATS = {"float32": np.float32, "float64": np.float64}


@dataclass
class Trace:
    """Everything needed to re-run and check one recorded run (batch of one).

    Attributes
    ----------
    network : Network
        The network that was run (its spike_list params need not equal ``inputs``; ``inputs`` is what was sent).
    timesteps : int
        Ticks the run lasted.
    inputs : dict[str, np.ndarray]
        spike_list population -> uint8 [timesteps, size]: the input spikes of every tick of the run.
    spikes : dict[str, np.ndarray]
        population -> uint8 [rows, size], 1 where the neuron spiked.
    voltages : dict[str, np.ndarray]
        population -> float32 (or float64) [rows, size], membrane after reset.
    v_last : dict[str, np.ndarray]
        population -> [size], membrane after the last tick (populations recording only "v_last").
    profile : ChipProfile or None
        The profile the run was made under; None when unknown (a chip run).
    tick_offset : int
        Ticks dropped at the start: row ``r`` is tick ``r + tick_offset``.
    latency_per_hop : int
        1 when a spike takes one tick per population hop (chip, s2sim), 0 for same-step frameworks.
    source : str
        Who made the run ("s2sim", "spinnaker2", "brian2", "snntorch", ...).
    metadata : dict
        Free-form JSON-able notes (probe name, board address, ...).
    """

    network: Network
    timesteps: int
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    voltages: dict[str, np.ndarray] = field(default_factory=dict)
    v_last: dict[str, np.ndarray] = field(default_factory=dict)
    profile: ChipProfile | None = None
    tick_offset: int = 0
    latency_per_hop: int = 1
    source: str = "s2sim"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Recorded rows per population: ``timesteps - tick_offset``."""
        return self.timesteps - self.tick_offset

    @property
    def exact(self) -> bool:
        """True when every recorded voltage is float32 (what the chip holds), so a bit-exact check is meaningful."""
        return all(a.dtype == np.float32 for a in (*self.voltages.values(), *self.v_last.values()))

    def validate(self, where: str = "trace") -> None:
        """Check names, shapes and dtypes against the network; raise TraceError naming what is wrong."""
        if not isinstance(self.timesteps, (int, np.integer)) or self.timesteps < 1:
            raise TraceError(f"{where}: timesteps must be a positive int, got {self.timesteps!r}")
        if not 0 <= self.tick_offset < self.timesteps:
            raise TraceError(f"{where}: tick_offset {self.tick_offset} outside 0..{self.timesteps - 1}")
        if self.latency_per_hop not in (0, 1):
            raise TraceError(f"{where}: latency_per_hop must be 0 or 1, got {self.latency_per_hop!r}")
        sizes = {p.name: p for p in self.network.populations}
        # a re-run must use what was sent, never fall back to the spike_list's declared params
        unsent = [p.name for p in self.network.populations if p.model.is_input and p.name not in self.inputs]
        if unsent:
            raise TraceError(
                f"{where}: no input spikes for spike_list population(s) {unsent}; a trace stores what every source sent"
            )
        groups = (
            ("inputs", self.inputs, (self.timesteps,), (np.uint8,)),
            ("spikes", self.spikes, (self.rows,), (np.uint8,)),
            ("voltages", self.voltages, (self.rows,), (np.float32, np.float64)),
            ("v_last", self.v_last, (), (np.float32, np.float64)),
        )
        for label, group, lead, dtypes in groups:
            for name, arr in group.items():
                pop = sizes.get(name)
                if pop is None:
                    raise TraceError(
                        f"{where}: {label} recorded for population {name!r}, which is not in network "
                        f"{self.network.name!r} (populations: {sorted(sizes)})"
                    )
                if label == "inputs" and not pop.model.is_input:
                    raise TraceError(
                        f"{where}: inputs given for population {name!r}, which is a "
                        f"{pop.neuron_model!r}, not a spike_list"
                    )
                if label in ("voltages", "v_last") and pop.model.is_input:
                    raise TraceError(f"{where}: {label} recorded for spike_list population {name!r}")
                shape = (*lead, pop.size)
                if not isinstance(arr, np.ndarray) or arr.shape != shape:
                    got = getattr(arr, "shape", type(arr).__name__)
                    raise TraceError(
                        f"{where}: {label} of population {name!r} has shape {got}; expected {shape} "
                        f"({'rows' if lead else ''}{lead[0] if lead else ''} x {pop.size} neurons)"
                    )
                if arr.dtype not in [np.dtype(d) for d in dtypes]:
                    raise TraceError(
                        f"{where}: {label} of population {name!r} has dtype {arr.dtype}; expected "
                        f"{' or '.join(np.dtype(d).name for d in dtypes)}"
                    )
                if arr.dtype == np.uint8 and arr.size and arr.max() > 1:
                    raise TraceError(f"{where}: {label} of population {name!r} holds values other than 0/1")

    def input_batch(self) -> dict[str, np.ndarray]:
        """Return the inputs as ``Simulator.run_batch`` takes them: name -> uint8 [1, timesteps, size]."""
        return {name: arr[None] for name, arr in self.inputs.items()}


# -- construction from runs -----------------------------------------------------------------------------------
def spike_list_inputs(network: Network, timesteps: int) -> dict[str, np.ndarray]:
    """Every spike_list population's params as dense uint8 [timesteps, size] arrays."""
    return {p.name: p.input_array(timesteps) for p in network.populations if p.model.is_input}


def from_result(
    network: Network,
    result: Any,
    *,
    profile: ChipProfile | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
    sample: int = 0,
    source: str = "s2sim",
    metadata: Mapping[str, Any] | None = None,
) -> Trace:
    """Make a Trace from one sample of a :class:`s2sim.results.BatchResult`.

    Parameters
    ----------
    network : Network
        The network that was run.
    result : BatchResult
        What ``Simulator.run`` / ``run_batch`` returned.
    profile : ChipProfile, optional
        The profile of the run.
    inputs : dict, optional
        The batched inputs given to ``run_batch`` (name -> [B, T, N]); spike_list populations not in it use their
        params, as the simulator does.
    sample : int
        Which sample of the batch.
    """
    steps = int(result.timesteps)
    ins = spike_list_inputs(network, steps)
    for name, arr in (inputs or {}).items():
        ins[name] = _population(network, name, "inputs").check_input(np.asarray(arr)[sample])
    pops = {p.name: p for p in network.populations}
    trace = Trace(
        network=network,
        timesteps=steps,
        inputs=ins,
        spikes={
            n: np.ascontiguousarray(a[sample], dtype=np.uint8)
            for n, a in result.spikes.items()
            if not pops[n].model.is_input
        },
        voltages={n: np.ascontiguousarray(a[sample]) for n, a in result.voltages.items()},
        v_last={n: np.ascontiguousarray(a[sample]) for n, a in result.v_last.items() if n not in result.voltages},
        profile=profile,
        source=source,
        metadata=dict(metadata or {}),
    )
    trace.validate(f"result of network {network.name!r}")
    return trace


def from_spinnaker2(
    network: Network,
    timesteps: int,
    spikes: Mapping[str, Mapping[int, Sequence[int]]],
    voltages: Mapping[str, Mapping[int, Sequence[float]]] | None = None,
    *,
    profile: ChipProfile | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
    tick_offset: int = 0,
    source: str = "spinnaker2",
    metadata: Mapping[str, Any] | None = None,
) -> Trace:
    """Make a Trace from what py-spinnaker2's ``pop.get_spikes()`` / ``pop.get_voltages()`` return.

    Parameters
    ----------
    network : Network
        The s2sim network that was deployed (population names must match the dict keys).
    timesteps : int
        Ticks the board ran.
    spikes : dict
        population name -> ``{neuron: [tick, ...]}`` (absolute ticks; neurons without spikes may be absent).
    voltages : dict, optional
        population name -> ``{neuron: [v per row]}``; a population recording only "v_last" gives one value.
        Values that are all exactly float32 are stored as float32, otherwise as float64 (a Brian2 run).
    inputs : dict, optional
        spike_list name -> uint8 [timesteps, size] actually sent; default: the network's spike_list params.
    tick_offset : int
        Ticks dropped at the start of the recording.
    """
    ins = spike_list_inputs(network, timesteps)
    ins.update({k: _population(network, k, "inputs").check_input(v) for k, v in (inputs or {}).items()})
    trace = Trace(
        network=network,
        timesteps=timesteps,
        inputs=ins,
        tick_offset=tick_offset,
        profile=profile,
        source=source,
        metadata=dict(metadata or {}),
    )
    for name, sdict in spikes.items():
        pop = _population(network, name, "spikes")
        trace.spikes[name] = _spike_dict_to_array(sdict, pop.size, timesteps, tick_offset, name)
    for name, vdict in (voltages or {}).items():
        pop = _population(network, name, "voltages")
        last_only = "v" not in pop.record and "v_last" in pop.record
        arr = _voltage_dict_to_array(vdict, pop.size, 1 if last_only else trace.rows, name)
        if last_only:
            trace.v_last[name] = arr[0]
        else:
            trace.voltages[name] = arr
    trace.validate(f"py-spinnaker2 results of network {network.name!r}")
    return trace


def save_spinnaker2_run(
    path: str | Path, network: Network, timesteps: int, populations: Iterable[Any], **kwargs: Any
) -> Trace:
    """Save a board run from a py-spinnaker2 script in one call.

    ``populations`` are the py-spinnaker2 Population objects after ``hw.run(...)`` (anything with ``name``,
    ``record``, ``get_spikes()`` and ``get_voltages()``); each must have the name of a population of ``network``.
    Further keyword arguments go to :func:`from_spinnaker2`. Returns the Trace written.
    """
    spikes, volts = {}, {}
    for pop in populations:
        record = list(getattr(pop, "record", ["spikes"]))
        if "spikes" in record:
            spikes[pop.name] = pop.get_spikes()
        if "v" in record or "v_last" in record:
            volts[pop.name] = pop.get_voltages()
    trace = from_spinnaker2(network, timesteps, spikes, volts, **kwargs)
    write_trace(path, trace)
    return trace


def _population(network: Network, name: str, what: str) -> Population:
    try:
        return network.population(name)
    except ConfigError:
        raise TraceError(
            f"{what} given for population {name!r}, which is not in network {network.name!r} "
            f"(populations: {[p.name for p in network.populations]})"
        ) from None


def _spike_dict_to_array(
    sdict: Mapping[int, Sequence[int]], size: int, timesteps: int, offset: int, name: str
) -> np.ndarray:
    out = np.zeros((timesteps - offset, size), dtype=np.uint8)
    for key, ticks in sdict.items():
        try:
            idx = key_index(key, "neuron index")
            tick_array = np.atleast_1d(numeric_array(ticks, "ticks", "integers"))
            if np.any(tick_array != np.round(tick_array)):
                raise ConfigError("not integers")
            tick_array = tick_array.astype(np.int64)
        except ConfigError:
            raise TraceError(
                f"spikes of population {name!r}: neuron {key!r} -> {ticks!r} is not an integer neuron "
                "index with a list of integer ticks"
            ) from None
        if not 0 <= idx < size:
            raise TraceError(f"spikes of population {name!r}: neuron {idx} outside 0..{size - 1}")
        for t in tick_array:
            if not offset <= t < timesteps:
                raise TraceError(
                    f"spikes of population {name!r}: neuron {idx} spikes at tick {int(t)}, outside "
                    f"the recorded ticks {offset}..{timesteps - 1}"
                )
            out[t - offset, idx] = 1
    return out


def _voltage_dict_to_array(vdict: Mapping[Any, Sequence[float]], size: int, rows: int, name: str) -> np.ndarray:
    missing = [i for i in range(size) if i not in vdict and str(i) not in vdict]
    if missing:
        raise TraceError(
            f"voltages of population {name!r}: neuron {missing[0]} is missing "
            f"({len(missing)} of {size} neurons missing)"
        )
    wide = np.empty((rows, size), dtype=np.float64)
    for i in range(size):
        try:
            values = numeric_array(vdict[i] if i in vdict else vdict[str(i)], "voltages", "numbers")
            if values.dtype != np.float32:
                values = values.astype(np.float64)
        except ConfigError:
            raise TraceError(f"voltages of population {name!r}: neuron {i} has non-numeric values") from None
        if values.ndim != 1 or values.shape[0] != rows:
            raise TraceError(
                f"voltages of population {name!r}: neuron {i} has {values.size} values; expected "
                f"{rows} (one per recorded tick)"
            )
        if values.dtype == np.float32:
            values = values.astype(np.float64)
        wide[:, i] = values
    narrow = wide.astype(np.float32)
    # py-spinnaker2 hands back Python floats: chip values are float32 widened, Brian2 values are true float64.
    same = (narrow.astype(np.float64) == wide) | (np.isnan(wide) & np.isnan(narrow))
    return narrow if same.all() else wide


# -- HDF5 -----------------------------------------------------------------------------------------------------
def write_trace(path: str | Path, trace: Trace) -> None:
    """Write ``trace`` to ``path`` (HDF5, layout version :data:`TRACE_FORMAT_VERSION`)."""
    import h5py

    trace.validate(f"trace for {path}")
    with h5py.File(path, "w") as f:
        f.attrs["format"] = TRACE_FORMAT
        f.attrs["version"] = TRACE_FORMAT_VERSION
        f.attrs["timesteps"] = int(trace.timesteps)
        f.attrs["tick_offset"] = int(trace.tick_offset)
        f.attrs["latency_per_hop"] = int(trace.latency_per_hop)
        f.attrs["source"] = str(trace.source)
        f["network"] = json.dumps(network_to_dict(trace.network))
        if trace.profile is not None:
            f["profile"] = json.dumps(trace.profile.to_dict())
        f["metadata"] = json.dumps(trace.metadata)
        inputs = f.create_group("inputs")
        for i, (name, arr) in enumerate(trace.inputs.items()):
            _write_array(inputs, str(i), arr).attrs["name"] = name
        pops = f.create_group("populations")
        names = [
            p.name
            for p in trace.network.populations
            if p.name in trace.spikes or p.name in trace.voltages or p.name in trace.v_last
        ]
        for i, name in enumerate(names):
            g = pops.create_group(str(i))
            g.attrs["name"] = name
            if name in trace.spikes:
                _write_array(g, "spikes", trace.spikes[name])
            for key, group in (("v", trace.voltages), ("v_last", trace.v_last)):
                if name in group:
                    arr = group[name]
                    ds = _write_array(g, key, arr.view(_BITS[arr.dtype]))
                    ds.attrs["dtype"] = arr.dtype.name


def read_trace(path: str | Path, *, isolate: bool = False) -> Trace:
    """Read a trace written by :func:`write_trace`.

    ``isolate=True`` reads the HDF5 file in a child process (:mod:`s2sim.isolation`), so a damaged file that
    crashes or hangs the HDF5 library raises TraceError instead of taking the interpreter down; use it for files
    from elsewhere (``s2sim conform`` does).

    Raises
    ------
    TraceError
        When the file is missing, truncated, not an s2sim trace, of a newer version, or inconsistent with the
        network it holds; the message names the file and the part that is wrong.
    ResourceError
        When the arrays the file declares, or the network it describes, would exceed the memory budget.
    """
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"{path}: trace file does not exist")
    if isolate:
        from .isolation import call_isolated

        raw = call_isolated(read_raw_trace, str(path), what=f"trace {str(path)!r}")
    else:
        raw = read_raw_trace(str(path))
    return _build_trace(raw, path)


def read_trace_set(paths: str | Path | Iterable[str | Path], *, isolate: bool = False) -> tuple[list[Trace], list[str]]:
    """Read several traces; a directory stands for its ``*.h5`` files (sorted).

    Returns traces and their labels (metadata "probe" if present, else the file name). ``isolate`` as in
    :func:`read_trace`.
    """
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(item.glob("*.h5"))
            if not found:
                raise TraceError(f"{item}: directory holds no *.h5 trace files")
            files += found
        else:
            files.append(item)
    if not files:
        raise TraceError("no trace files given")
    traces = [read_trace(f, isolate=isolate) for f in files]
    labels = [str(t.metadata.get("probe", f.name)) for t, f in zip(traces, files, strict=True)]
    return traces, labels


def read_raw_trace(path: str) -> dict[str, Any]:
    """Everything a trace file holds, as plain Python values and numpy arrays, checked only for being readable.

    This is the part that drives the HDF5 library (run in a child process by ``read_trace(isolate=True)``);
    :func:`_build_trace` turns it into a Trace. Every failure inside h5py means a damaged file: TraceError.
    """
    import h5py

    from . import memory

    try:
        f = h5py.File(path, "r")
    except Exception as exc:  # OSError, and whatever a damaged superblock makes h5py raise
        raise TraceError(
            f"{path}: cannot open as an HDF5 trace ({type(exc).__name__}: {exc}); the file is truncated or not HDF5"
        ) from None
    try:
        with f:
            memory.check(memory.hdf5_bytes(f), f"reading trace {path!r} (the arrays it declares)")
            return _raw_contents(f, path)
    except (TraceError, ResourceError):
        raise
    except MemoryError:
        raise ResourceError(f"{path}: reading the trace needs more memory than is available") from None
    except Exception as exc:  # KeyError, AttributeError, RuntimeError, ...: a group or dataset is not what it was
        raise TraceError(f"{path}: damaged or incomplete trace ({type(exc).__name__}: {exc})") from None


def _raw_contents(f: Any, path: str) -> dict[str, Any]:
    raw: dict[str, Any] = {"attrs": {k: _plain(f.attrs.get(k)) for k in _TRACE_ATTRS}}
    if raw["attrs"]["format"] != TRACE_FORMAT:
        return raw  # the build step names the format; nothing else of a foreign file is read
    for key in ("network", "profile", "metadata"):
        raw[key] = _plain(f[key][()]) if key in f else None
    for key in ("inputs", "populations"):
        if key not in f:
            raise TraceError(f"{path}: trace lacks /{key}")
    raw["inputs"] = [(_plain(ds.attrs["name"]), ds[()]) for ds in f["inputs"].values()]
    raw["populations"] = []
    for g in f["populations"].values():
        arrays = {
            key: (g[key][()], _plain(g[key].attrs.get("dtype", ""))) for key in ("spikes", "v", "v_last") if key in g
        }
        raw["populations"].append((_plain(g.attrs["name"]), arrays))
    return raw


_TRACE_ATTRS = ("format", "version", "timesteps", "tick_offset", "latency_per_hop", "source")


def _plain(value: Any) -> Any:
    """Return an HDF5 attribute or scalar dataset as a Python value.

    Text is decoded, 0-d and 1-element arrays are unwrapped.
    """
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "SUOiufb":
        value = value.reshape(()).item()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value


def _build_trace(raw: dict[str, Any], path: Path) -> Trace:
    attrs = raw["attrs"]
    if attrs["format"] != TRACE_FORMAT:
        raise TraceError(
            f"{path}: not an s2sim trace (format attribute {attrs['format']!r}, expected {TRACE_FORMAT!r})"
        )
    version = _int_attr(attrs, "version", path)
    if not 1 <= version <= TRACE_FORMAT_VERSION:
        raise TraceError(
            f"{path}: trace format version {version} is not supported (this s2sim reads "
            f"1..{TRACE_FORMAT_VERSION}); upgrade s2sim"
        )
    for key in ("network", "metadata"):
        if raw[key] is None:
            raise TraceError(f"{path}: trace lacks /{key}")
    network_data, metadata = _json(raw["network"], "network", path), _json(raw["metadata"], "metadata", path)
    profile_data = None if raw["profile"] is None else _json(raw["profile"], "profile", path)
    if not isinstance(metadata, dict) or not (profile_data is None or isinstance(profile_data, dict)):
        raise TraceError(f"{path}: /metadata and /profile must hold JSON objects")
    from . import memory

    memory.check(network_bytes(network_data), f"building the network stored in trace {str(path)!r}")
    try:
        network = network_from_dict(network_data)
        network.validated()
        profile = ChipProfile.from_dict(profile_data) if profile_data is not None else None
    except ConfigError as exc:
        raise TraceError(f"{path}: the stored network or profile is invalid: {exc}") from None
    source = attrs["source"]
    if not isinstance(source, str):
        raise TraceError(f"{path}: attribute 'source' = {source!r} must be text")
    trace = Trace(
        network=network,
        timesteps=_int_attr(attrs, "timesteps", path),
        profile=profile,
        tick_offset=_int_attr(attrs, "tick_offset", path),
        latency_per_hop=_int_attr(attrs, "latency_per_hop", path),
        source=source,
        metadata=metadata,
    )
    for name, arr in raw["inputs"]:
        trace.inputs[str(name)] = arr
    for name, arrays in raw["populations"]:
        name = str(name)
        if "spikes" in arrays:
            trace.spikes[name] = arrays["spikes"][0]
        for key, group in (("v", trace.voltages), ("v_last", trace.v_last)):
            if key in arrays:
                bits, dtype = arrays[key]
                group[name] = _floats(bits, dtype, f"{path}: population {name!r} /{key}")
    trace.validate(str(path))
    return trace


def _int_attr(attrs: dict[str, Any], key: str, path: Path) -> int:
    value = attrs.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TraceError(f"{path}: attribute {key!r} = {value!r} must be an integer")
    return value


def _json(text: Any, key: str, path: Path) -> Any:
    if not isinstance(text, str):
        raise TraceError(f"{path}: /{key} must hold JSON text, got {type(text).__name__}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise TraceError(f"{path}: /{key} is not valid JSON ({type(exc).__name__}: {exc})") from None


def _floats(bits: np.ndarray, dtype: Any, where: str) -> np.ndarray:
    """Decode stored bit patterns into the float32/float64 values they encode."""
    if dtype not in _FLOATS:
        raise TraceError(f"{where} has dtype attribute {dtype!r}; expected 'float32' or 'float64'")
    if not isinstance(bits, np.ndarray) or bits.dtype != _BITS[np.dtype(dtype)]:
        raise TraceError(
            f"{where} stores {getattr(bits, 'dtype', type(bits).__name__)} bit patterns for {dtype} values"
        )
    return bits.view(_FLOATS[dtype])


def _write_array(group: Any, key: str, arr: np.ndarray) -> Any:
    big = arr.size >= 4096
    return group.create_dataset(key, data=arr, compression="gzip" if big else None, shuffle=big)
