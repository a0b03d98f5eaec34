"""The README's examples run as written: every ```python block and every ``s2sim`` command, in order, in a fresh
folder (the sample files come from ``s2sim demo --export``, as the README says).
"""

import subprocess
import sys
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


def test_submodules_named_in_the_readme_work_after_a_plain_import_s2sim():
    # a fresh interpreter: in this one other tests have imported the submodules already
    code = (
        "import sys, s2sim\n"
        "assert 'torch' not in sys.modules, 'import s2sim loaded torch'\n"
        "assert callable(s2sim.quantize.ptq) and callable(s2sim.traces.write_trace)\n"
        "try:\n"
        "    s2sim.no_such_module\n"
        "except AttributeError as exc:\n"
        "    assert 'no_such_module' in str(exc)\n"
        "else:\n"
        "    raise SystemExit('s2sim.no_such_module did not raise AttributeError')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
