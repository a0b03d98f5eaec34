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
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .errors import ConfigError, LimitError, NotModelledError
from .models import NeuronModel, get_model
from .spec import (RECORDABLES, NetworkSpec, PopulationSpec, as_index, check_max_atoms, check_record, network_spec,
                   numeric_array, population_spec)

CONV_PARAM_DEFAULTS = {
    "stride_x": 1, "stride_y": 1, "pool_x": 1, "pool_y": 1,
    "pad_top": 0, "pad_bottom": 0, "pad_left": 0, "pad_right": 0,
}
CONV_PARAM_REQUIRED = ("in_height", "in_width")
#: The x/y parameter pairs a chip reading x along the height would swap (ChipProfile.conv_x_axis).
CONV_AXIS_PAIRS = (("stride_x", "stride_y"), ("pool_x", "pool_y"), ("pad_left", "pad_top"), ("pad_right", "pad_bottom"))

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


class Projection:
    """Synapses from a connection list ``[[pre_idx, post_idx, weight, delay], ...]``.

    Weights may be floats; they become integers by ChipProfile.weight_rounding when the network is lowered.
    The delay field takes effect at tick ``t + 1 + delay`` for a spike sent in tick ``t``.
    """

    def __init__(self, pre: Population, post: Population, connections: Iterable, name: str | None = None) -> None:
        self.pre, self.post = _check_pair(pre, post, "Projection")
        self.name = str(name) if name is not None else f"{pre.name}->{post.name}"
        conns = _numeric_array(connections, f"projection {self.name!r}: connections",
                               "numbers [[pre, post, weight, delay], ...]")
        if conns.size == 0:
            conns = conns.reshape(0, 4)
        if conns.ndim != 2 or conns.shape[1] != 4:
            raise ConfigError(f"projection {self.name!r}: connections have shape {conns.shape}; expected (n, 4) "
                              "rows [pre_idx, post_idx, weight, delay]")
        bad = np.flatnonzero(~np.isfinite(conns).all(axis=1))
        if bad.size:
            raise ConfigError(f"projection {self.name!r}: connection {bad[0]} = {conns[bad[0]].tolist()} is not "
                              "finite")
        self.pre_idx = self._index_column(conns[:, 0], "pre index")
        self.post_idx = self._index_column(conns[:, 1], "post index")
        self.weights = conns[:, 2].copy()
        self.delays = self._index_column(conns[:, 3], "delay", LimitError, f"0..{post.model.max_delay} for model "
                                         f"{post.neuron_model!r} of population {post.name!r}")
        for arr in (self.pre_idx, self.post_idx, self.weights, self.delays):
            arr.setflags(write=False)
        self.check_sizes(pre.validated(), post.validated())

    def _index_column(self, col: np.ndarray, what: str, negative_error: type = ConfigError,
                      limit: str = "") -> np.ndarray:
        nonint = np.flatnonzero(col != np.round(col))
        if nonint.size:
            raise ConfigError(f"projection {self.name!r}: connection {nonint[0]} has non-integer {what} "
                              f"{col[nonint[0]]}")
        neg = np.flatnonzero(col < 0)
        if neg.size:
            raise negative_error(f"projection {self.name!r}: connection {neg[0]} has negative {what} "
                                 f"{int(col[neg[0]])}" + (f", outside {limit}" if limit else ""))
        return col.astype(np.int64)

    def check_sizes(self, pre: PopulationSpec, post: PopulationSpec) -> None:
        """Check the indices and delays against the populations as they are now (sizes may change after
        construction: a population shrunk below its connections' indices is an error at the next run)."""
        if post.model.is_input:
            raise ConfigError(f"projection {self.name!r}: target population {post.name!r} is a spike_list source "
                              "and cannot receive synapses")
        max_delay = post.model.max_delay
        for col, what, bound, kind, limit in (
                (self.pre_idx, "pre index", pre.size, ConfigError, f"0..{pre.size - 1} (population {pre.name!r} "
                                                                    f"has {pre.size} neurons)"),
                (self.post_idx, "post index", post.size, ConfigError, f"0..{post.size - 1} (population "
                                                                      f"{post.name!r} has {post.size} neurons)"),
                (self.delays, "delay", max_delay + 1, LimitError, f"0..{max_delay} for model "
                                                                  f"{post.neuron_model!r} of population {post.name!r}")):
            if col.size and col.max() >= bound:
                i = int(np.argmax(col >= bound))
                raise kind(f"projection {self.name!r}: connection {i} has {what} {int(col[i])}, outside {limit}")

    @property
    def connections(self) -> np.ndarray:
        """The connection list as an (n, 4) float64 array."""
        return np.stack([self.pre_idx, self.post_idx, self.weights, self.delays], axis=1).astype(np.float64)

    @property
    def sparse_weights(self) -> Any:
        """The weights as a ``[pre.size, post.size]`` scipy sparse matrix (py-spinnaker2 scripts count synapses with
        ``proj.sparse_weights.nonzero()``); repeated pairs are summed."""
        return _sparse(self.pre_idx, self.post_idx, self.weights, self.pre, self.post, self.name)

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
        w = _numeric_array(weights, f"{where}: weights", "a numeric array [C_in, C_out, kH, kW]")
        if w.ndim != 4 or 0 in w.shape:
            raise ConfigError(f"{where}: weights have shape {w.shape}; expected non-empty [C_in, C_out, kH, kW]")
        if not np.isfinite(w).all():
            raise ConfigError(f"{where}: weights contain NaN or inf")
        self.weights = w.copy() if w is weights else w
        self.weights.setflags(write=False)
        self.conv_params = self._check_params(conv_params, where)
        geometry = self.geometry("width")
        self.in_shape, self.pooled_shape, self.out_shape = geometry.in_shape, geometry.pooled_shape, geometry.out_shape

    def check_sizes(self, pre: PopulationSpec, post: PopulationSpec) -> None:
        """Check the convolution against the populations as they are now (sizes may change after construction)."""
        if not post.model.conv_target:
            raise ConfigError(f"conv projection {self.name!r}: target population {post.name!r} has model "
                              f"{post.neuron_model!r}; a Conv2DProjection needs 'lif_conv2d'")
        self.geometry("width", (pre.size, post.size))

    def geometry(self, x_axis: str = "width", sizes: tuple[int, int] | None = None) -> "ConvGeometry":
        """Shapes and parameters of the convolution when ``*_x`` parameters act along ``x_axis``.

        "width" is the reading of the parameter names; "height" swaps every x/y pair (stride, pool, padding) as a
        chip that reads them the other way would (ChipProfile.conv_x_axis, an open point). ``sizes`` are the
        (pre, post) population sizes to check against (default: their current sizes). Raises ConfigError when the
        populations do not fit that reading.
        """
        pre_size, post_size = sizes if sizes is not None else (self.pre.size, self.post.size)
        where = f"conv projection {self.name!r} (x along the {x_axis})"
        p = dict(self.conv_params)
        if x_axis == "height":
            for a, b in CONV_AXIS_PAIRS:
                p[a], p[b] = p[b], p[a]
        c_in, c_out, kh, kw = self.weights.shape
        if pre_size != c_in * p["in_height"] * p["in_width"]:
            raise ConfigError(f"{where}: pre population {self.pre.name!r} has {pre_size} neurons; weights and "
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
        if post_size != c_out * oh * ow:
            raise ConfigError(f"{where}: post population {self.post.name!r} has {post_size} neurons; the "
                              f"convolution gives C_out*out_h*out_w = {c_out}*{oh}*{ow} = {c_out * oh * ow}")
        return ConvGeometry(p, (c_in, p["in_height"], p["in_width"]), (c_in, ph, pw), (c_out, oh, ow))

    @property
    def sparse_weights(self) -> Any:
        """The convolution unrolled into a ``[pre.size, post.size]`` scipy sparse matrix of its (float) kernel
        weights, as py-spinnaker2 scripts inspect projections (``proj.sparse_weights.nonzero()``)."""
        src, dst, w = self.tap_pairs()
        return _sparse(src, dst, w, self.pre, self.post, self.name)

    def tap_pairs(self, x_axis: str = "width",
                  sizes: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (pre neuron, post neuron) pair a kernel tap connects, in py-spinnaker2 neuron order (one entry
        per synaptic event a spike of the pre neuron causes), and the kernel weight of each.

        A pre neuron lands in one pooled cell; each kernel tap from that cell reaches one output position in every
        output channel.
        """
        g = self.geometry(x_axis, sizes)
        p = g.params
        c_in, h, w = g.in_shape
        c_out, oh, ow = g.out_shape
        kh, kw = self.weights.shape[2:]
        pre = np.arange(c_in * h * w)
        c, rem = np.divmod(pre, h * w)
        y, x = np.divmod(rem, w)
        py, px = y // p["pool_y"], x // p["pool_x"]
        ky, kx = np.arange(kh), np.arange(kw)
        oy_num = py[:, None] + p["pad_top"] - ky[None, :]                        # [n_pre, kh] = oy * stride_y
        ox_num = px[:, None] + p["pad_left"] - kx[None, :]
        ok_y = (oy_num % p["stride_y"] == 0) & (oy_num >= 0) & (oy_num // p["stride_y"] < oh)
        ok_x = (ox_num % p["stride_x"] == 0) & (ox_num >= 0) & (ox_num // p["stride_x"] < ow)
        ok = ok_y[:, :, None] & ok_x[:, None, :]                                  # [n_pre, kh, kw]
        n, i, j = np.nonzero(ok)
        pos = (oy_num[n, i] // p["stride_y"]) * ow + ox_num[n, j] // p["stride_x"]
        src = np.repeat(n, c_out)
        dst = (np.arange(c_out)[None, :] * oh * ow + pos[:, None]).ravel()
        return src, dst, self.weights[c[n], :, i, j].ravel()

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
            value = as_index(conv_params.get(key, CONV_PARAM_DEFAULTS.get(key)), f"{where}: conv_params[{key!r}]")
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

    def validated(self) -> NetworkSpec:
        """The network as it is now, checked: an immutable :class:`~s2sim.spec.NetworkSpec` (profile-independent
        checks; :meth:`validate` adds the chip limits that depend on a ChipProfile)."""
        return network_spec(self)

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


def _sparse(src: np.ndarray, dst: np.ndarray, weights: np.ndarray, pre: Population, post: Population,
            name: str) -> Any:
    try:
        from scipy import sparse
    except ImportError:
        raise ConfigError(f"projection {name!r}: sparse_weights needs scipy (pip install scipy)") from None
    shape = (pre.validated().size, post.validated().size)
    return sparse.csr_array((np.asarray(weights, np.float64), (src, dst)), shape=shape)


def _numeric_array(value: Any, where: str, expected: str) -> np.ndarray:
    """``value`` as a float64 array; booleans, complex numbers, strings and objects are refused, not cast."""
    return numeric_array(value, where, expected).astype(np.float64)
