"""s2sim's own serialisation of a Network: a JSON-able dict and back, exactly.

Parameters keep their float64 host values (JSON writes a float64 with the shortest text that reads back to the
same bits), so a network read back lowers to the same float32 and integer arrays as the original. Traces embed
this form; NIR is not used here because it has no place for py-spinnaker2's models, delays or spike lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ConfigError
from .models import MODELS
from .snn import Conv2DProjection, Network, Population, Projection
from .spec import MAX_POPULATION_SIZE, as_index, key_index, numeric_array

#: Identifies the dict form; bump NETWORK_FORMAT_VERSION when its meaning changes.
NETWORK_FORMAT = "s2sim-network"
NETWORK_FORMAT_VERSION = 1


def network_to_dict(net: Network) -> dict[str, Any]:
    """Describe ``net`` as plain lists, numbers and strings (``json.dumps`` takes it as is).

    Parameters
    ----------
    net : Network

    Returns
    -------
    dict
        ``{"format", "version", "name", "populations": [...], "projections": [...]}``; see docs/conformance.md.
    """
    return {
        "format": NETWORK_FORMAT,
        "version": NETWORK_FORMAT_VERSION,
        "name": net.name,
        "populations": [_population_to_dict(p) for p in net.populations],
        "projections": [_projection_to_dict(p) for p in net.projections],
    }


def network_from_dict(data: Mapping[str, Any]) -> Network:
    """Rebuild a Network from :func:`network_to_dict` output.

    Raises
    ------
    ConfigError
        When the dict is not this format, has a newer version, or describes an invalid network (the message of
        the underlying check names the population or projection).
    """
    if not isinstance(data, Mapping) or data.get("format") != NETWORK_FORMAT:
        found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
        raise ConfigError(f"not an s2sim network description (format {found!r}, expected {NETWORK_FORMAT!r})")
    version = data.get("version")
    if not isinstance(version, int) or not 1 <= version <= NETWORK_FORMAT_VERSION:
        raise ConfigError(
            f"network description version {version!r} is not supported (this s2sim reads 1..{NETWORK_FORMAT_VERSION})"
        )
    net = Network(str(data.get("name", "network")))
    pops: dict[str, Population] = {}
    for item in _required_list(data, "populations", "network"):
        pop = _population_from_dict(item)
        pops[pop.name] = pop
        net.add(pop)
    for item in _required_list(data, "projections", "network"):
        net.add(_projection_from_dict(item, pops))
    return net


def network_bytes(data: Any) -> int:
    """Estimate the bytes of building the network a dict describes (parameter arrays, connection lists).

    The estimate is read from the sizes the dict declares, before anything is allocated; it counts 0 for parts that are
    malformed (building names them).
    """
    if not isinstance(data, Mapping):
        return 0
    total = 0
    for item in _list_or_empty(data.get("populations")):
        size = item.get("size") if isinstance(item, Mapping) else None
        if isinstance(size, int) and 0 < size <= MAX_POPULATION_SIZE:
            model = MODELS.get(item.get("neuron_model")) if isinstance(item.get("neuron_model"), str) else None
            total += size * 8 * 4 * max(len(model.defaults) if model else 0, 1)
    for item in _list_or_empty(data.get("projections")):
        rows = item.get("connections") if isinstance(item, Mapping) else None
        total += 4 * 8 * 6 * len(rows) if isinstance(rows, list) else 0
    return total


def _list_or_empty(value: Any) -> list:
    return value if isinstance(value, list) else []


def _population_to_dict(population: Population) -> dict[str, Any]:
    pop = population.validated()
    out: dict[str, Any] = {
        "name": pop.name,
        "size": pop.size,
        "neuron_model": pop.neuron_model,
        "record": list(pop.record),
        "max_atoms_per_core": pop.max_atoms_per_core,
    }
    if pop.model.is_input:
        out["spike_times"] = {str(i): list(ticks) for i, ticks in sorted(pop.spike_times.items())}
    else:
        out["reset"] = pop.reset
        out["params"] = {k: [float(x) for x in v] for k, v in pop.params.items()}
    return out


def _population_from_dict(item: Mapping[str, Any]) -> Population:
    name = _required(item, "name", "population")
    if not isinstance(name, str):
        raise ConfigError(f"population name {name!r} must be a string")
    where = f"population {name!r}"
    model = _required(item, "neuron_model", where)
    if model == "spike_list":
        times = _required_dict(item, "spike_times", where)
        params: dict[Any, Any] = {key_index(k, f"{where}: spike_times key"): v for k, v in times.items()}
    else:
        params = dict(_required_dict(item, "params", where))
        params["reset"] = _required(item, "reset", where)
    pop = Population(_required(item, "size", where), model, params, name=name, record=item.get("record"))
    if item.get("max_atoms_per_core") is not None:
        pop.set_max_atoms_per_core(item["max_atoms_per_core"])
    return pop


def _projection_to_dict(proj: Projection | Conv2DProjection) -> dict[str, Any]:
    out: dict[str, Any] = {"name": proj.name, "pre": proj.pre.name, "post": proj.post.name}
    if isinstance(proj, Conv2DProjection):
        out["type"] = "conv2d"
        out["weights_shape"] = list(proj.weights.shape)
        out["weights"] = [float(x) for x in proj.weights.ravel()]
        out["conv_params"] = dict(proj.conv_params)
    else:
        out["type"] = "connections"
        out["connections"] = proj.connections.tolist()
    return out


def _projection_from_dict(item: Mapping[str, Any], pops: Mapping[str, Population]) -> Projection | Conv2DProjection:
    name = _required(item, "name", "projection")
    where = f"projection {name!r}"
    ends = []
    for end in ("pre", "post"):
        pop_name = _required(item, end, where)
        if not isinstance(pop_name, str) or pop_name not in pops:
            raise ConfigError(f"{where}: {end} population {pop_name!r} is not in the network (have {sorted(pops)})")
        ends.append(pops[pop_name])
    kind = _required(item, "type", where)
    if kind == "connections":
        return Projection(ends[0], ends[1], _required(item, "connections", where), name=name)
    if kind == "conv2d":
        dims = _required_list(item, "weights_shape", where)
        shape = tuple(as_index(x, f"{where}: weights_shape entry") for x in dims)
        flat = numeric_array(_required(item, "weights", where), f"{where}: weights", "a list of numbers").ravel()
        if flat.size != int(np.prod(shape, dtype=np.float64)) or min(shape, default=0) < 1:
            raise ConfigError(f"{where}: {flat.size} weights stored for shape {shape}")
        return Conv2DProjection(ends[0], ends[1], flat.reshape(shape), _required(item, "conv_params", where), name=name)
    raise ConfigError(f"{where}: unknown projection type {kind!r}; expected 'connections' or 'conv2d'")


def _required(item: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(item, Mapping) or key not in item:
        raise ConfigError(f"{where}: network description lacks {key!r}")
    return item[key]


def _required_list(item: Mapping[str, Any], key: str, where: str) -> list:
    value = _required(item, key, where)
    if not isinstance(value, list):
        raise ConfigError(f"{where}: {key!r} must be a list, got {type(value).__name__}")
    return value


def _required_dict(item: Mapping[str, Any], key: str, where: str) -> Mapping:
    value = _required(item, key, where)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: {key!r} must be an object (a dict), got {type(value).__name__}")
    return value
