"""``s2sim convert model.nir``: the conversion report (NIR -> chip populations) and the resource report.

The conversion options and the NIR loading live here because ``s2sim run`` converts the same way.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .checks import fields_as_flags

INTEGRATORS = ("forward", "exponential")
RESETS = ("subtract", "zero")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert", help="convert a NIR graph and report what the chip gets and the PEs it needs",
        description="Convert a NIR graph to SpiNNaker2 populations (as py-spinnaker2's from_nir does), print the "
                    "conversion report (each NIR parameter -> chip value) and the resource report (PEs, quad-PEs, "
                    "SRAM per PE, chips).")
    parser.add_argument("model", help="NIR graph file (HDF5, written by nir.write)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object {model, conversion, placement} instead of text")
    add_conversion_options(parser)
    parser.set_defaults(func=run_convert)


def add_conversion_options(parser: argparse.ArgumentParser) -> None:
    """The ConversionConfig options shared by ``convert`` and ``run``."""
    group = parser.add_argument_group("conversion")
    group.add_argument("--dt", type=float, default=None,
                       help="time step of the NIR model in its time unit (default: the graph's dt metadata, else "
                            "1.0 with a warning; snnTorch graphs: 1e-4)")
    group.add_argument("--integrator", choices=INTEGRATORS, default=None,
                       help="discretisation of the leak: forward (alpha = 1 - dt/tau) or exponential "
                            "(alpha = exp(-dt/tau)); default exponential, as py-spinnaker2")
    group.add_argument("--reset", choices=RESETS, default=None,
                       help="subtract -> reset_by_subtraction, zero -> reset_to_v_reset (default subtract)")
    group.add_argument("--scale-weights", action="store_true",
                       help="scale weights per target population to use the full weight range (127 / max|W|)")
    group.add_argument("--weight-scale-percentile", type=float, default=None, metavar="P",
                       help="with --scale-weights: scale by percentile P of |W| instead of the maximum")
    group.add_argument("--conn-delay", type=int, default=None, metavar="D",
                       help="delay field of converted connection lists (default 1; conv needs 0)")
    group.add_argument("--on-overflow", choices=("error", "clip"), default=None,
                       help="a weight beyond the chip range: error (default) or clip it and count it in the report")
    group.add_argument("--ignore-metadata", action="store_true",
                       help="do not let graph metadata (dt, reset, integrator) override these options")
    group.add_argument("--profile", default=None, metavar="JSON",
                       help="ChipProfile as a JSON file (fields of s2sim.ChipProfile); default ChipProfile()")


def conversion_config(args: argparse.Namespace) -> Any:
    """Build nir_import.ConversionConfig from the options that were given (others keep its defaults)."""
    from ..nir_import import ConversionConfig

    given: dict[str, Any] = {}
    if args.dt is not None:
        given["dt"] = args.dt
    if args.integrator is not None:
        given["integrator"] = args.integrator
    if args.reset is not None:
        given["reset"] = args.reset
    if args.scale_weights:
        given["scale_weights"] = True
    if args.weight_scale_percentile is not None:
        given["weight_scale_percentile"] = args.weight_scale_percentile
    if args.conn_delay is not None:
        given["conn_delay"] = args.conn_delay
    if args.on_overflow is not None:
        given["on_overflow"] = args.on_overflow
    if args.ignore_metadata:
        given["use_metadata"] = False
    if getattr(args, "strict", False):
        given["strict"] = True
    with _options_named():
        return ConversionConfig(**given)


#: ConversionConfig field -> the option that sets it, so that a bad value is reported as the user typed it.
FIELD_FLAGS = {"dt": "--dt", "integrator": "--integrator", "reset": "--reset", "scale_weights": "--scale-weights",
               "weight_scale_percentile": "--weight-scale-percentile", "conn_delay": "--conn-delay",
               "on_overflow": "--on-overflow", "strict": "--strict"}


def _options_named() -> Any:
    """Name a refused conversion setting as the option that sets it."""
    return fields_as_flags("ConversionConfig", FIELD_FLAGS)


def load_profile(path: str | None) -> Any:
    """ChipProfile from a JSON file, or the default profile."""
    from ..profile import ChipProfile

    if path is None:
        return ChipProfile()
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"profile file {path!r}: expected a JSON object of ChipProfile fields")
    return ChipProfile.from_dict(data)


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"profile file {path!r} does not exist") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"profile file {path!r} is not readable JSON: {exc}") from None


@dataclass
class LoadedModel:
    """A converted NIR graph with what the commands need besides the network."""

    net: Any
    inputs: list
    outputs: list
    profile: Any
    config: Any

    @property
    def dt(self) -> float:
        """The time step the conversion used (graph metadata may override the option)."""
        report = getattr(self.net, "conversion_report", None)
        if report is not None and "dt" in report.config:
            return float(report.config["dt"])
        return float(self.config.dt)


def load_model(args: argparse.Namespace) -> LoadedModel:
    """Read (in a child process, see s2sim.isolation) and convert ``args.model`` with the options of ``args``."""
    from ..nir_import import from_nir

    config = conversion_config(args)
    profile = load_profile(args.profile)
    with _options_named():
        net, inputs, outputs = from_nir(args.model, config, isolate=True)
    return LoadedModel(net, as_population_list(inputs), as_population_list(outputs), profile, config)


def as_population_list(pops: Any) -> list:
    """from_nir's input/output populations as a list (it may hand back a list or a name -> population dict)."""
    if isinstance(pops, dict):
        return list(pops.values())
    return list(pops)


def run_convert(args: argparse.Namespace) -> int:
    from ..placement import place

    model = load_model(args)
    placement = place(model.net, model.profile)
    report = getattr(model.net, "conversion_report", None)
    if args.json:
        out = {"model": args.model, "conversion": report.to_dict() if report is not None else None,
               "placement": placement.to_dict()}
        print(json.dumps(out, indent=2, default=json_default))
    else:
        if report is not None:
            print(report.format())
            print()
        print(placement.format())
    return 0


def json_default(obj: Any) -> Any:
    """numpy scalars and arrays in reports become plain numbers and lists."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
