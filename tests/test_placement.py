"""Placement on PEs: every limit binds in some network, the SRAM model adds up, chips are counted, errors name things.

Expected byte counts are written out here from the memory model in docs/placement.md, not taken from the code.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from s2sim import ChipProfile, snn
from s2sim.errors import ConfigError, LimitError
from s2sim.placement import (
    LIMIT_ATOMS,
    LIMIT_SIZE,
    LIMIT_SRAM,
    LIMIT_TARGETS,
    PES_PER_CHIP,
    MemoryModel,
    activity_report,
    place,
)
from s2sim.results import BatchResult

KB = 1024
RESERVED = 24 * KB
SRAM = 128 * KB
# Per-neuron bytes from docs/placement.md: lif family keeps V + 5 parameters, curr_exp V, I_exc, I_inh, refractory
# counter + 8 parameters; ring = slots x 2 planes x 4 bytes (8 slots with a delay field, 1 without).
LIF_STATE, CURR_EXP_STATE = 6 * 4, 12 * 4
RING_DELAY, RING_NO_DELAY = 8 * 2 * 4, 1 * 2 * 4


def _net(*objects) -> snn.Network:
    return snn.Network("t").add(*objects)


def _covers(placement, pop) -> None:
    """Slices of ``pop`` are contiguous, cover it exactly and sit on consecutive PEs."""
    slices = placement.slices_of(pop.name)
    assert slices[0].start == 0 and slices[-1].stop == pop.size
    assert all(a.stop == b.start for a, b in itertools.pairwise(slices))
    assert [s.pe for s in slices] == list(range(slices[0].pe, slices[0].pe + len(slices)))


# -- each limit binds ----------------------------------------------------------------------------------------------


def test_atoms_per_core_default_profile_and_population_override():
    a = snn.Population(600, "lif", name="a")
    b = snn.Population(600, "lif", name="b")
    b.set_max_atoms_per_core(100)
    p = place(_net(a, b))
    assert [s.neurons for s in p.slices_of("a")] == [250, 250, 100]
    assert [s.limited_by for s in p.slices_of("a")] == [LIMIT_ATOMS, LIMIT_ATOMS, LIMIT_SIZE]
    assert [s.neurons for s in p.slices_of("b")] == [100] * 6
    assert p.n_pes == 9
    _covers(p, a)
    _covers(p, b)
    small = place(_net(snn.Population(600, "lif", name="a")), ChipProfile(max_atoms_per_core=64))
    assert [s.neurons for s in small.slices] == [64] * 9 + [24]


def test_target_index_range_binds_only_populations_with_synapse_words():
    src = snn.Population(1000, "spike_list", name="src")
    tgt = snn.Population(1000, "lif_no_delay", name="tgt")
    free = snn.Population(1000, "lif_no_delay", name="free")  # no incoming connection list
    proj = snn.Projection(src, tgt, [[i, i, 1, 0] for i in range(1000)])
    p = place(_net(src, tgt, free, proj), ChipProfile(max_atoms_per_core=1000))
    assert [s.neurons for s in p.slices_of("tgt")] == [256, 256, 256, 232]
    assert p.populations["tgt"].cap_limited_by == LIMIT_TARGETS
    assert p.slices_of("tgt")[0].limited_by == LIMIT_TARGETS
    assert [s.neurons for s in p.slices_of("free")] == [1000]
    assert [s.neurons for s in p.slices_of("src")] == [1000]
    _covers(p, tgt)
    # A smaller per-population cap wins over the target range.
    tgt.set_max_atoms_per_core(200)
    assert (
        place(_net(src, tgt, proj), ChipProfile(max_atoms_per_core=1000)).populations["tgt"].cap_limited_by
        == LIMIT_ATOMS
    )


def _dense(n_pre: int, n_post: int, model: str = "lif_no_delay"):
    src = snn.Population(n_pre, "spike_list", name="src")
    tgt = snn.Population(n_post, model, name="tgt")
    pre, post = np.meshgrid(np.arange(n_pre), np.arange(n_post), indexing="ij")
    conns = np.stack([pre.ravel(), post.ravel(), np.ones(pre.size), np.zeros(pre.size)], axis=1)
    return src, tgt, snn.Projection(src, tgt, conns)


def _list_bytes(n: int, fan_in: int, n_pre_rows: int, state: int, ring: int) -> int:
    """Docs' formula for a slice of ``n`` neurons fed by one connection list."""
    return RESERVED + n * (state + ring) + 4 * n * fan_in + 8 * n_pre_rows + 12


def test_sram_shrinks_slices_to_the_largest_that_fits():
    # 200 synapses per neuron: 250 neurons would need ~200 KB of synapse words.
    src, tgt, proj = _dense(200, 500)
    p = place(_net(src, tgt, proj))
    sizes = [s.neurons for s in p.slices_of("tgt")]
    per_pe = max(n for n in range(1, 251) if _list_bytes(n, 200, 200, LIF_STATE, RING_NO_DELAY) <= SRAM)
    assert sizes[:-1] == [per_pe] * (len(sizes) - 1)
    assert sum(sizes) == 500 and sizes[-1] <= per_pe
    assert all(s.limited_by == LIMIT_SRAM for s in p.slices_of("tgt")[:-1])
    for s in p.slices_of("tgt"):
        assert s.memory.total == _list_bytes(s.neurons, 200, 200, LIF_STATE, RING_NO_DELAY) <= SRAM
        assert s.synapses == 200 * s.neurons
    assert "sram" in p.format()
    _covers(p, tgt)


def test_one_neuron_that_cannot_fit_is_a_design_rule_error():
    src, tgt, proj = _dense(30000, 1)
    with pytest.raises(LimitError) as info:
        place(_net(src, tgt, proj))
    msg = str(info.value)
    needed = _list_bytes(1, 30000, 30000, LIF_STATE, RING_NO_DELAY)
    assert "'tgt'" in msg and "neuron 0" in msg
    assert str(needed) in msg and str(SRAM) in msg and "30000 synapse words" in msg


def test_one_neuron_just_fitting_is_placed():
    # Largest fan-in that fits one neuron on one PE per the docs' formula: 4 + 8 bytes per source row.
    fan_in = (SRAM - RESERVED - LIF_STATE - RING_NO_DELAY - 12) // 12
    src, tgt, proj = _dense(fan_in, 2)
    p = place(_net(src, tgt, proj))
    assert [s.neurons for s in p.slices_of("tgt")] == [1, 1]
    assert p.slices_of("tgt")[0].memory.total <= SRAM
    with pytest.raises(LimitError):
        src, tgt, proj = _dense(fan_in + 1, 1)
        place(_net(src, tgt, proj))


# -- the memory model adds up ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, state, ring",
    [
        ("lif", LIF_STATE, RING_DELAY),
        ("lif_no_delay", LIF_STATE, RING_NO_DELAY),
        ("lif_curr_exp", CURR_EXP_STATE, RING_DELAY),
        ("lif_curr_exp_no_delay", CURR_EXP_STATE, RING_NO_DELAY),
    ],
)
def test_neuron_state_and_ring_bytes_per_model(model, state, ring):
    p = place(_net(snn.Population(100, model, name="n")))
    (s,) = p.slices
    assert s.memory.neuron_state == 100 * state
    assert s.memory.ring_buffer == 100 * ring
    assert s.memory.reserved == RESERVED
    assert s.memory.total == RESERVED + 100 * (state + ring)


def test_synapse_rows_count_distinct_sources_per_slice_and_one_table_entry_per_projection():
    src = snn.Population(10, "spike_list", name="src")
    tgt = snn.Population(20, "lif", name="tgt")
    tgt.set_max_atoms_per_core(10)
    # Sources 0..4 reach only the first slice (targets 0..9), source 5 reaches both, twice into target 19.
    conns = [[i, i, 1, 0] for i in range(5)] + [[5, 0, 2, 1], [5, 19, 3, 2], [5, 19, -1, 0]]
    second = snn.Projection(src, tgt, [[9, 3, 1, 0]])
    p = place(_net(src, tgt, snn.Projection(src, tgt, conns), second))
    first, last = p.slices_of("tgt")
    assert first.synapses == 7 and last.synapses == 2
    assert first.memory.synapse_rows == 7 * 4 + 7 * 8 + 2 * 12  # rows: 0..5 of list 1, 9 of list 2
    assert last.memory.synapse_rows == 2 * 4 + 1 * 8 + 12
    assert p.synapses == 9 == p.populations["tgt"].synapses


def test_conv_kernels_counted_for_the_output_channels_a_slice_covers():
    img = snn.Population(2 * 6 * 6, "spike_list", name="img")
    conv = snn.Population(4 * 4 * 4, "lif_conv2d", name="conv")  # 4 channels of 4x4 (6x6 input, 3x3 kernel)
    conv.set_max_atoms_per_core(20)
    proj = snn.Conv2DProjection(img, conv, np.ones((2, 4, 3, 3)), {"in_height": 6, "in_width": 6})
    p = place(_net(img, conv, proj))
    # Slices [0,20) [20,40) [40,60) [60,64) cover channels 0-1, 1-2, 2-3, 3 (16 neurons per channel).
    channels = [2, 2, 2, 1]
    for s, ch in zip(p.slices_of("conv"), channels, strict=True):
        assert s.memory.conv_kernels == 2 * ch * 3 * 3 + 32
        assert s.memory.synapse_rows == 0
        assert s.memory.total == RESERVED + s.neurons * (LIF_STATE + RING_NO_DELAY) + 2 * ch * 9 + 32


def test_spike_list_memory_counts_neurons_and_listed_ticks():
    stim = snn.Population(300, "spike_list", {0: [1, 2, 3], 260: [5, 9]}, name="stim")
    p = place(_net(stim))
    first, second = p.slices
    assert first.memory.spike_list == 250 * 8 + 3 * 4
    assert second.memory.spike_list == 50 * 8 + 2 * 4
    assert first.memory.neuron_state == first.memory.ring_buffer == 0


def test_memory_model_is_a_value_and_is_checked():
    tight = MemoryModel(sram_bytes=64 * KB, reserved_bytes=16 * KB)
    src, tgt, proj = _dense(100, 250)
    loose = place(_net(src, tgt, proj))
    small = place(_net(src, tgt, proj), memory=tight)
    assert small.n_pes > loose.n_pes
    assert all(s.memory.total <= 64 * KB for s in small.slices)
    with pytest.raises(ConfigError, match="reserved_bytes"):
        MemoryModel(sram_bytes=1000, reserved_bytes=1000)
    with pytest.raises(ConfigError, match="row_header_bytes"):
        MemoryModel(row_header_bytes=-1)


# -- chips, quad-PEs, reports ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pes", [1, 5, 152, 153, 400])
def test_pe_quad_pe_and_chip_counts(pes):
    p = place(_net(snn.Population(250 * pes, "spike_list", name="big")))
    assert p.n_pes == pes
    assert p.n_quad_pes == sum(
        math.ceil(min(PES_PER_CHIP, pes - c * PES_PER_CHIP) / 4) for c in range(math.ceil(pes / PES_PER_CHIP))
    )
    assert p.n_chips == math.ceil(pes / 152)
    assert p.fits_one_chip == (pes <= 152)
    last = p.slices[-1]
    assert (last.chip, last.quad_pe, last.core) == ((pes - 1) // 152, ((pes - 1) % 152) // 4, (pes - 1) % 4)
    text = p.format()
    if pes <= 152:
        assert f"Fits one chip: {pes} of 152 PEs" in text
    else:
        assert f"{pes} PEs need {math.ceil(pes / 152)} chips" in text


def test_to_dict_is_json_and_agrees_with_the_slices():
    src, tgt, proj = _dense(200, 500)
    p = place(_net(src, tgt, proj))
    d = json.loads(json.dumps(p.to_dict()))
    assert d["pes"] == len(d["slices"]) == p.n_pes
    assert d["synapses"] == sum(s["synapses"] for s in d["slices"]) == 200 * 500
    assert d["sram_bytes_per_pe"]["max"] == max(s["memory"]["total"] for s in d["slices"])
    for s in d["slices"]:
        parts = {k: v for k, v in s["memory"].items() if k != "total"}
        assert sum(parts.values()) == s["memory"]["total"]
    assert [x["name"] for x in d["populations"]] == ["src", "tgt"]


# -- activity ------------------------------------------------------------------------------------------------------


def _activity_net():
    stim = snn.Population(6, "spike_list", {0: [0, 2], 1: [1], 5: [0, 1, 2]}, name="stim", record=["spikes", "counts"])
    a = snn.Population(4, "lif_no_delay", {"threshold": 1.0, "alpha_decay": 0.5}, name="a", record=["spikes", "counts"])
    b = snn.Population(3, "lif_no_delay", {"threshold": 100.0}, name="b", record=["counts"])
    stim.set_max_atoms_per_core(3)
    a.set_max_atoms_per_core(2)
    # Neuron 0 reaches a and b (2 packets per spike), 1 and 5 only a, neurons 2..4 nothing.
    to_a = snn.Projection(stim, a, [[0, 0, 2, 0], [1, 1, 2, 0], [5, 3, 2, 0], [5, 2, 2, 0]])
    to_b = snn.Projection(stim, b, [[0, 0, 1, 0], [0, 1, 1, 0]])
    a_to_b = snn.Projection(a, b, [[i, 2, 1, 0] for i in range(4)])
    return _net(stim, a, b, to_a, to_b, a_to_b)


def test_activity_report_counts_packets_per_target_population_exactly_when_spikes_were_recorded():
    from s2sim import Simulator

    net = _activity_net()
    res = Simulator(num_threads=1).run_batch(net, None, 5)
    p = place(net)
    act = activity_report(p, res)
    rows = {(s.population, s.start): i for i, s in enumerate(p.slices)}
    stim = res.spikes["stim"][0].astype(float)  # [T, 6]
    packets_per_spike = np.array([2, 1, 0, 0, 0, 1])
    for start in (0, 3):
        i = rows[("stim", start)]
        assert act.exact[i]
        np.testing.assert_array_equal(act.spikes[i], stim[:, start : start + 3].sum(axis=1))
        np.testing.assert_array_equal(act.packets[i], stim[:, start : start + 3] @ packets_per_spike[start : start + 3])
    a_spikes = res.spikes["a"][0].astype(float)
    for start in (0, 2):
        i = rows[("a", start)]
        np.testing.assert_array_equal(act.packets[i], a_spikes[:, start : start + 2].sum(axis=1))  # one target: b
    # b did not record spikes: its count is prorated (one slice gets all of it) and it sends no packets.
    i = rows[("b", 0)]
    assert not act.exact[i]
    np.testing.assert_array_equal(act.spikes[i], res.counts["b"][0, :, 0])
    np.testing.assert_array_equal(act.packets[i], 0)
    # Synaptic events of every population are divided over its slices without loss.
    for name in ("a", "b"):
        idx = [rows[(s.population, s.start)] for s in p.slices_of(name)]
        np.testing.assert_allclose(act.synaptic_events[idx].sum(axis=0), res.counts[name][0, :, 1])
    json.dumps(act.to_dict())
    assert "exact" in act.format() and "prorated" in act.format()


def test_activity_report_prorates_population_counts_by_slice_size():
    net = _activity_net()
    p = place(net)
    t, batch = 4, 2
    counts = {pop.name: np.zeros((batch, t, 2), dtype=np.int64) for pop in net.populations}
    counts["stim"][:, :, 0] = [[6, 3, 0, 0], [0, 0, 6, 6]]
    act = activity_report(p, BatchResult(t, counts=counts))
    idx = [i for i, s in enumerate(p.slices) if s.population == "stim"]
    np.testing.assert_allclose(act.spikes[idx], [[1.5, 0.75, 1.5, 1.5]] * 2)  # mean over 2 samples, half each
    # Mean packets per spike of slice 0..2 is (2+1+0)/3, of slice 3..5 is (0+0+1)/3.
    np.testing.assert_allclose(act.packets[idx[0]], act.spikes[idx[0]] * 1.0)
    np.testing.assert_allclose(act.packets[idx[1]], act.spikes[idx[1]] / 3)
    assert not act.exact.any()


def test_activity_report_needs_counts_of_every_population():
    net = _activity_net()
    with pytest.raises(ConfigError, match="'a'"):
        activity_report(place(net), BatchResult(3, counts={"stim": np.zeros((1, 3, 2), dtype=np.int64)}))
