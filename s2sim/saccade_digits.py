"""Saccade Digits: synthetic event streams from real images (scikit-learn's handwritten digits, N-MNIST's recipe).

The images are real: the 1797 handwritten digits that ship with scikit-learn (8x8 grey levels 0..16, from the
UCI "Optical Recognition of Handwritten Digits" set). The events are synthetic: each image is upsampled
(bilinear, ``scale`` x) onto a 34 x 34 sensor and moved in three saccades along a triangle, 100 ms each, in front
of the event-camera model of :mod:`s2sim.event_camera` (log-intensity thresholds with per-pixel mismatch, a
refractory period, background noise). This is how N-MNIST was recorded (an ATIS camera moved in three saccades in
front of a monitor showing MNIST digits); the recordings here are simulated, not recorded.

Per sample the saccade amplitude and the start position are jittered and the noise is drawn from the sample's own
random stream (seeded by ``(seed, index)``), so every sample is the same whichever batch computes it, and the whole
set is deterministic for a configuration. Events are binned into ``n_ticks`` frames of two polarities; a
``spike_list`` sends at most one spike per neuron and tick, so a frame is binarised and the events merged into
one spike are counted (:attr:`EventDigits.merged`). Chip input order: ``p*H*W + y*W + x``, polarity 0 = OFF.

The split is fixed: stratified 75 % / 25 % with ``random_state=0`` (1347 train, 450 test), the split of
``tools/bench_digits.py``. Generating all 1797 samples takes a few seconds; :func:`load` caches the result.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .errors import CacheWarning, ConfigError, TraceError
from .event_camera import EventCamera, EventCameraConfig

#: Bumped whenever the same configuration would produce different samples.
CACHE_FORMAT = 1
N_CLASSES = 10
#: The digits' own resolution.
IMAGE_SIZE = 8
#: Samples rendered and run through the camera together (bounds the memory of one batch).
CHUNK = 256
EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])


@dataclass(frozen=True)
class SaccadeConfig:
    """How digits become event streams and chip input.

    Parameters
    ----------
    n_ticks : int
        Frames (chip ticks) per sample; the recording is cut into equal bins.
    duration_ms : float
        Length of the three saccades together.
    step_ms : float
        Time step of the camera model.
    sensor : int
        Sensor width and height in pixels.
    scale : int
        Upsampling of the 8x8 digits (3: a 24 x 24 digit in the middle of the sensor).
    saccade_px : float
        Side of the saccade triangle in pixels.
    amplitude_jitter : float
        Per sample the triangle is scaled by a factor drawn from ``1 +- amplitude_jitter``.
    offset_px : float
        Per sample the triangle is shifted by up to ``+-offset_px`` in x and y.
    camera : EventCameraConfig
    seed : int
        Seeds the sensor's fixed threshold pattern and every sample's random stream.
    """

    n_ticks: int = 20
    duration_ms: float = 300.0
    step_ms: float = 2.0
    sensor: int = 34
    scale: int = 3
    saccade_px: float = 3.0
    amplitude_jitter: float = 0.2
    offset_px: float = 1.0
    camera: EventCameraConfig = field(default_factory=EventCameraConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_ticks", "sensor", "scale", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "seed" else 1):
                raise ConfigError(f"SaccadeConfig.{name} must be a {'non-negative' if name == 'seed' else 'positive'} "
                                  f"int, got {value!r}")
        if not (self.duration_ms > 0 and self.step_ms > 0 and self.step_ms <= self.duration_ms / self.n_ticks):
            raise ConfigError(f"SaccadeConfig: duration_ms = {self.duration_ms} and step_ms = {self.step_ms} must be "
                              f"positive with at least one camera step per tick ({self.n_ticks} ticks)")
        if self.scale * IMAGE_SIZE > self.sensor:
            raise ConfigError(f"SaccadeConfig: a {IMAGE_SIZE * self.scale} px digit does not fit the {self.sensor} px "
                              "sensor")
        if not 0 <= self.amplitude_jitter < 1 or self.saccade_px < 0 or self.offset_px < 0:
            raise ConfigError("SaccadeConfig: saccade_px and offset_px must be >= 0 and amplitude_jitter in [0, 1)")

    @property
    def n_steps(self) -> int:
        return int(round(self.duration_ms / self.step_ms))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(polarities, height, width) of one frame."""
        return (2, self.sensor, self.sensor)

    @property
    def n_inputs(self) -> int:
        return 2 * self.sensor * self.sensor

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EventDigits:
    """The data set as chip input.

    Attributes
    ----------
    spikes : np.ndarray
        uint8 [samples, n_ticks, 2 * sensor * sensor].
    labels : np.ndarray
        int64 [samples], the digit 0..9.
    events, noise, merged : np.ndarray
        int64 [samples]: events in the stream, of them background noise, and events that fell on a pixel,
        polarity and tick that already had one (``spikes.sum() + merged == events`` per sample).
    train, test : np.ndarray
        int64 sample indices of the fixed split.
    config : SaccadeConfig
    """

    spikes: np.ndarray
    labels: np.ndarray
    events: np.ndarray
    noise: np.ndarray
    merged: np.ndarray
    train: np.ndarray
    test: np.ndarray
    config: SaccadeConfig

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def split(self, train: bool) -> tuple[np.ndarray, np.ndarray]:
        """(spikes, labels) of the train or the test split."""
        idx = self.train if train else self.test
        return self.spikes[idx], self.labels[idx]

    def summary(self) -> str:
        total = int(self.events.sum())
        return (f"{len(self)} samples ({len(self.train)} train, {len(self.test)} test), {self.config.n_ticks} ticks x "
                f"{self.config.n_inputs} inputs: {total / len(self):.0f} events per sample on average "
                f"({100 * self.noise.sum() / total:.1f} % noise), {self.spikes.sum(dtype=np.int64) / len(self):.0f} "
                f"spikes ({100 * self.merged.sum() / total:.1f} % of events merged into a spike of the same pixel, "
                "polarity and tick)")


# -- the digits and the split -------------------------------------------------------------------------------------
def _digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ConfigError("Saccade Digits renders scikit-learn's digits; install scikit-learn "
                          "(pip install scikit-learn)") from exc
    data = load_digits()
    return data.images.astype(np.float64) / 16.0, data.target.astype(np.int64)


def fixed_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: stratified 75 / 25 with random_state 0 (as tools/bench_digits.py)."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(len(labels)), test_size=0.25, random_state=0, stratify=labels)
    return np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64)


# -- rendering and the camera --------------------------------------------------------------------------------------
#: Saccade triangle (unit side, centred on its centroid), visited in this order and back to the first corner.
_TRIANGLE = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]]) - np.array([0.5, np.sqrt(3) / 6])


def _saccade_offsets(t_ms: float, config: SaccadeConfig, amplitude: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Image offsets (x, y) [N, 2] in pixels at time ``t_ms``: three eased legs along the triangle."""
    leg_ms = config.duration_ms / 3
    leg = min(int(t_ms // leg_ms), 2)
    frac = min(max((t_ms - leg * leg_ms) / leg_ms, 0.0), 1.0)
    ease = (1 - np.cos(np.pi * frac)) / 2
    a, b = _TRIANGLE[leg], _TRIANGLE[(leg + 1) % 3]
    point = a + (b - a) * ease
    return start + config.saccade_px * amplitude[:, None] * point[None, :]


def _tent_weights(centre: np.ndarray, config: SaccadeConfig) -> np.ndarray:
    """Bilinear upsampling along one axis: weights [N, sensor, 8] of the 8 image columns for every sensor column,
    with the image centre at ``sensor / 2 + centre`` (per sample)."""
    pixel = np.arange(config.sensor) + 0.5
    u = (pixel[None, :] - config.sensor / 2 - centre[:, None]) / config.scale + IMAGE_SIZE / 2 - 0.5
    return np.maximum(0.0, 1.0 - np.abs(u[:, :, None] - np.arange(IMAGE_SIZE)[None, None, :]))


def _render(images: np.ndarray, offsets: np.ndarray, config: SaccadeConfig) -> np.ndarray:
    """Intensities [N, sensor, sensor] of the images shifted by ``offsets`` (x, y)."""
    wx, wy = _tent_weights(offsets[:, 0], config), _tent_weights(offsets[:, 1], config)
    return wy @ images @ wx.transpose(0, 2, 1)


def _record(images: np.ndarray, indices: Sequence[int], config: SaccadeConfig,
            thresholds: np.ndarray) -> tuple[np.ndarray, Iterator[tuple[int, np.ndarray]]]:
    """Samples ``indices`` (their images [N, 8, 8]) through the camera: the noise events of each sample [N], and
    an iterator over camera steps giving the step index and the event counts [N, 2, H, W] (noise included)."""
    rngs = [np.random.default_rng([config.seed, int(i)]) for i in indices]
    amplitude = np.array([r.uniform(1 - config.amplitude_jitter, 1 + config.amplitude_jitter) for r in rngs])
    start = np.array([r.uniform(-config.offset_px, config.offset_px, size=2) for r in rngs]).reshape(-1, 2)
    camera = EventCamera(config.camera, _render(images, _saccade_offsets(0.0, config, amplitude, start), config),
                         thresholds, config.step_ms)
    noise = np.concatenate([np.concatenate([np.full((len(rows), 1), n), rows], axis=1)
                            for n, rows in enumerate(camera.noise(config.n_steps, r) for r in rngs)])
    noise = noise[np.argsort(noise[:, 1], kind="stable")]            # rows [sample, step, p, y, x] by step
    bounds = np.searchsorted(noise[:, 1], np.arange(config.n_steps + 1))

    def steps() -> Iterator[tuple[int, np.ndarray]]:
        for s in range(config.n_steps):
            t_end = (s + 1) * config.step_ms
            counts = camera.step(_render(images, _saccade_offsets(t_end, config, amplitude, start), config),
                                 s * config.step_ms)
            rows = noise[bounds[s]:bounds[s + 1]]
            np.add.at(counts, (rows[:, 0], rows[:, 2], rows[:, 3], rows[:, 4]), 1)
            yield s, counts

    return np.bincount(noise[:, 0], minlength=len(indices)).astype(np.int64), steps()


def _tick_of_step(config: SaccadeConfig) -> np.ndarray:
    """Each camera step's events are stamped at the step's middle; the tick holding that time."""
    middle = (np.arange(config.n_steps) + 0.5) * config.step_ms
    return np.minimum((middle * config.n_ticks // config.duration_ms).astype(np.int64), config.n_ticks - 1)


#: The random stream of the sensor's threshold pattern (sample streams use the sample index, far below it).
_SENSOR_STREAM = 2**31


def _sensor_thresholds(config: SaccadeConfig) -> np.ndarray:
    return config.camera.pixel_thresholds(config.sensor, config.sensor,
                                          np.random.default_rng([config.seed, _SENSOR_STREAM]))


def generate(config: SaccadeConfig = SaccadeConfig()) -> EventDigits:
    """Render every digit through the camera and bin its events into chip input (no cache; see :func:`load`)."""
    images, labels = _digits()
    thresholds = _sensor_thresholds(config)
    n = len(labels)
    spikes = np.zeros((n, config.n_ticks, config.n_inputs), dtype=np.uint8)
    events, noise, merged = (np.zeros(n, dtype=np.int64) for _ in range(3))
    ticks = _tick_of_step(config)
    for lo in range(0, n, CHUNK):
        idx = np.arange(lo, min(lo + CHUNK, n))
        frames = np.zeros((len(idx), config.n_ticks, 2, config.sensor, config.sensor), dtype=np.int64)
        noise[idx], steps = _record(images[idx], idx, config, thresholds)
        for s, counts in steps:
            frames[:, ticks[s]] += counts
        flat = frames.reshape(len(idx), config.n_ticks, -1)
        spikes[idx] = flat > 0
        events[idx] = flat.sum(axis=(1, 2))
        merged[idx] = events[idx] - spikes[idx].sum(axis=(1, 2), dtype=np.int64)
    train, test = fixed_split(labels)
    return EventDigits(spikes, labels, events, noise, merged, train, test, config)


def event_stream(index: int, config: SaccadeConfig = SaccadeConfig()) -> np.ndarray:
    """The events of digit ``index`` as tonic's structured array (x, y, p, t in microseconds), sorted by time;
    an event is stamped at the middle of its camera step. Binning them gives ``load(config).spikes[index]``."""
    images, labels = _digits()
    if not 0 <= index < len(labels):
        raise ConfigError(f"event_stream: index {index} outside 0..{len(labels) - 1}")
    chunks = []
    _, steps = _record(images[[index]], [index], config, _sensor_thresholds(config))
    for s, counts in steps:
        p, y, x = np.nonzero(counts[0])
        reps = counts[0][p, y, x]
        chunk = np.zeros(int(reps.sum()), dtype=EVENT_DTYPE)
        chunk["x"], chunk["y"], chunk["p"] = np.repeat(x, reps), np.repeat(y, reps), np.repeat(p, reps).astype(bool)
        chunk["t"] = int(round((s + 0.5) * config.step_ms * 1000))
        chunks.append(chunk)
    return np.concatenate(chunks)


# -- cache --------------------------------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    """``$S2SIM_CACHE`` or ``$XDG_CACHE_HOME/s2sim`` (default ``~/.cache/s2sim``)."""
    if os.environ.get("S2SIM_CACHE"):
        return Path(os.environ["S2SIM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "s2sim"


def cache_path(config: SaccadeConfig, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache file of ``config``: its name carries a hash of the configuration and of the cache format."""
    text = json.dumps([CACHE_FORMAT, config.to_dict()], sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return folder / f"saccade-digits-T{config.n_ticks}-{config.sensor}px-{digest}.npz"


def load(config: SaccadeConfig = SaccadeConfig(), cache_dir: str | os.PathLike | None = None,
         use_cache: bool = True) -> EventDigits:
    """The data set for ``config``, generated once and then read from the cache (see :func:`cache_path`).

    ``use_cache=False`` generates afresh and writes nothing. A cache that cannot be written only costs time (a
    warning); a cache file that cannot be read raises TraceError naming it.
    """
    path = cache_path(config, cache_dir)
    if use_cache and path.is_file():
        return _read(path, config)
    data = generate(config)
    if use_cache:
        try:
            _write(path, data)
        except OSError as exc:
            import warnings

            warnings.warn(CacheWarning(f"cannot write the Saccade Digits cache {path} ({exc}); pass cache_dir= to "
                                       "cache elsewhere", str(path)), stacklevel=2)
    return data


def _write(path: Path, data: EventDigits) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, spikes=np.packbits(data.spikes, axis=-1), labels=data.labels, events=data.events,
                        noise=data.noise, merged=data.merged, train=data.train, test=data.test)
    os.replace(tmp, path)  # a reader never sees a half-written file


def _read(path: Path, config: SaccadeConfig) -> EventDigits:
    try:
        with np.load(path) as z:
            spikes = np.unpackbits(z["spikes"], axis=-1, count=config.n_inputs)
            return EventDigits(spikes, z["labels"], z["events"], z["noise"], z["merged"], z["train"], z["test"],
                               config)
    except (OSError, KeyError, ValueError) as exc:
        raise TraceError(f"{path}: unreadable Saccade Digits cache ({exc}); delete it to regenerate") from exc
