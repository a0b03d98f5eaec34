"""PE load: what each processing element receives, processes and sends in each tick of a run.

Placement (:mod:`s2sim.placement`) puts every population slice on a PE; a run gives every neuron's spikes. From
the two this module counts, per PE and tick, the events the PE time model (:mod:`s2sim.timing`) charges for, with
the routing and data layout of the emulated PE program (csrc/pe, docs/timing.md), whose instruction counts
calibrate the model:

* neuron updates: the slice's neurons, every tick (0 for a spike_list source, which has no state);
* spike packets sent: one multicast packet per spike of the slice's neurons;
* spike packets received: a source population's packets reach every PE that holds a synapse from it (for a
  conv projection, every PE of the target population), in the tick after the spike;
* population-table entries checked: every received packet is matched against each entry of the PE's table
  (one entry per incoming projection that reaches the PE), and rows: the entries it matches;
* synaptic words: the synapses of received spikes into the slice; conv taps applied: the (spike, output neuron
  of the slice) pairs a kernel tap connects; conv taps tested: the taps of a received conv spike over the whole
  output, which the program tests against its slice.

Summed over a population's PEs, words plus conv taps equal the simulator's recorded synaptic events (tested).
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

#: Largest connectivity matrix (pre neurons x PEs) this module builds for one projection.
MAX_MATRIX_ENTRIES = 1 << 27

#: The per-PE, per-tick event counts of a PELoad, in the order PELoad holds them.
EVENTS = ("packets_in", "table_entries", "rows", "words", "conv_taps", "conv_tap_tests", "packets_out")


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
        int [n_pe]: neurons the PE updates every tick.
    events : dict[str, np.ndarray]
        One float64 [batch, n_pe, T] array per name of :data:`EVENTS`.
    """

    populations: list[str]
    models: list[str]
    pes: np.ndarray
    neurons: np.ndarray
    events: dict[str, np.ndarray]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(batch, n_pe, T)."""
        return tuple(self.events["words"].shape)

    @property
    def packets_in(self) -> np.ndarray:
        """Packets each PE receives, per tick."""
        return self.events["packets_in"]

    @property
    def packets_out(self) -> np.ndarray:
        """Packets each PE sends (its neurons' spikes), per tick."""
        return self.events["packets_out"]

    @property
    def synaptic_events(self) -> np.ndarray:
        """Synaptic words plus conv taps applied (the simulator's synaptic event count, per PE)."""
        return self.events["words"] + self.events["conv_taps"]


def pe_load(
    net: Network | NetworkSpec, placement: Placement, result: BatchResult, profile: ChipProfile | None = None
) -> PELoad:
    """Count every PE's load in every tick of ``result``.

    Parameters
    ----------
    net : Network or NetworkSpec
        The network that was run (as it was run).
    placement : Placement
        :func:`s2sim.place` of the same network.
    result : BatchResult
        Must hold ``spikes`` of every population (``Simulator.run_batch(..., all_spikes=True)`` keeps them
        whatever the populations' ``record`` says).
    profile : ChipProfile, optional
        Its ``conv_x_axis`` decides which outputs a conv tap reaches.
    """
    spec = net if isinstance(net, NetworkSpec) else net.validated()
    profile = profile or ChipProfile()
    slices = placement.slices
    pe_of = {pop.name: _slice_index(placement, pop.name, pop.size) for pop in spec.populations}
    batch, ticks = result.batch, result.timesteps
    n_pe = len(slices)
    events = {name: np.zeros((batch, n_pe, ticks)) for name in EVENTS}
    spikes = {p.name: _spikes(result, p.name, (batch, ticks, p.size)) for p in spec.populations}
    for pop in spec.populations:
        # PE-major views ([n_pe, B, T] and [n, B, T]): add.at then indexes the first axis by each neuron's PE
        np.add.at(events["packets_out"].transpose(1, 0, 2), pe_of[pop.name], spikes[pop.name].transpose(2, 0, 1))
    entries = np.zeros(n_pe)
    reached_by: dict[int, np.ndarray] = {}  # source population -> bool [n_pe]: its packets arrive there
    for k in range(len(spec.projections)):
        pre, post = spec.populations[spec.pre[k]], spec.populations[spec.post[k]]
        words, tests = _projection_matrices(spec, k, pe_of, n_pe, profile)
        reach = np.asarray(words.any(axis=0)) if tests is None else np.isin(np.arange(n_pe), pe_of[post.name])
        entries += reach
        reached_by[spec.pre[k]] = reached_by.get(spec.pre[k], np.zeros(n_pe, bool)) | reach
        if ticks < 2:
            continue
        sent = spikes[pre.name][:, :-1, :].astype(np.float64)  # [B, T-1, n_pre], received at t+1
        total = sent.sum(axis=2)  # [B, T-1]
        events["rows"][:, :, 1:] += reach[None, :, None] * total[:, None, :]
        events["words" if tests is None else "conv_taps"][:, :, 1:] += np.einsum("btn,np->bpt", sent, words)
        if tests is not None:
            events["conv_tap_tests"][:, :, 1:] += reach[None, :, None] * (sent @ tests)[:, None, :]
    for a, reach in reached_by.items():
        sent = spikes[spec.populations[a].name][:, :-1, :].sum(axis=2, dtype=np.float64)
        events["packets_in"][:, :, 1:] += reach[None, :, None] * sent[:, None, :]
    events["table_entries"] = events["packets_in"] * entries[None, :, None]
    neurons = np.array([0 if spec.population(s.population).model.is_input else s.neurons for s in slices])
    models = [spec.population(s.population).neuron_model for s in slices]
    return PELoad([s.population for s in slices], models, np.array([s.pe for s in slices]), neurons, events)


def _slice_index(placement: Placement, name: str, size: int) -> np.ndarray:
    """PE row (index into placement.slices) of every neuron of one population."""
    out = np.full(size, -1, dtype=np.int64)
    for row, s in enumerate(placement.slices):
        if s.population == name:
            out[s.start : s.stop] = row
    if np.any(out < 0):
        raise ConfigError(
            f"PE load: the placement does not cover every neuron of population {name!r}; place the "
            "network as it was run"
        )
    return out


def _spikes(result: BatchResult, name: str, shape: tuple[int, int, int]) -> np.ndarray:
    arr = result.spikes.get(name)
    if arr is None:
        raise ConfigError(
            f"PE load: the result holds no spikes of population {name!r}; run with "
            "Simulator.run_batch(..., all_spikes=True) so every population's spikes are kept"
        )
    if arr.shape != shape:
        raise ConfigError(f"PE load: spikes of population {name!r} have shape {arr.shape}; expected {shape}")
    return arr


def _projection_matrices(
    spec: NetworkSpec, k: int, pe_of: dict[str, np.ndarray], n_pe: int, profile: ChipProfile
) -> tuple[np.ndarray, np.ndarray | None]:
    """Synaptic words (conv taps applied) one spike of each pre neuron makes each PE process, [n_pre, n_pe].

    For a conv projection also [n_pre]: the taps its spike tests over the whole output.
    """
    proj, pre, post = spec.projections[k], spec.populations[spec.pre[k]], spec.populations[spec.post[k]]
    if pre.size * n_pe > MAX_MATRIX_ENTRIES:
        raise LimitError(
            f"PE load: projection {proj.name!r}: {pre.size} pre neurons x {n_pe} PEs is above "
            f"{MAX_MATRIX_ENTRIES} matrix entries; estimate the PE load of a smaller network"
        )
    matrix = np.zeros((pre.size, n_pe))
    if isinstance(proj, Conv2DProjection):
        src, dst, _ = proj.tap_pairs(profile.conv_x_axis, (pre.size, post.size))
        np.add.at(matrix, (src, pe_of[post.name][dst]), 1.0)
        return matrix, np.bincount(src, minlength=pre.size).astype(np.float64)
    np.add.at(matrix, (proj.pre_idx, pe_of[post.name][proj.post_idx]), 1.0)
    return matrix, None
