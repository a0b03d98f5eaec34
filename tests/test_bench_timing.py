"""tools/bench.py's sample lengths: a short s2sim run is repeated until its sample is as long as the other side's."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from bench import same_length


def test_a_short_run_is_repeated_to_the_shortest_other_sample():
    assert same_length(0.04, [0.41, 0.33, 1.2]) == 8  # 0.33 / 0.04 = 8.25
    assert same_length(0.2, [2.2]) == 11


def test_a_run_as_long_as_the_others_or_longer_is_one_sample():
    assert same_length(0.5, [0.3]) == 1
    assert same_length(0.3, [0.3]) == 1
    assert same_length(0.04, []) == 1  # no other side to match (every snnTorch configuration failed)
