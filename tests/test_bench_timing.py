"""tools/bench.py's sampling: a short s2sim run is repeated until its sample is as long as the other side's, and the
samples are sorted by the machine phase the probes around them saw.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import pytest
from bench import phase_of, phase_speedups, same_length


def test_a_short_run_is_repeated_to_the_shortest_other_sample():
    assert same_length(0.04, [0.41, 0.33, 1.2]) == 8  # 0.33 / 0.04 = 8.25
    assert same_length(0.2, [2.2]) == 11


def test_a_run_as_long_as_the_others_or_longer_is_one_sample():
    assert same_length(0.5, [0.3]) == 1
    assert same_length(0.3, [0.3]) == 1
    assert same_length(0.04, []) == 1  # no other side to match (every snnTorch configuration failed)


def test_a_sample_belongs_to_a_phase_only_when_both_probes_agree():
    assert phase_of(5.3, 6.8, 5.3) == "fast"  # 6.8 <= 1.3 * 5.3
    assert phase_of(5.3, 7.0, 5.3) is None  # after it the machine was on its way to the slow phase
    assert phase_of(14.5, 10.6, 5.3) == "slow"
    assert phase_of(14.5, 5.4, 5.3) is None


def side(cpu: list[float], probes: list[float]) -> dict:
    return {"cpu": sorted(cpu)[len(cpu) // 2], "cpu_samples": cpu, "amx_multiply_ns": probes}


FAST, SLOW = [5.3, 5.4], [14.5, 14.0]


def test_phase_ratios_compare_each_side_only_within_one_phase():
    conv = {
        "times": {
            "1": {
                "5": {
                    # s2sim: 30 ms in the fast phase, 80 ms in the slow one; compiled: 300 / 420 ms
                    "s2sim": side([0.030, 0.080, 0.031, 0.079, 0.030], FAST + SLOW + FAST + SLOW + FAST),
                    "compiled": side([0.300, 0.300, 0.420, 0.420, 0.430], FAST + FAST + SLOW + SLOW + SLOW),
                    # faster, but only one sample in the fast phase: not a median
                    "eager": side([0.200, 0.900, 0.900, 0.900, 0.900], FAST + SLOW + SLOW + SLOW + SLOW),
                },
                "1": {  # no snnTorch side has two samples in the fast phase
                    "s2sim": side([0.020, 0.020, 0.050], FAST + FAST + SLOW),
                    "compiled": side([0.200, 0.400, 0.400], FAST + SLOW + SLOW),
                },
            }
        }
    }
    out = phase_speedups(conv)
    assert out["fast"]["5"]["ratio"] == pytest.approx(0.300 / 0.030)
    assert out["fast"]["5"]["best"] == "compiled"
    assert out["fast"]["5"]["samples"] == {"s2sim": 3, "compiled": 2}
    assert out["slow"]["5"]["ratio"] == pytest.approx(0.420 / 0.0795)
    assert out["slow"]["5"]["samples"] == {"s2sim": 2, "compiled": 3}
    assert "1" not in out["fast"]  # no snnTorch median
    assert "1" not in out["slow"]  # one s2sim sample only


def test_no_phases_without_probes():
    conv = {"times": {"1": {"5": {"s2sim": side([0.03, 0.03], [0.0] * 4), "compiled": side([0.3, 0.3], [0.0] * 4)}}}}
    assert phase_speedups(conv) == {}
