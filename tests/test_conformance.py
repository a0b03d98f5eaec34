"""compare(): self-agreement, exact localisation of a flipped bit or moved spike, tick alignment, tolerance
mode, the inputs report, clear errors, and the ``s2sim conform`` command.
"""

import json
from dataclasses import replace

import numpy as np
import pytest

from s2sim import TraceError, snn
from s2sim.cli import main
from s2sim.conformance import Tolerance, compare, population_depths, simulate
from s2sim.traces import Trace, write_trace

T = 40


def _network(record_a=("spikes", "v")):
    stim = snn.Population(
        3, "spike_list", {0: list(range(0, 30, 3)), 1: list(range(1, 30, 4)), 2: [5, 6, 7, 20]}, name="stim"
    )
    a = snn.Population(
        4, "lif_no_delay", {"threshold": 6.0, "alpha_decay": 0.875, "i_offset": 0.25}, name="a", record=list(record_a)
    )
    b = snn.Population(2, "lif", {"threshold": 5.0, "alpha_decay": 0.75}, name="b", record=["spikes", "v"])
    return snn.Network("c").add(
        stim,
        a,
        b,
        snn.Projection(stim, a, [[i, j, 4 + i - j, 0] for i in range(3) for j in range(4)]),
        snn.Projection(a, b, [[0, 0, 7, 2], [1, 0, -3, 0], [2, 1, 9, 5], [3, 1, 6, 1], [1, 1, -2, 3]]),
    )


@pytest.fixture(scope="module")
def expected():
    return simulate(_network(), T)


def _copy(trace: Trace) -> Trace:
    return replace(
        trace,
        spikes={k: v.copy() for k, v in trace.spikes.items()},
        voltages={k: v.copy() for k, v in trace.voltages.items()},
    )


def _spiking(trace, pop):
    t, i = np.argwhere(trace.spikes[pop])[len(np.argwhere(trace.spikes[pop])) // 2]
    return int(t), int(i)


def test_nan_is_one_class_but_signed_zero_is_not(expected):
    exp, obs = _copy(expected), _copy(expected)
    exp.voltages["a"][3, 1] = np.array(0xFFC00000, np.uint32).view(np.float32)  # x86's default NaN
    obs.voltages["a"][3, 1] = np.array(0x7FC00000, np.uint32).view(np.float32)  # ARM's default NaN
    assert compare(exp, obs).match
    exp.voltages["a"][4, 2], obs.voltages["a"][4, 2] = np.float32(0.0), np.float32(-0.0)
    div = compare(exp, obs).first_divergence
    assert (div.population, div.neuron, div.tick, div.variable) == ("a", 2, 4, "v")


def test_identical_traces_match(expected, tmp_path):
    result = compare(expected, _copy(expected))
    assert result.match and result.first_divergence is None
    assert {p.population for p in result.populations} == {"a", "b"}
    assert sum(v.expected_events for p in result.populations for v in p.variables if v.variable == "spikes") > 0
    assert "RESULT: MATCH" in result.report()


@pytest.mark.parametrize("pop,neuron,tick,bit", [("a", 2, 17, 0), ("b", 1, 33, 22), ("a", 0, 0, 31)])
def test_one_flipped_bit_is_located_exactly(expected, pop, neuron, tick, bit):
    observed = _copy(expected)
    observed.voltages[pop].view(np.uint32)[tick, neuron] ^= np.uint32(1 << bit)
    result = compare(expected, observed)
    assert not result.match
    d = result.first_divergence
    assert (d.population, d.neuron, d.tick, d.variable) == (pop, neuron, tick, "v")
    assert int(d.expected_bits, 16) ^ int(d.observed_bits, 16) == 1 << bit
    assert sum(v.mismatches for p in result.populations for v in p.variables) == 1
    assert f"population {pop!r}, neuron {neuron}, tick {tick}, v" in result.report()


def test_one_moved_spike_is_located_exactly(expected):
    observed = _copy(expected)
    t, i = _spiking(expected, "b")
    later = next(s for s in range(t + 1, T) if not expected.spikes["b"][s, i])
    observed.spikes["b"][t, i], observed.spikes["b"][later, i] = 0, 1
    result = compare(expected, observed)
    d = result.first_divergence
    assert (d.population, d.neuron, d.tick, d.variable, d.expected, d.observed) == ("b", i, t, "spikes", 1, 0)
    spikes_b = next(v for p in result.populations if p.population == "b" for v in p.variables if v.variable == "spikes")
    assert spikes_b.mismatches == 2 and [x.tick for x in spikes_b.listed] == [t, later]


def _expected_input(net, trace, post, neuron, tick):
    """Integer synaptic input summed by hand from the connection lists (weights here are integers)."""
    exc = inh = 0
    for proj in net.projections:
        if proj.post.name != post:
            continue
        pre = trace.inputs.get(proj.pre.name, trace.spikes.get(proj.pre.name))
        for i, j, w, d in proj.connections:
            src = tick - 1 - int(d)
            if int(j) == neuron and src >= 0 and pre[src, int(i)]:
                exc, inh = (exc + int(w), inh) if w > 0 else (exc, inh - int(w))
    return exc, inh


@pytest.mark.parametrize("record_a", [("spikes", "v"), ("v",)])
def test_divergence_reports_the_neurons_inputs(record_a):
    net = _network(record_a)
    exp = simulate(net, T)
    full = simulate(_network(), T)  # for the hand-computed reference, with a's spikes recorded
    t, i = _spiking(full, "b")
    obs = _copy(exp)
    obs.voltages["b"].view(np.uint32)[t, i] ^= np.uint32(1)
    d = compare(exp, obs).first_divergence
    assert (d.inputs.exc, d.inputs.inh) == _expected_input(net, full, "b", i, t)
    assert d.inputs.exc + d.inputs.inh > 0
    assert d.inputs.params["threshold"] == 5.0 and d.inputs.params["alpha_decay"] == 0.75
    assert d.inputs.v_before_expected == float(exp.voltages["b"][t - 1, i])
    assert ("re-run" in d.inputs.pre_spikes_from) == ("spikes" not in record_a)


def test_tick_offset_is_aligned_and_noted(expected):
    k = 3
    dropped = replace(
        _copy(expected),
        tick_offset=k,
        spikes={n: v[k:].copy() for n, v in expected.spikes.items()},
        voltages={n: v[k:].copy() for n, v in expected.voltages.items()},
    )
    result = compare(expected, dropped)
    assert result.match and any("observed at 3" in n for n in result.notes)
    dropped.voltages["a"].view(np.uint32)[10, 1] ^= np.uint32(4)
    d = compare(expected, dropped).first_divergence
    assert (d.population, d.neuron, d.tick) == ("a", 1, 10 + k)


def test_same_step_framework_trace_is_shifted_by_hop_depth(expected):
    depths = population_depths(expected.network)
    assert depths == {"stim": 0, "a": 1, "b": 2}

    def shift(arr, d):  # a same-step framework records layer d's tick t in step t - d
        out = np.zeros_like(arr)
        out[: len(arr) - d] = arr[d:]
        return out

    framework = replace(
        _copy(expected),
        latency_per_hop=0,
        source="snntorch",
        spikes={n: shift(v, depths[n]) for n, v in expected.spikes.items()},
        voltages={n: shift(v, depths[n]) for n, v in expected.voltages.items()},
    )
    with pytest.raises(TraceError, match="end at different ticks"):
        compare(expected, framework)
    assert compare(expected, framework, allow_partial=True).match
    unshifted = replace(_copy(expected), latency_per_hop=0)
    assert not compare(expected, unshifted, allow_partial=True).match


def test_tolerance_mode_for_float64_sources(expected):
    noisy = _copy(expected)
    noisy.voltages = {n: v.astype(np.float64) + 1e-7 for n, v in expected.voltages.items()}
    exact = compare(expected, noisy)
    assert not exact.match and exact.first_divergence.variable == "v"
    loose = compare(expected, noisy, tolerance=Tolerance(v_atol=1e-6))
    assert loose.match and loose.mode == "tolerance" and "NOT a bit-exact" in loose.report()
    assert not compare(expected, noisy, tolerance=Tolerance(v_atol=1e-8)).match
    t, i = _spiking(expected, "a")
    late = _copy(expected)
    late.spikes["a"][t, i] = 0
    late.spikes["a"][min(t + 1, T - 1), i] = 1
    assert compare(expected, late, tolerance=Tolerance(spike_ticks=1, v_atol=np.inf)).match


def test_mismatched_traces_give_clear_errors(expected):
    other = _network()
    other.populations[1] = snn.Population(
        4, "lif_no_delay", {"threshold": 6.5, "alpha_decay": 0.875, "i_offset": 0.25}, name="a", record=["spikes", "v"]
    )
    wrong_net = simulate(_network(), T)
    wrong_net.network = other
    with pytest.raises(TraceError, match=r"populations\['a'\]\.params\.threshold"):
        compare(expected, wrong_net)
    missing = _copy(expected)
    del missing.voltages["b"]
    with pytest.raises(TraceError, match="no 'v' for population 'b'"):
        compare(expected, missing)
    with pytest.raises(TraceError, match="end at different ticks"):
        compare(expected, simulate(_network(), T + 5))
    inputs = {"stim": expected.inputs["stim"].copy()}
    inputs["stim"][35, 2] = 1
    with pytest.raises(TraceError, match=r"different inputs: spike_list 'stim', neuron 2, tick 35"):
        compare(expected, simulate(_network(), T, inputs=inputs))


def test_cli_exit_status_json_and_plot(expected, tmp_path, capsys):
    write_trace(tmp_path / "e.h5", expected)
    observed = _copy(expected)
    observed.voltages["b"].view(np.uint32)[20, 0] ^= np.uint32(2)
    write_trace(tmp_path / "o.h5", observed)
    assert main(["conform", str(tmp_path / "e.h5"), str(tmp_path / "e.h5")]) == 0
    assert "RESULT: MATCH" in capsys.readouterr().out
    assert (
        main(["conform", str(tmp_path / "e.h5"), str(tmp_path / "o.h5"), "--json", "--plot", str(tmp_path / "p.png")])
        == 1
    )
    out = json.loads(capsys.readouterr().out)
    assert out["match"] is False
    assert {k: out["first_divergence"][k] for k in ("population", "neuron", "tick", "variable")} == {
        "population": "b",
        "neuron": 0,
        "tick": 20,
        "variable": "v",
    }
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n")
    assert main(["conform", str(tmp_path / "e.h5"), str(tmp_path / "bad.h5")]) == 2
    assert "bad.h5" in capsys.readouterr().err


def test_conv_inputs_in_the_report_match_the_membrane():
    # in the conv probe alpha_decay is 0, so V at a tick is exactly exc - inh of that tick
    from s2sim import probes

    probe = probes.conv_x_axis_probe()
    exp = simulate(probe.network, probe.timesteps)
    checked = 0
    for pop in ("conv_stride_pad", "conv_pool"):
        for t, i in np.argwhere(exp.voltages[pop] != 0)[:6]:
            obs = _copy(exp)
            obs.voltages[pop].view(np.uint32)[t, i] ^= np.uint32(1)
            d = compare(exp, obs).first_divergence
            assert (d.population, d.neuron, d.tick) == (pop, i, t)
            assert d.inputs.exc - d.inputs.inh == exp.voltages[pop][t, i]
            checked += 1
    assert checked == 12
