"""One quantized population (:class:`QuantLayer`): integer weights and the float32 values uploaded to the chip."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import LimitError
from .models import MAX_INPUT_SUM
from .snntorch_stages import Geometry

#: The torch forward sums integer weights in float32; sums stay exact up to 2**24 (models.MAX_INPUT_SUM).
EXACT_SUM_LIMIT = MAX_INPUT_SUM


@dataclass
class QuantLayer:
    """One quantized population: integer weights and the float32 values uploaded to the chip.

    ``weights`` are integers (int64) in torch layout; ``threshold``, ``i_offset`` and ``alpha`` are float32, one
    per neuron; ``scale`` maps float units to chip units (chip membrane = float membrane * scale). Current-based
    populations also have ``syn_decay`` (float32, uploaded as exc_decay and inh_decay); recurrent ones
    ``recurrent``, integer weights [n, n] (post, pre) of the projection onto themselves, with the same scale.
    """

    name: str
    geometry: Geometry
    model: str
    limit: int
    scale: float
    clip: float
    rule: str
    weights: np.ndarray
    threshold: np.ndarray
    i_offset: np.ndarray
    alpha: np.ndarray
    reset: str
    n_clipped: int
    float_weights: np.ndarray
    float_threshold: np.ndarray
    syn_decay: np.ndarray | None = None
    recurrent: np.ndarray | None = None
    float_recurrent: np.ndarray | None = None

    @property
    def all_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(integer, float) weights of every synapse into the population, flat: feed-forward then recurrent."""
        ints = [self.weights.ravel()] + ([] if self.recurrent is None else [self.recurrent.ravel()])
        floats = [self.float_weights.ravel()] + ([] if self.float_recurrent is None else [self.float_recurrent.ravel()])
        return np.concatenate(ints), np.concatenate(floats)


def check_exact_sums(layer: QuantLayer) -> None:
    """The torch forward adds integer weights in float32, exact only below 2**24 per neuron and tick."""
    w = np.abs(layer.weights)
    if layer.geometry.kind == "dense":
        per_neuron = w.sum(axis=1)
        if layer.recurrent is not None:
            per_neuron = per_neuron + np.abs(layer.recurrent).sum(axis=1)
        worst = int(per_neuron.max())
    else:
        worst = int(w.reshape(w.shape[0], -1).sum(axis=1).max()) * layer.geometry.pool ** 2
    if worst > EXACT_SUM_LIMIT:
        raise LimitError(f"{layer.name}: worst-case synaptic sum {worst} into one neuron exceeds 2**24 = "
                         f"{EXACT_SUM_LIMIT}; the torch forward would no longer be exact")
