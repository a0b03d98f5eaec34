"""The PTQ report: per layer, scale, clipped weights, threshold error and firing rates before and after."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LayerReport:
    """Quantization report of one layer (firing rates in spikes per neuron and tick on the calibration data)."""

    name: str
    model: str
    rule: str
    scale: float
    clip: float
    n_weights: int
    n_clipped: int
    weight_rel_rmse: float
    threshold: float
    threshold_chip: float
    threshold_rel_error: float
    rate_before: float
    rate_after: float
    silent_neurons: float
    warnings: list[str] = field(default_factory=list)


@dataclass
class QuantReport:
    """Per-layer quantization report plus calibration accuracies (percent; None without labels)."""

    layers: list[LayerReport]
    float_accuracy: float | None = None
    quant_accuracy: float | None = None
    search: list[tuple[tuple[float, ...], float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return [w for layer in self.layers for w in layer.warnings] + list(self.notes)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    def format(self) -> str:
        """A plain-text table, one row per layer, then warnings."""
        head = (f"{'layer':<8} {'model':<21} {'rule':<16} {'scale':>9} {'clipped':>9} {'w_rmse':>7} "
                f"{'thr_chip':>10} {'thr_err':>8} {'rate_f':>7} {'rate_q':>7} {'silent':>6}")
        rows = [head]
        for r in self.layers:
            rows.append(f"{r.name:<8} {r.model:<21} {r.rule:<16} {r.scale:>9.4g} {r.n_clipped:>4}/{r.n_weights:<4} "
                        f"{r.weight_rel_rmse:>7.4f} {r.threshold_chip:>10.5g} {r.threshold_rel_error:>8.1e} "
                        f"{r.rate_before:>7.4f} {r.rate_after:>7.4f} {r.silent_neurons:>6.2f}")
        if self.float_accuracy is not None:
            rows.append(f"calibration accuracy: float {self.float_accuracy:.2f} %, quantized "
                        f"{self.quant_accuracy:.2f} %")
        rows += [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(rows)
