"""Reading graph and node metadata: the values s2sim's own NIR export writes, checked before they are trusted."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConversionError
from ..spec import numeric_array
from .graph import _edge_name


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _clean_metadata(md: Any) -> dict[str, Any]:
    """Metadata with bytes decoded and 0-d arrays unwrapped (what nir.read returns differs from what was written)."""
    if not isinstance(md, Mapping):
        raise ConversionError(f"graph or node metadata must be a dict, got {type(md).__name__}")
    out = {}
    for key, value in md.items():
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        elif isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
            value = value.decode(errors="replace") if isinstance(value, bytes) else value
        elif isinstance(value, np.generic):
            value = value.item()
        out[_edge_name(key)] = value
    return out


def _meta_spike_times(md: dict[str, Any], name: str) -> dict[int, list[int]]:
    where = f"node {name!r}"
    neurons = _meta_array(md, "s2sim_spike_neurons", where, integer=True, default=())
    # Ticks are required as soon as neurons are listed: a missing list used to drop every input spike silently.
    default: Any = () if neurons.size == 0 else _REQUIRED
    ticks = _meta_array(
        md, "s2sim_spike_ticks", where, integer=True, size=neurons.size, exact_size=True, default=default
    )
    out: dict[int, list[int]] = {}
    for n, t in zip(neurons.tolist(), ticks.tolist(), strict=True):
        out.setdefault(n, []).append(t)
    return out


_REQUIRED = object()


def _meta_array(
    md: dict[str, Any],
    key: str,
    where: str,
    *,
    integer: bool = False,
    size: int | None = None,
    exact_size: bool = False,
    default: Any = _REQUIRED,
) -> np.ndarray:
    """Return an s2sim metadata entry as a finite float64 (or int64) array of ``size`` values (or one to broadcast)."""
    if key not in md:
        if default is _REQUIRED:
            raise ConversionError(
                f"{where}: the s2sim metadata lacks {key!r} (the file was edited or damaged; export it again)"
            )
        return np.asarray(default, dtype=np.int64 if integer else np.float64)
    label = f"{where}: s2sim metadata {key!r}"
    arr = numeric_array(md[key], label, "integers" if integer else "real numbers", ConversionError)
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)) or (integer and np.any((arr != np.round(arr)) | (np.abs(arr) >= 2**62))):
        raise ConversionError(f"{label} holds values that are not finite{' integers' if integer else ''}")
    if size is not None and arr.size != size and (exact_size or arr.size != 1):
        raise ConversionError(f"{label} has {arr.size} values; expected {size}")
    return arr.astype(np.int64) if integer else arr


def _meta_int(md: dict[str, Any], key: str, where: str) -> int:
    return int(_meta_array(md, key, where, integer=True, size=1, exact_size=True).ravel()[0])


def _meta_text(md: dict[str, Any], key: str, where: str, default: Any = _REQUIRED) -> str:
    value = md.get(key, default)
    if value is _REQUIRED:
        raise ConversionError(
            f"{where}: the s2sim metadata lacks {key!r} (the file was edited or damaged; export it again)"
        )
    if not isinstance(value, str):
        raise ConversionError(f"{where}: s2sim metadata {key!r} = {value!r} must be a string")
    return value


def _same_matrix(
    a: tuple[np.ndarray, np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray, np.ndarray], n_post: int
) -> bool:
    """Tell whether two (pre, post, weight) lists sum to the same matrix (within float rounding).

    The dense matrix is never built.
    """
    keys = np.concatenate([a[0] * n_post + a[1], b[0] * n_post + b[1]])
    uniq, inv = np.unique(keys, return_inverse=True)
    m = a[0].size
    sum_a = np.bincount(inv[:m], weights=a[2], minlength=uniq.size)
    sum_b = np.bincount(inv[m:], weights=b[2], minlength=uniq.size)
    return bool(np.allclose(sum_a, sum_b, rtol=1e-6, atol=1e-9))
