"""docs/tutorial.md runs as written: every ```python block in one namespace and every ``s2sim`` command, in order,
in a fresh folder. The bit-identity asserts are the tutorial's own; this test adds what its text promises.
"""

from pathlib import Path

import numpy as np
import pytest
from doc_examples import DocumentRun, blocks

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"


def test_the_tutorial_runs_as_written(tmp_path, monkeypatch):
    for module in ("snntorch", "sklearn", "h5py", "matplotlib"):
        pytest.importorskip(module)
    monkeypatch.setenv("S2SIM_CACHE", str(tmp_path / "cache"))  # the data set's cache stays in this test
    work = tmp_path / "work"
    work.mkdir()
    run = DocumentRun(TUTORIAL, work, not_run={}).run()

    everything = blocks(TUTORIAL)
    assert run.ran["python"] == sum(b.language == "python" and not b.skip for b in everything)
    assert run.ran["command"] == 5
    assert len(run.skipped) == 2 and all("board" in why for why in run.skipped), run.skipped
    ns = run.namespace
    # the network learned something, and every quantized form of it too (chance is 10 %)
    for name in ("float_acc", "ptq_acc", "qat_acc"):
        assert ns[name] > 50.0, (name, ns[name])
    for name in ("digits.nir", "test_spikes.npz", "digits_out.h5", "sim.h5", "again.h5", "variant.h5", "diff.png"):
        assert (work / name).is_file(), name
    # the traces hold the run that was simulated
    from s2sim.traces import read_trace

    trace = read_trace(work / "sim.h5")
    last = ns["frozen"].layers[-1].name
    assert np.array_equal(trace.spikes[last], ns["result"].spikes[last][0])


def test_the_tutorial_points_at_nothing_outside_the_project():
    text = TUTORIAL.read_text()
    for bad in ("../shared", "/work/", "/home/", "shared/reference"):
        assert bad not in text, bad
