"""``spinnaker2.neuron_models.lif_neuron``: the applications of the ``lif`` and ``lif_no_delay`` models."""

from __future__ import annotations

from .application import Application


class LIFApplication(Application):
    """The ``lif`` model (4-bit weights, delays 0..7)."""

    models = ("lif",)


class LIFNoDelayApplication(Application):
    """The ``lif_no_delay`` model (weights -127..127, no delay field)."""

    models = ("lif_no_delay",)
