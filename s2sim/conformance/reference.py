"""The model's side of a comparison: run a network in the simulator and record it as a Trace."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..profile import ChipProfile
from ..snn import Network
from ..traces import Trace, from_result


def simulate(network: Network, timesteps: int, profile: ChipProfile | None = None,
             inputs: Mapping[str, np.ndarray] | None = None,
             metadata: Mapping[str, Any] | None = None) -> Trace:
    """Run ``network`` in the simulator and return its Trace.

    Parameters
    ----------
    network : Network
    timesteps : int
    profile : ChipProfile, optional
        Default ChipProfile().
    inputs : dict, optional
        spike_list name -> uint8 [timesteps, size]; others replay their params.
    """
    from ..simulator import Simulator

    profile = profile or ChipProfile()
    batch = {k: network.population(k).check_input(v)[None] for k, v in (inputs or {}).items()}
    result = Simulator(profile, num_threads=1).run_batch(network, batch, timesteps)
    return from_result(network, result, profile=profile, inputs=batch, metadata=dict(metadata or {}))
