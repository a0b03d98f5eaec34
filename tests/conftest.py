"""Shared test setup: makes ``tests/strategies.py`` importable as ``strategies`` under any pytest import mode."""

import os
import sys

import pytest

_TESTS = os.path.dirname(os.path.abspath(__file__))
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


@pytest.fixture(scope="session")
def saccade_cache(tmp_path_factory):
    """A cache folder holding the small Saccade Digits set (5 ticks, 6 ms camera steps; about 3 s to render),
    shared by the data set, benchmark and example tests.
    """
    pytest.importorskip("sklearn")
    from s2sim import saccade_digits

    folder = tmp_path_factory.mktemp("saccade")
    saccade_digits.load(saccade_digits.SaccadeConfig(n_ticks=5, step_ms=6.0), cache_dir=folder)
    return folder
