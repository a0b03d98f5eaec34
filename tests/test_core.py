"""The Python side and the built C core agree on the C interface's version."""

import re
from pathlib import Path

from s2sim import core
from s2sim._core import lib

HEADER = Path(__file__).resolve().parents[1] / "csrc" / "s2sim.h"


def test_python_code_the_header_and_the_build_name_one_interface_version():
    header = int(re.search(r"#define S2_ABI_VERSION (\d+)", HEADER.read_text()).group(1))
    assert core.ABI_VERSION == header == lib.S2_ABI_VERSION
