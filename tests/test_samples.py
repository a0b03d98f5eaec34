"""`s2sim demo --export DIR`: the sample files the README's command-line examples use (s2sim.samples)."""

import numpy as np
import pytest

from s2sim.cli import main
from s2sim.samples import N_INPUTS, N_SAMPLES, N_TICKS, SAMPLE_FILES


def test_export_writes_every_sample_file_and_the_traces_differ_only_by_the_variant(tmp_path, capsys):
    pytest.importorskip("h5py")
    from s2sim.conformance import compare
    from s2sim.traces import read_trace

    assert main(["demo", "--export", str(tmp_path / "sample")]) == 0
    out = capsys.readouterr().out
    for name in SAMPLE_FILES:
        assert (tmp_path / "sample" / name).is_file(), name
        assert name in out
    with np.load(tmp_path / "sample" / "spikes.npz") as z:
        assert z["input"].shape == (N_SAMPLES, N_TICKS, N_INPUTS) and z["input"].dtype == np.uint8
    expected, observed = (read_trace(tmp_path / "sample" / f) for f in ("expected.h5", "observed.h5"))
    assert observed.profile is None  # as from a board: the variant is for `conform --infer` to find
    result = compare(expected, observed)
    assert not result.match
    assert result.first_divergence.variable == "v"  # the FMA changes last bits of V, not (here) the spikes


def test_export_cannot_be_combined_with_a_run(tmp_path, capsys):
    assert main(["demo", "--export", str(tmp_path), "--nir-paper"]) == 2
    assert "--export" in capsys.readouterr().err and not any(tmp_path.iterdir())
