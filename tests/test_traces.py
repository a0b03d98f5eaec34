"""Trace format: network serialisation, HDF5 round trip, py-spinnaker2 dict reader, and clear errors."""

import json
import re

import h5py
import numpy as np
import pytest

from s2sim import ChipProfile, Simulator, TraceError, snn
from s2sim.network_io import network_from_dict, network_to_dict
from s2sim.traces import (
    Trace,
    from_result,
    from_spinnaker2,
    read_trace,
    read_trace_set,
    save_spinnaker2_run,
    write_trace,
)


def _network(record_v=True):
    rec = ["spikes", "v"] if record_v else ["spikes"]
    stim = snn.Population(4, "spike_list", {0: [0, 3, 9], 1: [2, 5], 3: [1, 7, 8]}, name="stim")
    a = snn.Population(
        5,
        "lif_no_delay",
        {"threshold": [3.0, 2.5, 4.0, 1.5, 3.3], "alpha_decay": 0.9, "i_offset": 0.125, "reset": "reset_to_v_reset"},
        name="a",
        record=rec,
    )
    b = snn.Population(
        3,
        "lif_curr_exp",
        {"threshold": 2.0, "alpha_decay": 0.8, "exc_decay": 0.7, "t_refrac": [0, 1, 2]},
        name="b",
        record=["spikes", "v"],
    )
    img = snn.Population(2 * 3 * 3, "spike_list", {i: [i % 5] for i in range(0, 18, 2)}, name="img")
    conv = snn.Population(
        1 * 2 * 2, "lif_conv2d", {"threshold": 1.0, "alpha_decay": 0.5}, name="conv", record=["spikes", "v_last"]
    )
    conns_a = [[i, j, 1.5 + i - j, 0] for i in range(4) for j in range(5)]
    conns_b = [[i, j, 3 - i, (i + j) % 8] for i in range(5) for j in range(3)]
    kernel = np.arange(2 * 1 * 2 * 2, dtype=float).reshape(2, 1, 2, 2) - 3.5
    return snn.Network("t").add(
        stim,
        a,
        b,
        img,
        conv,
        snn.Projection(stim, a, conns_a),
        snn.Projection(a, b, conns_b),
        snn.Conv2DProjection(img, conv, kernel, {"in_height": 3, "in_width": 3}),
    )


def _bits(arr):
    return arr.view(np.uint64 if arr.dtype == np.float64 else np.uint32)


def _same_trace(x: Trace, y: Trace):
    assert x.timesteps == y.timesteps and x.tick_offset == y.tick_offset and x.source == y.source
    assert network_to_dict(x.network) == network_to_dict(y.network)
    for group in ("inputs", "spikes"):
        gx, gy = getattr(x, group), getattr(y, group)
        assert gx.keys() == gy.keys()
        for k in gx:
            np.testing.assert_array_equal(gx[k], gy[k])
    for group in ("voltages", "v_last"):
        gx, gy = getattr(x, group), getattr(y, group)
        assert gx.keys() == gy.keys()
        for k in gx:
            assert gx[k].dtype == gy[k].dtype
            np.testing.assert_array_equal(_bits(gx[k]), _bits(gy[k]))


def test_network_dict_round_trip_is_exact():
    net = _network()
    data = network_to_dict(net)
    again = network_from_dict(json.loads(json.dumps(data)))
    assert network_to_dict(again) == data
    # the rebuilt network runs to the same bits
    r1 = Simulator(num_threads=1).run(net, 12)
    r2 = Simulator(num_threads=1).run(again, 12)
    for name in r1.voltages:
        np.testing.assert_array_equal(_bits(r1.voltages[name]), _bits(r2.voltages[name]))


def test_network_dict_errors_name_the_problem():
    data = network_to_dict(_network())
    with pytest.raises(ValueError, match="format"):
        network_from_dict({"format": "other"})
    bad = json.loads(json.dumps(data))
    bad["projections"][0]["pre"] = "ghost"
    with pytest.raises(ValueError, match="ghost"):
        network_from_dict(bad)
    bad = json.loads(json.dumps(data))
    bad["version"] = 99
    with pytest.raises(ValueError, match="version 99"):
        network_from_dict(bad)


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_write_read_round_trip(tmp_path, precision):
    net = _network()
    profile = ChipProfile(state_precision=precision)
    res = Simulator(profile, num_threads=1).run(net, 15)
    trace = from_result(net, res, profile=profile, metadata={"note": "x"})
    assert trace.voltages["a"].dtype == np.dtype(precision)
    assert set(trace.v_last) == {"conv"}
    write_trace(tmp_path / "t.h5", trace)
    back = read_trace(tmp_path / "t.h5")
    _same_trace(trace, back)
    assert back.profile == profile and back.metadata == {"note": "x"}


def test_special_float_bit_patterns_survive(tmp_path):
    net = _network()
    trace = from_result(net, Simulator(num_threads=1).run(net, 10))
    specials = np.array([0x7FC01234, 0x80000000, 0x00000001, 0x7F800000, 0xFF800000], dtype=np.uint32)
    trace.voltages["a"][2] = specials.view(np.float32)
    write_trace(tmp_path / "s.h5", trace)
    np.testing.assert_array_equal(read_trace(tmp_path / "s.h5").voltages["a"][2].view(np.uint32), specials)


def test_py_spinnaker2_dicts_give_the_same_trace(tmp_path):
    net = _network()
    res = Simulator(num_threads=1).run(net, 15)  # fills get_spikes()/get_voltages() as py-spinnaker2 does
    direct = from_result(net, res)
    spikes = {p.name: p.get_spikes() for p in net.populations if not p.model.is_input}
    # py-spinnaker2 hands back lists of Python floats
    volts = {
        p.name: {i: [float(x) for x in v] for i, v in p.get_voltages().items()}
        for p in net.populations
        if {"v", "v_last"} & set(p.record)
    }
    via_dicts = from_spinnaker2(net, 15, spikes, volts, source="s2sim")
    _same_trace(direct, via_dicts)
    assert via_dicts.exact
    # one call from a script, with the population objects themselves
    saved = save_spinnaker2_run(
        tmp_path / "run.h5", net, 15, [p for p in net.populations if not p.model.is_input], source="s2sim"
    )
    _same_trace(direct, read_trace(tmp_path / "run.h5"))
    _same_trace(direct, saved)


def test_float64_values_are_kept_as_float64():
    net = _network()
    volts = {"a": {i: [0.1] * 10 for i in range(5)}}  # 0.1 is not a float32: a Brian2-style trace
    trace = from_spinnaker2(net, 10, {}, volts, source="brian2")
    assert trace.voltages["a"].dtype == np.float64 and not trace.exact
    assert trace.voltages["a"][0, 0] == 0.1


def test_spinnaker2_dict_errors():
    net = _network()
    with pytest.raises(TraceError, match=r"'a'.*neuron 2 spikes at tick 40"):
        from_spinnaker2(net, 10, {"a": {2: [40]}})
    with pytest.raises(TraceError, match=r"'a'.*neuron 4 is missing"):
        from_spinnaker2(net, 10, {}, {"a": {i: [0.0] * 10 for i in range(4)}})
    with pytest.raises(TraceError, match=r"neuron 1 has 9 values; expected 10"):
        from_spinnaker2(net, 10, {}, {"a": {i: [0.0] * (9 if i == 1 else 10) for i in range(5)}})
    with pytest.raises(TraceError, match=r"'nope'.*not in network"):
        from_spinnaker2(net, 10, {"nope": {}})


def _written(tmp_path):
    net = _network()
    trace = from_result(net, Simulator(num_threads=1).run(net, 10))
    path = tmp_path / "ok.h5"
    write_trace(path, trace)
    return path


def test_truncated_and_foreign_files_are_refused(tmp_path):
    path = _written(tmp_path)
    data = path.read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceError, match=re.escape("cut.h5")):
        read_trace(tmp_path / "cut.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(TraceError, match="not HDF5"):
        read_trace(tmp_path / "text.h5")
    with pytest.raises(TraceError, match=re.escape("missing.h5")):
        read_trace(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(TraceError, match="not an s2sim trace"):
        read_trace(tmp_path / "other.h5")


def test_inconsistent_contents_are_refused(tmp_path):
    path = _written(tmp_path)
    with h5py.File(path, "a") as f:
        f.attrs["version"] = 7
    with pytest.raises(TraceError, match="version 7 is not supported"):
        read_trace(path)
    path = _written(tmp_path)
    with h5py.File(path, "a") as f:
        for g in f["populations"].values():
            if g.attrs["name"] == "a":
                del g["spikes"]
                g["spikes"] = np.zeros((9, 5), np.uint8)
    with pytest.raises(TraceError, match=r"spikes of population 'a' has shape \(9, 5\); expected \(10, 5\)"):
        read_trace(path)
    path = _written(tmp_path)
    with h5py.File(path, "a") as f:
        del f["network"]
    with pytest.raises(TraceError, match="lacks /network"):
        read_trace(path)


def test_read_trace_set_from_directory(tmp_path):
    _written(tmp_path)
    traces, labels = read_trace_set(tmp_path)
    assert labels == ["ok.h5"] and len(traces) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(TraceError, match=re.escape("no *.h5")):
        read_trace_set(tmp_path / "empty")
