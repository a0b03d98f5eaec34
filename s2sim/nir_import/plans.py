"""What becomes one projection: the chain of operator nodes between two populations, and its plan.

:class:`_Chain` is the chain; :class:`_Plan` says how it is built on the chip.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Chain:
    """A path source population -> ops -> target population (or an Output node when target is None)."""

    source: str
    ops: tuple[str, ...]
    target: str | None
    output: str | None = None


@dataclass
class _Plan:
    """One projection to build into a target population."""

    chain: _Chain
    kind: str  # "conv2d" or "connection_list"
    weights: np.ndarray  # NIR units: conv kernel [C_in, C_out, kH, kW] or connection weights
    pre_idx: np.ndarray | None = None
    post_idx: np.ndarray | None = None
    delays: np.ndarray | None = None
    conv_params: dict[str, int] | None = None
    bias_terms: list[tuple[tuple[str, ...], np.ndarray]] = field(default_factory=list)
    weight_nodes: tuple[str, ...] = ()
    name: str = ""
    notes: list[str] = field(default_factory=list)
    w_scale: float = 1.0
