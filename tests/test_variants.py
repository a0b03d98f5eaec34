"""The open points as coordinates: profile_of gives exactly the assigned values, and relevant_points never leaves
out a point that changes what a population records (the soundness variant inference rests on).
"""

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import net_specs

from s2sim.errors import ConfigError
from s2sim.profile import ChipProfile
from s2sim.simulator import Simulator
from s2sim.variants import Point, open_points, point_named, profile_of, relevant_points, value_of


@st.composite
def assignments(draw) -> dict:
    combo = {p: draw(st.sampled_from(p.values)) for p in open_points()}
    if combo[Point("state_precision")] == "float64":
        combo[Point("flush_to_zero")] = False
    return combo


@settings(max_examples=200, deadline=None)
@given(assignments())
def test_profile_of_gives_every_value_and_is_canonical(combo):
    profile = profile_of(combo)
    assert {p: value_of(profile, p) for p in open_points()} == combo
    assert profile_of({p: value_of(profile, p) for p in open_points()}) == profile
    assert ChipProfile.from_dict(profile.to_dict()) == profile
    # the top level holds what most models use, so a uniform choice needs no overrides
    if (
        len(
            {
                combo[Point("threshold_op", m)]
                for m in ("lif", "lif_no_delay", "lif_conv2d", "lif_curr_exp", "lif_curr_exp_no_delay")
            }
        )
        == 1
    ):
        assert "threshold_op" not in str(profile.overrides)


def test_point_names_and_impossible_combinations():
    assert point_named("threshold_op[lif]") == Point("threshold_op", "lif")
    assert len(open_points()) == 23
    with np.testing.assert_raises(ConfigError):
        point_named("threshold_op[spike_list]")
    with np.testing.assert_raises(ConfigError):
        profile_of({Point("flush_to_zero"): True, Point("state_precision"): "float64"})


def _records(result) -> dict:
    return {
        **{f"s:{k}": v.tobytes() for k, v in result.spikes.items()},
        **{f"v:{k}": v.astype(np.float64).view(np.uint64).tobytes() for k, v in result.voltages.items()},
    }


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(net_specs(), st.sampled_from(open_points()), st.data())
def test_points_outside_a_populations_relevant_set_never_change_it(spec, point, data):
    net, inputs = spec.build()
    value = data.draw(st.sampled_from(point.values))
    try:
        other = profile_of({point: value}, spec.profile)
    except ConfigError:
        assume(False)
    base_run = _records(Simulator(spec.profile).run_batch(net, inputs, spec.timesteps))
    try:
        other_run = _records(Simulator(other).run_batch(*spec.build(), spec.timesteps))
    except ConfigError:  # a conv read with x along the height may no longer fit its populations
        assume(False)
    relevant = relevant_points(net)
    for key, recorded in base_run.items():
        if point not in relevant[key[2:]]:
            assert other_run[key] == recorded, (point.name, key)
