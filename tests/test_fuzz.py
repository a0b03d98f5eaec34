"""The project's own fuzzing, bounded for CI: every category of s2sim.fuzzing, driven by hypothesis.

Each example mutates a valid input (NIR graph, NIR file, trace file, API call, command line) and feeds it to s2sim.
Every outcome must be an s2sim error or an acceptance; a builtin exception, an interpreter crash (files are read in
a child process, so a crash shows up as an error naming it) or an exit status other than 0/1/2 fails the test, and
so does accepting a mutation that is invalid under every reading. Long runs: ``tools/fuzz.py --minutes N``.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2sim import fuzzing

#: Examples per category: enough to reach every mutation kind each run, a few seconds in all.
EXAMPLES = {
    "nir-graph": 200,
    "api": 200,
    "nir-file-bytes": 40,
    "nir-file-structure": 40,
    "trace-file-bytes": 40,
    "trace-file-structure": 40,
    "cli": 40,
}


@pytest.mark.parametrize("category", list(fuzzing.CATEGORIES))
def test_fuzz_category(category, tmp_path):
    tally = fuzzing.Tally()

    @settings(
        max_examples=EXAMPLES[category],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(rng=st.randoms(use_true_random=False))
    def one_case(rng):
        case = fuzzing.CATEGORIES[category](rng, tmp_path)
        outcome = fuzzing.classify(case)
        tally.add(case, outcome)
        assert outcome.kind != "other", f"{case.mutation}: {outcome.detail}"
        assert not (case.must_fail and outcome.kind == "accepted"), f"{case.mutation}: accepted silently"

    with fuzzing.fuzzing_limits():
        one_case()
    row = tally.counts[category]
    assert row["cases"] >= EXAMPLES[category] // 2
    assert row["other"] == row["silent"] == 0
    assert row["error"] > 0  # the mutations reach the checks, not only harmless corners


def test_tally_counts_failures_and_silent_acceptance():
    tally = fuzzing.Tally()
    tally.add(fuzzing.Case("x", "ok", lambda: None), fuzzing.Outcome("accepted"))
    tally.add(fuzzing.Case("x", "bad", lambda: None, must_fail=True), fuzzing.Outcome("accepted"))
    tally.add(fuzzing.Case("x", "boom", lambda: None), fuzzing.Outcome("other", "ValueError: x"))
    assert tally.counts["x"]["cases"] == 3 and tally.counts["x"]["silent"] == 1 and tally.counts["x"]["other"] == 1
    assert tally.failures == ["x: bad: accepted silently", "x: boom: ValueError: x"]


def test_classify_separates_s2sim_errors_from_the_rest():
    from s2sim.errors import ConfigError

    def refuse():
        raise ConfigError("no")

    def crash():
        raise KeyError("k")

    assert fuzzing.classify(fuzzing.Case("x", "", refuse)).kind == "error"
    assert fuzzing.classify(fuzzing.Case("x", "", crash)).kind == "other"
    assert fuzzing.classify(fuzzing.Case("x", "", lambda: 3, exit_status=True)).kind == "other"
    assert fuzzing.classify(fuzzing.Case("x", "", lambda: 2, exit_status=True)).kind == "error"
    assert fuzzing.classify(fuzzing.Case("x", "", lambda: 1, exit_status=True)).kind == "accepted"
