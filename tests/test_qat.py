"""QAT: the torch chip forward is bit-identical to the simulator (on real digits batches), the scale and threshold
follow the learned weights, and the surrogate backward is the gradient of the documented surrogate model."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
nn = torch.nn

from s2sim import ChipProfile, Simulator  # noqa: E402
from s2sim.errors import TraceError  # noqa: E402
from s2sim.oracle import fma_float32  # noqa: E402
from s2sim.qat import QATModel, chip_run, fma32, verify, verify_trace  # noqa: E402
from s2sim.quantize import QuantConfig  # noqa: E402


def leaky(beta=0.9, **kw):
    return snn.Leaky(beta=beta, init_hidden=True, reset_delay=False, **kw)


@pytest.fixture(scope="module")
def digits_batch():
    """A real batch: 48 scikit-learn digits, Bernoulli rate-coded over 10 ticks."""
    from sklearn.datasets import load_digits

    d = load_digits()
    gen = torch.Generator().manual_seed(0)
    p = torch.as_tensor(d.data[:48], dtype=torch.float32) / 16
    return (torch.rand((10, 48, 64), generator=gen) < p).float(), torch.as_tensor(d.target[:48])


def digits_model(seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(64, 32), leaky(), nn.Linear(32, 10), leaky(0.8))
    with torch.no_grad():
        m[0].weight.mul_(4)
    return m


def test_fma32_matches_oracle_bits():
    rng = np.random.default_rng(0)
    v = rng.normal(scale=100, size=20000).astype(np.float32)
    a = rng.uniform(0, 1, size=20000).astype(np.float32)
    c = rng.normal(scale=100, size=20000).astype(np.float32)
    # near-cancellation and halfway cases, where double rounding would go wrong
    c[:5000] = (-(v[:5000].astype(np.float64) * a[:5000])).astype(np.float32)
    mine = fma32(torch.from_numpy(v), torch.from_numpy(a), torch.from_numpy(c)).numpy()
    ref = fma_float32(v, a, c)
    assert np.array_equal(mine.view(np.uint32), ref.view(np.uint32))
    unfused = ((v * a).astype(np.float32) + c).astype(np.float32)
    assert not np.array_equal(mine.view(np.uint32), unfused.view(np.uint32))


@pytest.mark.parametrize("fma", [True, False])
@pytest.mark.parametrize("op", [">=", ">"])
def test_qat_forward_bit_identical_to_simulator_on_digits(digits_batch, fma, op):
    x, _ = digits_batch
    profile = ChipProfile(fused_multiply_add=fma, threshold_op=op)
    model = QATModel(digits_model(), (64,), QuantConfig(profile=profile))
    report = verify(model, x)
    assert report.identical, report.summary()
    assert report.n_ticks == 12 and report.batch == 48
    spk, mem = model(x, verify=True)
    assert spk.shape == (12, 48, 10) and spk.sum() > 0 and mem.dtype == torch.float32


def test_training_keeps_bit_identity_and_threshold_follows_scale(digits_batch):
    x, y = digits_batch
    model = QATModel(digits_model(1), (64,), QuantConfig(scale_rule="max"))
    before = model.freeze()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(3):
        spk, _ = model(x)
        loss = torch.nn.functional.cross_entropy(spk.sum(0), y)
        opt.zero_grad()
        loss.backward()
        assert model.model[0].weight.grad.abs().sum() > 0
        opt.step()
    after = model.freeze()
    for i, lin in enumerate((model.model[0], model.model[2])):
        scale = 127 / lin.weight.detach().double().abs().max().item()
        assert after.layers[i].scale == scale != before.layers[i].scale
        thr = np.float32(1.0 * scale)
        assert after.layers[i].threshold.view(np.uint32)[0] == thr.view(np.uint32)
    spk, _ = model(x, verify=True)  # raises TraceError on any difference
    assert spk.sum() > 0


def test_conv_qat_bit_identical():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), leaky(), nn.AvgPool2d(2), nn.Conv2d(4, 6, 3), nn.AvgPool2d(2),
                      leaky(0.7), nn.Flatten(), nn.Linear(24, 3), leaky())
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(4)
    x = (torch.rand(8, 3, 2, 12, 12) < 0.3).float()
    model = QATModel(m, (2, 12, 12), QuantConfig(rounding="trunc"))
    report = verify(model, x)
    assert report.identical, report.summary()
    spk, _ = model(x)
    spk.sum().backward()
    assert m[3].weight.grad is not None and m[3].weight.grad.abs().sum() > 0


def test_verify_reports_real_differences(digits_batch):
    x, _ = digits_batch
    model = QATModel(digits_model(), (64,))
    other = Simulator(ChipProfile(fused_multiply_add=False))
    report = verify(model, x, simulator=other)
    assert not report.identical and report.layers[0].voltage_mismatches > 0
    assert "differ" in report.summary()
    with torch.no_grad():
        trace = model.run(x, record_v=True)
    trace.voltages[1][5, 7, 3] = torch.nextafter(trace.voltages[1][5, 7, 3], torch.tensor(math.inf))
    report = verify_trace(model.freeze(), x, trace)
    assert report.layers[1].voltage_mismatches == 1 and report.layers[1].first == (7, 5, 3)


def test_verify_option_raises_on_mismatch(digits_batch):
    x, _ = digits_batch
    model = QATModel(digits_model(), (64,), QuantConfig(profile=ChipProfile(fused_multiply_add=True)))
    with pytest.raises(TraceError, match="differs from the simulator"):
        model(x, verify=True, simulator=Simulator(ChipProfile(fused_multiply_add=False)))


@pytest.mark.parametrize("subtract", [True, False], ids=["subtract", "zero"])
@pytest.mark.parametrize("recurrent", [False, True], ids=["ff", "rec"])
@pytest.mark.parametrize("curr_exp", [False, True], ids=["lif", "curr_exp"])
def test_surrogate_backward_matches_autograd_reference(curr_exp, recurrent, subtract):
    """The hand-written BPTT equals autograd through the float64 model V[t] = alpha*Vpost[t-1] + I[t] + i_offset,
    I[t] = decay*I[t-1] + syn[t] + W_rec s[t-1] (curr_exp; I = syn + W_rec s[t-1] for lif), with an arctan
    surrogate spike and a detached reset, on the same spike trains."""
    from s2sim.chip_neuron import ChipNeuron as _ChipNeuron
    from s2sim.chip_neuron import Dynamics as _Dynamics

    gen = torch.Generator().manual_seed(0)
    t_len, b, n, scale = 12, 4, 6, 50.0
    exc = torch.randint(0, 50, (t_len, b, n), generator=gen).float()
    inh = torch.randint(0, 15, (t_len, b, n), generator=gen).float()
    values = {"syn": exc - inh, "i_offset": torch.full((n,), 1.5), "alpha": torch.full((n,), 0.875),
              "decay": torch.full((n,), 0.5) if curr_exp else None, "theta": torch.full((n,), 100.0),
              "w_rec": torch.randint(-20, 21, (n, n), generator=gen).float() if recurrent else None}
    mine = {k: None if v is None else v.clone().requires_grad_(True) for k, v in values.items()}
    dyn = _Dynamics(scale, True, True, True, subtract, 2.0)
    spk, v = _ChipNeuron.apply(mine["syn"], exc if curr_exp else None, inh if curr_exp else None, mine["i_offset"],
                               mine["alpha"], mine["decay"], mine["theta"], mine["w_rec"], dyn)
    w, wv = torch.randn(t_len, b, n, generator=gen), torch.randn(t_len, b, n, generator=gen)
    ((spk * w).sum() + (v * wv).sum() * 1e-3).backward()

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return (u >= 0).double()

        @staticmethod
        def backward(ctx, g):
            (u,) = ctx.saved_tensors
            return g * (1.0 / (1 + (math.pi * u / scale) ** 2)) / scale

    ref = {k: None if v is None else v.double().requires_grad_(True) for k, v in values.items()}
    vv = cur = s = torch.zeros(b, n, dtype=torch.float64)
    spikes, posts = [], []
    for t in range(t_len):
        inp = ref["syn"][t] + (s @ ref["w_rec"].T if recurrent else 0)
        cur = ref["decay"] * cur + inp if curr_exp else inp
        vv = ref["alpha"] * vv + (cur + ref["i_offset"])
        s = Spike.apply(vv - ref["theta"])
        vv = vv - s.detach() * ref["theta"] if subtract else vv * (1 - s.detach())
        spikes.append(s)
        posts.append(vv)
    ref_spk = torch.stack(spikes)
    assert torch.equal(ref_spk.float(), spk) and 0 < int(spk.sum()) < spk.numel()
    ((ref_spk * w.double()).sum() + (torch.stack(posts) * wv.double()).sum() * 1e-3).backward()
    for key, tensor in mine.items():
        if tensor is not None:
            torch.testing.assert_close(tensor.grad.double(), ref[key].grad, rtol=1e-4, atol=1e-5, msg=key)


def test_chip_timing_one_tick_per_hop():
    """A single input spike at tick 0 reaches layer 1 at tick 1 and layer 2 at tick 2."""
    m = nn.Sequential(nn.Linear(1, 1, bias=False), leaky(), nn.Linear(1, 1, bias=False), leaky())
    with torch.no_grad():
        m[0].weight.fill_(2.0)
        m[2].weight.fill_(2.0)
    x = torch.zeros(1, 1, 1)
    x[0, 0, 0] = 1
    model = QATModel(copy.deepcopy(m), (1,))
    trace = model.run(x)
    assert trace.spikes[0][:, 0, 0].tolist() == [0, 1, 0]
    assert trace.spikes[1][:, 0, 0].tolist() == [0, 0, 1]
    assert verify(model, x).identical
    assert chip_run(model.layer_tensors(), x, 5, ChipProfile()).spikes[1].shape == (5, 1, 1)


def recurrent_model(sizes, reset, hidden_kind, seed=0):
    """Linear -> recurrent hidden layer (RSynaptic or RLeaky, linear or one-to-one) -> Linear -> Synaptic, with
    per-neuron decays and biases everywhere."""
    n_in, hidden, n_out = sizes
    torch.manual_seed(seed)
    kw = dict(init_hidden=True, reset_mechanism=reset, reset_delay=False)
    beta = 0.7 + 0.25 * torch.rand(hidden)
    if hidden_kind == "RSynaptic":
        mid = snn.RSynaptic(alpha=0.6 + 0.3 * torch.rand(hidden), beta=beta, linear_features=hidden, **kw)
    elif hidden_kind == "RLeaky":
        mid = snn.RLeaky(beta=beta, linear_features=hidden, **kw)
    else:
        mid = snn.RLeaky(beta=beta, all_to_all=False, V=torch.randn(hidden), **kw)
    m = nn.Sequential(nn.Linear(n_in, hidden), mid, nn.Linear(hidden, n_out),
                      snn.Synaptic(alpha=0.8, beta=0.85, **kw))
    with torch.no_grad():
        m[0].weight.mul_(3 * 8 / n_in ** 0.5)
        m[2].weight.mul_(3)
    return m


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("sizes,hidden_kind", [((4, 3, 2), "RSynaptic"), ((20, 17, 5), "RLeaky"),
                                               ((20, 9, 3), "RLeaky-one-to-one"), ((64, 96, 10), "RSynaptic")])
def test_recurrent_and_current_based_nets_bit_identical(digits_batch, sizes, hidden_kind, reset):
    """QAT forward == simulator, every spike and membrane bit, before and after training steps, for recurrent
    (lif and curr_exp) and current-based layers of several sizes, both resets, 8-bit and 4-bit formats."""
    x = digits_batch[0] if sizes[0] == 64 else (torch.rand(14, 12, sizes[0]) < 0.35).float()
    y = torch.arange(x.shape[1]) % sizes[2]
    for config in (QuantConfig(), QuantConfig(dense_model="lif", scale_rule="percentile", percentile=99.0)):
        model = QATModel(recurrent_model(sizes, reset, hidden_kind), (sizes[0],), config)
        frozen = model.freeze()
        lif, curr_exp = (("lif_no_delay", "lif_curr_exp_no_delay") if config.dense_model == "lif_no_delay" else
                         ("lif", "lif_curr_exp"))
        assert [layer.model for layer in frozen.layers] == [curr_exp if hidden_kind == "RSynaptic" else lif, curr_exp]
        assert frozen.layers[0].recurrent is not None and frozen.layers[1].syn_decay is not None
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(2):
            spk, _ = model(x, verify=True)      # TraceError on any difference
            loss = torch.nn.functional.cross_entropy(spk.sum(0), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        report = verify(model, x)
        assert report.identical, report.summary()
        with torch.no_grad():
            trace = model.run(x)
        assert all(0 < float(s.mean()) < 0.95 for s in trace.spikes[:2]), [float(s.mean()) for s in trace.spikes]


def test_recurrent_projection_takes_one_tick():
    """One input spike at tick 0: the RLeaky neuron spikes at tick 1, its self-connection (weight 2, threshold 2)
    brings it back to threshold at tick 2, and so on; the output layer follows one tick later."""
    rec = snn.RLeaky(beta=0.5, all_to_all=False, V=2.0, threshold=2.0, init_hidden=True, reset_mechanism="zero",
                     reset_delay=False, learn_recurrent=False)
    m = nn.Sequential(nn.Linear(1, 1, bias=False), rec, nn.Linear(1, 1, bias=False), leaky(threshold=2.0))
    with torch.no_grad():
        m[0].weight.fill_(2.0)
        m[2].weight.fill_(2.0)
    x = torch.zeros(6, 1, 1)
    x[0] = 1
    model = QATModel(m, (1,), QuantConfig(extra_ticks=0))
    trace = model.run(x)
    assert trace.spikes[0][:, 0, 0].tolist() == [0, 1, 1, 1, 1, 1]
    assert trace.spikes[1][:, 0, 0].tolist() == [0, 0, 1, 1, 1, 1]
    assert verify(model, x).identical


def test_recurrent_weights_and_decays_learn():
    m = recurrent_model((20, 12, 4), "subtract", "RSynaptic")
    m[1].alpha = torch.nn.Parameter(m[1].alpha.clone())   # learn_alpha
    model = QATModel(m, (20,))
    x = (torch.rand(10, 8, 20) < 0.4).float()
    spk, mem = model(x)
    (spk.sum() + mem.sum() * 1e-3).backward()
    for p in (m[1].recurrent.weight, m[1].recurrent.bias, m[1].alpha, m[0].weight, m[3].beta):
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0
    assert m[1].alpha.grad.abs().sum() > 0 and m[1].recurrent.weight.grad.abs().sum() > 0
