"""The event-camera model and Saccade Digits (synthetic events from scikit-learn's real digit images)."""

from __future__ import annotations

import numpy as np
import pytest

from s2sim import saccade_digits as sd
from s2sim.errors import ConfigError
from s2sim.event_camera import EventCamera, EventCameraConfig

pytest.importorskip("sklearn")

#: A short recording so that the whole set renders in about a second.
SMALL = sd.SaccadeConfig(n_ticks=5, step_ms=6.0)


ONE_PIXEL = EventCameraConfig(threshold=0.1, threshold_mismatch=0.0, refractory_ms=0.0)


def camera(config=ONE_PIXEL, first=0.5, shape=(1, 1, 3)):
    return EventCamera(config, np.full(shape, first), np.full(shape[1:], config.threshold), 1.0)


def level(log_change, base=0.5):
    """The intensity whose log(0.1 + I) lies ``log_change`` above that of ``base``."""
    return 0.6 * np.exp(log_change) - 0.1


def test_events_per_threshold_strictly_exceeded():
    """Threshold 0.1: a rise of 3.5 thresholds gives 3 ON events (the reference moves 3 thresholds up) and a fall
    of 3.5 thresholds from there 3 OFF events; 0.999 thresholds give none. Returning to the start after a rise
    of 2.5 thresholds (2 ON) is a fall of exactly 2 thresholds from the reference: a tie, so 1 OFF event.
    """
    cam = camera()
    counts = cam.step(np.array([[[level(0.35), level(0.0999), level(0.25)]]]), 0.0)
    assert counts[0, 1, 0].tolist() == [3, 0, 2] and not counts[0, 0].any()
    counts = cam.step(np.array([[[level(0.3 - 0.35), 0.5, 0.5]]]), 1.0)
    assert counts[0, 0, 0].tolist() == [3, 0, 1] and not counts[0, 1].any()


def test_refractory_period_delays_but_keeps_the_change():
    cam = camera(EventCameraConfig(threshold=0.1, threshold_mismatch=0.0, refractory_ms=2.5))
    up = np.full((1, 1, 3), level(0.25))  # 2.5 thresholds up
    assert cam.step(up, 0.0)[0, 1].tolist() == [[1, 1, 1]]  # one event per refractory period, not two
    assert not cam.step(up, 1.0).any() and not cam.step(up, 2.0).any()  # blind
    assert cam.step(up, 3.0)[0, 1].tolist() == [[1, 1, 1]]  # the missed threshold fires now


def test_background_noise_rate():
    cfg = EventCameraConfig(noise_hz=5.0)
    cam = EventCamera(cfg, np.zeros((1, 34, 34)), cfg.pixel_thresholds(34, 34, np.random.default_rng(0)), 2.0)
    rows = cam.noise(500, np.random.default_rng(1))  # 1 s
    expected = 5.0 * 34 * 34
    assert abs(len(rows) - expected) < 4 * np.sqrt(expected)
    assert rows[:, 0].max() < 500 and set(np.unique(rows[:, 1])) == {0, 1}


def test_camera_rejects_bad_settings():
    with pytest.raises(ConfigError, match="threshold"):
        EventCameraConfig(threshold=0.0)
    with pytest.raises(ConfigError, match="refractory_ms"):
        EventCameraConfig(refractory_ms=-1.0)
    with pytest.raises(ConfigError, match="step_ms"):
        EventCamera(EventCameraConfig(), np.zeros((1, 2, 2)), np.ones((2, 2)), 0.0)


@pytest.fixture(scope="module")
def cache_dir(saccade_cache):
    return saccade_cache


@pytest.fixture(scope="module")
def small(cache_dir):
    return sd.load(SMALL, cache_dir=cache_dir)


def test_dataset_shape_split_and_accounting(small):
    from sklearn.datasets import load_digits

    assert small.spikes.shape == (1797, 5, 2 * 34 * 34) and small.spikes.dtype == np.uint8
    np.testing.assert_array_equal(small.labels, load_digits().target)
    assert len(small.train) == 1347 and len(small.test) == 450
    assert not set(small.train.tolist()) & set(small.test.tolist())
    assert np.abs(np.bincount(small.labels[small.test]) - 45).max() <= 2  # stratified: 45 per class
    np.testing.assert_array_equal(small.spikes.sum(axis=(1, 2), dtype=np.int64) + small.merged, small.events)
    assert (small.noise < small.events).all() and 0.01 < small.noise.sum() / small.events.sum() < 0.2
    assert 500 < small.events.mean() < 10_000
    assert "1797 samples" in small.summary()


def test_a_samples_event_stream_bins_to_its_spikes(small):
    """The per-sample stream and the batched set are the same events (each sample has its own random stream)."""
    for index in (0, 1000):
        events = sd.event_stream(index, SMALL)
        assert len(events) == small.events[index] and np.all(np.diff(events["t"]) >= 0)
        tick = (events["t"] / 1000.0 * SMALL.n_ticks // SMALL.duration_ms).astype(int)
        flat = events["p"].astype(int) * 34 * 34 + events["y"].astype(int) * 34 + events["x"].astype(int)
        frames = np.zeros((SMALL.n_ticks, 2 * 34 * 34), np.int64)
        np.add.at(frames, (tick, flat), 1)
        np.testing.assert_array_equal(frames > 0, small.spikes[index].astype(bool))


def test_the_events_carry_the_digits(small):
    """A real-image check, not a constant input: classifying test samples by the nearest class mean of their
    time-summed spike maps (train split) is far above chance.
    """
    maps = small.spikes.reshape(len(small), 5, -1).sum(axis=1).astype(np.float64)
    means = np.stack([maps[small.train][small.labels[small.train] == c].mean(axis=0) for c in range(10)])
    dist = ((maps[small.test][:, None, :] - means[None]) ** 2).sum(axis=2)
    assert np.mean(dist.argmin(axis=1) == small.labels[small.test]) > 0.6


def test_cache_is_reused_and_keyed_by_the_configuration(small, cache_dir):
    path = sd.cache_path(SMALL, cache_dir)
    assert path.is_file()
    stamp = path.stat().st_mtime_ns
    again = sd.load(SMALL, cache_dir=cache_dir)
    assert path.stat().st_mtime_ns == stamp
    for name in ("spikes", "labels", "events", "noise", "merged", "train", "test"):
        np.testing.assert_array_equal(getattr(again, name), getattr(small, name))
    other = sd.SaccadeConfig(n_ticks=5, step_ms=6.0, seed=1)
    assert sd.cache_path(other, cache_dir) != path


def test_bad_configuration_and_cache():
    with pytest.raises(ConfigError, match="n_ticks"):
        sd.SaccadeConfig(n_ticks=0)
    with pytest.raises(ConfigError, match="camera step per tick"):
        sd.SaccadeConfig(n_ticks=200, step_ms=2.0)
    with pytest.raises(ConfigError, match="does not fit"):
        sd.SaccadeConfig(sensor=20)
    with pytest.raises(ConfigError, match="index 1797"):
        sd.event_stream(1797, SMALL)


def test_unreadable_cache_names_the_file(tmp_path):
    from s2sim.errors import TraceError

    path = sd.cache_path(SMALL, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a zip file")
    with pytest.raises(TraceError, match=path.name):
        sd.load(SMALL, cache_dir=tmp_path)
