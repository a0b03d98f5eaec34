"""``spinnaker2.neuron_models.lif_conv2d``: the application of the ``lif_conv2d`` model."""

from __future__ import annotations

from .application import Application


class LIFConv2dApplication(Application):
    """The ``lif_conv2d`` model (target of Conv2DProjection, int8 kernels)."""

    models = ("lif_conv2d",)
