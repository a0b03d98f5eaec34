"""PE load: what each processing element receives and sends in each tick of a run.

Placement (:mod:`s2sim.placement`) puts every population slice on a PE; a run gives every neuron's spikes. From
the two this module counts, per PE and tick, exactly what the PE time model (:mod:`s2sim.timing`) charges for:

* neuron updates (the slice's neurons, every tick),
* spike packets received: a spike reaches a PE when its neuron has at least one synapse into the PE's slice (one
  multicast packet per spike and PE, however many projections or synapses it feeds there),
* synaptic words processed: the synapses of the received spikes into the slice (conv taps for a
  Conv2DProjection: one per output neuron of the slice a kernel tap reaches, as the kernel counts them),
* spike packets sent: one per spike of the slice's neurons (a multicast packet).

A spike emitted in tick t is received in tick t + 1, as on the chip. Which PEs a packet reaches is s2sim's
assumption (routing to exactly the PEs holding synapses for the sending neuron); docs/timing.md says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, LimitError
from .placement import Placement
from .profile import ChipProfile
from .results import BatchResult
from .snn import Conv2DProjection, Network
from .spec import NetworkSpec

#: Largest connectivity matrix (pre neurons x PEs) this module builds for one source population.
MAX_MATRIX_ENTRIES = 1 << 27


@dataclass(frozen=True)
class PELoad:
    """Per-PE, per-tick load of a batch of runs.

    Attributes
    ----------
    populations, models : list of str
        Population and neuron model of each PE (one row per placement slice, in ``placement.slices`` order).
    pes : np.ndarray
        int [n_pe]: the global PE index of each row.
    neurons : np.ndarray
        int [n_pe]: neurons the PE updates every tick (0 for spike_list sources, which have no state).
    packets_in, words, packets_out : np.ndarray
        float64 [batch, n_pe, T]: packets received, synaptic words processed, packets sent, per tick.
    """

    populations: list[str]
    models: list[str]
    pes: np.ndarray
    neurons: np.ndarray
    packets_in: np.ndarray
    words: np.ndarray
    packets_out: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """(batch, n_pe, T)."""
        return tuple(self.words.shape)  # type: ignore[return-value]


def pe_load(net: Network | NetworkSpec, placement: Placement, result: BatchResult,
            profile: ChipProfile | None = None) -> PELoad:
    """Count every PE's load in every tick of ``result``.

    Parameters
    ----------
    net : Network or NetworkSpec
        The network that was run (as it was run).
    placement : Placement
        :func:`s2sim.place` of the same network.
    result : BatchResult
        Must hold ``spikes`` of every population that projects anywhere (``Simulator.run_batch(...,
        all_spikes=True)`` records them whatever the populations' ``record`` says).
    profile : ChipProfile, optional
        Its ``conv_x_axis`` decides which outputs a conv tap reaches.
    """
    spec = net if isinstance(net, NetworkSpec) else net.validated()
    profile = profile or ChipProfile()
    slices = placement.slices
    pe_of = {pop.name: _slice_index(placement, pop.name, pop.size) for pop in spec.populations}
    batch, ticks = result.batch, result.timesteps
    n_pe = len(slices)
    words = np.zeros((batch, n_pe, ticks))
    packets_in = np.zeros((batch, n_pe, ticks))
    packets_out = np.zeros((batch, n_pe, ticks))
    by_pre: dict[int, list[int]] = {}
    for k, pre in enumerate(spec.pre):
        by_pre.setdefault(pre, []).append(k)
    for a, pop in enumerate(spec.populations):
        spikes = _spikes(result, pop.name, (batch, ticks, pop.size))
        sent = np.zeros((batch, n_pe, ticks))
        np.add.at(sent, (slice(None), pe_of[pop.name], slice(None)), spikes.transpose(0, 2, 1))
        packets_out += sent
        if a not in by_pre or ticks < 2:
            continue
        matrix = _word_matrix(spec, by_pre[a], pe_of, n_pe, profile)
        received = spikes[:, :-1, :].astype(np.float64)                      # [B, T-1, n_pre], delivered at t+1
        words[:, :, 1:] += np.einsum("btn,np->bpt", received, matrix)
        packets_in[:, :, 1:] += np.einsum("btn,np->bpt", received, (matrix > 0).astype(np.float64))
    neurons = np.array([0 if spec.population(s.population).model.is_input else s.neurons for s in slices])
    models = [spec.population(s.population).neuron_model for s in slices]
    return PELoad([s.population for s in slices], models, np.array([s.pe for s in slices]), neurons, packets_in,
                  words, packets_out)


def _slice_index(placement: Placement, name: str, size: int) -> np.ndarray:
    """PE row (index into placement.slices) of every neuron of one population."""
    out = np.full(size, -1, dtype=np.int64)
    for row, s in enumerate(placement.slices):
        if s.population == name:
            out[s.start:s.stop] = row
    if np.any(out < 0):
        raise ConfigError(f"PE load: the placement does not cover every neuron of population {name!r}; place the "
                          "network as it was run")
    return out


def _spikes(result: BatchResult, name: str, shape: tuple[int, int, int]) -> np.ndarray:
    arr = result.spikes.get(name)
    if arr is None:
        raise ConfigError(f"PE load: the result holds no spikes of population {name!r}; run with "
                          "Simulator.run_batch(..., all_spikes=True) so every population's spikes are kept")
    if arr.shape != shape:
        raise ConfigError(f"PE load: spikes of population {name!r} have shape {arr.shape}; expected {shape}")
    return arr


def _word_matrix(spec: NetworkSpec, projections: list[int], pe_of: dict[str, np.ndarray], n_pe: int,
                 profile: ChipProfile) -> np.ndarray:
    """[n_pre, n_pe]: synaptic words one spike of each pre neuron makes each PE process."""
    pre = spec.populations[spec.pre[projections[0]]]
    if pre.size * n_pe > MAX_MATRIX_ENTRIES:
        raise LimitError(f"PE load: population {pre.name!r} ({pre.size} neurons) x {n_pe} PEs is above "
                         f"{MAX_MATRIX_ENTRIES} matrix entries; estimate the PE load of a smaller network")
    matrix = np.zeros((pre.size, n_pe))
    for k in projections:
        proj, post = spec.projections[k], spec.populations[spec.post[k]]
        if isinstance(proj, Conv2DProjection):
            src, dst, _ = proj.tap_pairs(profile.conv_x_axis, (pre.size, post.size))
        else:
            src, dst = proj.pre_idx, proj.post_idx
        np.add.at(matrix, (src, pe_of[post.name][dst]), 1.0)
    return matrix
