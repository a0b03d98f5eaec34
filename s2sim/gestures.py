"""DVS Gesture as chip input: loading (tonic, from a local copy), framing, caching, spikes, and a synthetic stand-in.

The real recordings are read through ``tonic.datasets.DVSGesture`` from a local copy laid out as tonic expects::

    <root>/DVSGesture/ibmGestureTrain.tar.gz                 (must exist; tonic only checks that it does)
    <root>/DVSGesture/ibmGestureTrain/user01_fluorescent/0.npy   (>= 100 files; (N, 4) arrays [x, y, p, t_ms],
    ...                                                           file name = class index 0..10)
    <root>/DVSGesture/ibmGestureTest.tar.gz, <root>/DVSGesture/ibmGestureTest/...

Each recording is downsampled from the sensor's 128x128 (any sensor: ``FrameConfig.sensor_size``, e.g. N-MNIST's
34x34) to ``size`` x ``size`` pixels (tonic ``Downsample``) and cut into
``n_time_bins`` frames (tonic ``ToFrame``), one frame per chip tick. A frame holds event *counts*, but a
``spike_list`` source sends at most one spike per neuron and tick, so the count is binarised (count > 0). Nothing
is lost without being counted: :class:`GestureSpikes` records, per sample, the events tonic's binning leaves out
(``ToFrame`` with ``n_time_bins`` drops the tail of the recording after the last whole bin, which always includes
the events at the last timestamp) and the events merged into another spike of the same pixel and tick.

The chip's input population is ``2 * size * size`` neurons in py-spinnaker2's flat order ``p*H*W + y*W + x``.

No installable package ships DVS Gesture recordings, so :func:`write_synthetic_dataset` writes synthetic ones in
the same on-disk layout: 11 classes of moving blobs whose path, side and direction are class-specific, with
per-sample jitter and background noise. The whole pipeline then runs on them exactly as on the real data.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .errors import CacheWarning, ConfigError, TraceError

#: Sensor of the DVS128 camera: (width, height, polarities), as tonic writes it.
SENSOR_SIZE = (128, 128, 2)
N_CLASSES = 11
#: Class names in label order (tonic's DVSGesture.classes).
CLASSES = (
    "hand clapping", "right hand wave", "left hand wave", "right arm clockwise", "right arm counter-clockwise",
    "left arm clockwise", "left arm counter-clockwise", "arm roll", "air drums", "air guitar", "other gestures",
)
#: tonic refuses a local copy with fewer ``.npy`` files than this in a split's folder and tries to download.
TONIC_MIN_FILES = 100
SPLIT_FOLDERS = {True: "ibmGestureTrain", False: "ibmGestureTest"}
LIGHTINGS = ("fluorescent", "fluorescent_led", "lab", "led", "natural")
#: Bumped whenever the cached arrays would come out differently for the same files and settings.
CACHE_FORMAT = 1


@dataclass(frozen=True)
class FrameConfig:
    """How event recordings become chip input.

    Parameters
    ----------
    n_time_bins : int
        Frames per recording, one per chip tick (tonic ``ToFrame(n_time_bins=...)``).
    size : int
        Width after downsampling (tonic ``Downsample`` by ``size / sensor width``); must divide the sensor's width,
        and the height scales by the same factor (it must come out whole).
    sensor_size : (int, int, int)
        The camera's (width, height, polarities), as tonic's datasets give it: DVS128's (128, 128, 2) by default,
        N-MNIST's (34, 34, 2), ...
    """

    n_time_bins: int = 32
    size: int = 32
    sensor_size: tuple[int, int, int] = SENSOR_SIZE

    def __post_init__(self) -> None:
        sensor = self.sensor_size
        if (not isinstance(sensor, (tuple, list)) or len(sensor) != 3
                or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in sensor)):
            raise ConfigError(f"FrameConfig.sensor_size must be (width, height, polarities) of positive ints, got "
                              f"{sensor!r}")
        object.__setattr__(self, "sensor_size", tuple(int(v) for v in sensor))  # a list read back from JSON
        width, height, _ = self.sensor_size
        if isinstance(self.n_time_bins, bool) or not isinstance(self.n_time_bins, int) or self.n_time_bins < 1:
            raise ConfigError(f"FrameConfig.n_time_bins must be a positive int, got {self.n_time_bins!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1 or width % self.size:
            raise ConfigError(f"FrameConfig.size must be a positive int dividing the sensor width {width}, got "
                              f"{self.size!r}")
        if height * self.size % width:
            raise ConfigError(f"FrameConfig.size {self.size}: the sensor height {height} scaled by {self.size}/{width} "
                              "is not a whole number of pixels")

    @property
    def polarities(self) -> int:
        return self.sensor_size[2]

    @property
    def height(self) -> int:
        """Height after downsampling (``size`` for a square sensor)."""
        return self.sensor_size[1] * self.size // self.sensor_size[0]

    @property
    def n_inputs(self) -> int:
        """Neurons of the input population: polarities * height * width."""
        return self.polarities * self.height * self.size

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one frame."""
        return (self.polarities, self.height, self.size)


@dataclass
class GestureSpikes:
    """A split as chip input: binary spikes plus the accounting of every event that did not become a spike.

    Attributes
    ----------
    spikes : np.ndarray
        uint8 [samples, n_time_bins, 2 * size * size], 1 where an input neuron spikes in that tick.
    labels : np.ndarray
        int64 [samples], class index 0..10.
    events : np.ndarray
        int64 [samples], events in the recording.
    dropped : np.ndarray
        int64 [samples], events outside tonic's time bins (the tail after the last whole bin).
    merged : np.ndarray
        int64 [samples], events that fell on a pixel and tick that already had one; one spike stands for them.
    config : FrameConfig
    users, lighting, files : list
        Per sample: recording user, lighting condition and the file's path relative to the split folder
        (empty when the recordings did not come from the on-disk layout).
    """

    spikes: np.ndarray
    labels: np.ndarray
    events: np.ndarray
    dropped: np.ndarray
    merged: np.ndarray
    config: FrameConfig
    users: list[int] = field(default_factory=list)
    lighting: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: Sequence[int] | np.ndarray | slice) -> "GestureSpikes":
        """The samples selected by ``index`` (a slice, integer indices or a boolean mask)."""
        idx = np.arange(len(self))[index]
        pick = lambda seq: [seq[i] for i in idx] if seq else []  # noqa: E731 - lists may be empty
        return GestureSpikes(self.spikes[idx], self.labels[idx], self.events[idx], self.dropped[idx],
                             self.merged[idx], self.config, pick(self.users), pick(self.lighting), pick(self.files))

    def summary(self) -> str:
        """One line: samples, spikes and what happened to the events that are not spikes."""
        total = int(self.events.sum())
        spikes = int(self.spikes.sum(dtype=np.int64))
        dropped, merged = int(self.dropped.sum()), int(self.merged.sum())
        share = lambda n: f"{100.0 * n / total:.1f} %" if total else "0 %"  # noqa: E731
        return (f"{len(self)} samples, {self.config.n_time_bins} ticks x {self.config.n_inputs} inputs: "
                f"{total} events -> {spikes} spikes; {merged} events merged into a spike of the same pixel and "
                f"tick ({share(merged)}), {dropped} outside tonic's time bins ({share(dropped)})")


# -- the local copy -----------------------------------------------------------------------------------------------
def dataset_dir(root: str | os.PathLike) -> Path:
    """``<root>/DVSGesture``, the folder tonic reads; ``root`` may also name that folder itself."""
    root = Path(root).expanduser()
    if root.name == "DVSGesture" and not (root / "DVSGesture").is_dir():
        return root
    return root / "DVSGesture"


def _tonic_root(root: str | os.PathLike) -> Path:
    return dataset_dir(root).parent


def missing_files_message(root: str | os.PathLike, train: bool) -> str | None:
    """Why tonic would not accept the local copy of a split (None when it would)."""
    folder = dataset_dir(root)
    name = SPLIT_FOLDERS[train]
    archive = folder / f"{name}.tar.gz"
    data = folder / name
    n_files = sum(1 for _ in data.glob("**/*.npy")) if data.is_dir() else 0
    problems = []
    if not archive.is_file():
        problems.append(f"{archive} does not exist")
    if n_files < TONIC_MIN_FILES:
        problems.append(f"{data} holds {n_files} .npy files, fewer than the {TONIC_MIN_FILES} tonic requires")
    if not problems:
        return None
    return (f"DVS Gesture {'train' if train else 'test'} split not found: {'; '.join(problems)}. s2sim reads a "
            f"local copy through tonic (no download): put the archive at {archive} (tonic only checks that it "
            f"exists) and extract it so that {data}/user<NN>_<lighting>/<label>.npy hold (N, 4) arrays "
            f"[x, y, p, t_ms]. Without the real data, `python tools/train_gesture.py --synthetic DIR` writes "
            f"synthetic recordings in that layout.")


def open_split(root: str | os.PathLike, train: bool = True):
    """The split as ``tonic.datasets.DVSGesture`` (events as tonic's structured arrays, t in microseconds).

    Raises
    ------
    ConfigError
        When the local copy is missing or incomplete; the message says which files to put where.
    """
    problem = missing_files_message(root, train)
    if problem:
        raise ConfigError(problem)
    from urllib.error import URLError

    tonic = _import_tonic()
    try:
        return tonic.datasets.DVSGesture(save_to=str(_tonic_root(root)), train=train)
    except URLError as exc:  # tonic decided the copy is incomplete and tried to download it
        raise ConfigError(f"{missing_files_message(root, train) or 'tonic tried to download DVS Gesture'} "
                          f"(tonic: {exc})") from exc


def _import_tonic():
    try:
        import tonic
    except ImportError as exc:
        raise ConfigError("reading DVS Gesture needs the optional package tonic (pip install tonic)") from exc
    return tonic


# -- events -> frames -> spikes -----------------------------------------------------------------------------------
EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])


def events_from_array(raw: np.ndarray, where: str = "recording") -> np.ndarray:
    """An (N, 4) ``[x, y, p, t_ms]`` array (the on-disk form) as tonic's structured events (t in microseconds)."""
    raw = np.asarray(raw)
    if raw.ndim != 2 or raw.shape[1] != 4:
        raise TraceError(f"{where}: events have shape {raw.shape}; expected (N, 4) rows [x, y, p, t_ms]")
    out = np.empty(raw.shape[0], dtype=EVENT_DTYPE)
    out["x"], out["y"], out["p"] = raw[:, 0], raw[:, 1], raw[:, 2]
    out["t"] = raw[:, 3].astype(np.int64) * 1000
    return out


def events_to_frames(events: np.ndarray, config: FrameConfig = FrameConfig()) -> np.ndarray:
    """Count one recording's events into frames [n_time_bins, polarities, height, width].

    tonic ``Downsample`` then ``ToFrame``, for any sensor (``config.sensor_size``).

    ``events`` is a structured array with fields x, y, p, t (tonic's form, of any integer or bool field types) or
    an (N, 4) ``[x, y, p, t_ms]`` array (the on-disk form), sorted by time. An event outside the sensor is an error
    naming it (tonic would drop or misplace it).
    """
    tonic = _import_tonic()
    if events.dtype.names is None:
        events = events_from_array(events)
    if len(events) and np.any(np.diff(events["t"]) < 0):
        raise TraceError("events are not sorted by time; tonic's ToFrame slices by searching sorted timestamps")
    _check_on_sensor(events, config.sensor_size)
    factor = config.size / config.sensor_size[0]
    down = tonic.transforms.Downsample(spatial_factor=factor)
    frame = tonic.transforms.ToFrame(sensor_size=(config.size, config.height, config.polarities),
                                     n_time_bins=config.n_time_bins)
    frames = np.asarray(frame(down(events)))
    if frames.shape != (config.n_time_bins, *config.input_shape):
        raise TraceError(f"tonic's ToFrame returned frames of shape {frames.shape}; expected "
                         f"{(config.n_time_bins, *config.input_shape)}")
    return frames.astype(np.int64)


def _check_on_sensor(events: np.ndarray, sensor: tuple[int, int, int]) -> None:
    for name, limit in (("x", sensor[0]), ("y", sensor[1]), ("p", sensor[2])):
        values = np.asarray(events[name], dtype=np.int64)
        bad = np.flatnonzero((values < 0) | (values >= limit))
        if bad.size:
            raise TraceError(f"event {int(bad[0])} has {name} = {int(values[bad[0]])}, outside the sensor's 0.."
                             f"{limit - 1} (sensor_size {sensor}, as (width, height, polarities)); "
                             f"{bad.size} event(s) are outside; give FrameConfig the camera's sensor_size")


def frames_to_spikes(frames: np.ndarray) -> tuple[np.ndarray, int]:
    """Binarise count frames [T, P, H, W] into chip input uint8 [T, P*H*W] (flat order p*H*W + y*W + x).

    Returns the spikes and the number of events merged away (counts above one in a pixel and tick).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise ConfigError(f"frames have shape {frames.shape}; expected [T, P, H, W]")
    if np.any(frames < 0):
        raise ConfigError("frames hold negative event counts")
    spikes = (frames > 0).reshape(frames.shape[0], -1).astype(np.uint8)
    merged = int(frames.sum(dtype=np.int64)) - int(spikes.sum(dtype=np.int64))
    return spikes, merged


def recordings_to_spikes(recordings: Iterable[tuple[np.ndarray, int]], config: FrameConfig = FrameConfig(),
                         n: int | None = None, progress: bool | None = None) -> GestureSpikes:
    """Turn ``(events, label)`` pairs into :class:`GestureSpikes` (without users/lighting/files); events as
    :func:`events_to_frames` takes them."""
    from .progress import bar

    items = bar(recordings, total=n, desc=f"framing ({config.n_time_bins} bins, {config.size}px)", unit="rec",
                progress=progress)
    spikes, labels, events, dropped, merged = [], [], [], [], []
    for ev, label in items:
        frames = events_to_frames(ev, config)
        spk, n_merged = frames_to_spikes(frames)
        spikes.append(spk)
        labels.append(int(label))
        events.append(len(ev))
        dropped.append(len(ev) - int(frames.sum()))
        merged.append(n_merged)
    shape = (0, config.n_time_bins, config.n_inputs)
    as64 = lambda xs: np.asarray(xs, dtype=np.int64)  # noqa: E731
    return GestureSpikes(np.stack(spikes) if spikes else np.zeros(shape, np.uint8), as64(labels), as64(events),
                         as64(dropped), as64(merged), config)


def load_spikes(root: str | os.PathLike, train: bool = True, config: FrameConfig = FrameConfig(),
                cache_dir: str | os.PathLike | None = None, use_cache: bool = True,
                progress: bool | None = None) -> GestureSpikes:
    """A split of the local DVS Gesture copy as chip input, cached on disk.

    Samples are ordered by file path (tonic lists them in directory order, which the file system decides).

    Parameters
    ----------
    root : path
        Folder that holds ``DVSGesture/`` (or that folder itself).
    train : bool
        Train split (True) or test split.
    config : FrameConfig
        Time bins and downsampled size.
    cache_dir : path, optional
        Where to keep the converted split (default ``<root>/DVSGesture/s2sim-cache``). The cache file's name
        carries a hash of the settings and of every recording's path, size and modification time, so a changed
        copy or setting never reads stale data.
    use_cache : bool
        False converts afresh and writes nothing.
    progress : bool
        Show a progress bar while converting.
    """
    split = open_split(root, train)
    data_folder = dataset_dir(root) / SPLIT_FOLDERS[train]
    order = np.argsort(np.asarray(split.data, dtype=str), kind="stable")
    files = [os.path.relpath(split.data[i], data_folder) for i in order]
    cache_file = None
    if use_cache:
        folder = Path(cache_dir) if cache_dir is not None else dataset_dir(root) / "s2sim-cache"
        cache_file = folder / _cache_name(data_folder, files, train, config)
        if cache_file.is_file():
            return _read_cache(cache_file, config)
    out = recordings_to_spikes((split[int(i)] for i in order), config, n=len(order), progress=progress)
    out.users = [int(split.users[i]) for i in order]
    out.lighting = [str(split.lighting[i]) for i in order]
    out.files = files
    if cache_file is not None:
        try:
            _write_cache(cache_file, out)
        except OSError as exc:  # a read-only data folder: the data are fine, only the next load is slower
            warnings.warn(CacheWarning(f"cannot write the cache {cache_file} ({exc}); pass cache_dir= to cache "
                                       "elsewhere", str(cache_file)), stacklevel=2)
    return out


def _cache_name(data_folder: Path, files: list[str], train: bool, config: FrameConfig) -> str:
    digest = hashlib.sha256(f"{CACHE_FORMAT} {config.n_time_bins} {config.size} {config.sensor_size}".encode())
    for rel in files:
        st = (data_folder / rel).stat()
        digest.update(f"\n{rel} {st.st_size} {st.st_mtime_ns}".encode())
    split = "train" if train else "test"
    return f"dvsgesture-{split}-T{config.n_time_bins}-{config.size}px-{digest.hexdigest()[:16]}.npz"


def _write_cache(path: Path, data: GestureSpikes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, spikes=np.packbits(data.spikes, axis=-1), n_inputs=data.config.n_inputs, labels=data.labels,
             events=data.events, dropped=data.dropped, merged=data.merged, users=np.asarray(data.users),
             lighting=np.asarray(data.lighting), files=np.asarray(data.files))
    os.replace(tmp, path)  # a reader never sees a half-written cache


def _read_cache(path: Path, config: FrameConfig) -> GestureSpikes:
    with np.load(path) as z:
        n_inputs = int(z["n_inputs"])
        spikes = np.unpackbits(z["spikes"], axis=-1, count=n_inputs)
        return GestureSpikes(spikes, z["labels"], z["events"], z["dropped"], z["merged"], config,
                             z["users"].tolist(), z["lighting"].tolist(), z["files"].tolist())


# -- shipped recordings -------------------------------------------------------------------------------------------
#: Version of the recordings file (keys ``xyp<i>``: uint8 [3, N] rows x, y, p; ``dt<i>``: uint16 [N] time steps in
#: ms, the first from 0). Column-wise small integers compress to about a third of (N, 4) int16 rows.
RECORDINGS_FORMAT = 2


def save_recordings(path: str | os.PathLike, recordings: Sequence[np.ndarray], labels: Sequence[int]) -> None:
    """Write (N, 4) ``[x, y, p, t_ms]`` recordings (sorted by time) and their labels into one compressed ``.npz``.

    Raises ConfigError naming the recording when it does not fit the compact form (x, y outside 0..255, p not
    0/1, t negative, unsorted, or a gap above 65535 ms).
    """
    arrays: dict[str, np.ndarray] = {}
    for i, rec in enumerate(recordings):
        rec = np.asarray(rec, dtype=np.int64).reshape(-1, 4)
        dt = np.diff(rec[:, 3], prepend=0)
        if (rec[:, :2].min(initial=0) < 0 or rec[:, :2].max(initial=0) > 255 or not np.isin(rec[:, 2], (0, 1)).all()
                or dt.min(initial=0) < 0 or dt.max(initial=0) > 65535):
            raise ConfigError(f"recording {i}: x/y outside 0..255, polarity not 0/1, negative or unsorted times, or "
                              "a gap above 65535 ms; cannot store it compactly")
        arrays[f"xyp{i:03d}"] = rec[:, :3].T.astype(np.uint8)
        arrays[f"dt{i:03d}"] = dt.astype(np.uint16)
    np.savez_compressed(path, format=RECORDINGS_FORMAT, labels=np.asarray(labels, dtype=np.int64), **arrays)


def load_recordings(path: str | os.PathLike) -> tuple[list[np.ndarray], np.ndarray]:
    """Read a file written by :func:`save_recordings`: structured events (tonic's form) and labels."""
    try:
        with np.load(path) as z:
            if int(z["format"]) != RECORDINGS_FORMAT:
                raise ValueError(f"format {int(z['format'])}, expected {RECORDINGS_FORMAT}")
            labels = z["labels"]
            keys = sorted(k[3:] for k in z.files if k.startswith("xyp"))
            recordings = [events_from_array(np.column_stack([z[f"xyp{k}"].T, np.cumsum(z[f"dt{k}"], dtype=np.int64)]),
                                            f"{path}:{k}") for k in keys]
    except (OSError, KeyError, ValueError) as exc:
        raise TraceError(f"{path}: not a recordings file written by save_recordings ({exc})") from exc
    if len(recordings) != len(labels):
        raise TraceError(f"{path}: {len(recordings)} recordings but {len(labels)} labels")
    return recordings, labels


# -- synthetic gestures -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticConfig:
    """Shape of the synthetic recordings, and the nuisances that make them hard.

    Parameters
    ----------
    events : int
        Mean events per recording (each recording draws within +-20 %).
    duration_ms : int
        Mean recording length in ms (+-20 %).
    noise : float
        Share of events that are uniform background noise (sensor noise).
    blob_sigma : float
        Spread of the events around a moving hand, in sensor pixels, before the size factor.
    size_jitter : float
        The whole gesture (paths, distances, blob size) is scaled about the sensor centre by a factor drawn from
        ``1 +- size_jitter`` per recording: people stand nearer or farther.
    speed_jitter : float
        The number of gesture cycles per recording is drawn from ``2 x (1 +- speed_jitter)``, and the pace drifts
        within the recording by up to ``speed_jitter`` (a monotonic time warp).
    hot_pixels : float
        Mean number of hot pixels per recording (Poisson); each fires ``hot_share`` of the events at one pixel
        with one polarity, all through the recording.
    hot_share : float
        Share of the recording's events from each hot pixel.
    distractor : float
        Share of events from an overlapping motion: a second hand on a random smooth path during a random part
        (at least 30 %) of the recording.
    """

    events: int = 3000
    duration_ms: int = 1000
    noise: float = 0.2
    blob_sigma: float = 4.0
    size_jitter: float = 0.3
    speed_jitter: float = 0.4
    hot_pixels: float = 3.0
    hot_share: float = 0.02
    distractor: float = 0.25

    def __post_init__(self) -> None:
        if self.events < 10 or self.duration_ms < 10:
            raise ConfigError(f"SyntheticConfig: events ({self.events}) and duration_ms ({self.duration_ms}) must "
                              "be at least 10")
        for name in ("noise", "size_jitter", "speed_jitter", "hot_share", "distractor"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"SyntheticConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if not self.hot_pixels >= 0:
            raise ConfigError(f"SyntheticConfig.hot_pixels must be >= 0, got {self.hot_pixels}")


def _circle(cx: float, cy: float, r: float, direction: float):
    # y grows downwards on the sensor, so an increasing angle runs clockwise as seen on screen
    return lambda ph: np.stack([cx + r * np.cos(direction * ph), cy + r * np.sin(direction * ph)], -1)[None]


def _trajectories(label: int, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """Class-specific hand paths: a function phase [n] -> positions [hands, n, 2] in sensor pixels."""
    cx, cy = 64 + rng.uniform(-8, 8, size=2)
    amp = rng.uniform(0.8, 1.2)
    if label == 0:  # clapping: two hands meet in the middle and part
        return lambda ph: np.stack([np.stack([cx + s * (6 + 14 * amp * np.abs(np.cos(ph / 2))), cy + 0 * ph], -1)
                                    for s in (-1, 1)])
    if label in (1, 2):  # waves: one hand swings sideways, right or left of the body, above the shoulder
        side = 1 if label == 1 else -1
        return lambda ph: np.stack([cx + side * 28 + 14 * amp * np.sin(ph), cy - 22 + 0 * ph], -1)[None]
    if label in (3, 4, 5, 6):  # arm circles: side and direction per class
        side = 1 if label in (3, 4) else -1
        return _circle(cx + side * 26, cy, 18 * amp, 1.0 if label in (3, 5) else -1.0)
    if label == 7:  # arm roll: two hands orbit each other in front of the chest
        return lambda ph: np.stack([np.stack([cx + s * 9 * amp * np.cos(ph), cy + 12 + s * 9 * amp * np.sin(ph)], -1)
                                    for s in (-1, 1)])
    if label == 8:  # air drums: two hands beat up and down in turn
        return lambda ph: np.stack([np.stack([cx + s * 20 + 0 * ph, cy + 14 + 12 * amp * np.sin(ph + (s > 0) * np.pi)],
                                             -1) for s in (-1, 1)])
    if label == 9:  # air guitar: a strumming hand low right, a nearly still hand on the neck upper left
        return lambda ph: np.stack([
            np.stack([cx + 14 + 6 * amp * np.sin(ph), cy + 18 + 14 * amp * np.sin(ph)], -1),
            np.stack([cx - 26 + 2 * np.sin(3 * ph), cy - 8 + 2 * np.cos(2 * ph)], -1)])
    if label == 10:  # other: a smooth random path, different every recording
        knots = rng.uniform(-30, 30, size=(6, 2))
        grid = np.linspace(0, 4 * np.pi, len(knots))
        return lambda ph: np.stack([cx + np.interp(ph, grid, knots[:, 0]), cy + np.interp(ph, grid, knots[:, 1])],
                                   -1)[None]
    raise ConfigError(f"synthetic gesture label {label} is not a class index 0..{N_CLASSES - 1}")


def synthetic_recording(label: int, rng: np.random.Generator,
                        config: SyntheticConfig = SyntheticConfig()) -> np.ndarray:
    """One synthetic recording of class ``label``: int32 (N, 4) rows ``[x, y, p, t_ms]`` sorted by time.

    Hands move along a class-specific path (about two periods over the recording), scaled about the sensor centre
    and played at a drifting pace; events scatter around each hand, ON events on the side the hand moves towards
    and OFF events behind it, as a moving edge gives on a DVS. On top: a distractor hand on a random path for
    part of the recording, hot pixels, and uniform noise (shares in ``config``).
    """
    n = int(config.events * rng.uniform(0.8, 1.2))
    duration = max(2, int(config.duration_ms * rng.uniform(0.8, 1.2)))
    size = rng.uniform(1 - config.size_jitter, 1 + config.size_jitter)
    n_hot = [int(config.hot_share * n)] * int(rng.poisson(config.hot_pixels))
    n_noise, n_distractor = int(config.noise * n), int(config.distractor * n)
    n_hand = max(1, n - n_noise - n_distractor - sum(n_hot))
    t = np.sort(rng.integers(0, duration, size=n_hand))
    cycles = 2.0 * rng.uniform(1 - config.speed_jitter, 1 + config.speed_jitter)
    drift, start = rng.uniform(0, config.speed_jitter), rng.uniform(0, 2 * np.pi)
    warped = t / duration + drift * np.sin(2 * np.pi * t / duration + start) / (2 * np.pi)  # increasing: drift < 1
    parts = [_moving_blob(_trajectories(label, rng), 2 * np.pi * cycles * warped + rng.uniform(0, 2 * np.pi), t,
                          size, config.blob_sigma, rng)]
    if n_distractor:
        begin = rng.uniform(0, 0.7) * duration
        t_d = np.sort(rng.uniform(begin, begin + rng.uniform(0.3, 1.0) * (duration - begin), n_distractor)).astype(int)
        parts.append(_moving_blob(_trajectories(N_CLASSES - 1, rng), 4 * np.pi * t_d / duration, t_d, size,
                                  config.blob_sigma, rng))
    for count in n_hot:
        xy = rng.integers(0, 128, size=2)
        parts.append(np.column_stack([np.tile(xy, (count, 1)), np.full(count, rng.integers(0, 2)),
                                      rng.integers(0, duration, count)]))
    parts.append(np.column_stack([rng.integers(0, 128, (n_noise, 2)), rng.integers(0, 2, n_noise),
                                  rng.integers(0, duration, n_noise)]))
    rec = np.concatenate(parts).astype(np.int64)
    return rec[np.argsort(rec[:, 3], kind="stable")].astype(np.int32)


def _moving_blob(path: Callable[[np.ndarray], np.ndarray], phase: np.ndarray, t: np.ndarray, size: float,
                 sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Events [x, y, p, t] scattered around the hands of ``path`` at ``phase``, the gesture scaled by ``size``
    about the sensor centre; ON where the hand moves to, OFF behind it."""
    n = len(t)

    def scaled(ph):
        return 64.0 + (path(ph) - 64.0) * size

    here, ahead = scaled(phase), scaled(phase + 0.05)
    hand = rng.integers(0, here.shape[0], size=n)
    centre = here[hand, np.arange(n)]
    velocity = ahead[hand, np.arange(n)] - centre
    offset = rng.normal(0.0, sigma * size, size=(n, 2))
    polarity = (np.sum(offset * velocity, axis=1) > 0).astype(np.int64)
    xy = np.clip(np.floor(centre + offset), 0, 127).astype(np.int64)  # hands near the border: events on the edge
    return np.column_stack([xy, polarity, t])


def synthetic_recordings(n: int, seed: int = 0,
                         config: SyntheticConfig = SyntheticConfig()) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` synthetic recordings with labels cycling through the 11 classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % N_CLASSES
    return [synthetic_recording(int(k), rng, config) for k in labels], labels


def write_synthetic_dataset(root: str | os.PathLike, n_train: int = 110, n_test: int = 110, seed: int = 0,
                            config: SyntheticConfig = SyntheticConfig()) -> Path:
    """Write synthetic recordings in tonic's DVSGesture layout under ``root`` (returns ``<root>/DVSGesture``).

    Each split needs at least 100 recordings, or tonic does not accept the folder. Recordings go into
    ``user<NN>_<lighting>/<label>.npy`` folders, 11 per folder (a file name is its label, so a folder holds one
    recording per class); test users follow train users. The ``.tar.gz`` files tonic looks for hold only a note
    that the data are synthetic.
    """
    folder = dataset_dir(root)
    first_folder = 0
    for train, n, split_seed in ((True, n_train, seed), (False, n_test, seed + 1)):
        if n < TONIC_MIN_FILES:
            raise ConfigError(f"write_synthetic_dataset: {'n_train' if train else 'n_test'} = {n}; tonic accepts a "
                              f"split with at least {TONIC_MIN_FILES} recordings")
        name = SPLIT_FOLDERS[train]
        recordings, labels = synthetic_recordings(n, split_seed, config)
        for i, (rec, label) in enumerate(zip(recordings, labels)):
            k = first_folder + i // N_CLASSES
            sub = folder / name / f"user{1 + k // len(LIGHTINGS):02d}_{LIGHTINGS[k % len(LIGHTINGS)]}"
            sub.mkdir(parents=True, exist_ok=True)
            np.save(sub / f"{int(label)}.npy", rec)
        first_folder += -(-n // N_CLASSES)
        _write_marker_archive(folder / f"{name}.tar.gz", n, split_seed, config)
    return folder


def _write_marker_archive(path: Path, n: int, seed: int, config: SyntheticConfig) -> None:
    note = json.dumps({"synthetic": True, "generator": "s2sim.gestures.write_synthetic_dataset", "recordings": n,
                       "seed": seed, "config": config.__dict__}, indent=1).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("SYNTHETIC.json")
        info.size = len(note)
        tar.addfile(info, io.BytesIO(note))
