"""``spinnaker2.brian2_sim``: py-spinnaker2's software backend, on the simulator.

py-spinnaker2's Brian2 backend keeps neuron state in float64 with float32 parameters and integer weights; s2sim
reproduces that with ``ChipProfile(state_precision="float64")`` (the rest of the profile as set with
:func:`s2sim.spinnaker2.use_profile`). It is a reference for Brian2 traces, not for the chip: use
``hardware.SpiNNaker2Chip`` for what the chip computes.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..profile import ChipProfile
from ..snn import Conv2DProjection, Network
from .backend import current_profile
from .hardware import _SimulatedBoard


class Brian2Backend(_SimulatedBoard):
    """py-spinnaker2's Brian2 backend: ``Brian2Backend().run(net, timesteps, quantize_weights=True)``.

    Reusable across runs, as in py-spinnaker2.
    """

    runs_on_boards = False

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)

    def run(self, network: Network, time_steps: int, quantize_weights: bool = True, **kwargs: Any) -> None:
        """Run ``network`` with float64 state.

        ``quantize_weights=True`` (the default, as the NIR paper's published Brian2 trace shows) rounds float
        weights as the chip does (ChipProfile.weight_rounding). ``False`` asks Brian2 to keep them as floats;
        s2sim's synaptic sums are integers, so that is refused unless every weight is already an integer (then
        the two settings are the same run).
        """
        if not isinstance(quantize_weights, (bool, np.bool_)):
            raise ConfigError(f"Brian2Backend.run: quantize_weights must be True or False, got {quantize_weights!r}")
        if not quantize_weights:
            _refuse_float_weights(network)
        super().run(network, time_steps, **kwargs)

    def _profile(self) -> ChipProfile:
        return replace(current_profile(), state_precision="float64")


def _refuse_float_weights(network: Network) -> None:
    for proj in network.projections:
        w = np.asarray(proj.weights)
        frac = np.flatnonzero(w.ravel() != np.round(w.ravel()))
        if frac.size:
            kind = "conv projection" if isinstance(proj, Conv2DProjection) else "projection"
            raise ConfigError(f"Brian2Backend.run(quantize_weights=False): {kind} {proj.name!r} has the non-integer "
                              f"weight {w.ravel()[frac[0]]!r} ({frac.size} in all); s2sim sums synaptic input in "
                              "integers as the chip does and cannot keep float weights. Run with "
                              "quantize_weights=True (weights rounded by the profile's weight_rounding) or round the "
                              "weights yourself")
