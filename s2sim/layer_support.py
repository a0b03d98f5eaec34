"""Which torch / snnTorch layers the chip can take, and why the others cannot be taken.

PTQ/QAT (:mod:`s2sim.snntorch_stages`) and the snnTorch exporter (:mod:`s2sim.snntorch_export`) refuse a layer
with the same words: its name, its type, and the reason it has no SpiNNaker2 counterpart.
"""
from __future__ import annotations

from typing import Any

#: The layers the chip path takes (Dropout and Identity are identities at inference and are skipped).
SUPPORTED = ("Linear, Conv2d, AvgPool2d, Flatten, Dropout, Identity and snnTorch Leaky, RLeaky, Synaptic, "
             "RSynaptic")

_ACTIVATION = ("a non-spiking activation: chip populations exchange only spikes, and the neuron layer (Leaky, "
               "Synaptic, ...) is the network's nonlinearity; remove it")
_LSTM = "its LSTM gates (products of state variables) have no chip neuron model; use RLeaky or RSynaptic"

#: Layer class name -> why the chip cannot run it.
REASONS = {
    **{f"MaxPool{d}d": "max pooling has no SpiNNaker2 equivalent (a PE sums weighted spikes, it takes no maximum); "
                       "use nn.AvgPool2d" for d in (1, 2, 3)},
    **dict.fromkeys(("ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "SiLU", "ELU", "Softmax", "LogSoftmax",
                     "Hardtanh", "ReLU6"), _ACTIVATION),
    **dict.fromkeys(("SLSTM", "SConv2dLSTM"), _LSTM),
    "Alpha": "its two coupled synaptic currents have no chip neuron model (lif_curr_exp has one); use Synaptic",
    "Lapicque": "its R and C parametrisation is not converted; use Leaky with the equivalent beta",
    "SpikingNeuron": "a base class, not a neuron model; use Leaky, Synaptic, RLeaky or RSynaptic",
    **{f"BatchNorm{d}d": "batch normalisation is not folded by s2sim; fold it into the preceding Linear or Conv2d "
                         "before converting" for d in (1, 2, 3)},
    "LayerNorm": "a normalisation over the layer needs every neuron's value; a PE sees only spikes",
    **{f"Conv{d}d": f"the chip's convolution is 2-D; a Conv{d}d has no counterpart" for d in (1, 3)},
    "MultiheadAttention": "attention needs products of activations; a PE only sums weighted spikes",
    "Embedding": "a table lookup of non-spike values; feed spikes to a Linear layer instead",
}


def is_refused(module: Any) -> bool:
    """Tell whether ``module`` is a layer with a known reason to be refused.

    It is then one layer, whatever its children: an LSTM's inner convolution is not a layer of the model.
    """
    return type(module).__name__ in REASONS


def refusal(name: str, module: Any) -> str:
    """Word the refusal of a layer the chip path cannot take: its name, its type and why."""
    kind = type(module).__name__
    reason = REASONS.get(kind, "s2sim has no chip mapping for it")
    return f"layer {name!r} ({kind}) cannot run on SpiNNaker2: {reason}. Supported: {SUPPORTED}"
