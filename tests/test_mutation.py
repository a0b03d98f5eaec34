"""py-spinnaker2's mutation semantics: a network built once and edited between runs.

Every edit takes effect at the next run (compared bit for bit with a network built from scratch with the final
values), is validated then with the usual named errors, and can never hand the C core arrays that do not match
what it was validated with. These tests also run under ASan + UBSan (tools/sanitize.sh).
"""

from __future__ import annotations

import re
import threading
import time

import numpy as np
import pytest

from s2sim import snn
from s2sim.core import CoreNetwork
from s2sim.errors import ConfigError, CoreError, LimitError
from s2sim.lowering import lower
from s2sim.simulator import Simulator

T = 30


def bits(a):
    return np.asarray(a, np.float32).view(np.uint32)


def build(stim_ticks=None, size=4, threshold=3.0, record=("spikes", "v"), weights=5):
    stim = snn.Population(
        2, "spike_list", stim_ticks if stim_ticks is not None else {0: [1, 4, 9], 1: [2, 3]}, name="stim"
    )
    pop = snn.Population(
        size, "lif_no_delay", {"threshold": threshold, "alpha_decay": 0.875}, name="pop", record=list(record)
    )
    conns = [[i % 2, j, weights + j, 0] for i in range(2) for j in range(size)]
    return snn.Network("n").add(stim, pop, snn.Projection(stim, pop, conns)), stim, pop


def run(net):
    return Simulator().run_batch(net, timesteps=T)


def same(a, b, name="pop"):
    np.testing.assert_array_equal(a.spikes[name], b.spikes[name])
    np.testing.assert_array_equal(bits(a.voltages[name]), bits(b.voltages[name]))


def test_spike_list_params_per_sample_is_the_input():
    net, stim, _pop = build()
    first = run(net)
    for ticks in ({0: [5], 1: [6, 7, 20]}, {}, {1: [0, 1, 2, 3]}):
        stim.params = ticks  # the idiom of every NIR script: inp[0].params = sample
        got = run(net)
        np.testing.assert_array_equal(got.spikes["stim"][0], stim.input_array(T))
        same(got, run(build(stim_ticks=ticks)[0]))
    assert stim.spike_times == {1: [0, 1, 2, 3]}  # params and spike_times are one thing
    stim.spike_times = {0: [1, 4, 9], 1: [2, 3]}
    assert stim.params == {0: [1, 4, 9], 1: [2, 3]}
    same(run(net), first)


def test_spike_list_dict_edited_in_place():
    ticks = {0: [1]}
    net, _stim, _ = build(stim_ticks=ticks)
    run(net)
    ticks[1] = [2, 8]  # the population keeps the user's dict, as py-spinnaker2 does
    same(run(net), run(build(stim_ticks={0: [1], 1: [2, 8]})[0]))


def test_parameter_assignment_in_place_edit_and_new_dict():
    net, _, pop = build()
    run(net)
    pop.params["threshold"] = 7.5
    same(run(net), run(build(threshold=7.5)[0]))
    pop.params["threshold"] = np.full(4, 3.0)
    pop.params["threshold"][2] = 1.25  # in-place edit of a parameter array
    same(run(net), run(build(threshold=[3.0, 3.0, 1.25, 3.0])[0]))
    pop.params = {"threshold": 2.0}  # a new dict: what it leaves out takes the model defaults
    ref = snn.Population(4, "lif_no_delay", {"threshold": 2.0}, name="pop", record=["spikes", "v"])
    assert pop.param("alpha_decay").tolist() == ref.param("alpha_decay").tolist()
    got = run(net)
    assert got.voltages["pop"].shape == (1, T, 4)


def test_growing_a_population_with_scalar_params():
    net, _, pop = build(size=4)
    run(net)
    pop.size += 2  # Fugu's idiom; scalar parameters are broadcast at the next run
    got = run(net)
    assert got.voltages["pop"].shape == (1, T, 6)
    assert pop.param("threshold").shape == (6,)


def test_shrinking_below_a_connection_index_is_an_error():
    net, _, pop = build(size=4)
    run(net)
    pop.size = 2
    with pytest.raises(ConfigError, match=r"post index 2, outside 0..1 \(population 'pop' has 2 neurons\)"):
        run(net)
    pop.size = 4
    run(net)


def test_array_params_that_no_longer_fit_the_size_are_an_error():
    net, _, pop = build(size=4)
    pop.params["threshold"] = np.full(4, 3.0)
    pop.size = 5
    pop.params["threshold"]  # still the 4-element array the user wrote
    with pytest.raises(
        ConfigError, match=r"'pop': parameter 'threshold' has shape \(4,\); expected a scalar or \(5,\)"
    ):
        run(net)


@pytest.mark.parametrize(
    "value, error, fragments",
    [
        (np.nan, ConfigError, ["'threshold'", "nan", "finite"]),
        (1e39, LimitError, ["'threshold'", "float32"]),
        ("3.0", ConfigError, ["'threshold'", "strings"]),
        (True, ConfigError, ["'threshold'", "booleans"]),
        (1 + 2j, ConfigError, ["'threshold'", "complex"]),
    ],
)
def test_bad_edits_are_refused_at_the_next_run(value, error, fragments):
    net, _, pop = build()
    run(net)
    pop.params["threshold"] = value
    with pytest.raises(error) as info:
        run(net)
    for fragment in fragments:
        assert fragment in str(info.value)
    pop.params["threshold"] = 3.0
    same(run(net), run(build()[0]))


def test_in_place_nan_in_a_parameter_array():
    net, _, pop = build()
    pop.params["alpha_decay"] = np.full(4, 0.875)
    run(net)
    pop.params["alpha_decay"][1] = np.nan
    with pytest.raises(ConfigError, match="'alpha_decay' of neuron 1 is nan"):
        run(net)


def test_record_assignment_and_append():
    net, _stim, pop = build(record=("spikes",))
    first = run(net)
    assert "pop" not in first.voltages
    pop.record.append("v")
    got = run(net)
    same(got, run(build()[0]))
    pop.record = ["v_last"]
    got = run(net)
    assert "pop" not in got.spikes and got.v_last["pop"].shape == (1, 4)
    pop.record.append("voltage")
    with pytest.raises(ConfigError, match="'pop': unknown recordable 'voltage'"):
        run(net)


def test_run_results_follow_edits_through_the_population_api():
    net, stim, pop = build()
    sim = Simulator()
    sim.run(net, T)
    before = pop.get_voltages()
    stim.params = {0: [2]}
    net.reset()
    with pytest.raises(ConfigError, match="no 'v' results"):
        pop.get_voltages()
    sim.run(net, T)
    after = pop.get_voltages()
    assert not all(np.array_equal(before[i], after[i]) for i in before)


def test_max_atoms_per_core_edit_reaches_placement():
    from s2sim.placement import place

    net, _, pop = build(size=4)
    assert place(net).populations["pop"].n_pes == 1
    pop.set_max_atoms_per_core(1)
    assert place(net).populations["pop"].n_pes == 4
    pop.max_atoms_per_core = 2.5  # assigned directly: checked when placed
    with pytest.raises(ConfigError, match=re.escape("'pop': max_atoms_per_core must be a positive int, got 2.5")):
        place(net)
    pop.max_atoms_per_core = 2
    with pytest.raises(ConfigError, match="max_atoms_per_core must be a positive int"):
        pop.set_max_atoms_per_core(0)


def test_a_loaded_network_relowers_only_when_the_core_description_changed():
    net, stim, pop = build()
    loaded = Simulator().load(net)
    lowered = loaded.lowered
    stim.params = {0: [3]}
    pop.record.append("counts")
    loaded.run_batch(timesteps=T)
    assert loaded.lowered is lowered  # inputs and records are run buffers, not core state
    pop.params["threshold"] = 4.0
    loaded.run_batch(timesteps=T)
    assert loaded.lowered is not lowered


def test_edit_while_a_run_is_going_on_is_an_error():
    # about 2e9 neuron updates: far longer than the moment between the core taking the lock and the edit below
    pop = snn.Population(
        2000, "lif_no_delay", {"threshold": 40.0, "alpha_decay": 0.9, "i_offset": 3.0}, name="pop", record=[]
    )
    net = snn.Network().add(pop)
    sim = Simulator(num_threads=1)
    errors: list[BaseException] = []

    def long_run():
        try:
            sim.run_batch(net, timesteps=1_000_000)
        except BaseException as exc:  # handed back to the test thread
            errors.append(exc)

    worker = threading.Thread(target=long_run)
    worker.start()
    while worker.is_alive() and (net.__dict__.get("_loaded") is None or not net.__dict__["_loaded"][1]._lock.locked()):
        time.sleep(0.001)
    time.sleep(0.02)
    pop.params["threshold"] = 41.0  # the C core runs without the GIL; this edit lands meanwhile
    worker.join()
    assert len(errors) == 1 and isinstance(errors[0], ConfigError)
    assert "changed while it was running" in str(errors[0])


def test_core_refuses_overlapping_population_layouts():
    net, _, _ = build()
    net.add(snn.Population(3, "lif", {}, name="third"))
    for field, value in (("state_offset", 0), ("ring_offset", 0)):
        lowered = lower(net)
        setattr(lowered.populations[2], field, value)
        with pytest.raises(CoreError, match="inside the previous population's range"):
            CoreNetwork(lowered)


def test_core_checks_array_lengths_before_c_sees_them():
    net, _, _ = build()
    lowered = lower(net)
    lowered.populations[1].params["threshold"] = lowered.populations[1].params["threshold"][:2]
    with pytest.raises(CoreError, match="parameter threshold has 2 elements where the C core will read 4"):
        CoreNetwork(lowered)
    lowered = lower(net)
    lowered.projections[0].arrays["dense" if "dense" in lowered.projections[0].arrays else "target"] = np.zeros(
        1, np.int8 if "dense" in lowered.projections[0].arrays else np.int32
    )
    with pytest.raises(CoreError, match="elements where the C core will read"):
        CoreNetwork(lowered)
