"""``spinnaker2.brian2_sim``: py-spinnaker2's software backend, on the simulator.

py-spinnaker2's Brian2 backend keeps neuron state in float64 with float32 parameters and integer weights; s2sim
reproduces that with ``ChipProfile(state_precision="float64")`` (the rest of the profile as set with
:func:`s2sim.spinnaker2.use_profile`); ``quantize_weights=False`` keeps fractional weights as Brian2 does. It is a
reference for Brian2 traces, not for the chip: use ``hardware.SpiNNaker2Chip`` for what the chip computes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .. import oracle
from ..errors import ConfigError, NotChipArithmeticWarning
from ..profile import ChipProfile
from ..simulator import publish_results
from ..snn import Network
from .backend import RunRecord, current_profile, notify, say_once
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
        weights as the chip does (ChipProfile.weight_rounding). ``False`` keeps them as floats, as Brian2 does: a
        network with fractional weights then runs on s2sim's numpy reference with float64 synaptic sums (slower,
        and arithmetic no chip runs: said once in a NotChipArithmeticWarning); with integer weights the two
        settings are the same run.
        """
        if not isinstance(quantize_weights, (bool, np.bool_)):
            raise ConfigError(f"Brian2Backend.run: quantize_weights must be True or False, got {quantize_weights!r}")
        if quantize_weights or not _has_fractional_weights(network):
            super().run(network, time_steps, **kwargs)
            return
        say_once(
            "Brian2Backend.float_weights",
            "Brian2Backend.run(quantize_weights=False): fractional weights are "
            "kept and summed in float64 by s2sim's numpy reference, as py-spinnaker2's Brian2 backend keeps "
            "them; no SpiNNaker2 chip computes this",
            NotChipArithmeticWarning,
        )
        settings = self._settings(kwargs)
        profile = self._profile()
        result = oracle.run_batch(network, None, time_steps, profile, float_weights=True)
        publish_results(network, result)
        self.last_run = RunRecord(network, int(time_steps), result, profile, type(self).__name__, settings)
        notify(self.last_run)

    def _profile(self) -> ChipProfile:
        return replace(current_profile(), state_precision="float64")


def _has_fractional_weights(network: Network) -> bool:
    return any(np.any(np.asarray(p.weights) != np.round(np.asarray(p.weights))) for p in network.projections)
