"""The API reference (docs/api, built by `make docs`) has a page for every module of the package, listed in its
index, so a new module cannot be left out of it."""
import pkgutil
import re
from pathlib import Path

import s2sim

API = Path(__file__).resolve().parents[1] / "docs" / "api"


def test_every_module_has_an_api_page_in_the_index():
    modules = {m.name for m in pkgutil.iter_modules(s2sim.__path__) if not m.name.startswith("_")}
    index = (API / "index.rst").read_text()
    listed = set(re.findall(r"^   (\w+)$", index, flags=re.M))
    assert modules <= listed, f"modules without a page in docs/api/index.rst: {sorted(modules - listed)}"
    for name in modules:
        page = (API / f"{name}.rst").read_text()
        assert f"s2sim.{name}" in page, name
