"""Text and JSON forms shared by the conformance reports: a profile written as code, values made JSON-able."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..profile import ChipProfile


def profile_label(profile: ChipProfile) -> str:
    """The profile as code, naming only the fields that differ from ChipProfile()'s."""
    default = ChipProfile().to_dict()
    changed = {k: v for k, v in profile.to_dict().items() if v != default[k]}
    return "ChipProfile(" + ", ".join(f"{k}={v!r}" for k, v in changed.items()) + ")"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, ChipProfile):
        return value.to_dict()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)
    return value
