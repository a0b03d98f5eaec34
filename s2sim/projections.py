"""Synapses as the user wrote them: :class:`Projection` (connection list) and :class:`Conv2DProjection`.

Weights stay floats here; they become integers by ChipProfile.weight_rounding in :mod:`s2sim.lowering`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError, LimitError
from .population import Population
from .spec import PopulationSpec, as_index, numeric_array

CONV_PARAM_DEFAULTS = {
    "stride_x": 1, "stride_y": 1, "pool_x": 1, "pool_y": 1,
    "pad_top": 0, "pad_bottom": 0, "pad_left": 0, "pad_right": 0,
}
CONV_PARAM_REQUIRED = ("in_height", "in_width")
#: The x/y parameter pairs a chip reading x along the height would swap (ChipProfile.conv_x_axis).
CONV_AXIS_PAIRS = (("stride_x", "stride_y"), ("pool_x", "pool_y"), ("pad_left", "pad_top"), ("pad_right", "pad_bottom"))

class Projection:
    """Synapses from a connection list ``[[pre_idx, post_idx, weight, delay], ...]``.

    Weights may be floats; they become integers by ChipProfile.weight_rounding when the network is lowered.
    The delay field takes effect at tick ``t + 1 + delay`` for a spike sent in tick ``t``.

    The list is stored compactly (indices int32, delays uint8, whole-number weights int16, others float64: 11 bytes
    per synapse for integer weights) and checked in chunks, so that a list of millions of synapses costs little
    more than its own size while it is built. ``weights`` reads back as float64.
    """

    #: Rows converted at a time: the temporaries of one chunk stay small whatever the list's length.
    CHUNK = 1 << 14

    def __init__(self, pre: Population, post: Population, connections: Iterable, name: str | None = None) -> None:
        self.pre, self.post = _check_pair(pre, post, "Projection")
        self.name = str(name) if name is not None else f"{pre.name}->{post.name}"
        conns = numeric_array(connections, f"projection {self.name!r}: connections",
                              "numbers [[pre, post, weight, delay], ...]")  # read in chunks, never copied whole
        if conns.size == 0:
            conns = conns.reshape(0, 4)
        if conns.ndim != 2 or conns.shape[1] != 4:
            raise ConfigError(f"projection {self.name!r}: connections have shape {conns.shape}; expected (n, 4) "
                              "rows [pre_idx, post_idx, weight, delay]")
        m = len(conns)
        self.pre_idx, self.post_idx = np.empty(m, np.int32), np.empty(m, np.int32)
        self._delays = np.empty(m, np.uint8)
        self._weights: np.ndarray = np.empty(m, np.int16)
        for a in range(0, m, self.CHUNK):
            self._store_chunk(conns[a:a + self.CHUNK], a)
        for arr in (self.pre_idx, self.post_idx, self._weights, self._delays):
            arr.setflags(write=False)
        # the columns never change: their maxima are what check_sizes compares with the population sizes
        self._maxima = tuple(int(col.max(initial=0)) for col in (self.pre_idx, self.post_idx, self._delays))
        self.check_sizes(pre.validated(), post.validated())

    @property
    def weights(self) -> np.ndarray:
        """The weights as given, float64 (a new array; :attr:`stored_weights` is the compact one)."""
        return self._weights.astype(np.float64)

    @property
    def stored_weights(self) -> np.ndarray:
        """The weights as stored: int16 when every weight is a whole number within int16, else float64."""
        return self._weights

    @property
    def delays(self) -> np.ndarray:
        """The delays, int64 (a new array; :attr:`stored_delays` is the compact uint8 one)."""
        return self._delays.astype(np.int64)

    @property
    def stored_delays(self) -> np.ndarray:
        """The delays as stored (uint8)."""
        return self._delays

    def _store_chunk(self, block: np.ndarray, a: int) -> None:
        """Check rows a.. of the connection list and store them in the compact columns."""
        cols = np.ascontiguousarray(block.T)  # column by column: contiguous passes instead of strided ones
        if not self._chunk_is_clean(cols):
            self._refuse_chunk(block, a)
        b = a + len(block)
        self.pre_idx[a:b], self.post_idx[a:b], self._delays[a:b] = cols[0], cols[1], cols[3]
        w = cols[2]
        if self._weights.dtype == np.int16 and (w.dtype.kind != "f" or np.array_equal(w, np.trunc(w))) \
                and (not w.size or (w.min() >= -32767 and w.max() <= 32767)):
            self._weights[a:b] = w
            return
        if self._weights.dtype == np.int16:  # the first weight that needs a float: widen what is stored so far
            self._weights = self._weights.astype(np.float64)
        self._weights[a:b] = w

    @staticmethod
    def _chunk_is_clean(cols: np.ndarray) -> bool:
        """Every index a whole number in 0..2^31-1, every delay in 0..255, every weight finite (one quick pass
        per check; NaN and inf fail them)."""
        if not cols.shape[1]:
            return True
        index = cols[[0, 1, 3]]
        if index.min() < 0 or cols[:2].max() > 2**31 - 1 or cols[3].max() > 255:
            return False
        return cols.dtype.kind != "f" or (np.array_equal(index, np.trunc(index)) and bool(np.isfinite(cols[2]).all()))

    def _refuse_chunk(self, block: np.ndarray, a: int) -> None:
        """Raise the error of the first bad connection in rows a.. (the chunk failed the quick check)."""
        if block.dtype.kind == "f":
            bad = np.flatnonzero(~np.isfinite(block).all(axis=1))
            if bad.size:
                raise ConfigError(f"projection {self.name!r}: connection {a + bad[0]} = {block[bad[0]].tolist()} is "
                                  "not finite")
        post = self.post
        self._index_column(block[:, 0], a, "pre index")
        self._index_column(block[:, 1], a, "post index")
        self._index_column(block[:, 3], a, "delay", LimitError, f"0..{post.model.max_delay} for model "
                           f"{post.neuron_model!r} of population {post.name!r}", 255)
        raise ConfigError(f"projection {self.name!r}: internal error: connections {a}.. failed a check that no "
                          "single check explains")

    def _index_column(self, col: np.ndarray, offset: int, what: str, negative_error: type = ConfigError,
                      limit: str = "", largest: int = 2**31 - 1) -> np.ndarray:
        if col.dtype.kind == "f":
            nonint = np.flatnonzero(col != np.round(col))
            if nonint.size:
                raise ConfigError(f"projection {self.name!r}: connection {offset + nonint[0]} has non-integer {what} "
                                  f"{col[nonint[0]]}")
        neg = np.flatnonzero(col < 0)
        if neg.size:
            raise negative_error(f"projection {self.name!r}: connection {offset + neg[0]} has negative {what} "
                                 f"{int(col[neg[0]])}" + (f", outside {limit}" if limit else ""))
        big = np.flatnonzero(col > largest)
        if big.size:  # beyond any population (or delay field): refused now, as check_sizes would refuse it later
            raise (LimitError if limit else ConfigError)(
                f"projection {self.name!r}: connection {offset + big[0]} has {what} {int(col[big[0]])}, outside "
                + (limit or f"0..{largest}"))
        return col

    def check_sizes(self, pre: PopulationSpec, post: PopulationSpec) -> None:
        """Check the indices and delays against the populations as they are now (sizes may change after
        construction: a population shrunk below its connections' indices is an error at the next run)."""
        if post.model.is_input:
            raise ConfigError(f"projection {self.name!r}: target population {post.name!r} is a spike_list source "
                              "and cannot receive synapses")
        max_delay = post.model.max_delay
        for col, top, what, bound, kind, limit in (
                (self.pre_idx, self._maxima[0], "pre index", pre.size, ConfigError,
                 f"0..{pre.size - 1} (population {pre.name!r} has {pre.size} neurons)"),
                (self.post_idx, self._maxima[1], "post index", post.size, ConfigError,
                 f"0..{post.size - 1} (population {post.name!r} has {post.size} neurons)"),
                (self._delays, self._maxima[2], "delay", max_delay + 1, LimitError,
                 f"0..{max_delay} for model {post.neuron_model!r} of population {post.name!r}")):
            if col.size and top >= bound:
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
