"""s2sim: a bit-exact simulator of SpiNNaker2 processing elements and a deployment SDK for spiking networks.

Data flow, one module each: ``nir_import`` (NIR -> network) -> ``snn`` (the network) -> ``lowering`` (chip integer
and float32 formats) -> ``placement`` (processing elements) -> ``simulator`` / ``core`` (the C kernel) ->
``results`` / ``traces`` (what was recorded) -> ``conformance`` (chip vs simulator).
"""
from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import Any

from . import snn
from .errors import ConfigError, ConversionError, CoreError, LimitError, S2SimError, TraceError
from .profile import ChipProfile
from .results import BatchResult

__version__ = "0.1.0"

# Heavier parts load on first use so `import s2sim` stays fast and works without torch / h5py.
_LAZY = {
    "Simulator": ("simulator", "Simulator"),
    "from_nir": ("nir_import", "from_nir"),
    "ConversionConfig": ("nir_import", "ConversionConfig"),
    "to_nir": ("nir_export", "to_nir"),
    "export_snntorch": ("snntorch_export", "export_snntorch"),
    "place": ("placement", "place"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(f"{__name__}.{module}"), attr)
    # submodules load on first use too, so `import s2sim; s2sim.quantize.ptq(...)` works as written
    if not name.startswith("_") and find_spec(f"{__name__}.{name}") is not None:
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["snn", "ChipProfile", "BatchResult", "S2SimError", "ConfigError", "LimitError", "ConversionError",
           "CoreError", "TraceError", *_LAZY]
