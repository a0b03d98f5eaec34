"""The API reference (docs/api, built by `make docs`) covers the whole package: every module has a page listed in
its index, or every public class and function it defines is exported (``__all__``) by a module that has one, as a
package's implementation modules are documented through the package's public names.
"""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import s2sim

API = Path(__file__).resolve().parents[1] / "docs" / "api"


def _module(name: str):
    try:
        return importlib.import_module(f"s2sim.{name}")
    except ImportError as exc:  # an optional dependency (torch) is missing here
        pytest.skip(f"s2sim.{name} needs {exc.name}")


def _defined(module) -> set[str]:
    return {
        n
        for n, obj in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__ == module.__name__
    }


def test_every_module_is_in_the_api_reference():
    modules = {m.name for m in pkgutil.iter_modules(s2sim.__path__) if not m.name.startswith("_")}
    listed = set(re.findall(r"^   (\w+)$", (API / "index.rst").read_text(), flags=re.M))
    for name in listed & modules:
        assert f"s2sim.{name}" in (API / f"{name}.rst").read_text(), name
    exported = set()
    for name in listed & modules:
        module = _module(name)
        exported |= {id(getattr(module, n)) for n in getattr(module, "__all__", ()) if hasattr(module, n)}
    for name in sorted(modules - listed):
        module = _module(name)
        missing = sorted(n for n in _defined(module) if id(getattr(module, n)) not in exported)
        assert not missing, (
            f"s2sim.{name} has no page in docs/api/index.rst, and no documented module exports {missing}"
        )
