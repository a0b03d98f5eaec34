"""``spinnaker2.neuron_models``: the application classes scripts configure (DVFS parameters, profiling).

In py-spinnaker2 each neuron model is an ARM application with a Python class; scripts set class attributes on
them before a run. The stand-in keeps the classes scripts are seen to configure, and carries their settings into
each run's record (:class:`s2sim.spinnaker2.RunRecord`), where the PE time and energy model reads them.
"""
from __future__ import annotations

from typing import Any

from . import lif_conv2d, lif_neuron


def application_settings() -> dict[str, dict[str, Any]]:
    """Settings of every application class, by neuron model (for a run's record)."""
    classes = (lif_neuron.LIFApplication, lif_neuron.LIFNoDelayApplication, lif_conv2d.LIFConv2dApplication)
    return {model: cls.settings() for cls in classes for model in cls.models}
