"""The DVS Gesture network, defined once: as an snnTorch model for training and as a chip network for simulation.

Float form (snnTorch, what is trained, quantised and exported)::

    2x32x32 spikes -> Conv2d 5x5 -> 16 -> Leaky -> AvgPool2d 2 -> Conv2d 5x5 -> 32 -> Leaky -> AvgPool2d 2
                   -> Flatten -> Linear -> 11 -> Leaky

Chip form (:func:`chip_network` of a model quantized by :mod:`s2sim.quantize` / :mod:`s2sim.qat`): ``input``
(spike_list, 2*32*32) -> lif_conv2d 16x28x28 -> lif_conv2d 32x10x10 (the average pool fused into its
Conv2DProjection as a 2x2 sum-pool) -> lif_no_delay 11 (the second pool and the flatten folded into one connection
list from every conv2 neuron). A sum-pool counts every spike of its window where the average pool takes a
quarter of them, so the quantiser folds the 1/4 into the weights after the pool.

The Leaky layers reset by subtraction, by default with ``reset_delay=False``: the threshold is subtracted in the
step the neuron spikes, which is what the chip does (``V = V * alpha_decay + input``; spike; ``V -= threshold``;
docs/quantization.md works out the remaining differences). Every population hop costs the chip one tick, so
the chip's output at tick ``t + latency`` is the float model's output at step ``t`` (:class:`GestureNetwork`).

Torch and snnTorch are imported inside the functions that need them.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from .errors import ConfigError, TraceError
from .gestures import N_CLASSES, SENSOR_SIZE, FrameConfig

#: Weight layers in order (keys of the saved model file).
LAYER_NAMES = ("conv1", "conv2", "output")


@dataclass(frozen=True)
class GestureNetConfig:
    """Sizes and neuron constants of the gesture network.

    Parameters
    ----------
    frames : FrameConfig
        Input: ``n_time_bins`` ticks of ``2 x size x size`` spikes.
    channels : tuple of int
        Output channels of the two convolutions.
    kernel : int
        Square convolution kernel (no padding, stride 1).
    pool : int
        Square average-pool window (= stride) after each convolution.
    beta : float
        Membrane decay of every Leaky layer (``alpha_decay`` on the chip).
    threshold : float
        Firing threshold of every Leaky layer, in the float model's units.
    n_classes : int
    reset_delay : bool
        snnTorch's ``reset_delay`` of every Leaky layer. False (default) subtracts the threshold in the spike step,
        as the chip does; True is snnTorch's own default, which subtracts it one step later and undecayed, so the
        chip's spikes differ (docs/quantization.md) and PTQ inherits the difference.
    """

    frames: FrameConfig = field(default_factory=FrameConfig)
    channels: tuple[int, int] = (16, 32)
    kernel: int = 5
    pool: int = 2
    beta: float = 0.9
    threshold: float = 1.0
    n_classes: int = N_CLASSES
    reset_delay: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if len(self.channels) != 2 or min(self.channels) < 1:
            raise ConfigError(f"GestureNetConfig.channels must be two positive ints, got {self.channels}")
        if not 0.0 <= self.beta <= 1.0:
            raise ConfigError(f"GestureNetConfig.beta = {self.beta}; snnTorch clamps it to [0, 1]")
        if not self.threshold > 0:
            raise ConfigError(f"GestureNetConfig.threshold must be positive, got {self.threshold}")
        if self.frames.height != self.frames.size:  # the layer sizes below are computed for square frames
            raise ConfigError(f"GestureNetConfig: the gesture network takes square frames; FrameConfig gives "
                              f"{self.frames.height}x{self.frames.size} (sensor {self.frames.sensor_size})")
        size = self.frames.size
        for i in range(2):
            out = size - self.kernel + 1
            if out < self.pool or out % self.pool:
                raise ConfigError(f"GestureNetConfig: conv{i + 1} output {out}x{out} (input {size}, kernel "
                                  f"{self.kernel}) is not a positive multiple of the pool size {self.pool}")
            size = out // self.pool

    @property
    def conv_out(self) -> tuple[int, int]:
        """Side length of conv1's and conv2's outputs (before pooling)."""
        c1 = self.frames.size - self.kernel + 1
        c2 = c1 // self.pool - self.kernel + 1
        return c1, c2

    @property
    def fc_in(self) -> int:
        """Inputs of the dense layer: conv2 channels x pooled side^2."""
        return self.channels[1] * (self.conv_out[1] // self.pool) ** 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GestureNetConfig":
        data = dict(data)
        data["frames"] = FrameConfig(**data["frames"])
        return cls(**data)


# -- the float model --------------------------------------------------------------------------------------------
def build_torch_model(config: GestureNetConfig = GestureNetConfig()):
    """The snnTorch model: an ``nn.Sequential`` of Conv2d, Leaky, AvgPool2d, ..., Linear, Leaky (no biases).

    Leaky layers hold their state (``init_hidden=True``); run the model with :func:`run_torch_model`, which resets
    it before every batch.
    """
    import snntorch as snn
    import torch
    from snntorch import surrogate

    c1, c2 = config.channels
    grad = surrogate.fast_sigmoid(slope=25)

    def leaky():
        return snn.Leaky(beta=config.beta, threshold=config.threshold, spike_grad=grad, init_hidden=True,
                         reset_mechanism="subtract", reset_delay=config.reset_delay)

    return torch.nn.Sequential(
        torch.nn.Conv2d(config.frames.polarities, c1, config.kernel, bias=False), leaky(),
        torch.nn.AvgPool2d(config.pool),
        torch.nn.Conv2d(c1, c2, config.kernel, bias=False), leaky(),
        torch.nn.AvgPool2d(config.pool),
        torch.nn.Flatten(),
        torch.nn.Linear(config.fc_in, config.n_classes, bias=False), leaky(),
    )


def run_torch_model(model, spikes):
    """Run the model over time: ``spikes`` [batch, T, C, H, W] (or [batch, T, C*H*W]) -> output spikes [batch, T, 11].

    Resets every Leaky layer first, so batches are independent.
    """
    import torch
    from snntorch import utils

    first = model[0]
    if spikes.dim() == 3:  # flat chip order c*H*W + h*W + w is a plain reshape of [C, H, W]
        side = int(round((spikes.shape[-1] / first.in_channels) ** 0.5))
        spikes = spikes.reshape(spikes.shape[0], spikes.shape[1], first.in_channels, side, side)
    utils.reset(model)
    return torch.stack([model(spikes[:, t]) for t in range(spikes.shape[1])], dim=1)


def predict(counts: np.ndarray) -> np.ndarray:
    """Class per sample from output spike counts [..., n_classes]: the most spikes, lowest index on a tie."""
    return np.argmax(np.asarray(counts), axis=-1)


def weight_layers(model) -> list:
    """The model's Conv2d / Linear layers in order (conv1, conv2, output)."""
    import torch

    layers = [m for m in model if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    if len(layers) != len(LAYER_NAMES):
        raise ConfigError(f"gesture model has {len(layers)} weight layers; expected {len(LAYER_NAMES)} "
                          f"({', '.join(LAYER_NAMES)})")
    return layers


def model_weights(model) -> list[np.ndarray]:
    """Float weights of conv1, conv2, output in torch layout, as float64 numpy arrays."""
    return [layer.weight.detach().cpu().double().numpy().copy() for layer in weight_layers(model)]


def time_first(spikes: np.ndarray):
    """Samples [batch, T, 2*H*W] (chip order, two polarities, square frames) as the float32 tensor
    [T, batch, 2, H, W] that :mod:`s2sim.quantize` and :mod:`s2sim.qat` take."""
    import torch

    arr = np.asarray(spikes)
    channels = SENSOR_SIZE[2]
    side = int(round((arr.shape[-1] / channels) ** 0.5))
    if channels * side * side != arr.shape[-1]:
        raise ConfigError(f"time_first: {arr.shape[-1]} inputs are not {channels} square frames")
    return torch.from_numpy(arr.reshape(arr.shape[0], arr.shape[1], channels, side, side)
                            .transpose(1, 0, 2, 3, 4).astype(np.float32))


# -- the chip form ----------------------------------------------------------------------------------------------
@dataclass
class GestureNetwork:
    """A chip network and how to drive it and read it.

    Attributes
    ----------
    net : s2sim.snn.Network
    input : str
        Name of the spike_list population (fed uint8 [batch, ticks, n_inputs]).
    output : str
        Name of the output population.
    timesteps : int
        Ticks to run: the input's bins plus enough ticks for the last bin to reach the output.
    latency : int
        Population hops from input to output; output tick ``t + latency`` is the float model's step ``t``.
    """

    net: Any
    input: str
    output: str
    timesteps: int
    latency: int

    def inputs(self, spikes: np.ndarray) -> dict[str, np.ndarray]:
        """Simulator inputs for spikes [batch, T, n_inputs]: the bins followed by silent ticks up to timesteps."""
        spikes = np.asarray(spikes, dtype=np.uint8)
        pad = self.timesteps - spikes.shape[1]
        if pad < 0:
            raise ConfigError(f"input has {spikes.shape[1]} ticks; the network runs {self.timesteps}")
        silent = np.zeros((spikes.shape[0], pad, spikes.shape[2]), np.uint8)
        return {self.input: np.concatenate([spikes, silent], axis=1)}

    def aligned(self, spikes: np.ndarray, n_bins: int) -> np.ndarray:
        """A population's recorded spikes [batch, timesteps, n] cut to the float model's steps [batch, n_bins, n]."""
        return spikes[:, self.latency:self.latency + n_bins]


def chip_network(quantized, n_time_bins: int, record: Sequence[str] = ("spikes",),
                 name: str = "dvs_gesture") -> GestureNetwork:
    """The chip network of a quantized gesture model (:func:`s2sim.quantize.ptq` or ``QATModel.freeze()``).

    Populations: ``input`` (spike_list) and one per Leaky layer (lif_conv2d, lif_conv2d, lif_no_delay), named by
    :mod:`s2sim.quantize`; every layer records ``record``.
    """
    net = quantized.to_network(record=record, name=name)
    names = quantized.population_names
    return GestureNetwork(net, names[0], names[-1], quantized.n_ticks(n_time_bins), len(quantized.layers))


def quant_config_to_dict(config) -> dict[str, Any]:
    """A :class:`s2sim.quantize.QuantConfig` as plain JSON-able data (stored with a QAT-trained model, so that
    freezing it later uses exactly the scale rule it was trained with)."""
    from dataclasses import fields

    out = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "profile"}
    out["percentile"] = list(out["percentile"]) if isinstance(out["percentile"], tuple) else out["percentile"]
    out["search_percentiles"] = list(out["search_percentiles"])
    out["profile"] = config.profile.to_dict()
    return out


def quant_config_from_dict(data: dict[str, Any]):
    """Inverse of :func:`quant_config_to_dict`."""
    from .profile import ChipProfile
    from .quantize import QuantConfig

    data = dict(data)
    data["profile"] = ChipProfile.from_dict(data.get("profile", {}))
    if isinstance(data.get("percentile"), list):
        data["percentile"] = tuple(data["percentile"])
    if "search_percentiles" in data:
        data["search_percentiles"] = tuple(data["search_percentiles"])
    return QuantConfig(**data)


# -- files ------------------------------------------------------------------------------------------------------
def save_model(path: str | os.PathLike, model, config: GestureNetConfig, meta: dict | None = None) -> None:
    """Write the model's weights (float32) and config into one ``.npz`` (no pickle)."""
    import json

    arrays = {f"w_{name}": w.astype(np.float32) for name, w in zip(LAYER_NAMES, model_weights(model))}
    np.savez_compressed(path, config=json.dumps(config.to_dict()), meta=json.dumps(meta or {}), **arrays)


def load_model(path: str | os.PathLike):
    """Read a file written by :func:`save_model`: ``(model, config, meta)``; the model is in eval mode."""
    import json

    import torch

    try:
        with np.load(path) as z:
            config = GestureNetConfig.from_dict(json.loads(str(z["config"])))
            meta = json.loads(str(z["meta"]))
            weights = [z[f"w_{name}"] for name in LAYER_NAMES]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise TraceError(f"{path}: not a gesture model written by save_model ({exc})") from exc
    model = build_torch_model(config)
    with torch.no_grad():
        for layer, w in zip(weight_layers(model), weights):
            if tuple(layer.weight.shape) != w.shape:
                raise TraceError(f"{path}: weights of shape {w.shape} do not fit layer {tuple(layer.weight.shape)}")
            layer.weight.copy_(torch.from_numpy(w))
    return model.eval(), config, meta
