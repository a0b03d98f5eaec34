"""The neuron node family (LIF, IF, CubaLIF): shapes, and chip parameters from the NIR time constants.

The parameter mapping is written down in :mod:`s2sim.nir_import`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..conversion_report import ParameterMapping
from ..errors import ConversionError, TimeConstantWarning, warn
from .config import ConversionConfig, Integrator
from .graph import NUMERIC_ATTRIBUTES, _kind


def _neuron_param_arrays(name: str, node: Any) -> dict[str, np.ndarray]:
    keys = NUMERIC_ATTRIBUTES[_kind(node)]
    out = {}
    for key in keys:
        value = getattr(node, key, None)
        if value is None:
            if key in ("v_reset", "v_leak"):
                value = 0.0
            elif key == "w_in":
                value = 1.0
            else:
                raise ConversionError(f"node {name!r}: {_kind(node)} parameter {key!r} is missing")
        out[key] = np.asarray(value, dtype=np.float64)  # checked by _check_values
    return out


def _neuron_shape(name: str, node: Any, in_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    params = _neuron_param_arrays(name, node)
    if in_shape is not None:
        n = int(np.prod(in_shape))
        for key, arr in params.items():
            if arr.size not in (1, n):
                raise ConversionError(f"node {name!r}: parameter {key!r} has {arr.size} values but the node's input "
                                      f"has shape {tuple(in_shape)} ({n} values)")
        return tuple(in_shape)
    shapes = {arr.shape for arr in params.values() if arr.size > 1}
    if not shapes:
        raise ConversionError(f"node {name!r}: cannot infer its size: every parameter is a scalar and no input "
                              "with a known shape feeds it")
    sizes = {int(np.prod(s)) for s in shapes}
    if len(sizes) > 1:
        raise ConversionError(f"node {name!r}: parameters have different sizes {sorted(sizes)}")
    return max(shapes, key=len)


def _discretize(tau: np.ndarray, dt: float, integrator: Integrator) -> tuple[np.ndarray, np.ndarray]:
    """(k, alpha) for time constant tau."""
    if integrator == Integrator.FORWARD:
        return dt / tau, 1.0 - dt / tau
    return 1.0 - np.exp(-dt / tau), np.exp(-dt / tau)


def _tau_from_alpha(alpha: np.ndarray, dt: float, integrator: Integrator) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if integrator == Integrator.FORWARD:
            return dt / (1.0 - alpha)
        return -dt / np.log(alpha)


def _check_time_constants(name: str, kind: str, p: dict[str, np.ndarray], cfg: ConversionConfig) -> None:
    """Time constants and r must be positive (errors); a time constant shorter than dt makes the per-tick decay
    meaningless (a TimeConstantWarning, a ConversionError under strict)."""
    for key in ("tau", "tau_mem", "tau_syn", "r", "w_in"):
        if key not in p:
            continue
        bad = np.flatnonzero(p[key] == 0 if key == "w_in" else p[key] <= 0)
        if bad.size:
            i = int(bad[0])
            raise ConversionError(f"node {name!r}: {kind} parameter {key!r} of neuron {i} is {p[key][i]:g}; it must "
                                  f"{'not be 0' if key == 'w_in' else 'be positive'} (the chip mapping divides by it)")
    for key in ("tau", "tau_mem", "tau_syn"):
        if key not in p:
            continue
        short = np.flatnonzero(p[key] < cfg.dt)
        if short.size:
            i = int(short[0])
            _, alpha = _discretize(p[key][i:i + 1], cfg.dt, cfg.integrator)
            warn(TimeConstantWarning, f"node {name!r}: {kind} {key} of neuron {i} is {p[key][i]:g}, shorter than dt = "
                 f"{cfg.dt:g} ({short.size} neuron(s)); the {cfg.integrator.value} integrator gives a per-tick decay "
                 f"of {float(alpha[0]):.4g}, so the state forgets its input within a tick. Is dt in the graph's time "
                 "unit (snnTorch graphs: 1e-4)?", name, strict=cfg.strict, error=ConversionError)


def _neuron_params(name: str, node: Any, size: int, w_scale: float, bias: np.ndarray, cfg: ConversionConfig):
    """Chip parameters (float64 host values), voltage scale S and the report's parameter mappings.

    A mapping's ``effective`` is filled later with a function chip_value -> NIR units (applied to the float32).
    """
    p = {k: np.broadcast_to(v.ravel() if v.size > 1 else v.reshape(1), (size,)).astype(np.float64)
         for k, v in _neuron_param_arrays(name, node).items()}
    kind = _kind(node)
    dt, integ = cfg.dt, cfg.integrator
    _check_time_constants(name, kind, p, cfg)
    mappings: list[ParameterMapping] = []
    if kind == "IF":
        scale = w_scale / p["r"]
        params = {"alpha_decay": np.ones(size), "i_offset": bias * w_scale}
        mappings.append(ParameterMapping("alpha_decay", "IF: 1 (no leak)", None, None, None))
        mappings.append(ParameterMapping("i_offset", "bias*w_scale (NIR: bias*r per tick)", bias * p["r"], None,
                                         lambda c, s=scale: c / s))
    elif kind == "LIF":
        k, alpha = _discretize(p["tau"], dt, integ)
        scale = w_scale / (k * p["r"])
        params = {"alpha_decay": alpha, "i_offset": k * p["v_leak"] * scale + bias * w_scale}
        mappings.append(ParameterMapping("alpha_decay", f"tau ({integ.value}: alpha from dt/tau)", p["tau"], None,
                                         lambda c: _tau_from_alpha(c, dt, integ)))
        mappings.append(ParameterMapping("i_offset", "k*v_leak*S + bias*w_scale", params["i_offset"] / scale, None,
                                         lambda c, s=scale: c / s))
    else:
        k_mem, alpha_mem = _discretize(p["tau_mem"], dt, integ)
        k_syn, alpha_syn = _discretize(p["tau_syn"], dt, integ)
        scale = w_scale / (k_mem * p["r"] * k_syn * p["w_in"])
        params = {"alpha_decay": alpha_mem, "exc_decay": alpha_syn, "inh_decay": alpha_syn.copy(),
                  "i_offset": k_mem * p["v_leak"] * scale + bias * w_scale / k_syn, "t_refrac": np.zeros(size)}
        mappings.append(ParameterMapping("alpha_decay", f"tau_mem ({integ.value})", p["tau_mem"], None,
                                         lambda c: _tau_from_alpha(c, dt, integ)))
        mappings.append(ParameterMapping("exc_decay", f"tau_syn ({integ.value}); inh_decay the same", p["tau_syn"],
                                         None, lambda c: _tau_from_alpha(c, dt, integ)))
        mappings.append(ParameterMapping("i_offset", "k_mem*v_leak*S + bias*w_scale/k_syn",
                                         params["i_offset"] / scale, None, lambda c, s=scale: c / s))
    params["threshold"] = p["v_threshold"] * scale
    params["v_reset"] = p["v_reset"] * scale
    mappings.append(ParameterMapping("threshold", "v_threshold*S", p["v_threshold"], None, lambda c, s=scale: c / s))
    mappings.append(ParameterMapping("v_reset", "v_reset*S (used by reset_to_v_reset)", p["v_reset"], None,
                                     lambda c, s=scale: c / s))
    return params, scale, mappings
