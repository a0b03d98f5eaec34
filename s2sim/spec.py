"""The validated snapshot of a network: what a run, lowering, the oracle, placement and export actually read.

py-spinnaker2 scripts build a network once and then edit it between runs (``inp.params = spikes`` per sample,
``pop.params["threshold"][3] = 2.0``, ``pop.size = 20``, ``pop.record.append("v")``). The objects of
:mod:`s2sim.snn` therefore hold what the user wrote, as mutable Python values, and every consumer reads a
:class:`NetworkSpec` instead: an immutable copy, checked against the chip's limits at the moment it is taken.
Taking it again after an edit re-checks exactly what changed, so an edit can never be silently ignored and a
stale or inconsistent description can never reach the C core.

Re-validation is cheap when nothing changed: each population's raw state is hashed (:func:`fingerprint`), and a
population whose hash is unchanged keeps its previous spec.
"""
from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from . import memory
from .errors import ConfigError, LimitError, S2SimError
from .models import INTEGER_PARAMS, RESET_MODES, NeuronModel, get_model

if TYPE_CHECKING:  # pragma: no cover
    from .snn import Network, Population

RECORDABLES = ("spikes", "v", "v_last", "counts")
#: Recordables py-spinnaker2 offers for its PE diagnostics. Accepted on every population, measured by the PE time
#: model (not by the bit-exact kernel).
DIAGNOSTIC_RECORDABLES = ("time_done", "n_packets", "performance_level")
DEFAULT_RESET = "reset_by_subtraction"

#: Largest population s2sim accepts: well above any board (48 chips x 152 PEs x 250 neurons = 1.8 M), low enough
#: that per-neuron arrays stay far from int32 index limits and from exhausting memory on a typo.
MAX_POPULATION_SIZE = 1 << 24

_FLOAT32_MAX = float(np.finfo(np.float32).max)


# -- small checks shared by the snapshot and the network objects ---------------------------------------------------

def as_index(value: Any, where: str) -> int:
    """``value`` as a Python int, or ConfigError naming ``where``; booleans and non-integral floats are refused."""
    if isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise ConfigError(f"{where} must be an integer, got {value!r}")


def key_index(key: Any, where: str) -> int:
    """A neuron index used as a dict key: an int, or a string of digits as JSON has to write one."""
    if isinstance(key, str) and key.isascii() and key.isdigit():
        return int(key)
    return as_index(key, where)


_KIND_NAMES = {"b": "booleans", "c": "complex numbers", "U": "strings", "S": "bytes", "O": "mixed objects"}


def numeric_array(value: Any, where: str, expected: str = "numbers",
                  error: type[S2SimError] = ConfigError) -> np.ndarray:
    """``value`` as an integer or float numpy array, refusing anything that would only become a number by a cast.

    Booleans, complex numbers, strings (numeric or not), bytes and objects are refused with ``error`` naming
    ``where``, also when a Python list mixes them with numbers (``[1, True]`` would otherwise become ``[1, 1]``).
    An empty value passes whatever its dtype.
    """
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, OverflowError):
        raise error(f"{where} must be {expected}, got {_short(value)}") from None
    if not arr.size:
        return arr
    if arr.dtype.kind not in "iuf":
        kind = _KIND_NAMES.get(arr.dtype.kind, f"dtype {arr.dtype}")
        raise error(f"{where} must be {expected}, got {kind} ({_short(value)})")
    if isinstance(value, (list, tuple)):
        hidden = _hidden_non_number(value, arr.ndim)
        if hidden is not None:
            raise error(f"{where} must be {expected}, got {hidden!r} among them")
    return arr


def _hidden_non_number(value: list | tuple, ndim: int) -> Any:
    """The first boolean in a nested list that numpy would silently turn into 0 or 1, else None.

    One pass of ``type`` over the flattened elements (C-level iteration), so the check costs about as much as
    ``np.asarray`` itself.
    """
    flat: Any = value
    for _ in range(max(ndim - 1, 0)):
        flat = itertools.chain.from_iterable(flat)
    flat = list(flat)
    types = set(map(type, flat))
    if bool in types or np.bool_ in types:
        return next(x for x in flat if isinstance(x, (bool, np.bool_)))
    for kind in types:
        if issubclass(kind, np.ndarray):
            bad = next((x for x in flat if isinstance(x, np.ndarray) and x.dtype.kind not in "iuf"), None)
            if bad is not None:
                return bad
    return None


def check_size(size: Any, name: str) -> int:
    """A population size: an int in 1..MAX_POPULATION_SIZE."""
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)):
        raise ConfigError(f"population {name!r}: size must be an int, got {size!r}")
    if size < 1:
        raise ConfigError(f"population {name!r}: size must be at least 1, got {size}")
    if size > MAX_POPULATION_SIZE:
        raise LimitError(f"population {name!r}: size {size} exceeds s2sim's limit of {MAX_POPULATION_SIZE} neurons "
                         "per population (a 48-chip board holds about 1.8 million lif neurons)")
    return int(size)


def check_record(record: Any, name: str, model: NeuronModel) -> tuple[str, ...]:
    """The recordables of a population, in order and without repeats."""
    if isinstance(record, str):
        record = [record]
    if not isinstance(record, (list, tuple)):
        raise ConfigError(f"population {name!r}: record must be a list of names, got {record!r}")
    out: list[str] = []
    for item in record:
        if item not in RECORDABLES and item not in DIAGNOSTIC_RECORDABLES:
            raise ConfigError(f"population {name!r}: unknown recordable {item!r}; known: "
                              f"{RECORDABLES + DIAGNOSTIC_RECORDABLES}")
        if model.is_input and item in ("v", "v_last"):
            raise ConfigError(f"population {name!r}: a spike_list has no membrane to record ({item!r})")
        if item not in out:
            out.append(item)
    return tuple(out)


def check_max_atoms(n: Any, name: str) -> int | None:
    """``set_max_atoms_per_core``'s value: None (the profile's default) or a positive int."""
    if n is None:
        return None
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"population {name!r}: max_atoms_per_core must be a positive int, got {n!r}")
    return int(n)


def check_spike_times(params: Any, name: str, size: int) -> dict[int, tuple[int, ...]]:
    """A spike_list's ``{neuron_index: [tick, ...]}``: indices in range, ticks non-negative, no tick twice."""
    if not isinstance(params, Mapping):
        raise ConfigError(f"population {name!r}: spike_list params must be a dict neuron -> list of ticks, got "
                          f"{type(params).__name__}")
    out: dict[int, tuple[int, ...]] = {}
    for key, ticks in params.items():
        idx = as_index(key, f"population {name!r}: spike_list neuron index")
        if not 0 <= idx < size:
            raise ConfigError(f"population {name!r}: spike_list neuron index {idx} out of range 0..{size - 1}")
        if idx in out:
            raise ConfigError(f"population {name!r}: spike_list neuron index {idx} is listed twice")
        clean = _tick_array(ticks, f"population {name!r}: neuron {idx} spike tick")
        if clean.size and clean[0] < 0:
            raise ConfigError(f"population {name!r}: neuron {idx} has negative spike tick {clean[0]}")
        dup = np.flatnonzero(clean[1:] == clean[:-1])
        if dup.size:
            raise ConfigError(f"population {name!r}: neuron {idx} lists tick {clean[dup[0]]} twice; a spike_list "
                              "source sends at most one spike per neuron and tick")
        out[idx] = tuple(clean.tolist())
    return out


def _tick_array(ticks: Any, where: str) -> np.ndarray:
    """Ticks as a sorted int64 array; every entry an integer (ints, or floats with no fraction)."""
    if isinstance(ticks, (str, bytes, Mapping)):
        raise ConfigError(f"{where}s must be a list of integers, got {_short(ticks)}")
    if isinstance(ticks, (set, frozenset)):
        ticks = list(ticks)
    arr = numeric_array(ticks, f"{where}s", "a list of integers")
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ConfigError(f"{where}s must be a flat list of integers, got an array of shape {arr.shape}")
    if arr.dtype.kind in "iu":
        return np.sort(arr.astype(np.int64))
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        big = np.flatnonzero(np.abs(arr) >= 2**62)
        if not big.size:
            return np.sort(arr.astype(np.int64))
    values = [as_index(t, where) for t in arr.tolist()]  # names the first entry that is not an integer
    big = [v for v in values if abs(v) >= 2**62]
    if big:
        raise LimitError(f"{where} {big[0]} is beyond any run (ticks must be below 2^62)")
    return np.sort(np.asarray(values, dtype=np.int64))


def param_array(name: str, key: str, value: Any, size: int) -> np.ndarray:
    """One neuron parameter as a float64 array of length ``size`` (a scalar is broadcast), checked.

    Refused: non-numbers (strings, complex, booleans), NaN/inf, values beyond float32, wrong lengths; integer
    parameters (``t_refrac``) must be whole numbers 0..2^31-1.
    """
    where = f"population {name!r}: parameter {key!r}"
    arr = numeric_array(value, where, "a number or a list of numbers").astype(np.float64)
    if arr.ndim == 0:
        arr = np.full(size, float(arr))
    if arr.shape != (size,):
        raise ConfigError(f"{where} has shape {arr.shape}; expected a scalar or ({size},)")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ConfigError(f"{where} of neuron {bad[0]} is {arr[bad[0]]}; parameters must be finite")
    if key in INTEGER_PARAMS:
        wrong = (arr != np.round(arr)) | (arr < 0) | (arr > 2**31 - 1)
        if np.any(wrong):
            i = int(np.flatnonzero(wrong)[0])
            raise ConfigError(f"{where} of neuron {i} is {arr[i]}; it must be an integer 0..2147483647")
    else:
        over = np.flatnonzero(np.abs(arr) > _FLOAT32_MAX)
        if over.size:
            raise LimitError(f"{where} of neuron {over[0]} is {arr[over[0]]}, beyond float32's range "
                             f"(|x| <= {_FLOAT32_MAX:.4g})")
    return arr


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_neuron_params(params: Any, name: str, model: NeuronModel, size: int) -> tuple[str, dict[str, np.ndarray]]:
    """A neuron population's params dict -> (reset, {parameter: float64[size]}); missing ones take defaults."""
    if not isinstance(params, Mapping):
        raise ConfigError(f"population {name!r}: params must be a dict, got {type(params).__name__}")
    defaults = model.defaults
    for key in params:
        if key != "reset" and key not in defaults:
            raise ConfigError(f"population {name!r}: unknown parameter {key!r} for model {model.name!r}; known: "
                              f"{sorted(defaults) + ['reset']}")
    reset = params.get("reset", DEFAULT_RESET)
    if not isinstance(reset, str) or reset not in RESET_MODES:
        raise ConfigError(f"population {name!r}: reset = {reset!r} is not one of {RESET_MODES}")
    memory.check(size * 8 * 2 * len(defaults), f"population {name!r}: {len(defaults)} parameters of {size} neurons")
    return reset, {key: param_array(name, key, params.get(key, default), size) for key, default in defaults.items()}


# -- fingerprints ------------------------------------------------------------------------------------------------

def fingerprint(*values: Any) -> bytes:
    """A hash of nested Python / numpy values, to tell cheaply whether a population's raw state changed.

    Arrays are hashed by dtype, shape and bytes (no copy when contiguous); containers recursively; anything else by
    type and repr. Equal hashes mean equal content for every type a valid network can hold.
    """
    h = hashlib.blake2b(digest_size=16)
    for value in values:
        _feed(h, value)
    return h.digest()


def _feed(h: Any, value: Any) -> None:
    if isinstance(value, np.ndarray):
        h.update(f"a{value.dtype.str}{value.shape}".encode())
        if value.dtype.kind == "O":
            for item in value.ravel().tolist():
                _feed(h, item)
        else:
            h.update(memoryview(np.ascontiguousarray(value)).cast("B"))
    elif isinstance(value, Mapping):
        h.update(b"{")
        for key, item in value.items():
            _feed(h, key)
            _feed(h, item)
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(b"[" if isinstance(value, list) else b"(")
        for item in value:
            _feed(h, item)
        h.update(b"]")
    else:
        h.update(f"{type(value).__name__}:{value!r};".encode())


# -- the snapshot -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PopulationSpec:
    """One population as validated at one moment: immutable, every value checked.

    Attributes
    ----------
    name, size, neuron_model, model
        Identity, neuron count and model.
    reset : str
        "reset_by_subtraction" or "reset_to_v_reset" (neuron models; the default for spike_list).
    params : Mapping[str, np.ndarray]
        Every model parameter as a read-only float64 array of length ``size`` (host values, before the float32
        upload). Empty for spike_list.
    spike_times : Mapping[int, tuple[int, ...]]
        A spike_list's sorted ticks per neuron. Empty for neuron models.
    record : tuple[str, ...]
    max_atoms_per_core : int or None
    fingerprint : bytes
        Hash of the raw state this spec was taken from.
    lowering_key : bytes
        Hash of what the C core's network description depends on (not the spike_list's ticks, not ``record``).
    """

    name: str
    size: int
    neuron_model: str
    model: NeuronModel
    reset: str
    params: Mapping[str, np.ndarray]
    spike_times: Mapping[int, tuple[int, ...]]
    record: tuple[str, ...]
    max_atoms_per_core: int | None
    fingerprint: bytes
    lowering_key: bytes

    def param(self, key: str) -> np.ndarray:
        """One parameter as a read-only float64 array of length ``size``."""
        try:
            return self.params[key]
        except KeyError:
            raise ConfigError(f"population {self.name!r} ({self.neuron_model}) has no parameter {key!r}; it has "
                              f"{sorted(self.params)}") from None

    def input_array(self, timesteps: int) -> np.ndarray:
        """The spike_list as a dense uint8 [timesteps, size] array (1 where the neuron spikes in that tick).

        A tick at or beyond ``timesteps`` is an error, never dropped.
        """
        out = np.zeros((timesteps, self.size), dtype=np.uint8)
        for idx, ticks in self.spike_times.items():
            if ticks and ticks[-1] >= timesteps:
                late = next(t for t in ticks if t >= timesteps)
                raise LimitError(f"population {self.name!r}: neuron {idx} spikes at tick {late}, beyond the run of "
                                 f"{timesteps} ticks (last tick {timesteps - 1})")
            out[list(ticks), idx] = 1
        return out

    def kernel_input(self, spikes: Any, where: str = "inputs") -> np.ndarray:
        """A spike array [..., ticks, size] for the C core, checked no more than needed.

        A contiguous uint8 array goes to the core as it is: the core checks every value while it reads the row
        (one pass instead of two, on every run), and a value other than 0 or 1 stops the run, after which
        :meth:`check_input` names it. Booleans are 0/1 by type. Other types are checked and converted here.
        """
        arr = spikes if isinstance(spikes, np.ndarray) else None
        if arr is not None and arr.ndim >= 2 and arr.shape[-1] == self.size and arr.flags.c_contiguous:
            if arr.dtype == np.uint8:
                return arr
            if arr.dtype == np.bool_:
                return arr.view(np.uint8)
        return self.check_input(spikes, where)

    def check_input(self, spikes: Any, where: str = "inputs") -> np.ndarray:
        """Validate a spike array [..., ticks, size] for this spike_list and return it as contiguous uint8.

        Every value must be 0 or 1 (bool accepted): a source sends at most one spike per neuron and tick, so a 2
        or a 0.7 is an error, never wrapped or truncated by a cast. Complex, string and object arrays are refused.
        """
        label = f"{where}[{self.name!r}]"
        try:
            arr = np.asarray(spikes)
        except (TypeError, ValueError):
            raise ConfigError(f"{label} is not an array of 0/1 spikes") from None
        if arr.ndim < 2 or arr.shape[-1] != self.size:
            raise ConfigError(f"{label} has shape {arr.shape}; expected [..., ticks, {self.size}]")
        if arr.dtype == np.bool_:
            return np.ascontiguousarray(arr, dtype=np.uint8)
        if arr.dtype.kind not in "iuf":
            raise ConfigError(f"{label} has dtype {arr.dtype}; spikes must be 0/1 integers, floats or booleans")
        bad = ~((arr == 0) | (arr == 1))
        if np.any(bad):
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ConfigError(f"{label}{list(index)} = {np.asarray(arr[index]).item()!r}; a spike_list sends at "
                              "most one spike per neuron and tick (values must be 0 or 1; event counts such as "
                              "tonic frames are binarised, with a report, by Simulator.run_batch(..., "
                              "event_counts='binarise') and s2sim run --event-counts binarise)")
        return np.ascontiguousarray(arr, dtype=np.uint8)


def population_spec(pop: "Population") -> PopulationSpec:
    """Validate ``pop``'s current raw state (cached on the population while that state is unchanged)."""
    fp = _raw_fingerprint(pop)
    cached = pop.__dict__.get("_spec")
    if fp and cached is not None and cached.fingerprint == fp:
        return cached
    spec = _validate_population(pop, fp)
    pop.__dict__["_spec"] = spec
    return spec


def _raw_fingerprint(pop: "Population") -> bytes:
    """Hash of what the user can edit on a population; b"" when some value cannot be hashed (then nothing is
    cached and the population is validated from scratch, which names what is wrong)."""
    try:
        return fingerprint(pop.name, pop.size, pop.neuron_model, pop.params, pop.record, pop.max_atoms_per_core)
    except (TypeError, ValueError, RecursionError):
        return b""


def _validate_population(pop: "Population", fp: bytes) -> PopulationSpec:
    name = pop.name
    if not isinstance(name, str) or not name:
        raise ConfigError(f"population name must be a non-empty string, got {name!r}")
    size = check_size(pop.size, name)
    model = get_model(pop.neuron_model, name)
    record = check_record(pop.record, name, model)
    max_atoms = check_max_atoms(pop.max_atoms_per_core, name)
    if model.is_input:
        spikes = check_spike_times(pop.params if pop.params is not None else {}, name, size)
        reset, params = DEFAULT_RESET, {}
        key = fingerprint(name, size, model.name)
    else:
        spikes = {}
        reset, params = check_neuron_params(pop.params if pop.params is not None else {}, name, model, size)
        for arr in params.values():
            arr.setflags(write=False)
        key = fingerprint(name, size, model.name, reset, params)
    return PopulationSpec(name, size, model.name, model, reset, MappingProxyType(params), MappingProxyType(spikes),
                          record, max_atoms, fp, key)


@dataclass(frozen=True)
class NetworkSpec:
    """A whole network as validated at one moment.

    Attributes
    ----------
    name : str
    populations : tuple[PopulationSpec, ...]
        In the network's order.
    projections : tuple
        The network's Projection / Conv2DProjection objects (immutable once built), each checked against the
        population sizes of this spec.
    pre, post : tuple[int, ...]
        Per projection, the index of its pre and post population in ``populations``.
    fingerprint, lowering_key : bytes
        Hashes of the raw state, and of what lowering depends on.
    """

    name: str
    populations: tuple[PopulationSpec, ...]
    projections: tuple[Any, ...]
    pre: tuple[int, ...]
    post: tuple[int, ...]
    fingerprint: bytes
    lowering_key: bytes

    def population(self, name: str) -> PopulationSpec:
        """The population called ``name``."""
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise ConfigError(f"network {self.name!r}: no population named {name!r}; have "
                          f"{[p.name for p in self.populations]}")

    def index(self, name: str) -> int:
        """Position of the population called ``name``."""
        return self.populations.index(self.population(name))


def network_spec(net: "Network") -> NetworkSpec:
    """Validate ``net`` as it is now: every population, and every projection against the current sizes."""
    if not net.populations:
        raise ConfigError(f"network {net.name!r} has no populations")
    specs = tuple(population_spec(p) for p in net.populations)
    names = [s.name for s in specs]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise ConfigError(f"network {net.name!r}: two populations are named {dup!r}; names must be unique")
    index = {id(p): k for k, p in enumerate(net.populations)}
    pre, post = [], []
    for proj in net.projections:
        ends = []
        for end in (proj.pre, proj.post):
            if id(end) not in index:
                raise ConfigError(f"projection {proj.name!r}: population {end.name!r} was not added to network "
                                  f"{net.name!r}")
            ends.append(index[id(end)])
        proj.check_sizes(specs[ends[0]], specs[ends[1]])
        pre.append(ends[0])
        post.append(ends[1])
    structure = _structure(net)
    fp = fingerprint(net.name, [s.fingerprint for s in specs], structure)
    key = fingerprint([s.lowering_key for s in specs], structure)
    return NetworkSpec(net.name, specs, tuple(net.projections), tuple(pre), tuple(post), fp, key)


def _structure(net: "Network") -> tuple:
    return tuple(map(id, net.populations)), tuple((id(q), id(q.pre), id(q.post)) for q in net.projections)


def raw_fingerprint(net: "Network") -> bytes:
    """Hash of the network's raw state without validating it (to detect an edit made while a run was going on)."""
    return fingerprint(net.name, [_raw_fingerprint(p) for p in net.populations], _structure(net))
