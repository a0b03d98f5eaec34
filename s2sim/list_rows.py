"""Connection lists -> the kernel's rows: dense int8 rows or sparse (CSR) rows, built by the C core's helpers.

Lowering a list of millions of synapses must cost little more than what the kernel keeps: the weights are rounded
and range-checked in chunks into one int8 array, and csrc/build.c then fills the rows in one pass (a pair bitmap
finds a repeated pair for the dense form, a counting sort orders the sparse form), with no index temporaries.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import WEIGHT_LOSS_LIMIT, ConfigError, CoreError, LimitError, S2SimError, WeightLossWarning, warn
from .projections import Projection

#: Weights rounded at a time (the float64 temporaries of one chunk stay small).
CHUNK = 1 << 16


def round_weights(weights: np.ndarray, mode: str, where: str) -> np.ndarray:
    """Float weights -> integer-valued float64 by ChipProfile.weight_rounding (see docs/datapath.md)."""
    w = np.asarray(weights, dtype=np.float64)
    if mode == "trunc":
        return np.trunc(w)
    if mode == "nearest_even":
        return np.rint(w)
    if mode == "nearest_away":
        # from the fractional part: floor(|w| + 0.5) would round 0.49999999999999994 up
        t = np.trunc(w)
        return t + np.sign(w) * (np.abs(w - t) >= 0.5)
    if mode == "floor":
        return np.floor(w)
    if mode == "exact":
        bad = np.flatnonzero(w.ravel() != np.round(w.ravel()))
        if bad.size:
            raise ConfigError(f"{where}: weight {w.ravel()[bad[0]]} (entry {bad[0]}) is not an integer and "
                              "ChipProfile.weight_rounding is 'exact'")
        return w
    raise ConfigError(f"{where}: unknown weight_rounding {mode!r}")


def check_range(w: np.ndarray, low: int, high: int, where: str, offset: int = 0, total: int | None = None) -> None:
    """Refuse weights outside low..high after rounding, naming the first (``offset``: index of w[0] in the list)."""
    bad = np.flatnonzero((w.ravel() < low) | (w.ravel() > high))
    if bad.size:
        raise LimitError(f"{where}: weight {w.ravel()[bad[0]]:g} (entry {offset + bad[0]}, after rounding) outside "
                         f"the chip's range {low}..{high}; {total or bad.size} weight(s) out of range (nothing is "
                         "clipped; scale the weights, e.g. with s2sim.quantize)")


@dataclass
class WeightLoss:
    """What rounding does to a list of weights: ``sum |w|``, ``sum |w - rounded|``, non-zero weights before and after,
    the largest ``|w|``; added up chunk by chunk."""

    mass: float = 0.0
    lost: float = 0.0
    nonzero: int = 0
    kept: int = 0
    largest: float = 0.0

    def add(self, w: np.ndarray, rounded: np.ndarray) -> None:
        a = np.abs(w)
        self.mass += float(a.sum())
        self.lost += float(np.abs(w - rounded).sum())
        self.nonzero += int(np.count_nonzero(w))
        self.kept += int(np.count_nonzero(rounded))
        self.largest = max(self.largest, float(a.max(initial=0.0)))

    def report(self, where: str, subject: str, how: str, *, strict: bool = False,
               error: type[S2SimError] = ConfigError) -> None:
        """Warn (WeightLossWarning; ``error`` when ``strict``) when rounding silences the projection: every
        non-zero weight becomes 0, or more than WEIGHT_LOSS_LIMIT of the weight mass is lost."""
        if self.mass == 0.0:
            return
        advice = ("scale the weights up (s2sim.quantize, or ConversionConfig(scale_weights=True) for a NIR graph) "
                  "or choose a model with a wider weight range")
        if not self.kept:
            warn(WeightLossWarning, f"{where}: all {self.nonzero} non-zero weight(s) round to 0 under {how} (largest "
                 f"|w| {self.largest:.4g}); the projection carries no input at all; {advice}", subject,
                 strict=strict, error=error)
        elif self.lost / self.mass > WEIGHT_LOSS_LIMIT:
            warn(WeightLossWarning, f"{where}: rounding under {how} loses {self.lost / self.mass:.0%} of the weight "
                 f"mass sum(|w|) (more than {WEIGHT_LOSS_LIMIT:.0%}); {advice}", subject, strict=strict, error=error)


def check_weight_loss(weights: np.ndarray, rounded: np.ndarray, where: str, subject: str, how: str, *,
                      strict: bool = False, error: type[S2SimError] = ConfigError) -> None:
    """Warn (WeightLossWarning; ``error`` when ``strict``) when rounding silences a projection: every non-zero
    weight becomes 0, or more than WEIGHT_LOSS_LIMIT of the weight mass ``sum(|w|)`` is lost.

    ``how`` names the rounding ("weight_rounding 'trunc'"); an all-zero projection as given is not reported.
    """
    loss = WeightLoss()
    loss.add(np.asarray(weights, dtype=np.float64).ravel(), np.asarray(rounded, dtype=np.float64).ravel())
    loss.report(where, subject, how, strict=strict, error=error)


def int8_weights(proj: Projection, mode: str, limit: int, where: str, strict: bool = False) -> np.ndarray:
    """The list's weights rounded by ``mode`` and checked against -limit..limit, as int8 (limit <= 127); a rounding
    that silences the list is reported (see :class:`WeightLoss`)."""
    stored = proj.stored_weights
    if stored.dtype.kind == "i":  # whole numbers: every rounding mode leaves them as they are, nothing is lost
        if stored.size and (stored.min() < -limit or stored.max() > limit):
            check_range(stored, -limit, limit, where, total=int(np.count_nonzero(np.abs(stored) > limit)))
        return stored.astype(np.int8)
    out = np.empty(stored.size, np.int8)
    loss = WeightLoss()
    for a in range(0, stored.size, CHUNK):
        w = round_weights(stored[a:a + CHUNK], mode, where)
        loss.add(stored[a:a + CHUNK], w)
        if w.size and (w.min() < -limit or w.max() > limit):
            total = sum(int(np.count_nonzero(np.abs(round_weights(stored[b:b + CHUNK], mode, where)) > limit))
                        for b in range(0, stored.size, CHUNK))
            check_range(w, -limit, limit, where, a, total)
        out[a:a + CHUNK] = w
    loss.report(where, proj.name, f"weight rounding {mode!r}", strict=strict)
    return out


@dataclass
class Rows:
    """One list's rows: ``arrays`` for the kernel (dense: dense, row_nnz; sparse: row_ptr, target, weight and,
    when the delays differ, delay), and ``abs_sum`` [n_post], the sum of ``|w|`` into each internal post neuron."""

    dense: bool
    arrays: dict[str, np.ndarray]
    abs_sum: np.ndarray


def _c(ctype: str, arr: np.ndarray | None):
    """A C pointer into ``arr`` (NULL for None); the caller keeps ``arr`` alive for the call."""
    from ._core import ffi

    return ffi.NULL if arr is None else ffi.cast(ctype, ffi.from_buffer(arr))


def build_rows(proj: Projection, weights: np.ndarray, n_pre: int, n_post: int, pre_order: np.ndarray | None,
               post_order: np.ndarray | None, try_dense: bool, uniform_delay: bool) -> Rows:
    """Dense rows when ``try_dense`` and no pair repeats, else sparse rows; indices in internal order
    (``*_order``: external -> internal index, None when they agree)."""
    from ._core import lib

    m = weights.size
    maps = [None if order is None else np.ascontiguousarray(order, dtype=np.int32) for order in (pre_order, post_order)]
    pre_map, post_map = (_c("int32_t *", arr) for arr in maps)
    args = (m, _c("int32_t *", proj.pre_idx), _c("int32_t *", proj.post_idx), _c("int8_t *", weights))
    if try_dense:
        dense = np.zeros((n_pre, n_post), np.int8)
        seen = np.zeros(-(-n_pre * n_post // 8), np.uint8)
        row_nnz, abs_sum = np.zeros(n_pre, np.int32), np.zeros(n_post, np.int64)
        rc = lib.s2_build_dense(*args, pre_map, post_map, n_pre, n_post, _c("int8_t *", dense),
                                _c("uint8_t *", seen), _c("int32_t *", row_nnz), _c("int64_t *", abs_sum))
        del seen
        if rc == lib.S2_OK:
            return Rows(True, {"dense": dense, "row_nnz": row_nnz}, abs_sum)
        if rc != lib.S2_REPEATED_PAIR:
            raise CoreError(f"internal error: projection {proj.name!r} has an index outside its populations")
        del dense
    delays = None if uniform_delay else proj.stored_delays
    arrays = {"row_ptr": np.empty(n_pre + 1, np.int64), "target": np.empty(m, np.int32),
              "weight": np.empty(m, np.int8)}
    if delays is not None:
        arrays["delay"] = np.empty(m, np.uint8)
    abs_sum, cursor = np.zeros(n_post, np.int64), np.empty(n_pre, np.int64)
    rc = lib.s2_build_rows(*args, _c("uint8_t *", delays), pre_map, post_map, n_pre, n_post,
                           _c("int64_t *", arrays["row_ptr"]), _c("int64_t *", cursor),
                           _c("int32_t *", arrays["target"]), _c("int8_t *", arrays["weight"]),
                           _c("uint8_t *", arrays.get("delay")), _c("int64_t *", abs_sum))
    if rc != lib.S2_OK:
        raise CoreError(f"internal error: projection {proj.name!r} has an index outside its populations")
    del maps  # kept alive until here: the C calls read them
    return Rows(False, arrays, abs_sum)
