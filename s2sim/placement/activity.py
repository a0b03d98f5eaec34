"""Activity per PE: spikes and packets each slice sends per tick in a run (:func:`activity_report`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..results import BatchResult
from .slices import Placement


@dataclass(frozen=True)
class ActivityReport:
    """Traffic per PE and tick, averaged over the samples of a run.

    Attributes
    ----------
    pes : np.ndarray
        int [n_pes], the PE of each row (same order as ``placement.slices``).
    populations : list of str
        Population of each row.
    spikes : np.ndarray
        float64 [n_pes, T]: spikes the PE's neurons emitted per tick (mean over samples).
    packets : np.ndarray
        float64 [n_pes, T]: multicast packets the PE sent per tick (a spike is one packet per target population
        its neuron projects to).
    synaptic_events : np.ndarray
        float64 [n_pes, T]: synaptic events the PE processed per tick, the population's count divided over its
        slices in proportion to their fan-in (an estimate).
    exact : np.ndarray
        bool [n_pes]: spikes and packets come from recorded per-neuron spikes (True) or from the population's
        count divided over slices in proportion to their size (False).
    batch : int
        Samples averaged.
    """

    pes: np.ndarray
    populations: list[str]
    spikes: np.ndarray
    packets: np.ndarray
    synaptic_events: np.ndarray
    exact: np.ndarray
    batch: int

    @property
    def timesteps(self) -> int:
        return int(self.spikes.shape[1])

    def to_dict(self) -> dict[str, Any]:
        """Per-PE summaries (mean and peak per tick), JSON-ready."""
        return {
            "batch": self.batch, "timesteps": self.timesteps,
            "pes": [self._pe_summary(i) for i in range(len(self.pes))],
            "packets_per_tick": {"mean": float(self.packets.sum(axis=0).mean()) if self.timesteps else 0.0,
                                 "peak": float(self.packets.sum(axis=0).max()) if self.timesteps else 0.0},
        }

    def _pe_summary(self, i: int) -> dict[str, Any]:
        def stats(arr: np.ndarray) -> dict[str, float]:
            return {"mean": float(arr[i].mean()) if self.timesteps else 0.0,
                    "peak": float(arr[i].max()) if self.timesteps else 0.0}

        return {"pe": int(self.pes[i]), "population": self.populations[i], "exact": bool(self.exact[i]),
                "spikes_per_tick": stats(self.spikes), "packets_per_tick": stats(self.packets),
                "synaptic_events_per_tick": stats(self.synaptic_events)}

    def format(self, top: int = 10) -> str:
        """The busiest PEs (by peak packets per tick) and the chip-wide packet rate."""
        if not len(self.pes) or not self.timesteps:
            return "Activity: no PEs or no ticks recorded."
        total = self.packets.sum(axis=0)
        lines = [f"Activity per PE and tick (mean over {self.batch} sample(s), {self.timesteps} ticks)",
                 f"packets sent by all PEs per tick: mean {total.mean():.2f}, peak {total.max():.2f}",
                 f"{'PE':>5} {'population':<20} {'spikes/tick':>12} {'packets/tick':>13} {'peak pkts':>10} "
                 f"{'syn.events/tick':>16} {'source':>9}"]
        order = np.argsort(-self.packets.max(axis=1), kind="stable")[:top]
        for i in order:
            lines.append(f"{int(self.pes[i]):>5} {self.populations[i]:<20} {self.spikes[i].mean():>12.3f} "
                         f"{self.packets[i].mean():>13.3f} {self.packets[i].max():>10.2f} "
                         f"{self.synaptic_events[i].mean():>16.2f} {'exact' if self.exact[i] else 'prorated':>9}")
        if len(self.pes) > top:
            lines.append(f"... {len(self.pes) - top} more PE(s)")
        lines.append("synaptic events per PE are prorated by fan-in (estimate)")
        return "\n".join(lines)


def activity_report(placement: Placement, result: BatchResult) -> ActivityReport:
    """Spikes, packets and synaptic events per PE and tick from a run's recorded activity.

    Parameters
    ----------
    placement : Placement
        From :func:`place` on the same network.
    result : BatchResult
        Needs ``counts`` for every population (record "counts" on each); where ``spikes`` of a population
        were recorded, its per-slice counts are exact, otherwise the population count is divided over its slices
        in proportion to their size.
    """
    rows_spikes, rows_packets, rows_events, exact = [], [], [], []
    timesteps = result.timesteps
    batch = result.batch
    for pop in placement.populations.values():
        slices = placement.slices_of(pop.name)
        if pop.name not in result.counts:
            raise ConfigError(f"activity report: the result has no counts for population {pop.name!r}; "
                              "record 'counts' on every population")
        counts = np.asarray(result.counts[pop.name], dtype=np.float64)
        if counts.shape != (batch, timesteps, 2):
            raise ConfigError(f"activity report: counts of population {pop.name!r} have shape {counts.shape}; "
                              f"expected ({batch}, {timesteps}, 2)")
        fan = pop.fan_in
        fan_total = fan.sum()
        recorded = result.spikes.get(pop.name)
        for s in slices:
            if recorded is not None:
                spk = recorded[:, :, s.start:s.stop].astype(np.float64)
                rows_spikes.append(spk.sum(axis=2).mean(axis=0))
                rows_packets.append((spk @ pop.packets_per_spike[s.start:s.stop].astype(np.float64)).mean(axis=0))
            else:
                share = s.neurons / pop.size
                spk_est = counts[:, :, 0].mean(axis=0) * share
                rows_spikes.append(spk_est)
                mean_fanout = pop.packets_per_spike[s.start:s.stop].mean()
                rows_packets.append(spk_est * mean_fanout)
            ev_share = fan[s.start:s.stop].sum() / fan_total if fan_total else 0.0
            rows_events.append(counts[:, :, 1].mean(axis=0) * ev_share)
            exact.append(recorded is not None)
    n = len(placement.slices)
    shape = (n, timesteps)

    def stack(rows: list[np.ndarray]) -> np.ndarray:
        return np.stack(rows) if rows else np.zeros(shape)

    return ActivityReport(pes=np.array([s.pe for s in placement.slices], dtype=np.int64),
                          populations=[s.population for s in placement.slices], spikes=stack(rows_spikes),
                          packets=stack(rows_packets), synaptic_events=stack(rows_events),
                          exact=np.array(exact, dtype=bool), batch=batch)
