"""The Conv2d node: geometry, shapes, and the conv as an unrolled connection list."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConversionError
from .graph import _count, _pair
from .synapses import _Synapses


def _conv_geometry(name: str, node: Any) -> dict[str, Any]:
    w = np.asarray(node.weight)
    if w.ndim != 4 or 0 in w.shape:
        raise ConversionError(f"node {name!r}: Conv2d weight has shape {w.shape}; expected a non-empty "
                              "(C_out, C_in, kH, kW)")
    stride = _pair(node.stride, name, "stride", 1)
    dilation = _pair(getattr(node, "dilation", 1), name, "dilation", 1)
    groups = _count(getattr(node, "groups", 1), name, "groups")
    if w.shape[0] % groups:
        raise ConversionError(f"node {name!r}: Conv2d has {w.shape[0]} output channels, not a multiple of its "
                              f"{groups} groups")
    bias = getattr(node, "bias", None)
    if bias is not None and np.size(bias) not in (1, w.shape[0]):
        raise ConversionError(f"node {name!r}: Conv2d bias has {np.size(bias)} values for {w.shape[0]} output "
                              "channels")
    pad = node.padding
    kh, kw = w.shape[2:]
    if isinstance(pad, bytes):
        pad = pad.decode(errors="replace")
    if isinstance(pad, str) and pad == "valid":
        pads = (0, 0, 0, 0)
    elif isinstance(pad, str) and pad == "same":
        th, tw = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
        pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    else:
        ph, pw = _pair(pad, name, "padding")
        pads = (ph, ph, pw, pw)
    return {"stride": stride, "dilation": dilation, "groups": groups, "pads": pads}


def _conv_in_shape(name: str, node: Any, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
    c_in = np.asarray(node.weight).shape[1] * _count(getattr(node, "groups", 1), name, "groups")
    if len(in_shape) == 3:
        if in_shape[0] != c_in:
            raise ConversionError(f"node {name!r}: input has {in_shape[0]} channels, the Conv2d weight expects {c_in}")
        return tuple(int(x) for x in in_shape)
    spatial = getattr(node, "input_shape", None)
    if spatial is not None:
        h, w = _pair(spatial, name, "input_shape", 1)
        if int(np.prod(in_shape)) == c_in * h * w:
            return (c_in, h, w)
    raise ConversionError(f"node {name!r}: Conv2d needs a (C, H, W) input, got shape {tuple(in_shape)}")


def _conv_out_shape(name: str, node: Any, in_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    g = _conv_geometry(name, node)
    c_out, _, kh, kw = np.asarray(node.weight).shape
    _, h, w = in_shape
    oh = (h + g["pads"][0] + g["pads"][1] - g["dilation"][0] * (kh - 1) - 1) // g["stride"][0] + 1
    ow = (w + g["pads"][2] + g["pads"][3] - g["dilation"][1] * (kw - 1) - 1) // g["stride"][1] + 1
    if oh < 1 or ow < 1:
        raise ConversionError(f"node {name!r}: kernel {kh}x{kw} does not fit the padded input {h}x{w}")
    return (int(c_out), int(oh), int(ow))


def _conv_synapses(name: str, node: Any, in_shape: tuple[int, int, int]) -> _Synapses:
    g = _conv_geometry(name, node)
    weight = np.asarray(node.weight, dtype=np.float64)
    c_out, c_in_g, kh, kw = weight.shape
    c_in, h, w = in_shape
    _, oh, ow = _conv_out_shape(name, node, in_shape)
    out_per_group = c_out // g["groups"]
    co, ci, ky, kx, oy, ox = np.meshgrid(np.arange(c_out), np.arange(c_in_g), np.arange(kh), np.arange(kw),
                                         np.arange(oh), np.arange(ow), indexing="ij")
    iy = oy * g["stride"][0] - g["pads"][0] + ky * g["dilation"][0]
    ix = ox * g["stride"][1] - g["pads"][2] + kx * g["dilation"][1]
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    cin_abs = (co // out_per_group) * c_in_g + ci
    pre = (cin_abs * h * w + iy * w + ix)[ok].astype(np.int64)
    post = (co * oh * ow + oy * ow + ox)[ok].astype(np.int64)
    wv = weight[co, ci, ky, kx][ok]
    order = np.lexsort((post, pre))
    bias = getattr(node, "bias", None)
    bias = np.zeros(c_out) if bias is None else np.broadcast_to(np.asarray(bias, np.float64).ravel(), (c_out,))
    return _Synapses(pre[order], post[order], wv[order], c_in * h * w, c_out * oh * ow, np.repeat(bias, oh * ow))
