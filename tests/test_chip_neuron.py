"""The QAT neuron loop (s2sim.chip_neuron): the C core's loop and the torch one (the path of CUDA tensors) compute
the same spikes and membrane bits, both equal the simulator, the torch FMA emulation equals the oracle bit for bit,
and their surrogate gradients agree.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
nn = torch.nn

from s2sim.chip_neuron import ChipNeuron, Dynamics, fma32
from s2sim.errors import ConfigError
from s2sim.oracle import fma_float32
from s2sim.qat import QATModel, chip_run, verify
from s2sim.quantize import QuantConfig


def bits(t):
    return t.detach().numpy().view(np.uint32)


def test_fma32_equals_the_oracle_across_exponents_signs_and_underflow():
    rng = np.random.default_rng(7)
    n = 60000
    v = (rng.choice([-1, 1], n) * 2.0 ** rng.uniform(-40, 40, n)).astype(np.float32)
    a = rng.uniform(0, 1, n).astype(np.float32)
    c = (rng.choice([-1, 1], n) * 2.0 ** rng.uniform(-40, 40, n)).astype(np.float32)
    c[:20000] = (-(v[:20000].astype(np.float64) * a[:20000])).astype(np.float32)  # cancellation, halfway cases
    v[20000:25000] *= np.float32(2.0**-100)  # products far below c, and subnormal results
    c[20000:22000] = np.float32(1e-39)
    v[25000:25010], a[25000:25010], c[25000:25010] = 3e38, 1.0, 3e38  # overflow to inf
    mine = fma32(torch.from_numpy(v), torch.from_numpy(a), torch.from_numpy(c)).numpy()
    ref = fma_float32(v, a, c)
    assert np.array_equal(mine.view(np.uint32), ref.view(np.uint32))
    subnormal = (mine != 0) & (np.abs(mine) < np.finfo(np.float32).tiny)
    assert np.isinf(mine[25000:25010]).all() and subnormal.sum() > 100, subnormal.sum()


def neuron_inputs(curr_exp, recurrent, seed=0, t_len=12, batch=4, n=6):
    """Integer sums with -0.0 entries, per-neuron dyadic constants, a threshold that is hit exactly."""
    gen = torch.Generator().manual_seed(seed)
    exc = torch.randint(0, 40, (t_len, batch, n), generator=gen).float()
    inh = torch.randint(0, 12, (t_len, batch, n), generator=gen).float()
    exc[:2, :, 0], inh[:2, :, 0] = 64.0, 0.0  # V reaches the threshold exactly in tick 0 (1 when late)
    syn = exc - inh
    syn[syn == 0] = -0.0
    return {
        "syn": syn,
        "exc": exc,
        "inh": inh,
        "i_offset": torch.tensor([0.0, 0.5, -1.0, 2.0, 0.25, 0.0][:n]),
        "alpha": torch.tensor([0.5, 0.875, 0.75, 0.9, 0.5, 1.0][:n]),
        "decay": torch.tensor([0.5, 0.75, 0.25, 0.8, 0.5, 0.6][:n]) if curr_exp else None,
        "theta": torch.full((n,), 64.0),
        "w_rec": torch.randint(-20, 21, (n, n), generator=gen).float() if recurrent else None,
    }


def run_neuron(values, dyn, loss):
    mine = {k: None if v is None or k in ("exc", "inh") else v.clone().requires_grad_(True) for k, v in values.items()}
    curr = values["decay"] is not None
    spk, v = ChipNeuron.apply(
        mine["syn"],
        values["exc"] if curr else None,
        values["inh"] if curr else None,
        mine["i_offset"],
        mine["alpha"],
        mine["decay"],
        mine["theta"],
        mine["w_rec"],
        dyn,
    )
    gen = torch.Generator().manual_seed(1)
    w, wv = torch.randn(spk.shape, generator=gen), torch.randn(spk.shape, generator=gen)
    (((spk * w).sum() if loss == "both" else 0) + (v * wv).sum() * 1e-2).backward()
    return spk, v, {k: t.grad for k, t in mine.items() if t is not None}


@pytest.mark.parametrize("late", [False, True], ids=["now", "late"])
@pytest.mark.parametrize("subtract", [True, False], ids=["subtract", "zero"])
@pytest.mark.parametrize("recurrent", [False, True], ids=["ff", "rec"])
@pytest.mark.parametrize("curr_exp", [False, True], ids=["lif", "curr_exp"])
def test_c_and_torch_loops_agree(curr_exp, recurrent, subtract, late):
    """Spikes and membranes bit for bit, gradients to float32 rounding, for every FMA and spike-test setting (and
    with the spikes' gradient absent, as when only the membrane enters the loss).
    """
    values = neuron_inputs(curr_exp, recurrent)
    for fused, current_fused, ge in itertools.product([True, False], repeat=3):
        if current_fused != fused and not curr_exp:
            continue
        out = {}
        for backend, loss in itertools.product(("c", "torch"), ("both", "membrane")):
            dyn = Dynamics(50.0, fused, current_fused, ge, subtract, 2.0, backend, late)
            out[backend, loss] = run_neuron(values, dyn, loss)
        for loss in ("both", "membrane"):
            (spk_c, v_c, g_c), (spk_t, v_t, g_t) = out["c", loss], out["torch", loss]
            assert torch.equal(spk_c, spk_t) and np.array_equal(bits(v_c), bits(v_t))
            for key in g_c:
                torch.testing.assert_close(g_c[key], g_t[key], rtol=2e-5, atol=1e-6, msg=key)
        spk = out["c", "both"][0]
        assert 0 < int(spk.sum()) < spk.numel()
        if ge and not recurrent:  # the exact hit of the threshold fires only under >=
            assert bool(spk[int(late), :, 0].all())


def test_late_sums_are_the_shifted_sums():
    values = neuron_inputs(True, True)
    shifted = dict(values)
    for key in ("syn", "exc", "inh"):
        shifted[key] = torch.cat([torch.zeros_like(values[key][:1]), values[key][:-1]])
    spk_l, v_l, g_l = run_neuron(values, Dynamics(50.0, True, True, True, True, 2.0, "c", late=True), "both")
    spk_s, v_s, g_s = run_neuron(shifted, Dynamics(50.0, True, True, True, True, 2.0, "c"), "both")
    assert torch.equal(spk_l, spk_s) and np.array_equal(bits(v_l), bits(v_s))
    torch.testing.assert_close(g_l["syn"][:-1], g_s["syn"][1:], rtol=0, atol=0)
    assert not g_l["syn"][-1].any()
    for key in ("i_offset", "alpha", "decay", "theta", "w_rec"):
        torch.testing.assert_close(g_l[key], g_s[key], rtol=0, atol=0, msg=key)


def conv_net(seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        snn.Leaky(beta=0.9, init_hidden=True, reset_delay=False),
        nn.AvgPool2d(2),
        nn.Conv2d(4, 6, 3, stride=2),
        snn.Leaky(beta=0.7, init_hidden=True, reset_delay=False),
        nn.Flatten(),
        nn.Linear(6 * 2 * 2, 3),
        snn.Leaky(beta=0.9, init_hidden=True, reset_delay=False),
    )
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(4)
    return m


def rsynaptic_net(seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(
        nn.Linear(16, 12),
        snn.RSynaptic(
            alpha=0.8, beta=0.9, linear_features=12, init_hidden=True, reset_mechanism="zero", reset_delay=False
        ),
        nn.Linear(12, 4),
        snn.Synaptic(alpha=0.7, beta=0.85, init_hidden=True, reset_delay=False),
    )
    with torch.no_grad():
        m[0].weight.mul_(6)
        m[2].weight.mul_(3)
    return m


@pytest.mark.parametrize("net,shape", [(conv_net, (2, 10, 10)), (rsynaptic_net, (16,))], ids=["conv", "rsynaptic"])
def test_both_backends_bit_identical_to_the_simulator(net, shape):
    """Every layer's spikes and membranes (conv layers run channel-last and come back in chip order), for the
    C loop and the torch loop, and the same weight gradients.
    """
    x = (torch.rand(9, 5, *shape, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    grads = {}
    for backend in ("c", "torch"):
        model = QATModel(net(), shape, QuantConfig(dense_model="lif"), backend=backend)
        report = verify(model, x)
        assert report.identical, report.summary()
        spk, mem = model(x)
        (spk.sum() + mem.sum() * 1e-3).backward()
        grads[backend] = [p.grad for p in model.parameters() if p.grad is not None]
        with torch.no_grad():
            assert all(float(s.mean()) > 0 for s in model.run(x).spikes)
    assert len(grads["c"]) == len(grads["torch"]) > 2
    for g_c, g_t in zip(grads["c"], grads["torch"], strict=True):
        torch.testing.assert_close(g_c, g_t, rtol=1e-4, atol=1e-5)


def test_membranes_recorded_only_where_asked():
    model = QATModel(conv_net(), (2, 10, 10))
    x = (torch.rand(6, 2, 2, 10, 10) < 0.3).float()
    full, last, none = (model.run(x, record_v=r) for r in (True, "last", False))
    assert [v is None for v in last.voltages] == [True, True, False] and len(none.voltages) == 0
    assert np.array_equal(bits(last.voltages[-1]), bits(full.voltages[-1]))
    assert [s.shape for s in full.spikes[:2]] == [(9, 2, 400), (9, 2, 24)]
    for a, b in zip(full.spikes, none.spikes, strict=True):
        assert torch.equal(a, b)


def test_backend_choice_is_checked():
    with pytest.raises(ConfigError, match="backend"):
        QATModel(conv_net(), (2, 10, 10), backend="gpu")
    assert Dynamics(1.0, True, True, True, True, 2.0).uses_c("cpu")
    assert not Dynamics(1.0, True, True, True, True, 2.0, "torch").uses_c("cpu")
    assert not Dynamics(1.0, True, True, True, True, 2.0).uses_c("meta")
    with pytest.raises(ConfigError, match="CPU tensors only"):
        Dynamics(1.0, True, True, True, True, 2.0, "c").uses_c("meta")


def test_chip_run_follows_the_weights_device():
    """The forward runs where the weights are (here the CPU; a CUDA model runs the torch loop on the GPU)."""
    model = QATModel(rsynaptic_net(), (16,), backend="torch")
    x = np.zeros((4, 3, 16), dtype=np.float32)
    trace = chip_run(model.layer_tensors(), x, 6, model.config.profile)
    assert trace.spikes[-1].device == model.model[0].weight.device and trace.spikes[-1].shape == (6, 3, 4)


def test_samples_split_over_threads_give_the_same_bits():
    """The C loop splits the samples over torch's thread count: 1 and 3 threads give identical outputs and
    gradients (each sample's work is the same, only who does it changes).
    """
    values = neuron_inputs(True, True, seed=2, t_len=5, batch=6, n=6)
    big = dict(values)
    for key in ("syn", "exc", "inh"):
        big[key] = values[key].repeat(1, 1, 700)  # 4200 neurons: 6 samples give three threads work
    for key in ("i_offset", "alpha", "decay", "theta"):
        big[key] = values[key].repeat(700)
    big["w_rec"] = None
    threads = torch.get_num_threads()
    out = {}
    try:
        for count in (1, 3):
            torch.set_num_threads(count)
            out[count] = run_neuron(big, Dynamics(50.0, True, False, True, False, 2.0, "c", late=True), "both")
    finally:
        torch.set_num_threads(threads)
    (spk1, v1, g1), (spk3, v3, g3) = out[1], out[3]
    assert torch.equal(spk1, spk3) and np.array_equal(bits(v1), bits(v3)) and 0 < float(spk1.detach().mean()) < 1
    for key in g1:
        assert torch.equal(g1[key], g3[key]), key


def test_mismatched_tensors_are_refused_before_the_c_loop():
    values = neuron_inputs(True, True)
    dyn = Dynamics(50.0, True, True, True, True, 2.0, "c")
    args = dict(values)
    with pytest.raises(ConfigError, match="excitatory and inhibitory sums"):
        ChipNeuron.apply(
            args["syn"],
            args["exc"][:, :2],
            args["inh"],
            args["i_offset"],
            args["alpha"],
            args["decay"],
            args["theta"],
            args["w_rec"],
            dyn,
        )
    with pytest.raises(ConfigError, match="recurrent weights of shape"):
        ChipNeuron.apply(
            args["syn"],
            args["exc"],
            args["inh"],
            args["i_offset"],
            args["alpha"],
            args["decay"],
            args["theta"],
            args["w_rec"][:3],
            dyn,
        )
    with pytest.raises(ConfigError, match="i_offset has 4 values for 6 neurons"):
        ChipNeuron.apply(
            args["syn"],
            args["exc"],
            args["inh"],
            args["i_offset"][:4],
            args["alpha"],
            args["decay"],
            args["theta"],
            args["w_rec"],
            dyn,
        )
