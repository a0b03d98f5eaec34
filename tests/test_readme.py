"""The README's examples run as written: every ```python block and every ``s2sim`` command, in order, in a fresh
folder (the sample files come from ``s2sim demo --export``, as the README says).
"""

from pathlib import Path

import pytest
from doc_examples import DocumentRun, blocks

README = Path(__file__).resolve().parents[1] / "README.md"

#: Shell lines of the README that are not run here, and why.
NOT_RUN = {
    "make ": "set-up and test targets: CI runs them itself",
    "pip install": "set-up",
    "pytest": "the test suite itself",
    "python tools/run_probes_on_board.py": "needs py-spinnaker2 and a board",
}


def test_every_readme_example_runs_as_written(tmp_path):
    pytest.importorskip("snntorch")
    pytest.importorskip("h5py")
    run = DocumentRun(README, tmp_path, NOT_RUN).run()
    assert run.ran["python"] == sum(b.language == "python" for b in blocks(README))
    assert run.ran["command"] >= 10, run.ran
    # the examples used the exported sample files and left what they say they write
    sample = tmp_path / "sample"
    for name in ("model.nir", "spikes.npz", "out.h5", "out.png", "sim.h5", "diff.png", "run.h5", "time_done.png"):
        assert (sample / name).is_file(), name


def test_readme_points_at_nothing_outside_the_project():
    text = README.read_text()
    for bad in ("../shared", "/work/", "/home/", "shared/reference"):
        assert bad not in text, bad
