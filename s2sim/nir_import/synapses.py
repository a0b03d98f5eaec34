"""Linear maps between populations as connection lists (:class:`_Synapses`).

Two weight layers in a row are fused by composing their maps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import memory


@dataclass
class _Synapses:
    """A linear map on flat vectors as a list of (pre, post, weight) entries plus a bias; entries may be zero."""

    pre: np.ndarray
    post: np.ndarray
    w: np.ndarray
    n_in: int
    n_out: int
    bias: np.ndarray

    def linear(self, vec: np.ndarray) -> np.ndarray:
        """The map without its bias."""
        return np.bincount(self.post, weights=self.w * vec[self.pre], minlength=self.n_out)

    def apply(self, vec: np.ndarray) -> np.ndarray:
        return self.linear(vec) + self.bias


#: Peak bytes per neuron while converting: float64 NIR and chip parameters, biases, scales and their temporaries.
_NEURON_BYTES = 8 * 40


#: Peak bytes per synapse entry while building connection lists (index and weight arrays with their temporaries).
_ENTRY_BYTES = 128


def _compose(a: _Synapses, b: _Synapses, what: str = "composing two weight layers") -> _Synapses:
    """``b after a``; entries (i, k) exist where some path i -> j -> k exists; listed pre-major like py-spinnaker2."""
    order = np.argsort(b.pre, kind="stable")
    b_pre, b_post, b_w = b.pre[order], b.post[order], b.w[order]
    counts = np.bincount(b_pre, minlength=b.n_in)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    reps = counts[a.post]
    total = int(reps.sum())
    memory.check(total * _ENTRY_BYTES, f"{what} ({total} synapse entries)",
                 "Use fewer or smaller layers, or a conv geometry that converts without unrolling")
    offsets = np.arange(total) - np.repeat(np.cumsum(reps) - reps, reps)
    idx = np.repeat(starts[a.post], reps) + offsets
    pre = np.repeat(a.pre, reps)
    post = b_post[idx]
    w = np.repeat(a.w, reps) * b_w[idx]
    key = pre.astype(np.int64) * b.n_out + post
    uniq, inv = np.unique(key, return_inverse=True)
    merged = np.bincount(inv, weights=w, minlength=uniq.size)
    return _Synapses(uniq // b.n_out, uniq % b.n_out, merged, a.n_in, b.n_out,
                     b.apply(a.bias) if a.bias.any() else b.bias.copy())


def _identity(n: int) -> _Synapses:
    idx = np.arange(n, dtype=np.int64)
    return _Synapses(idx, idx.copy(), np.ones(n), n, n, np.zeros(n))
