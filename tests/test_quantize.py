"""PTQ: model parsing, scale rules, integer conversion, report, percentile search, export to the simulator."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
nn = torch.nn

from s2sim import ChipProfile, Simulator
from s2sim.errors import ConfigError, ConversionError
from s2sim.qat import verify
from s2sim.quantize import QuantConfig, float_run, parse_model, ptq, select_scale


def leaky(**kw):
    return snn.Leaky(beta=kw.pop("beta", 0.9), init_hidden=True, reset_delay=kw.pop("reset_delay", False), **kw)


def dense_model(seed=0, gain=3.0, **kw):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(20, 16), leaky(**kw), nn.Linear(16, 5), leaky(beta=0.8, **kw))
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(gain)
    return m


def conv_model(seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        leaky(),
        nn.AvgPool2d(2),
        nn.Conv2d(4, 6, 3),
        nn.AvgPool2d(2),
        leaky(beta=0.7),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(6, 3),
        leaky(),
    )
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(4.0)
    return m


def spikes(shape, p=0.4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < p).float()


def neuron_layer(kind, n, reset_mechanism, reset_delay, init_hidden=True):
    """An snnTorch neuron layer of ``n`` neurons with per-neuron decays (random recurrence for R* layers)."""
    gen = torch.Generator().manual_seed(n)
    beta = 0.6 + 0.35 * torch.rand(n, generator=gen)
    kw = {
        "beta": beta,
        "threshold": 1.0,
        "reset_mechanism": reset_mechanism,
        "reset_delay": reset_delay,
        "init_hidden": init_hidden,
    }
    if kind in ("Synaptic", "RSynaptic"):
        kw["alpha"] = 0.5 + 0.4 * torch.rand(n, generator=gen)
    if kind in ("RLeaky", "RSynaptic"):
        kw["linear_features"] = n
    layer = getattr(snn, kind)(**kw)
    if kind in ("RLeaky", "RSynaptic"):
        with torch.no_grad():
            layer.recurrent.weight.normal_(0, 0.4, generator=gen)
    return layer


def snntorch_steps(model, x):
    """Output spikes [T, B, n] of snnTorch's own forward, step by step, each layer with explicit state."""
    states = {}
    out = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            h = x[t]
            for i, layer in enumerate(model):
                if not isinstance(layer, snn.SpikingNeuron):
                    h = layer(h)
                    continue
                kind = type(layer).__name__
                zeros = torch.zeros(h.shape[0], layer_size(model, i))
                spk, syn, mem = states.get(i, (zeros, zeros, zeros))
                if kind == "Leaky":
                    spk, mem = layer(h, mem)
                elif kind == "RLeaky":
                    spk, mem = layer(h, spk, mem)
                elif kind == "Synaptic":
                    spk, syn, mem = layer(h, syn, mem)
                else:
                    spk, syn, mem = layer(h, spk, syn, mem)
                states[i] = (spk, syn, mem)
                h = spk
            out.append(h)
    return torch.stack(out)


def layer_size(model, index):
    return next(m.out_features for m in reversed(list(model)[:index]) if isinstance(m, nn.Linear))


@pytest.mark.parametrize("mechanism", ["subtract", "zero"])
@pytest.mark.parametrize("reset_delay", [False, True])
def test_float_run_is_snntorch(mechanism, reset_delay):
    from snntorch import utils

    m = dense_model(reset_mechanism=mechanism, reset_delay=reset_delay)
    x = spikes((15, 9, 20))
    utils.reset(m)
    with torch.no_grad():
        ref = torch.stack([m(x[t]) for t in range(15)])
    mine = float_run(parse_model(m, (20,)), x)[-1]
    assert ref.sum() > 0
    assert torch.equal(ref, mine)


@pytest.mark.parametrize("kind", ["Synaptic", "RLeaky", "RSynaptic"])
@pytest.mark.parametrize("mechanism", ["subtract", "zero"])
@pytest.mark.parametrize("reset_delay", [False, True])
def test_float_run_is_snntorch_for_synaptic_and_recurrent_layers(kind, mechanism, reset_delay):
    """Every layer's spikes, not just the output's, in snnTorch's own operation order (including RSynaptic's
    discarded reset_delay=False, which only works there with explicit state).
    """
    torch.manual_seed(1)
    m = nn.Sequential(
        nn.Linear(20, 16),
        neuron_layer(kind, 16, mechanism, reset_delay, init_hidden=False),
        nn.Linear(16, 5),
        neuron_layer("Leaky", 5, mechanism, reset_delay, init_hidden=False),
    )
    with torch.no_grad():
        m[0].weight.mul_(2)
    x = spikes((15, 9, 20))
    ref_hidden = snntorch_steps(m[:2], x)
    ref_out = snntorch_steps(m, x)
    hidden, out = float_run(parse_model(m, (20,)), x)
    assert 0 < ref_hidden.mean() < 0.9 and ref_out.sum() > 0
    assert torch.equal(hidden, ref_hidden) and torch.equal(out, ref_out)


def test_conv_stage_effective_weights_equal_the_torch_ops():
    m = conv_model()
    stages = parse_model(m, (2, 12, 12))
    assert [s.geometry.kind for s in stages] == ["conv", "conv", "dense"]
    x = spikes((7, 2, 12, 12), seed=3)
    with torch.no_grad():
        for stage in stages:
            w, b = stage.effective()
            g = stage.geometry
            ref = stage.synapse_float(x)
            if g.kind == "conv":
                xs = torch.nn.functional.avg_pool2d(x, g.pool, divisor_override=1) if g.pool > 1 else x
                mine = torch.nn.functional.conv2d(xs, w, stride=g.stride, padding=g.padding).reshape(7, -1) + b
            else:
                mine = x.reshape(7, -1) @ w.T + b
            torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-5)
            x = (torch.rand(7, *g.out_shape) < 0.3).float()
    assert stages[1].geometry.pool == 2 and stages[1].geometry.stride == (2, 2)
    assert stages[1].geometry.out_shape == (6, 2, 2)


def test_scale_rules():
    rng = np.random.default_rng(0)
    a = np.abs(rng.normal(size=1000))
    assert select_scale(a, 127, "max")[0] == 127 / a.max()
    s, clip = select_scale(a, 127, "percentile", 99.0)
    assert clip == np.percentile(a, 99.0) and s == 127 / clip
    s, clip = select_scale(a, 15, "mean_std", k_std=2.0)
    assert clip == pytest.approx(a.mean() + 2.0 * a.std(), rel=1e-12) and s == 15 / clip
    assert select_scale(np.zeros(5), 127, "max") == (1.0, 0.0)


@pytest.mark.parametrize("rounding", ["nearest_even", "trunc"])
def test_ptq_integers_threshold_and_bias(rounding):
    m = dense_model()
    qm = ptq(m, spikes((10, 6, 20)), config=QuantConfig(rounding=rounding))
    lin, lk = m[0], m[1]
    w = lin.weight.detach().double().numpy()
    scale = 127 / np.abs(w).max()
    rounder = np.rint if rounding == "nearest_even" else np.trunc
    layer = qm.layers[0]
    assert layer.scale == scale
    assert np.array_equal(layer.weights, rounder(w * scale).astype(np.int64))
    assert np.abs(layer.weights).max() <= 127
    thr = np.float32(float(lk.threshold) * scale)
    assert layer.threshold.view(np.uint32).tolist() == [thr.view(np.uint32)] * 16
    bias = (lin.bias.detach().double().numpy() * scale).astype(np.float32)
    assert np.array_equal(layer.i_offset.view(np.uint32), bias.view(np.uint32))
    assert layer.alpha.dtype == np.float32 and layer.alpha[0] == np.float32(0.9)


def test_lif_model_uses_15_levels_and_matches_simulator():
    m = dense_model()
    x = spikes((10, 6, 20), seed=1)
    qm = ptq(m, x, config=QuantConfig(dense_model="lif"))
    assert all(layer.model == "lif" and np.abs(layer.weights).max() == 15 for layer in qm.layers)
    assert verify(qm, x).identical


def test_percentile_rule_clips_and_reports():
    m = dense_model()
    x = spikes((10, 6, 20))
    qm = ptq(m, x, config=QuantConfig(scale_rule="percentile", percentile=95.0))
    w = m[0].weight.detach().double().numpy()
    clip = np.percentile(np.abs(w), 95.0)
    layer, rep = qm.layers[0], qm.report.layers[0]
    assert rep.n_clipped == int((np.rint(np.abs(w) * 127 / clip) > 127).sum()) > 0
    assert np.abs(layer.weights).max() == 127
    assert rep.rule == "percentile 95" and rep.scale == 127 / clip
    assert 0 < rep.threshold_rel_error < 1e-6  # float32 rounding of thr * scale is the only threshold error
    assert 0 < rep.weight_rel_rmse < 0.1


def test_ptq_matches_simulator_dense_and_conv():
    m = dense_model()
    x = spikes((12, 5, 20), seed=2)
    assert verify(ptq(m, x), x).identical
    xc = spikes((8, 3, 2, 12, 12), p=0.3, seed=4)
    qm = ptq(conv_model(), xc, config=QuantConfig(rounding="trunc", scale_rule="mean_std"))
    rep = verify(qm, xc)
    assert rep.identical, rep.summary()
    res = Simulator(ChipProfile()).run_batch(qm.to_network(), qm.simulator_inputs(xc))
    assert np.array_equal(res.spikes["layer3"].sum(1).argmax(1), qm.predict(xc))


@pytest.mark.parametrize("kind", ["dense", "conv", "recurrent"])
def test_simulate_gives_the_torch_forward_spikes(kind):
    """PTQ calibrates on QuantizedModel.simulate (the C kernel): every layer's spikes equal the torch forward's."""
    model, x = {
        "dense": (dense_model(), spikes((12, 5, 20), seed=2)),
        "conv": (conv_model(), spikes((8, 3, 2, 12, 12), p=0.3, seed=4)),
        "recurrent": (recurrent_dense_model(), spikes((12, 6, 20), p=0.3, seed=7)),
    }[kind]
    qm = ptq(model, x, config=QuantConfig(rounding="trunc"))
    mine, ref = qm.simulate(x), qm.forward(x).spikes
    assert len(mine) == len(ref) == len(qm.layers)
    for a, b in zip(mine, ref, strict=True):
        assert a.dtype == np.uint8 and np.array_equal(a, b.numpy()) and 0 < a.mean() < 1
    assert np.array_equal(qm.predict(x), ref[-1].sum(0).argmax(1).numpy())
    rates = [float(s[depth : depth + x.shape[0]].double().mean()) for depth, s in enumerate(ref, start=1)]
    assert [r.rate_after for r in qm.report.layers] == pytest.approx(rates, rel=1e-12)


def test_dense_weights_through_pools_equal_probing_the_chain():
    """The folded weights of pools + flatten + Linear are exactly (bits) what probing with unit vectors gives."""
    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Conv2d(2, 3, 3), leaky(), nn.AvgPool2d(3), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(3 * 2 * 2, 5), leaky()
    )
    stage = parse_model(m, (2, 14, 14))[1]
    probe = torch.eye(stage.geometry.n_in).reshape(stage.geometry.n_in, *stage.geometry.in_shape)
    for op in stage.ops:
        probe = torch.nn.functional.linear(probe, op.weight) if isinstance(op, nn.Linear) else op(probe)
    w, _ = stage.effective()
    assert w.shape == (5, 3 * 12 * 12)
    assert np.array_equal(w.detach().numpy().view(np.uint32), probe.T.detach().numpy().view(np.uint32))


def test_report_warns_silent_and_saturated_layers():
    m = dense_model()
    x = spikes((10, 6, 20))
    with torch.no_grad():
        m[1].threshold.fill_(1e6)
    rep = ptq(m, x).report
    assert rep.layers[0].rate_after == 0.0 and rep.layers[0].silent_neurons == 1.0
    assert any("layer1 is silent" in w for w in rep.warnings)
    m = dense_model()
    with torch.no_grad():
        m[1].threshold.fill_(1e-3)
        m[0].bias.fill_(10.0)
    rep = ptq(m, x).report
    assert any("layer1 saturates" in w for w in rep.warnings)
    assert "layer1" in rep.format()


def test_reset_delay_true_is_flagged():
    rep = ptq(dense_model(reset_delay=True), spikes((6, 4, 20))).report
    assert any("reset_delay=True" in n for n in rep.notes)


@pytest.mark.parametrize("mode", ["global", "per_layer"])
def test_percentile_search_picks_best_candidate(mode):
    m = dense_model(gain=1.5)
    x = spikes((12, 40, 20), seed=5)
    y = torch.arange(40) % 5
    cands = (100.0, 99.0, 90.0, 70.0)
    cfg = QuantConfig(scale_rule="percentile", threshold_search=mode, search_percentiles=cands)
    qm = ptq(m, x, y, cfg)
    chosen = qm.config.percentile
    assert len(chosen) == 2 and set(chosen) <= set(cands)
    globals_ = {}
    for p in cands:
        acc = ptq(m, x, y, QuantConfig(scale_rule="percentile", percentile=p)).report.quant_accuracy
        globals_[p] = acc
    assert qm.report.quant_accuracy == float(100 * np.mean(qm.predict(x) == y.numpy()))
    assert qm.report.quant_accuracy >= max(globals_.values())
    if mode == "global":
        assert chosen[0] == chosen[1] and globals_[chosen[0]] == max(globals_.values())


def test_unsupported_modules_and_settings():
    bad = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), leaky())
    with pytest.raises(ConversionError, match="MaxPool2d"):
        parse_model(bad, (1, 8, 8))
    with pytest.raises(ConversionError, match="reset_mechanism"):
        parse_model(nn.Sequential(nn.Linear(4, 2), leaky(reset_mechanism="none")), (4,))
    with pytest.raises(ConversionError, match="two weight layers"):
        parse_model(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2), leaky()), (4,))
    with pytest.raises(ConfigError, match="needs calibration labels"):
        ptq(dense_model(), spikes((4, 2, 20)), None, QuantConfig(scale_rule="percentile", threshold_search="global"))
    with pytest.raises(ConfigError, match="scale_rule"):
        QuantConfig(threshold_search="global")
    with pytest.raises(ConfigError, match="0 or 1"):
        ptq(dense_model(), spikes((4, 2, 20))).simulator_inputs(torch.full((4, 2, 20), 2.0))


@pytest.mark.parametrize(
    "field, value",
    [
        ("state_precision", "float64"),
        ("input_grouping", "leak_first"),
        ("input_grouping", "left_to_right"),
        ("conv_x_axis", "height"),
        ("flush_to_zero", True),
    ],
)
def test_profiles_the_torch_forward_does_not_model_are_refused(field, value):
    from s2sim import ChipProfile
    from s2sim.errors import ConfigError
    from s2sim.quantize import QuantConfig

    with pytest.raises(ConfigError, match=f"profile.{field} = {value!r}"):
        QuantConfig(profile=ChipProfile(**{field: value}))


def recurrent_dense_model(kind="RSynaptic", seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(
        nn.Linear(20, 12),
        neuron_layer(kind, 12, "subtract", False),
        nn.Linear(12, 5),
        neuron_layer("Synaptic", 5, "subtract", False),
    )
    with torch.no_grad():
        m[0].weight.mul_(3)
        m[2].weight.mul_(3)
    return m


def test_ptq_of_recurrent_current_based_net():
    """One scale for feed-forward and recurrent weights (both feed the same membrane); the chip network has the
    recurrent projection and curr_exp parameters; PTQ's forward is bit-identical to the simulator.
    """
    m = recurrent_dense_model()
    x = spikes((12, 6, 20), p=0.3, seed=7)
    qm = ptq(m, x)
    layer = qm.layers[0]
    w_ff, w_rec = m[0].weight.detach().double(), m[1].recurrent.weight.detach().double()
    scale = 127 / max(float(w_ff.abs().max()), float(w_rec.abs().max()))
    assert layer.scale == scale and layer.model == "lif_curr_exp_no_delay"
    assert np.array_equal(layer.recurrent, np.rint(w_rec.numpy() * scale).astype(np.int64))
    assert np.array_equal(layer.syn_decay, m[1].alpha.float().numpy())
    net = qm.to_network()
    pop = net.population("layer1")
    assert pop.neuron_model == "lif_curr_exp_no_delay"
    assert np.array_equal(pop.param("exc_decay"), pop.param("inh_decay")) and not pop.param("t_refrac").any()
    assert any(p.pre is p.post is pop for p in net.projections)
    # bias: i_offset = bias * scale / (1 - alpha), the steady state of snnTorch's synaptic current
    bias = (m[0].bias + m[1].recurrent.bias).detach().double() * scale / (1 - m[1].alpha.double())
    assert np.array_equal(layer.i_offset.view(np.uint32), bias.float().numpy().view(np.uint32))
    assert qm.report.layers[0].n_weights == 20 * 12 + 12 * 12
    assert any("i_offset = bias / (1 - alpha)" in n for n in qm.report.notes)
    rep = verify(qm, x)
    assert rep.identical, rep.summary()


def test_max_weight_caps_every_layer():
    xc = spikes((6, 2, 2, 12, 12), p=0.3, seed=4)
    qm = ptq(conv_model(), xc, config=QuantConfig(dense_model="lif", max_weight=15))
    assert [(q.model, q.limit) for q in qm.layers] == [("lif_conv2d", 15), ("lif_conv2d", 15), ("lif", 15)]
    assert all(np.abs(q.weights).max() == 15 for q in qm.layers)
    assert verify(qm, xc).identical
    with pytest.raises(ConfigError, match="max_weight"):
        QuantConfig(max_weight=0)


def test_unsupported_recurrent_and_current_based_layers():
    syn = snn.Synaptic(alpha=0.5, beta=0.5, init_hidden=True)
    with pytest.raises(ConversionError, match="no conv target"):
        parse_model(nn.Sequential(nn.Conv2d(1, 2, 3), syn), (1, 6, 6))
    conv_rec = snn.RLeaky(beta=0.5, conv2d_channels=2, kernel_size=3, init_hidden=True)
    with pytest.raises(ConversionError, match="only 1-D"):
        parse_model(nn.Sequential(nn.Conv2d(1, 2, 3), conv_rec), (1, 6, 6))
    m = nn.Sequential(nn.Linear(4, 3), snn.Synaptic(alpha=1.0, beta=0.5, init_hidden=True))
    with pytest.raises(ConversionError, match="alpha = 1 with a bias"):
        ptq(m, spikes((3, 2, 4)))


@pytest.mark.parametrize(
    "field, value",
    [("threshold_op", ">"), ("fused_multiply_add", False), ("weight_rounding", "floor"), ("max_atoms_per_core", 100)],
)
def test_profile_fields_the_forward_follows_are_accepted(field, value):
    from s2sim import ChipProfile

    assert getattr(QuantConfig(profile=ChipProfile(**{field: value})).profile, field) == value


def test_rsynaptic_recurrence_runs_as_in_snntorch_where_the_resets_agree():
    """With beta = 1 snnTorch's late, undecayed subtraction equals the chip's, so with integer weights at scale 1
    (and dyadic values, exact in float32) the chip forward gives snnTorch's own spikes one tick later: the
    recurrent projection's one-tick latency is snnTorch's use of the previous step's spikes.
    """
    from s2sim import ChipProfile

    gen = torch.Generator().manual_seed(3)
    rec = snn.RSynaptic(alpha=0.5, beta=1.0, threshold=60.0, linear_features=8, reset_delay=False)
    m = nn.Sequential(nn.Linear(10, 8, bias=False), rec)
    with torch.no_grad():
        m[0].weight.copy_(torch.randint(-10, 30, (8, 10), generator=gen).float())
        m[0].weight[0, 0] = 127.0
        rec.recurrent.weight.copy_(torch.randint(-40, 30, (8, 8), generator=gen).float())
        rec.recurrent.bias.zero_()
    x = spikes((12, 6, 10), p=0.3)
    ref = snntorch_steps(m, x)
    qm = ptq(m, x, config=QuantConfig(profile=ChipProfile(threshold_op=">", fused_multiply_add=False)))
    assert qm.layers[0].scale == 1.0 and np.abs(qm.layers[0].recurrent).sum() > 0
    chip = qm.forward(x).spikes[0][1:13]
    assert 0.1 < float(ref.mean()) < 0.9
    assert torch.equal(chip, ref)
    assert verify(qm, x).identical
    with torch.no_grad():
        rec.recurrent.weight.zero_()
    assert not torch.equal(snntorch_steps(m, x), ref)  # the recurrence does shape these spikes


def test_per_model_settings_are_modelled_bit_exactly():
    """Spike test and FMA settings per model (overrides, the current-decay FMA) reach the torch forward layer by
    layer: it stays bit-identical to the simulator, and differs from the forward without them.
    """
    from s2sim import ChipProfile

    m = recurrent_dense_model()
    x = spikes((12, 6, 20), p=0.3, seed=8)
    profile = ChipProfile(
        overrides={"lif_curr_exp_no_delay": {"threshold_op": ">", "fused_multiply_add": False}},
        current_fused_multiply_add=True,
        fused_multiply_add=True,
        refractory_rule="no_spike",
    )
    qm = ptq(m, x, config=QuantConfig(profile=profile))
    rep = verify(qm, x)
    assert rep.identical, rep.summary()
    plain = ptq(m, x).forward(x, record_v=True).voltages[0].numpy()
    assert not np.array_equal(qm.forward(x, record_v=True).voltages[0].numpy().view(np.uint32), plain.view(np.uint32))
    qc = ptq(m, x, config=QuantConfig(profile=ChipProfile(current_fused_multiply_add=False)))
    assert verify(qc, x).identical
