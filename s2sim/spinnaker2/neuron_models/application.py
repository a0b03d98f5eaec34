"""The application classes' shared base: the class-level settings scripts assign before a run."""
from __future__ import annotations

from typing import Any, ClassVar

from ...errors import ConfigError
from .common import DVFSParams


class Application:
    """One neuron model's ARM application. Subclasses name the models they run; scripts set ``dvfs_params`` (and
    ``profiling``) on the class."""

    models: ClassVar[tuple[str, ...]] = ()
    dvfs_params: ClassVar[DVFSParams | None] = None
    profiling: ClassVar[bool] = False

    @classmethod
    def settings(cls) -> dict[str, Any]:
        """The class's settings as a JSON-able dict (checked: a script may have assigned anything)."""
        dvfs = cls.dvfs_params
        if dvfs is not None and not isinstance(dvfs, DVFSParams):
            raise ConfigError(f"{cls.__name__}.dvfs_params must be a DVFSParams, got {dvfs!r}")
        return {"dvfs_params": None if dvfs is None else dvfs.to_dict(), "profiling": bool(cls.profiling)}
