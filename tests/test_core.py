"""The Python side and the built C core agree on the C interface's version; the arrays it hands the core are aligned."""

import re
from pathlib import Path

import numpy as np

from s2sim import core
from s2sim._core import lib

HEADER = Path(__file__).resolve().parents[1] / "csrc" / "s2sim.h"


def test_python_code_the_header_and_the_build_name_one_interface_version():
    header = int(re.search(r"#define S2_ABI_VERSION (\d+)", HEADER.read_text()).group(1))
    assert core.ABI_VERSION == header == lib.S2_ABI_VERSION


def _odd_conv_net():
    """Populations whose sizes are not multiples of 64, a curr_exp one among them, and a conv on the dense path."""
    from s2sim import snn

    rng = np.random.default_rng(5)
    inp = snn.Population(2 * 7 * 7, "spike_list", {}, name="input")
    conv = snn.Population(3 * 5 * 5, "lif_conv2d", {"threshold": 9.0, "alpha_decay": 0.9}, name="conv")
    curr = snn.Population(37, "lif_curr_exp", {"threshold": 5.0, "alpha_decay": 0.8}, name="curr")
    net = snn.Network("odd").add(inp, conv, curr)
    w = rng.integers(-6, 9, (2, 3, 3, 3))
    net.add(snn.Conv2DProjection(inp, conv, w, {"in_height": 7, "in_width": 7}))
    pairs = [(i, j) for i in range(conv.size) for j in range(curr.size) if (i + j) % 3 == 0]
    conns = [[i, j, int(rng.integers(-9, 10)), 0] for i, j in pairs]
    net.add(snn.Projection(conv, curr, np.array(conns)))
    return net


def test_every_population_range_and_workspace_array_starts_on_a_64_byte_boundary():
    from s2sim.simulator import Simulator

    sim = Simulator().load(_odd_conv_net())
    pops = sim.lowered.populations
    assert [p.n for p in pops] == [98, 75, 37]  # none a multiple of 64: the offsets below are padded
    for p in pops:
        assert p.state_offset % 64 == 0, p.name
        if p.ring_offset >= 0:
            assert p.ring_offset % 16 == 0, p.name
        if p.curr_offset >= 0:
            assert p.curr_offset % 16 == 0, p.name
    for name, arr in sim.core.workspace().arrays.items():
        if arr.size:
            assert arr.ctypes.data % core.ALIGN == 0, name


def test_a_misaligned_array_is_copied_aligned_with_its_values():
    raw = np.arange(200, dtype=np.int8)
    off = next(k for k in range(1, 64) if (raw.ctypes.data + k) % core.ALIGN)  # a misaligned view
    view = raw[off : off + 128]
    out = core._aligned(view)
    assert out.ctypes.data % core.ALIGN == 0
    assert out.dtype == view.dtype and out.tobytes() == view.tobytes()
    aligned = core._zeros(16, np.float32)
    assert core._aligned(aligned) is aligned
