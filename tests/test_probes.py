"""Probe suite and variant inference.

The distinguishability of the suite is proven, not hoped: for every probe population, every combination of the
points it can depend on is simulated, and the test shows that every open point is separated by some population (no
two combinations that differ in that point give the same output there), so no two chip variants give the same
suite output. Inference must then settle every point of every variant tried from simulator-made "chip" traces,
report what a reduced suite cannot tell apart as not distinguished, and the board parts skip cleanly without a
board.
"""

import itertools
from dataclasses import replace

import numpy as np
import pytest

from s2sim import ChipProfile, probes, snn
from s2sim.chip import BoardUnavailable, board_status, run_on_board
from s2sim.cli import main
from s2sim.conformance import hypotheses, infer, simulate
from s2sim.errors import ConfigError
from s2sim.traces import read_trace_set, write_trace
from s2sim.variants import Point, open_points, profile_of, value_of

P = Point
CURR_EXP = ("lif_curr_exp", "lif_curr_exp_no_delay")
ALL_MODELS = ("lif", "lif_no_delay", "lif_conv2d", *CURR_EXP)
#: What each probe population is built to settle: it must separate exactly these points and react to no other.
DESIGNED = {
    **{("threshold_equality", f"thr_{m}"): {P("threshold_op", m)} for m in ALL_MODELS},
    **{("fma", f"fma_membrane_{m}"): {P("fused_multiply_add", m), P("state_precision")} for m in ALL_MODELS},
    **{("fma", f"fma_current_{m}"): {P("current_fused_multiply_add", m), P("state_precision")} for m in CURR_EXP},
    ("input_grouping", "grouping_lif_no_delay"): {
        P("input_grouping"),
        P("fused_multiply_add", "lif_no_delay"),
        P("state_precision"),
    },
    ("input_grouping", "grouping_lif_curr_exp_no_delay"): {
        P("input_grouping"),
        P("state_precision"),
        P("fused_multiply_add", "lif_curr_exp_no_delay"),
    },
    **{("weight_rounding", f"round_list_{m}"): {P("weight_rounding", m)} for m in ALL_MODELS},
    ("weight_rounding", "round_conv"): {P("conv_weight_rounding", "lif_conv2d")},
    ("delays", "delay_lif"): set(),
    ("delays", "delay_lif_curr_exp"): set(),
    ("conv_x_axis", "conv_stride_pad"): {P("conv_x_axis")},
    ("conv_x_axis", "conv_pool"): {P("conv_x_axis")},
    ("refractory", "refractory"): set(),
    **{("refractory_held_v", f"held_v_{m}"): {P("refractory_rule"), P("threshold_op", m)} for m in CURR_EXP},
    ("subnormal", "subnormal"): {P("flush_to_zero"), P("state_precision")},
}


def _signature(trace, name):
    """One population's recorded spikes and voltage bit patterns (float64-widened), as bytes."""
    return trace.spikes[name].tobytes() + trace.voltages[name].astype(np.float64).view(np.uint64).tobytes()


@pytest.fixture(scope="module")
def partitions():
    """(probe, population) -> the classes of its hypotheses that give the same output, simulated here."""
    out = {}
    for probe in probes.probe_suite():
        runs = {}
        for name, combos in hypotheses(probe.network).items():
            classes: dict[bytes, list] = {}
            for combo in combos:
                profile = profile_of(combo)
                if profile not in runs:
                    runs[profile] = simulate(probe.network, probe.timesteps, profile)
                classes.setdefault(_signature(runs[profile], name), []).append(combo)
            out[(probe.name, name)] = list(classes.values())
    return out


@pytest.fixture(scope="module")
def cache():
    """Simulator runs shared by the inference tests (inference takes and fills the same dict)."""
    return {}


def _separated(classes) -> set:
    """The points on which every class agrees: no two hypotheses differing there give the same output."""
    points = classes[0][0].keys()
    return {p for p in points if all(len({c[p] for c in cls}) == 1 for cls in classes)}


def test_every_probe_population_separates_what_it_was_built_for_and_reacts_to_nothing_else(partitions):
    assert set(partitions) == set(DESIGNED)
    for key, classes in partitions.items():
        designed = DESIGNED[key]
        assert designed <= _separated(classes), key
        # as many output classes as combinations of the designed points: nothing else changes the output
        combos = {tuple(c[p] for p in sorted(designed)) for cls in classes for c in cls}
        assert len(classes) == len(combos), (key, len(classes), len(combos))


def test_no_two_hypotheses_inference_considers_give_the_same_suite_output(partitions):
    separating = {}
    for key, classes in partitions.items():
        for point in _separated(classes):
            separating.setdefault(point, []).append(key)
    assert sorted(p.name for p in open_points() if p not in separating) == []
    # Every pair of hypotheses one population cannot tell apart differs in a point another population separates,
    # so the suite tells it apart. (Whole profiles differ in some point, which some population separates.)
    pairs = undistinguished = 0
    for classes in partitions.values():
        for cls in classes:
            for a, b in itertools.combinations(cls, 2):
                pairs += 1
                undistinguished += not any(a[p] != b[p] and p in separating for p in a)
    assert pairs > 1000 and undistinguished == 0


def _chip(assignment: dict, cache: dict) -> list:
    """The probe suite as a chip of this variant records it (no profile attached, as from a board)."""
    profile = profile_of(assignment)
    traces = []
    for probe in probes.probe_suite():
        key = ("chip", probe.name, profile)
        if key not in cache:
            cache[key] = simulate(probe.network, probe.timesteps, profile, metadata={"probe": probe.name})
        trace = cache[key]
        trace.profile = None
        traces.append(trace)
    return traces


def _variants():
    """The default, every single point changed to every other value, and seeded random whole variants."""
    yield {}
    for point in open_points():
        for value in point.values:
            yield {point: value}
    rng = np.random.default_rng(7)
    for _ in range(12):
        combo = {p: p.values[rng.integers(len(p.values))] for p in open_points()}
        if combo[P("flush_to_zero")] and combo[P("state_precision")] == "float64":
            combo[P("flush_to_zero")] = False
        yield combo


def test_inference_identifies_every_variant(cache):
    tried = 0
    for assignment in _variants():
        profile = profile_of(assignment)
        truth = {p.name: value_of(profile, p) for p in open_points()}
        result = infer(_chip(assignment, cache), cache=cache)
        assert result.not_distinguished() == {} and result.not_probed() == [], profile
        assert result.settled() == truth, profile
        assert result.profiles() == [profile]
        tried += 1
    assert tried > 40


def test_what_a_reduced_suite_cannot_tell_apart_is_reported_not_settled(cache):
    chip = [
        t
        for t in _chip({P("flush_to_zero"): True}, cache)
        if t.metadata["probe"] not in ("subnormal", "refractory_held_v")
    ]
    result = infer(chip, cache=cache)
    assert result.not_distinguished() == {
        "flush_to_zero": [False, True],
        "refractory_rule": ["held_v_tested", "no_spike"],
    }
    assert "flush_to_zero" not in result.settled() and "refractory_rule" not in result.settled()
    report = result.report()
    assert "NOT DISTINGUISHED by these traces: flush_to_zero (consistent: False, True)" in report
    assert "NOT DISTINGUISHED by these traces: refractory_rule" in report
    # without the conv probes nobody looks at the conv x-axis: not probed, not settled either
    chip = [t for t in chip if t.metadata["probe"] != "conv_x_axis"]
    assert "conv_x_axis" in infer(chip, cache=cache).not_probed()


def test_a_chip_outside_the_variants_is_reported(cache):
    chip = [replace(t, spikes=dict(t.spikes)) for t in _chip({}, cache)]
    k = [t.metadata["probe"] for t in chip].index("delays")
    chip[k].spikes["delay_lif"] = np.roll(chip[k].spikes["delay_lif"], 1, axis=0)  # one tick late
    result = infer(chip, cache=cache)
    assert result.consistent == [] and result.settled() == {}
    failing = [s for s in result.searches if not s.consistent]
    assert [(s.trace, s.population) for s in failing] == [("delays", "delay_lif")]
    assert "population 'delay_lif', neuron 0, tick 3, spikes: expected spike, observed no spike" in failing[0].failure
    assert "NO combination of the chip variants reproduces" in result.report()


def _deep_network():
    """A chain through every neuron model: its last population depends on far too many points to be searched."""
    src = snn.Population(4, "spike_list", {0: [0, 3], 1: [1], 2: [2, 5], 3: [4]}, name="src")
    net, pre = snn.Network("deep").add(src), src
    for k, model in enumerate(("lif", "lif_curr_exp", "lif_no_delay", "lif_curr_exp_no_delay", "lif_conv2d")):
        params = {"threshold": 0.5, "alpha_decay": 0.7, "i_offset": 0.13}
        if model.startswith("lif_curr_exp"):
            params.update(t_refrac=1)
        pop = snn.Population(4, model, params, name=f"layer{k}", record=["spikes", "v"])
        net.add(pop, snn.Projection(pre, pop, [[i, j, 1.5, 0] for i in range(pre.size) for j in range(4)]))
        pre = pop
    return net


def test_labels_must_name_every_trace(cache):
    """A label list shorter than the traces was zipped with them, leaving the traces past it out of the inference."""
    chip = _chip({}, cache)[:2]
    with pytest.raises(ConfigError, match="infer: 1 labels for 2 traces"):
        infer(chip, labels=["only one"], cache=cache)


def test_populations_too_deep_to_search_are_checked(cache):
    deep = _deep_network()
    truth = ChipProfile(fused_multiply_add=False)
    chip = _chip({p: value_of(truth, p) for p in open_points()}, cache)
    deep_trace = simulate(deep, 10, truth, metadata={"probe": "deep"})
    result = infer([*chip, deep_trace], cache=cache)
    assert ("deep", "layer4") in result.checked_only and ("deep", "layer0") not in result.checked_only
    assert result.profiles() == [truth] and "checked, not searched" in result.report()
    # the checked population alone rules out what the searched ones allowed
    tampered = replace(deep_trace, voltages={**deep_trace.voltages, "layer4": deep_trace.voltages["layer4"] + 1})
    assert infer([*chip, tampered], cache=cache).consistent == []


def _witnesses(probe_name: str, pop_name: str):
    probe = next(p for p in probes.probe_suite() if p.name == probe_name)
    pop = probe.network.population(pop_name)
    proj = next(q for q in probe.network.projections if q.post is pop)
    exc = {n: w for n, w in zip(proj.post_idx.tolist(), proj.weights.tolist(), strict=True) if w > 0}
    inh = {n: -w for n, w in zip(proj.post_idx.tolist(), proj.weights.tolist(), strict=True) if w < 0}
    return [
        (pop.param("v_init")[n], pop.param("alpha_decay")[n], exc[n], pop.param("i_offset")[n], inh.get(n, 0.0))
        for n in range(pop.size)
    ]


def _plain_float32(x0, a, e, off, i, grouping, ticks=6):
    """Separate multiply-add in numpy float32, input e and i from tick 1 on (what the spike_list delivers)."""
    f = np.float32
    v, out = f(x0), []
    for tick in range(ticks):
        ee, ii = (f(e), f(i)) if tick else (f(0), f(0))
        if grouping == "left_to_right":
            v = f(f(f(f(v * f(a)) + ee) - ii) + f(off))
        elif grouping == "leak_first":
            v = f(f(f(v * f(a)) + f(ee - ii)) + f(off))
        else:
            v = f(f(v * f(a)) + f(f(ee - ii) + f(off)))
        out.append(float(v))
    return out


def test_witnesses_tell_the_four_arithmetics_apart():
    for model in ALL_MODELS:
        for x0, a, e, off, i in _witnesses("fma", f"fma_membrane_{model}"):
            assert off == 0.0 and i == 0.0
            seqs = {
                (prec, fused): probes.muladd_sequence(x0, a, e, 6, prec, fused)
                for prec in ("float32", "float64")
                for fused in (False, True)
            }
            assert len({tuple(s) for s in seqs.values()}) == 4
            assert seqs[("float32", False)] == _plain_float32(x0, a, e, 0.0, 0.0, "input_first")


def test_grouping_witnesses_tell_all_twelve_arithmetics_apart():
    groupings = ("input_first", "leak_first", "left_to_right")
    for model in ("lif_no_delay", "lif_curr_exp_no_delay"):
        for x0, a, e, off, i in _witnesses("input_grouping", f"grouping_{model}"):
            assert i > 0 and off != 0.0
            seqs = {
                (prec, fused, g): probes.muladd_sequence(x0, a, e, 6, prec, fused, off, g, i)
                for prec in ("float32", "float64")
                for fused in (False, True)
                for g in groupings
            }
            assert len({tuple(s) for s in seqs.values()}) == 12
            for g in groupings:
                assert seqs[("float32", False, g)] == _plain_float32(x0, a, e, off, i, g)


def test_suite_on_disk_and_cli_inference(tmp_path, capsys):
    chip_profile = ChipProfile(
        threshold_op=">", weight_rounding="nearest_even", overrides={"lif_conv2d": {"fused_multiply_add": False}}
    )
    paths = probes.write_probe_suite(tmp_path / "suite")
    assert sorted(p.stem for p in paths) == sorted({probe for probe, _ in DESIGNED})
    traces, labels = read_trace_set(tmp_path / "suite")
    (tmp_path / "chip").mkdir()
    for trace, label in zip(traces, labels, strict=True):
        chip = simulate(trace.network, trace.timesteps, chip_profile, trace.inputs, metadata=trace.metadata)
        chip.profile, chip.source = None, "spinnaker2"  # a board does not know its profile
        write_trace(tmp_path / "chip" / f"{label}.h5", chip)
    profile_file = tmp_path / "profile.json"
    assert (
        main(
            [
                "conform",
                "--infer",
                str(tmp_path / "chip"),
                "--state-precision",
                "float32",
                "--write-profile",
                str(profile_file),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    # the written profile is the chip's, and s2sim exec --profile simulates with it
    from s2sim.cli.execute import _read_profile

    assert _read_profile(str(profile_file)) == chip_profile
    assert "1 combination(s) of the searched points reproduce every trace exactly" in out
    assert "restricted to: state_precision in ['float32']" in out
    for settled in (
        "threshold_op[lif_curr_exp]=>,",
        "fused_multiply_add[lif_conv2d]=False",
        "weight_rounding[lif]=nearest_even",
        "flush_to_zero=False",
    ):
        assert settled in out
    assert (
        "as a profile (points not probed at their defaults): ChipProfile(threshold_op='>', "
        "weight_rounding='nearest_even', overrides={'lif_conv2d': {'fused_multiply_add': False}})"
    ) in out
    assert (
        main(
            [
                "conform",
                "--infer",
                str(tmp_path / "chip"),
                "--only",
                "threshold_op=>=",
                "--json",
                "--write-profile",
                str(tmp_path / "none.json"),
            ]
        )
        == 2
    )
    assert '"consistent": []' in capsys.readouterr().out and not (tmp_path / "none.json").exists()


def test_board_parts_skip_cleanly_without_a_board(monkeypatch):
    monkeypatch.delenv("S2SIM_BOARD_IP", raising=False)
    monkeypatch.delenv("S2_IP", raising=False)
    ok, message = board_status()
    if ok:
        pytest.skip("a board is configured here")
    assert "S2SIM_BOARD_IP" in message
    probe = probes.threshold_probe()
    with pytest.raises(BoardUnavailable, match="no SpiNNaker2 board run possible"):
        run_on_board(probe.network, probe.timesteps)


def test_probe_suite_on_a_board():
    ok, detail = board_status()
    if not ok:
        pytest.skip(detail)
    chip = [run_on_board(p.network, p.timesteps, detail, metadata={"probe": p.name}) for p in probes.probe_suite()]
    result = infer(chip)
    print(result.report())
    assert result.consistent, result.report()
