"""s2sim.chip.to_spinnaker2: the py-spinnaker2 objects it builds, checked through a recording stand-in.

py-spinnaker2 cannot be installed here (not on PyPI), so ``snn_module`` receives a small module whose classes
record their constructor arguments; the checks then rebuild an s2sim network from what py-spinnaker2 would have
received and simulate it, so the argument formats are tested by behaviour, not by string comparison.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from s2sim import ChipProfile, snn
from s2sim.chip import to_spinnaker2
from s2sim.errors import ConfigError
from s2sim.simulator import Simulator


class _Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.max_atoms = None

    def set_max_atoms_per_core(self, n):
        self.max_atoms = n


class _Net(_Recorded):
    def add(self, *objects):
        self.objects = getattr(self, "objects", []) + list(objects)


STANDIN = SimpleNamespace(
    Population=type("Population", (_Recorded,), {}),
    Projection=type("Projection", (_Recorded,), {}),
    Conv2DProjection=type("Conv2DProjection", (_Recorded,), {}),
    Network=_Net,
)


def _network():
    rng = np.random.default_rng(4)
    src = snn.Population(2 * 6 * 6, "spike_list", {i: [0, 2] for i in range(0, 72, 5)}, name="src")
    conv = snn.Population(
        3 * 6 * 3, "lif_conv2d", {"threshold": 6.0, "alpha_decay": 1.0}, name="conv", record=["v", "spikes"]
    )
    out = snn.Population(4, "lif", {"threshold": 5.0, "alpha_decay": 0.5}, name="out", record=["spikes", "v"])
    out.set_max_atoms_per_core(2)
    params = {"in_height": 6, "in_width": 6, "stride_x": 2, "pad_left": 1, "pad_top": 1, "pad_bottom": 1}
    weights = rng.integers(-5, 6, (2, 3, 3, 3))
    conns = [
        [i, j, int(rng.integers(-3, 10)), int(rng.integers(0, 8))]
        for i in range(54)
        for j in range(4)
        if rng.random() < 0.3
    ]
    return snn.Network("chip").add(
        src, conv, out, snn.Conv2DProjection(src, conv, weights, params), snn.Projection(conv, out, conns)
    )


def _rebuild(s2net) -> snn.Network:
    """The s2sim network py-spinnaker2 would have been handed, from the recorded constructor arguments."""
    pops = {}
    for obj in s2net.objects:
        if type(obj).__name__ == "Population":
            kw = obj.kwargs
            pops[id(obj)] = snn.Population(
                kw["size"], kw["neuron_model"], kw["params"], name=kw["name"], record=kw["record"]
            )
    net = snn.Network(s2net.args[0]).add(*pops.values())
    for obj in s2net.objects:
        if type(obj).__name__ == "Conv2DProjection":
            pre, post, weights, params = obj.args
            net.add(snn.Conv2DProjection(pops[id(pre)], pops[id(post)], weights, params))
        elif type(obj).__name__ == "Projection":
            pre, post, conns = obj.args
            net.add(snn.Projection(pops[id(pre)], pops[id(post)], conns))
    return net


@pytest.mark.parametrize("axis", ["width", "height"])
def test_the_chip_computes_the_network_under_its_own_conv_reading(axis):
    net = _network()
    s2net, pops = to_spinnaker2(net, snn_module=STANDIN, conv_x_axis=axis)
    assert set(pops) == {"src", "conv", "out"} and pops["out"].max_atoms == 2
    chip_side = _rebuild(s2net)
    want = Simulator(ChipProfile()).run_batch(net, None, 14)
    got = Simulator(ChipProfile(conv_x_axis=axis)).run_batch(chip_side, None, 14)
    for name in ("conv", "out"):
        np.testing.assert_array_equal(want.voltages[name].view(np.uint32), got.voltages[name].view(np.uint32))
    assert want.spikes["conv"].any() and want.spikes["out"].any()


def test_without_the_swap_a_height_reading_chip_computes_another_convolution():
    net = _network()
    s2net, _ = to_spinnaker2(net, snn_module=STANDIN)  # parameters handed over as written
    want = Simulator(ChipProfile()).run_batch(net, None, 14)
    got = Simulator(ChipProfile(conv_x_axis="height")).run_batch(_rebuild(s2net), None, 14)
    assert not np.array_equal(want.voltages["conv"], got.voltages["conv"])


def test_unknown_conv_reading_is_refused():
    with pytest.raises(ConfigError, match="conv_x_axis = 'diagonal'"):
        to_spinnaker2(_network(), snn_module=STANDIN, conv_x_axis="diagonal")
