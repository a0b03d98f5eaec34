"""The quantized network (:class:`QuantizedModel`): integer layers ready for the chip.

It runs in torch (bit for bit the simulator's arithmetic, :mod:`s2sim.chip_forward`) or in the C kernel, and
becomes an :mod:`s2sim.snn` network.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError
from .quant_config import QuantConfig
from .quant_layer import QuantLayer
from .quant_report import QuantReport

INPUT_NAME = "input"


@dataclass
class QuantizedModel:
    """Integer layers ready for the chip, with the torch forward that reproduces the simulator bit for bit."""

    layers: list[QuantLayer]
    input_shape: tuple[int, ...]
    config: QuantConfig
    report: QuantReport | None = None

    @property
    def population_names(self) -> list[str]:
        return [INPUT_NAME] + [layer.name for layer in self.layers]

    def n_ticks(self, input_ticks: int) -> int:
        """Ticks run for an input of ``input_ticks`` ticks: the input plus the pipeline depth (default)."""
        extra = len(self.layers) if self.config.extra_ticks is None else self.config.extra_ticks
        return input_ticks + extra

    def forward(self, x: Any, record_v: bool = False):
        """Run the chip arithmetic in torch on spikes ``x`` ``[T, B, *input_shape]``.

        See :func:`s2sim.chip_forward.chip_run`.
        """
        from .chip_forward import chip_run, frozen_tensors  # needs torch, which the rest of this module does not

        return chip_run(frozen_tensors(self.layers), x, self.n_ticks(int(x.shape[0])), self.config.profile,
                        record_v=record_v)

    def simulate(self, x: Any, simulator: Any = None) -> list[np.ndarray]:
        """Every layer's spikes, uint8 [n_ticks, B, n] each, for spikes ``x`` ``[T, B, *input_shape]``, run by the C
        kernel (``simulator``, default ``s2sim.Simulator(config.profile)``, on :meth:`to_network`): the same spikes
        as :meth:`forward` (tests/test_quantize.py checks it), in a fraction of the time."""
        from .simulator import Simulator

        sim = simulator or Simulator(self.config.profile)
        res = sim.run_batch(self.to_network(record=()), self.simulator_inputs(x), all_spikes=True)
        return [res.spikes[layer.name].transpose(1, 0, 2) for layer in self.layers]

    def predict(self, x: Any, simulator: Any = None) -> np.ndarray:
        """Class = output neuron with the most spikes over the run (ties: lowest index), from :meth:`simulate`."""
        return self.simulate(x, simulator)[-1].sum(0, dtype=np.int64).argmax(1)

    def to_network(self, record: Sequence[str] = ("spikes",), name: str = "quantized") -> Any:
        """The chip network: ``input`` (spike_list) and one population per layer, recording ``record``."""
        from . import snn

        net = snn.Network(name)
        pre = snn.Population(int(np.prod(self.input_shape)), "spike_list", {}, name=INPUT_NAME)
        net.add(pre)
        for layer in self.layers:
            params = {"threshold": layer.threshold.astype(np.float64), "alpha_decay": layer.alpha.astype(np.float64),
                      "i_offset": layer.i_offset.astype(np.float64), "v_init": 0.0, "v_reset": 0.0,
                      "reset": layer.reset}
            if layer.syn_decay is not None:
                # snnTorch neurons have no refractory period; one decay for both currents, as snnTorch's one syn
                decay = layer.syn_decay.astype(np.float64)
                params.update(exc_decay=decay, inh_decay=decay.copy(), t_refrac=0)
            post = snn.Population(layer.geometry.n_out, layer.model, params, name=layer.name, record=list(record))
            net.add(post, _projection(snn, pre, post, layer))
            if layer.recurrent is not None:
                net.add(snn.Projection(post, post, _dense_connections(layer.recurrent), name=f"{layer.name}->self"))
            pre = post
        return net

    def simulator_inputs(self, x: Any) -> dict[str, np.ndarray]:
        """``x`` ``[T, B, *input_shape]`` (0/1) as the simulator's input dict, zero-padded to :meth:`n_ticks`."""
        arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
        t, b = arr.shape[:2]
        flat = arr.reshape(t, b, -1)
        if not np.isin(flat, (0, 1)).all():
            raise ConfigError("input spikes must be 0 or 1 (a spike_list sends at most one spike per neuron and "
                              "tick)")
        out = np.zeros((b, self.n_ticks(t), flat.shape[2]), dtype=np.uint8)
        out[:, :t] = flat.transpose(1, 0, 2)
        return {INPUT_NAME: out}


def _projection(snn: Any, pre: Any, post: Any, layer: QuantLayer) -> Any:
    g = layer.geometry
    if g.kind == "dense":
        return snn.Projection(pre, post, _dense_connections(layer.weights))
    c_in, h, w = g.in_shape
    conv_params = {"in_height": h, "in_width": w, "stride_y": g.stride[0], "stride_x": g.stride[1],
                   "pool_y": g.pool, "pool_x": g.pool, "pad_top": g.padding[0], "pad_bottom": g.padding[0],
                   "pad_left": g.padding[1], "pad_right": g.padding[1]}
    return snn.Conv2DProjection(pre, post, layer.weights.transpose(1, 0, 2, 3).astype(np.float64), conv_params)


def _dense_connections(weights: np.ndarray) -> np.ndarray:
    """Connection list rows [pre, post, weight, delay 0] of a [post, pre] weight matrix (zeros included)."""
    n_out, n_in = weights.shape
    post_idx, pre_idx = np.meshgrid(np.arange(n_out), np.arange(n_in), indexing="ij")
    return np.stack([pre_idx.ravel(), post_idx.ravel(), weights.ravel(), np.zeros(n_out * n_in)], 1)
