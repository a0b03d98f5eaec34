"""The board runner: an s2sim network on a real SpiNNaker2 board through py-spinnaker2, recorded as a Trace.

py-spinnaker2 (the vendor SDK, import name ``spinnaker2``) is not on PyPI and no board is reachable from the
machines s2sim is developed on. Everything here is therefore optional and thin: :func:`board_status` says what
is missing, :func:`run_on_board` raises :class:`BoardUnavailable` with install instructions, and the conversion
:func:`to_spinnaker2` follows py-spinnaker2's documented API (``snn.Population``, ``snn.Projection``,
``snn.Conv2DProjection``, ``snn.Network``, ``hardware.SpiNNaker2Chip(eth_ip=...).run(net, timesteps)``) without
having been run against it. docs/conformance.md lists what is untested.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import BoardUnavailable, ConfigError
from .snn import CONV_AXIS_PAIRS, Conv2DProjection, Network
from .traces import Trace, from_spinnaker2

#: Environment variables read for the board's IP address, in order (S2_IP is what py-spinnaker2 examples use).
BOARD_ENV_VARS = ("S2SIM_BOARD_IP", "S2_IP")
INSTALL_HINT = (
    "py-spinnaker2 is not on PyPI: clone the py-spinnaker2 repository (SpiNNaker2 project, GitLab) and run "
    "`pip install -e .` in it (it provides the `spinnaker2` package)"
)


def board_address(address: str | None = None) -> str | None:
    """Return the board's IP: ``address`` if given, else the first of :data:`BOARD_ENV_VARS` that is set."""
    if address:
        return address
    for var in BOARD_ENV_VARS:
        if os.environ.get(var):
            return os.environ[var]
    return None


def board_status(address: str | None = None) -> tuple[bool, str]:
    """Tell whether a board run is possible.

    Returns ``(True, address)`` when it is, else ``(False, what is missing and how to fix it)``.
    """
    missing = []
    if importlib.util.find_spec("spinnaker2") is None:
        missing.append(f"the `spinnaker2` package is not importable ({INSTALL_HINT})")
    ip = board_address(address)
    if ip is None:
        missing.append(f"no board address: pass address=... or set {' or '.join(BOARD_ENV_VARS)}")
    if missing:
        return False, "no SpiNNaker2 board run possible: " + "; ".join(missing)
    return True, str(ip)


def _spinnaker2(name: str) -> Any:
    try:
        return importlib.import_module(f"spinnaker2.{name}")
    except ImportError as exc:
        raise BoardUnavailable(f"cannot import spinnaker2.{name} ({exc}); {INSTALL_HINT}") from None


def to_spinnaker2(
    net: Network, inputs: Mapping[str, np.ndarray] | None = None, snn_module: Any = None, conv_x_axis: str = "width"
) -> tuple[Any, dict[str, Any]]:
    """Build the py-spinnaker2 objects for ``net`` (UNTESTED against py-spinnaker2 itself).

    Weights are handed over as written (float weights included), so the board's own rounding rule acts on them;
    that is what the weight-rounding probe measures. ``counts`` is not a py-spinnaker2 recordable and is dropped.

    Parameters
    ----------
    net : Network
    inputs : dict, optional
        spike_list name -> uint8 [timesteps, size], replacing that population's params.
    snn_module : module, optional
        ``spinnaker2.snn`` (imported when omitted).
    conv_x_axis : {"width", "height"}
        How the target chip reads conv x/y parameters (ChipProfile.conv_x_axis, as ``s2sim conform --infer``
        found it). With "height" every x/y pair is swapped on the way out, so the chip computes the convolution
        the s2sim network describes. The probes keep "width": they measure the chip's own reading.

    Returns
    -------
    (network, populations)
        The py-spinnaker2 Network and its Population objects by name.
    """
    if conv_x_axis not in ("width", "height"):
        raise ConfigError(f"to_spinnaker2: conv_x_axis = {conv_x_axis!r} is not 'width' or 'height'")
    snn = snn_module or _spinnaker2("snn")
    pops: dict[str, Any] = {}
    for pop in net.populations:
        record = [r for r in pop.record if r != "counts"]
        if pop.model.is_input:
            params: Any = (
                _spike_dict(inputs[pop.name])
                if inputs and pop.name in inputs
                else {i: list(t) for i, t in pop.spike_times.items()}
            )
        else:
            params = {k: _param_value(k, v) for k, v in pop.validated().params.items()}
            params["reset"] = pop.reset
        s2pop = snn.Population(
            size=pop.size, neuron_model=pop.neuron_model, params=params, name=pop.name, record=record
        )
        if pop.max_atoms_per_core is not None:
            s2pop.set_max_atoms_per_core(pop.max_atoms_per_core)
        pops[pop.name] = s2pop
    s2net = snn.Network(net.name)
    s2net.add(*pops.values())
    for proj in net.projections:
        pre, post = pops[proj.pre.name], pops[proj.post.name]
        if isinstance(proj, Conv2DProjection):
            params = dict(proj.conv_params)
            if conv_x_axis == "height":
                for a, b in CONV_AXIS_PAIRS:
                    params[a], params[b] = params[b], params[a]
            s2net.add(snn.Conv2DProjection(pre, post, _conv_weights(proj.weights), params))
        else:
            conns = [
                [int(i), int(j), _number(w), int(d)]
                for i, j, w, d in zip(proj.pre_idx, proj.post_idx, proj.weights, proj.delays, strict=True)
            ]
            s2net.add(snn.Projection(pre, post, conns))
    return s2net, pops


def run_on_board(
    net: Network,
    timesteps: int,
    address: str | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
    metadata: Mapping[str, Any] | None = None,
    modules: tuple[Any, Any] | None = None,
) -> Trace:
    """Run ``net`` on the board for ``timesteps`` ticks and return the chip's Trace (UNTESTED: needs a board).

    ``modules`` are py-spinnaker2's ``(snn, hardware)`` modules when the caller imported them already (``s2sim
    exec --board``, where the name ``spinnaker2`` stands for s2sim's stand-in inside the script).

    Raises
    ------
    BoardUnavailable
        py-spinnaker2 missing or no board address; the message says how to fix it.
    """
    if modules is None:
        ok, detail = board_status(address)
        if not ok:
            raise BoardUnavailable(detail)
        snn_module, hardware = _spinnaker2("snn"), _spinnaker2("hardware")
    else:
        found = board_address(address)
        if found is None:
            raise BoardUnavailable(f"no board address: pass address=... or set {' or '.join(BOARD_ENV_VARS)}")
        detail, (snn_module, hardware) = found, modules
    s2net, pops = to_spinnaker2(net, inputs, snn_module=snn_module)
    hw = hardware.SpiNNaker2Chip(eth_ip=detail)
    hw.run(s2net, timesteps)
    mine = {p.name: p for p in net.populations}
    spikes = {n: p.get_spikes() for n, p in pops.items() if "spikes" in mine[n].record and not mine[n].model.is_input}
    volts = {n: p.get_voltages() for n, p in pops.items() if {"v", "v_last"} & set(mine[n].record)}
    meta = {"board": detail, **dict(metadata or {})}
    return from_spinnaker2(net, timesteps, spikes, volts, inputs=inputs, source="spinnaker2", metadata=meta)


def _spike_dict(arr: np.ndarray) -> dict[int, list[int]]:
    ticks, neurons = np.nonzero(np.asarray(arr))
    out: dict[int, list[int]] = {}
    for t, i in zip(ticks.tolist(), neurons.tolist(), strict=True):
        out.setdefault(i, []).append(t)
    return out


def _param_value(key: str, values: np.ndarray) -> Any:
    cast = int if key == "t_refrac" else float
    if np.all(values == values[0]):
        return cast(values[0])
    return [cast(v) for v in values]


def _number(w: float) -> int | float:
    return int(w) if float(w).is_integer() else float(w)


def _conv_weights(weights: np.ndarray) -> np.ndarray:
    if np.all(weights == np.round(weights)) and weights.min() >= -128 and weights.max() <= 127:
        return weights.astype(np.int8)
    return np.array(weights, dtype=np.float64)
