"""Every repository path the docs, README and build files name exists (no dangling references)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATH = re.compile(r"(?<![\w/.])((?:docs|tools|tests|s2sim|csrc)/[\w./-]+\.(?:md|py|c|h|json|sh|rst))\b")
SOURCES = ["README.md", "CONTRIBUTING.md", "Makefile", ".ci/run", *map(str, (ROOT / "docs").glob("*.md"))]


def test_named_repository_paths_exist():
    missing = [
        f"{Path(src).name}: {path}"
        for src in SOURCES
        for path in PATH.findall((ROOT / src).read_text())
        if not (ROOT / path).exists()
    ]
    assert missing == []
