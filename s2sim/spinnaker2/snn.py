"""``spinnaker2.snn``: Population, Projection, Conv2DProjection and Network.

These are s2sim's own classes (:mod:`s2sim.snn`), which follow py-spinnaker2's constructors, attributes and
between-run editing; a network built from either import is the same object type and runs on both APIs.
"""

from __future__ import annotations

from ..snn import Conv2DProjection, Network, Population, Projection

__all__ = ["Conv2DProjection", "Network", "Population", "Projection"]
