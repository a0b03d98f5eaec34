"""The network API, shaped like py-spinnaker2's ``spinnaker2.snn`` so user scripts port by changing an import.

    from s2sim import snn
    stim = snn.Population(1, "spike_list", {0: [1, 5]}, name="stim")
    pop = snn.Population(10, "lif_no_delay", {"threshold": 5.0, "alpha_decay": 0.9}, name="pop", record=["spikes", "v"])
    net = snn.Network("demo"); net.add(stim, pop, snn.Projection(stim, pop, [[0, 3, 7, 0]]))

Objects here only hold and check what the user wrote. Turning them into the integer and float32 arrays the chip
holds happens in :mod:`s2sim.lowering`, because that depends on the ChipProfile (weight rounding).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .errors import ConfigError, LimitError
from .models import INTEGER_PARAMS, RESET_MODES, NeuronModel, get_model

RECORDABLES = ("spikes", "v", "v_last", "counts")
CONV_PARAM_DEFAULTS = {
    "stride_x": 1, "stride_y": 1, "pool_x": 1, "pool_y": 1,
    "pad_top": 0, "pad_bottom": 0, "pad_left": 0, "pad_right": 0,
}
CONV_PARAM_REQUIRED = ("in_height", "in_width")
#: The x/y parameter pairs a chip reading x along the height would swap (ChipProfile.conv_x_axis).
CONV_AXIS_PAIRS = (("stride_x", "stride_y"), ("pool_x", "pool_y"), ("pad_left", "pad_top"), ("pad_right", "pad_bottom"))

#: Largest population s2sim accepts: well above any board (48 chips x 152 PEs x 250 neurons = 1.8 M), low enough
#: that per-neuron arrays stay far from int32 index limits and from exhausting memory on a typo.
MAX_POPULATION_SIZE = 1 << 24

_auto_names = itertools.count()


def _check_size(size: Any, name: str) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise ConfigError(f"population {name!r}: size must be an int, got {size!r}")
    if size < 1:
        raise ConfigError(f"population {name!r}: size must be at least 1, got {size}")
    if size > MAX_POPULATION_SIZE:
        raise LimitError(f"population {name!r}: size {size} exceeds s2sim's limit of {MAX_POPULATION_SIZE} neurons "
                         "per population (a 48-chip board holds about 1.8 million lif neurons)")
    return int(size)


class Population:
    """A group of neurons of one model.

    Parameters
    ----------
    size : int
        Number of neurons (at least 1).
    neuron_model : str
        One of :data:`s2sim.models.MODELS` ("spike_list", "lif", "lif_no_delay", "lif_conv2d", "lif_curr_exp",
        "lif_curr_exp_no_delay").
    params : dict
        For ``spike_list``: ``{neuron_index: [tick, ...]}``. Otherwise parameter name -> scalar or one value per
        neuron, plus ``reset`` ("reset_by_subtraction" or "reset_to_v_reset"). Missing parameters take the
        model defaults; unknown names are an error.
    name : str, optional
        Unique name within its network (generated when omitted).
    record : list of str, optional
        Any of "spikes", "v", "v_last", "counts". Default ``["spikes"]``.
    """

    def __init__(self, size: int, neuron_model: str, params: Mapping | None = None, name: str | None = None,
                 record: Sequence[str] | None = None) -> None:
        self.name = str(name) if name is not None else f"pop{next(_auto_names)}"
        self.size = _check_size(size, self.name)
        self.model: NeuronModel = get_model(neuron_model, self.name)
        self.neuron_model = self.model.name
        self.record = self._check_record(["spikes"] if record is None else record)
        self.max_atoms_per_core: int | None = None
        self.spike_times: dict[int, list[int]] = {}
        self.params: dict[str, np.ndarray] = {}
        self.reset = "reset_by_subtraction"
        if self.model.is_input:
            self.spike_times = self._check_spike_times(params or {})
        else:
            self._set_params(params or {})
        self._results: dict[str, Any] = {}

    # -- construction checks -------------------------------------------------------------------------------
    def _check_record(self, record: Sequence[str]) -> list[str]:
        if isinstance(record, str):
            record = [record]
        out = []
        for item in record:
            if item not in RECORDABLES:
                raise ConfigError(f"population {self.name!r}: unknown recordable {item!r}; known: {RECORDABLES}")
            if self.model.is_input and item in ("v", "v_last"):
                raise ConfigError(f"population {self.name!r}: a spike_list has no membrane to record ({item!r})")
            if item not in out:
                out.append(item)
        return out

    def _check_spike_times(self, params: Mapping) -> dict[int, list[int]]:
        if not isinstance(params, Mapping):
            raise ConfigError(f"population {self.name!r}: spike_list params must be a dict neuron -> list of ticks")
        out: dict[int, list[int]] = {}
        for key, ticks in params.items():
            idx = _as_index(key, f"population {self.name!r}: spike_list neuron index")
            if not 0 <= idx < self.size:
                raise ConfigError(f"population {self.name!r}: spike_list neuron index {idx} out of range "
                                  f"0..{self.size - 1}")
            if np.ndim(ticks) == 0:
                ticks = [ticks]
            clean = sorted(_as_index(t, f"population {self.name!r}: neuron {idx} spike tick") for t in ticks)
            if clean and clean[0] < 0:
                raise ConfigError(f"population {self.name!r}: neuron {idx} has negative spike tick {clean[0]}")
            dup = [a for a, b in zip(clean, clean[1:]) if a == b]
            if dup:
                raise ConfigError(f"population {self.name!r}: neuron {idx} lists tick {dup[0]} twice; a spike_list "
                                  "source sends at most one spike per neuron and tick")
            out[idx] = clean
        return out

    def _set_params(self, params: Mapping) -> None:
        if not isinstance(params, Mapping):
            raise ConfigError(f"population {self.name!r}: params must be a dict, got {type(params).__name__}")
        defaults = self.model.defaults
        for key in params:
            if key != "reset" and key not in defaults:
                raise ConfigError(f"population {self.name!r}: unknown parameter {key!r} for model "
                                  f"{self.neuron_model!r}; known: {sorted(defaults) + ['reset']}")
        self.reset = params.get("reset", "reset_by_subtraction")
        if self.reset not in RESET_MODES:
            raise ConfigError(f"population {self.name!r}: reset = {self.reset!r} is not one of {RESET_MODES}")
        for key, default in defaults.items():
            self.params[key] = self._param_array(key, params.get(key, default))

    def _param_array(self, key: str, value: Any) -> np.ndarray:
        where = f"population {self.name!r}: parameter {key!r}"
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number or a list of numbers, got {value!r}") from None
        if arr.ndim == 0:
            arr = np.full(self.size, float(arr))
        if arr.shape != (self.size,):
            raise ConfigError(f"{where} has shape {arr.shape}; expected a scalar or ({self.size},)")
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ConfigError(f"{where} of neuron {bad[0]} is {arr[bad[0]]}; parameters must be finite")
        if key in INTEGER_PARAMS:
            if np.any(arr != np.round(arr)) or np.any(arr < 0) or np.any(arr > 2**31 - 1):
                i = int(np.flatnonzero((arr != np.round(arr)) | (arr < 0) | (arr > 2**31 - 1))[0])
                raise ConfigError(f"{where} of neuron {i} is {arr[i]}; it must be an integer 0..2147483647")
        else:
            with np.errstate(over="ignore"):
                f32 = arr.astype(np.float32)
            over = np.flatnonzero(~np.isfinite(f32))
            if over.size:
                raise LimitError(f"{where} of neuron {over[0]} is {arr[over[0]]}, beyond float32's range "
                                 f"(|x| <= {float(np.finfo(np.float32).max):.4g})")
        arr.setflags(write=False)
        return arr

    # -- py-spinnaker2 API ---------------------------------------------------------------------------------
    def set_max_atoms_per_core(self, n: int) -> None:
        """Limit neurons per PE for this population (as py-spinnaker2)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError(f"population {self.name!r}: max_atoms_per_core must be a positive int, got {n!r}")
        self.max_atoms_per_core = int(n)

    def get_spikes(self) -> dict[int, list[int]]:
        """Recorded spikes of the last run: neuron -> list of ticks (every neuron present, as py-spinnaker2)."""
        return self._result("spikes")

    def get_voltages(self) -> dict[int, np.ndarray]:
        """Recorded membrane voltages of the last run: neuron -> array, one value per tick, after reset.

        With ``record=["v_last"]`` each array holds the last tick only.
        """
        if "v" in self._results:
            return self._results["v"]
        return self._result("v_last")

    def get_counts(self) -> dict[str, np.ndarray]:
        """Per-tick counts of the last run: ``{"spikes": int64[T], "synaptic_events": int64[T]}``."""
        return self._result("counts")

    def _result(self, key: str) -> Any:
        if key not in self._results:
            if key not in self.record and not (key == "v_last" and "v" in self.record):
                raise ConfigError(f"population {self.name!r}: {key!r} was not recorded (record={self.record})")
            raise ConfigError(f"population {self.name!r}: no results; run the network first")
        return self._results[key]

    def input_array(self, timesteps: int) -> np.ndarray:
        """The spike_list as a dense uint8 [timesteps, size] array (1 where the neuron spikes in that tick)."""
        out = np.zeros((timesteps, self.size), dtype=np.uint8)
        for idx, ticks in self.spike_times.items():
            late = [t for t in ticks if t >= timesteps]
            if late:
                raise LimitError(f"population {self.name!r}: neuron {idx} spikes at tick {late[0]}, beyond the run "
                                 f"of {timesteps} ticks (last tick {timesteps - 1})")
            out[ticks, idx] = 1
        return out

    def check_input(self, spikes: Any, where: str = "inputs") -> np.ndarray:
        """Validate a spike array [..., ticks, size] for this spike_list and return it as contiguous uint8.

        Every value must be 0 or 1 (bool accepted): a source sends at most one spike per neuron and tick, so a
        2 or a 0.7 is an error, never wrapped or truncated by a cast.
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
        try:
            bad = ~((arr == 0) | (arr == 1))
        except TypeError:
            bad = np.ones(arr.shape, dtype=bool)
        if np.any(bad):
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ConfigError(f"{label}{list(index)} = {np.asarray(arr[index]).item()!r}; a spike_list sends at "
                              "most one spike per "
                              "neuron and tick (values must be 0 or 1)")
        return np.ascontiguousarray(arr, dtype=np.uint8)

    def param(self, key: str) -> np.ndarray:
        """One parameter as a float64 array of length ``size`` (host values, before float32 upload)."""
        return self.params[key]

    def __repr__(self) -> str:
        return f"Population({self.size}, {self.neuron_model!r}, name={self.name!r})"


class Projection:
    """Synapses from a connection list ``[[pre_idx, post_idx, weight, delay], ...]``.

    Weights may be floats; they become integers by ChipProfile.weight_rounding when the network is lowered.
    The delay field takes effect at tick ``t + 1 + delay`` for a spike sent in tick ``t``.
    """

    def __init__(self, pre: Population, post: Population, connections: Iterable, name: str | None = None) -> None:
        self.pre, self.post = _check_pair(pre, post, "Projection")
        self.name = str(name) if name is not None else f"{pre.name}->{post.name}"
        try:
            conns = np.asarray(connections, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"projection {self.name!r}: connections must be numbers [[pre, post, weight, delay], "
                              "...]") from None
        if conns.size == 0:
            conns = conns.reshape(0, 4)
        if conns.ndim != 2 or conns.shape[1] != 4:
            raise ConfigError(f"projection {self.name!r}: connections have shape {conns.shape}; expected (n, 4) "
                              "rows [pre_idx, post_idx, weight, delay]")
        bad = np.flatnonzero(~np.isfinite(conns).all(axis=1))
        if bad.size:
            raise ConfigError(f"projection {self.name!r}: connection {bad[0]} = {conns[bad[0]].tolist()} is not "
                              "finite")
        self.pre_idx = self._index_column(conns[:, 0], "pre index", pre.size)
        self.post_idx = self._index_column(conns[:, 1], "post index", post.size)
        self.weights = conns[:, 2].copy()
        max_delay = post.model.max_delay
        self.delays = self._index_column(conns[:, 3], "delay", max_delay + 1, kind=LimitError,
                                         limit_text=f"0..{max_delay} for model {post.neuron_model!r} of population "
                                                    f"{post.name!r}")
        for arr in (self.pre_idx, self.post_idx, self.weights, self.delays):
            arr.setflags(write=False)

    def _index_column(self, col: np.ndarray, what: str, bound: int, kind=ConfigError,
                      limit_text: str = "") -> np.ndarray:
        nonint = np.flatnonzero(col != np.round(col))
        if nonint.size:
            raise ConfigError(f"projection {self.name!r}: connection {nonint[0]} has non-integer {what} "
                              f"{col[nonint[0]]}")
        out = np.flatnonzero((col < 0) | (col >= bound))
        if out.size:
            limit = limit_text or f"0..{bound - 1}"
            raise kind(f"projection {self.name!r}: connection {out[0]} has {what} {int(col[out[0]])}, outside "
                       f"{limit}")
        return col.astype(np.int64)

    @property
    def connections(self) -> np.ndarray:
        """The connection list as an (n, 4) float64 array."""
        return np.stack([self.pre_idx, self.post_idx, self.weights, self.delays], axis=1).astype(np.float64)

    def __repr__(self) -> str:
        return f"Projection({self.pre.name!r} -> {self.post.name!r}, {len(self.weights)} synapses)"


@dataclass(frozen=True)
class ConvGeometry:
    """A convolution's parameters and (C, H, W) shapes under one reading of the x/y parameters."""

    params: dict[str, int]
    in_shape: tuple[int, int, int]
    pooled_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]


class Conv2DProjection:
    """A 2-D convolution onto a ``lif_conv2d`` population, optionally preceded by a fused sum-pool.

    Parameters
    ----------
    pre, post : Population
        ``pre.size == C_in * in_height * in_width`` (flat index ``c*H*W + h*W + w``);
        ``post.size == C_out * out_h * out_w``, same flat order.
    weights : array [C_in, C_out, kH, kW]
        The SpiNNaker2 layout (NIR's is [C_out, C_in, kH, kW]); int8 range after rounding.
    conv_params : dict
        ``in_height``, ``in_width`` (before pooling), ``stride_x`` (along width), ``stride_y`` (along height),
        ``pool_x``, ``pool_y`` (sum-pool applied to incoming spikes; must divide the input), ``pad_top``,
        ``pad_bottom``, ``pad_left``, ``pad_right``. The output is a cross-correlation as in torch:
        ``out[co, oy, ox] = sum W[ci, co, ky, kx] * pooled[ci, oy*stride_y - pad_top + ky,
        ox*stride_x - pad_left + kx]``.
        Connection delay is always 0.
    """

    def __init__(self, pre: Population, post: Population, weights: Any, conv_params: Mapping,
                 name: str | None = None) -> None:
        self.pre, self.post = _check_pair(pre, post, "Conv2DProjection")
        self.name = str(name) if name is not None else f"{pre.name}->{post.name}"
        where = f"conv projection {self.name!r}"
        if not post.model.conv_target:
            raise ConfigError(f"{where}: target population {post.name!r} has model {post.neuron_model!r}; a "
                              "Conv2DProjection needs 'lif_conv2d'")
        try:
            w = np.asarray(weights, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: weights must be a numeric array [C_in, C_out, kH, kW]") from None
        if w.ndim != 4 or 0 in w.shape:
            raise ConfigError(f"{where}: weights have shape {w.shape}; expected non-empty [C_in, C_out, kH, kW]")
        if not np.isfinite(w).all():
            raise ConfigError(f"{where}: weights contain NaN or inf")
        self.weights = w
        self.weights.setflags(write=False)
        self.conv_params = self._check_params(conv_params, where)
        geometry = self.geometry("width")
        self.in_shape, self.pooled_shape, self.out_shape = geometry.in_shape, geometry.pooled_shape, geometry.out_shape

    def geometry(self, x_axis: str = "width") -> "ConvGeometry":
        """Shapes and parameters of the convolution when ``*_x`` parameters act along ``x_axis``.

        "width" is the reading of the parameter names; "height" swaps every x/y pair (stride, pool, padding) as a
        chip that reads them the other way would (ChipProfile.conv_x_axis, an open point). Raises ConfigError when
        the populations do not fit that reading.
        """
        where = f"conv projection {self.name!r} (x along the {x_axis})"
        p = dict(self.conv_params)
        if x_axis == "height":
            for a, b in CONV_AXIS_PAIRS:
                p[a], p[b] = p[b], p[a]
        c_in, c_out, kh, kw = self.weights.shape
        if self.pre.size != c_in * p["in_height"] * p["in_width"]:
            raise ConfigError(f"{where}: pre population {self.pre.name!r} has {self.pre.size} neurons; weights and "
                              f"conv_params say C_in*in_height*in_width = {c_in}*{p['in_height']}*{p['in_width']} = "
                              f"{c_in * p['in_height'] * p['in_width']}")
        for axis, size, pool in (("in_height", p["in_height"], p["pool_y"]), ("in_width", p["in_width"], p["pool_x"])):
            if size % pool:
                raise ConfigError(f"{where}: {axis} = {size} is not a multiple of its pool size {pool}; a fused "
                                  "sum-pool needs kernel == stride and no remainder")
        ph, pw = p["in_height"] // p["pool_y"], p["in_width"] // p["pool_x"]
        oh = (ph + p["pad_top"] + p["pad_bottom"] - kh) // p["stride_y"] + 1
        ow = (pw + p["pad_left"] + p["pad_right"] - kw) // p["stride_x"] + 1
        if oh < 1 or ow < 1:
            raise ConfigError(f"{where}: kernel {kh}x{kw} is larger than the padded pooled input "
                              f"{ph + p['pad_top'] + p['pad_bottom']}x{pw + p['pad_left'] + p['pad_right']}")
        if self.post.size != c_out * oh * ow:
            raise ConfigError(f"{where}: post population {self.post.name!r} has {self.post.size} neurons; the "
                              f"convolution gives C_out*out_h*out_w = {c_out}*{oh}*{ow} = {c_out * oh * ow}")
        return ConvGeometry(p, (c_in, p["in_height"], p["in_width"]), (c_in, ph, pw), (c_out, oh, ow))

    @staticmethod
    def _check_params(conv_params: Mapping, where: str) -> dict[str, int]:
        if not isinstance(conv_params, Mapping):
            raise ConfigError(f"{where}: conv_params must be a dict")
        known = set(CONV_PARAM_DEFAULTS) | set(CONV_PARAM_REQUIRED)
        unknown = set(conv_params) - known
        if unknown:
            raise ConfigError(f"{where}: unknown conv_params {sorted(unknown)}; known: {sorted(known)}")
        missing = [k for k in CONV_PARAM_REQUIRED if k not in conv_params]
        if missing:
            raise ConfigError(f"{where}: conv_params lack {missing}")
        out = {}
        for key in (*CONV_PARAM_REQUIRED, *CONV_PARAM_DEFAULTS):
            value = _as_index(conv_params.get(key, CONV_PARAM_DEFAULTS.get(key)), f"{where}: conv_params[{key!r}]")
            low = 0 if key.startswith("pad") else 1
            if value < low:
                raise ConfigError(f"{where}: conv_params[{key!r}] = {value}; it must be at least {low}")
            out[key] = value
        return out

    def __repr__(self) -> str:
        return f"Conv2DProjection({self.pre.name!r} -> {self.post.name!r}, weights {self.weights.shape})"


class Network:
    """A set of populations and projections, run as one by a Simulator."""

    def __init__(self, name: str = "network") -> None:
        self.name = name
        self.populations: list[Population] = []
        self.projections: list[Projection | Conv2DProjection] = []

    def add(self, *objects: Population | Projection | Conv2DProjection) -> "Network":
        """Add populations and projections (in any order); names must be unique."""
        for obj in objects:
            if isinstance(obj, Population):
                if any(p is obj for p in self.populations):
                    continue
                if any(p.name == obj.name for p in self.populations):
                    raise ConfigError(f"network {self.name!r}: a population named {obj.name!r} exists already")
                self.populations.append(obj)
            elif isinstance(obj, (Projection, Conv2DProjection)):
                if not any(p is obj for p in self.projections):
                    self.projections.append(obj)
            else:
                raise ConfigError(f"network {self.name!r}: cannot add {type(obj).__name__}; expected Population, "
                                  "Projection or Conv2DProjection")
        return self

    def population(self, name: str) -> Population:
        """The population called ``name``."""
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise ConfigError(f"network {self.name!r}: no population named {name!r}; have "
                          f"{[p.name for p in self.populations]}")

    def validate(self, profile: Any = None) -> None:
        """Check the network against the chip's limits under ``profile`` (default ChipProfile()).

        Raises ConfigError / LimitError naming population, parameter, value and limit.
        """
        from .lowering import lower

        lower(self, profile)

    def reset(self) -> None:
        """Forget results of earlier runs (every run starts from v_init anyway)."""
        for pop in self.populations:
            pop._results = {}

    def __repr__(self) -> str:
        return f"Network({self.name!r}, {len(self.populations)} populations, {len(self.projections)} projections)"


def _check_pair(pre: Any, post: Any, what: str) -> tuple[Population, Population]:
    if not isinstance(pre, Population) or not isinstance(post, Population):
        raise ConfigError(f"{what}: pre and post must be Population objects, got {type(pre).__name__} and "
                          f"{type(post).__name__}")
    if post.model.is_input:
        raise ConfigError(f"{what} {pre.name!r} -> {post.name!r}: target population {post.name!r} is a spike_list "
                          "source and cannot receive synapses")
    return pre, post


def _as_index(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise ConfigError(f"{where} must be an integer, got {value!r}")
