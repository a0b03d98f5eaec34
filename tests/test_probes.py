"""Probe suite and variant inference: each probe reacts to its own open point only, every hypothesis is
identified from simulator-made "chip" traces, and the board parts skip cleanly without a board."""
import numpy as np
import pytest

from s2sim import ChipProfile, probes
from s2sim.chip import BoardUnavailable, board_status, run_on_board
from s2sim.cli import main
from s2sim.conformance import hypotheses, infer, simulate
from s2sim.traces import read_trace_set, write_trace

#: The open points each probe must settle (and no others).
SENSITIVE = {
    "threshold_equality": {"threshold_op"},
    "fma": {"fused_multiply_add", "state_precision"},
    "input_grouping": {"input_grouping", "fused_multiply_add", "state_precision"},
    "weight_rounding": {"weight_rounding"},
    "conv_x_axis": {"conv_x_axis"},
    "delays": set(),
    "refractory": set(),
}


def _signature(trace):
    parts = [trace.spikes[k].tobytes() for k in sorted(trace.spikes)]
    parts += [trace.voltages[k].astype(np.float64).view(np.uint64).tobytes() for k in sorted(trace.voltages)]
    return b"|".join(parts)


@pytest.fixture(scope="module")
def runs():
    """Every probe under every hypothesis, as the chip of that variant would record it."""
    return {h: probes.probe_traces(h.profile) for h in hypotheses()}


def test_each_probe_reacts_to_its_own_open_point_only(runs):
    for k, probe in enumerate(probes.probe_suite()):
        by_output: dict[bytes, set] = {}
        for h, traces in runs.items():
            by_output.setdefault(_signature(traces[k]), set()).add(h)
        for group in by_output.values():
            # hypotheses giving the same output agree on every point the probe is sensitive to
            for point in SENSITIVE[probe.name]:
                assert len({h.settings()[point] for h in group}) == 1, (probe.name, point)
        # and it tells every combination of its points apart
        combos = {tuple(h.settings()[p] for p in sorted(SENSITIVE[probe.name])) for h in runs}
        assert len(by_output) == len(combos), probe.name


def test_inference_identifies_every_variant(runs):
    cache: dict = {}
    candidates = list(runs)
    assert len(candidates) == 128
    for h, chip in runs.items():
        result = infer(chip, candidates, cache=cache)
        assert result.consistent == [h], h.label
        assert result.settled() == h.settings()
        failing = [v for v in result.verdicts if not v.consistent]
        assert len(failing) == 127 and all(f.tick is not None for v in failing for f in v.failures)


def test_a_chip_outside_the_variants_is_reported(runs):
    chip = probes.probe_traces()
    k = [t.metadata["probe"] for t in chip].index("delays")
    chip[k].spikes["delay_lif"][:] = np.roll(chip[k].spikes["delay_lif"], 1, axis=0)   # one tick late
    result = infer(chip, list(runs))
    assert result.consistent == []
    assert "no hypothesis reproduces" in result.report()
    assert all(any(f.trace == "delays" for f in v.failures) for v in result.verdicts)


def _witnesses(probe_name: str, pop_name: str):
    probe = next(p for p in probes.probe_suite() if p.name == probe_name)
    pop = probe.network.population(pop_name)
    proj = next(q for q in probe.network.projections if q.post is pop)
    weight = dict(zip(proj.post_idx.tolist(), proj.weights.tolist()))
    return [(pop.param("v_init")[n], pop.param("alpha_decay")[n], weight[n], pop.param("i_offset")[n])
            for n in range(pop.size)]


def _plain_float32(x0, a, c, off, leak_first, ticks=6):
    """Separate multiply-add in numpy float32, input c from tick 1 on (what the spike_list delivers)."""
    f = np.float32
    v, out = f(x0), []
    for tick in range(ticks):
        syn = f(c) if tick else f(0)
        v = f(f(f(v * f(a)) + syn) + f(off)) if leak_first else f(f(v * f(a)) + f(syn + f(off)))
        out.append(float(v))
    return out


def test_witnesses_tell_the_four_arithmetics_apart():
    for x0, a, c, off in _witnesses("fma", "fma_membrane"):
        assert off == 0.0
        seqs = {(prec, fused): probes.muladd_sequence(x0, a, c, 6, prec, fused)
                for prec in ("float32", "float64") for fused in (False, True)}
        assert len({tuple(s) for s in seqs.values()}) == 4
        assert seqs[("float32", False)] == _plain_float32(x0, a, c, 0.0, False)


def test_grouping_witnesses_tell_all_eight_arithmetics_apart():
    for x0, a, c, off in _witnesses("input_grouping", "grouping_membrane"):
        seqs = {(prec, fused, lf): probes.muladd_sequence(x0, a, c, 6, prec, fused, off, lf)
                for prec in ("float32", "float64") for fused in (False, True) for lf in (False, True)}
        assert len({tuple(s) for s in seqs.values()}) == 8
        for lf in (False, True):
            assert seqs[("float32", False, lf)] == _plain_float32(x0, a, c, off, lf)


def test_suite_on_disk_and_cli_inference(tmp_path, capsys):
    chip_profile = ChipProfile(threshold_op=">", weight_rounding="nearest_even")
    paths = probes.write_probe_suite(tmp_path / "suite")
    assert sorted(p.stem for p in paths) == sorted(SENSITIVE)
    traces, labels = read_trace_set(tmp_path / "suite")
    (tmp_path / "chip").mkdir()
    for trace, label in zip(traces, labels):
        chip = simulate(trace.network, trace.timesteps, chip_profile, trace.inputs, metadata=trace.metadata)
        chip.profile, chip.source = None, "spinnaker2"     # a board does not know its profile
        write_trace(tmp_path / "chip" / f"{label}.h5", chip)
    assert main(["conform", "--infer", str(tmp_path / "chip"), "--state-precision", "float32"]) == 0
    out = capsys.readouterr().out
    assert "1 of 64 hypotheses reproduce" in out
    assert "REPRODUCES: threshold_op=>, fused_multiply_add=True, weight_rounding=nearest_even" in out


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
