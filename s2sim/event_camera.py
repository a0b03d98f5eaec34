"""A simple event-camera (DVS) pixel model: intensity frames in, ON/OFF events out.

Each pixel remembers the log intensity at its last event (its reference). At every time step it compares the
current log intensity ``log(eps + I)`` with that reference: for each contrast threshold the change exceeds it
emits one event (ON for a rise, OFF for a fall) and moves its reference by one threshold, as the DVS
pixel circuit does. Thresholds differ from pixel to pixel (a fixed pattern drawn once per sensor). After an event
a pixel is blind for a refractory period; the change it misses is not lost, it fires once the period is over.
Background activity adds events at random pixels, times and polarities (a Poisson process per pixel,
independent of the scene).

The model is written for batches: :class:`EventCamera` keeps the state of ``N`` sensors of the same size and
:meth:`EventCamera.step` returns the event counts of one time step, [N, 2, H, W] (polarity 0 = OFF, 1 = ON, the
order of tonic and of the chip input). Only numpy is needed.

This is the textbook model (as in the v2e and ESIM emulators), not a calibrated one: no bandwidth limit, no
leak events, no timestamp jitter within a step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

#: A change within this many thresholds of a whole number of thresholds counts as a tie (does not exceed it).
TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class EventCameraConfig:
    """Pixel parameters of the event camera.

    Parameters
    ----------
    threshold : float
        Mean contrast threshold, in log-intensity units (ON and OFF alike).
    threshold_mismatch : float
        Relative standard deviation of the per-pixel thresholds (clipped to at least 0.25 x the mean).
    refractory_ms : float
        Blind time after an event.
    noise_hz : float
        Background events per pixel and second (both polarities together).
    log_eps : float
        Offset in ``log(log_eps + I)``, with intensities I in [0, 1]: how dark "black" is.
    """

    threshold: float = 0.3
    threshold_mismatch: float = 0.05
    refractory_ms: float = 1.0
    noise_hz: float = 0.5
    log_eps: float = 0.1

    def __post_init__(self) -> None:
        for name in ("threshold", "log_eps"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"EventCameraConfig.{name} = {getattr(self, name)} must be > 0")
        for name in ("threshold_mismatch", "refractory_ms", "noise_hz"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ConfigError(f"EventCameraConfig.{name} = {value} must be a finite number >= 0")

    def pixel_thresholds(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """Return the fixed pattern of one sensor: a threshold per pixel, float64 [H, W]."""
        relative = 1.0 + self.threshold_mismatch * rng.standard_normal((height, width))
        return self.threshold * np.maximum(relative, 0.25)


class EventCamera:
    """The pixel state of ``N`` sensors of one size, advanced one time step at a time.

    Parameters
    ----------
    config : EventCameraConfig
    first_frame : np.ndarray
        Intensities [N, H, W] in [0, 1] at time 0; every pixel starts adapted to it (no events at time 0).
    thresholds : np.ndarray
        Per-pixel thresholds [H, W] (:meth:`EventCameraConfig.pixel_thresholds`), shared by the N sensors.
    step_ms : float
        Length of one time step.
    """

    def __init__(
        self, config: EventCameraConfig, first_frame: np.ndarray, thresholds: np.ndarray, step_ms: float
    ) -> None:
        frame = np.asarray(first_frame, dtype=np.float64)
        if frame.ndim != 3 or thresholds.shape != frame.shape[1:]:
            raise ConfigError(
                f"EventCamera: first frame {frame.shape} must be [N, H, W] and the thresholds {thresholds.shape} [H, W]"
            )
        if not step_ms > 0:
            raise ConfigError(f"EventCamera: step_ms = {step_ms} must be > 0")
        self.config = config
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.step_ms = float(step_ms)
        self.reference = self._log(frame)
        self.blind_until = np.full(frame.shape, -np.inf)
        # at most one event per refractory period, and at least one per step
        self.max_per_step = max(1, int(self.step_ms // config.refractory_ms)) if config.refractory_ms > 0 else None

    def _log(self, frame: np.ndarray) -> np.ndarray:
        return np.log(self.config.log_eps + np.clip(frame, 0.0, 1.0))

    def step(self, frame: np.ndarray, t_ms: float) -> np.ndarray:
        """Event counts [N, 2, H, W] (OFF, ON) of the time step starting at ``t_ms`` with intensities ``frame``."""
        change = self._log(np.asarray(frame, dtype=np.float64)) - self.reference
        # thresholds strictly exceeded: a scene that returns exactly to where a pixel last fired (the end of a
        # closed saccade path) must not fire every such pixel at once on the tie; TIE_TOLERANCE keeps float64
        # rounding of the references from turning such ties into events
        crossings = np.maximum(np.ceil(np.abs(change) / self.thresholds - TIE_TOLERANCE) - 1, 0)
        if self.max_per_step is not None:
            crossings = np.minimum(crossings, self.max_per_step)
        crossings[self.blind_until > t_ms] = 0
        fired = crossings > 0
        self.reference += np.sign(change) * crossings * self.thresholds
        self.blind_until[fired] = t_ms + self.config.refractory_ms
        counts = np.zeros((frame.shape[0], 2, *frame.shape[1:]), dtype=np.int64)
        counts[:, 1] = np.where(change > 0, crossings, 0)
        counts[:, 0] = np.where(change < 0, crossings, 0)
        return counts

    def noise(self, n_steps: int, rng: np.random.Generator) -> np.ndarray:
        """Background events of one sensor over ``n_steps`` steps: int64 rows [step, polarity, y, x]."""
        height, width = self.thresholds.shape
        mean = self.config.noise_hz * height * width * n_steps * self.step_ms / 1000.0
        count = int(rng.poisson(mean))
        return (
            np.stack(
                [
                    rng.integers(0, n_steps, count),
                    rng.integers(0, 2, count),
                    rng.integers(0, height, count),
                    rng.integers(0, width, count),
                ],
                axis=1,
            )
            .astype(np.int64)
            .reshape(count, 4)
        )
