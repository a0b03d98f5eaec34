"""DVS Gesture input pipeline: synthetic recordings in tonic's layout, loading, framing, spikes, cache."""

import os
import re

import numpy as np
import pytest

from s2sim import gestures
from s2sim.errors import ConfigError, TraceError

SMALL = gestures.SyntheticConfig(events=300, duration_ms=200)
FRAMES = gestures.FrameConfig(n_time_bins=8, size=32)


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("dvs")
    gestures.write_synthetic_dataset(root, n_train=100, n_test=100, seed=3, config=SMALL)
    return root


def test_synthetic_copy_is_read_by_tonic(synthetic_root):
    split = gestures.open_split(synthetic_root, train=False)
    assert len(split) == 100
    events, label = split[0]
    assert events.dtype.names == ("x", "y", "p", "t")
    assert np.all(np.diff(events["t"]) >= 0)
    assert events["t"].max() >= 1000  # tonic turned ms into microseconds
    assert label == int(os.path.basename(split.data[0])[:-4])
    assert sorted(set(split.targets)) == list(range(gestures.N_CLASSES))
    train_users = set(gestures.open_split(synthetic_root, train=True).users)
    assert not train_users & set(split.users)  # test users follow train users, as in the real split
    assert set(split.lighting) <= set(gestures.LIGHTINGS)


def test_missing_copy_names_the_files(tmp_path):
    with pytest.raises(ConfigError) as err:
        gestures.load_spikes(tmp_path, train=True, config=FRAMES)
    text = str(err.value)
    assert str(tmp_path / "DVSGesture" / "ibmGestureTrain.tar.gz") in text
    assert "user<NN>_<lighting>/<label>.npy" in text
    # the archive alone is not enough: tonic also wants >= 100 extracted recordings
    folder = tmp_path / "DVSGesture"
    (folder / "ibmGestureTrain" / "user01_lab").mkdir(parents=True)
    (folder / "ibmGestureTrain.tar.gz").write_bytes(b"")
    np.save(folder / "ibmGestureTrain" / "user01_lab" / "0.npy", np.zeros((3, 4), np.int32))
    with pytest.raises(ConfigError, match=re.escape("holds 1 .npy files, fewer than the 100")):
        gestures.open_split(tmp_path, train=True)


def test_frames_to_spikes_binarises_and_counts_merged_events():
    frames = np.zeros((2, 2, 3, 3), dtype=np.int64)
    frames[0, 1, 2, 0] = 3  # three events in one pixel and tick: one spike, two merged
    frames[1, 0, 0, 2] = 1
    spikes, merged = gestures.frames_to_spikes(frames)
    assert spikes.shape == (2, 18) and spikes.dtype == np.uint8
    assert merged == 2
    assert np.flatnonzero(spikes[0]).tolist() == [1 * 9 + 2 * 3 + 0]  # p*H*W + y*W + x
    assert np.flatnonzero(spikes[1]).tolist() == [2]
    with pytest.raises(ConfigError):
        gestures.frames_to_spikes(-frames)


def test_events_land_in_the_downsampled_pixel_and_bin():
    # x=21, y=9 on the 128 sensor -> (5, 2) at 32x32; ON polarity -> channel 1
    raw = np.array([[21, 9, 1, 0], [21, 9, 1, 1], [127, 127, 0, 50], [0, 0, 0, 99], [3, 3, 0, 100]])
    events = gestures.events_from_array(raw)
    frames = gestures.events_to_frames(events, gestures.FrameConfig(n_time_bins=4, size=32))
    assert frames.shape == (4, 2, 32, 32)
    assert frames[0, 1, 2, 5] == 2
    assert frames[2, 0, 31, 31] == 1
    assert frames[3, 0, 0, 0] == 1
    # tonic's ToFrame leaves out the events at the last timestamp; the pipeline counts them as dropped
    out = gestures.recordings_to_spikes([(events, 4)], gestures.FrameConfig(n_time_bins=4, size=32))
    assert out.events.tolist() == [5] and out.dropped.tolist() == [1] and out.merged.tolist() == [1]
    assert int(out.spikes.sum()) == 3


def test_unsorted_events_are_refused():
    events = gestures.events_from_array(np.array([[1, 1, 1, 5], [2, 2, 0, 1]]))
    with pytest.raises(TraceError, match="not sorted"):
        gestures.events_to_frames(events, FRAMES)


def test_load_spikes_accounts_for_every_event_and_caches(synthetic_root, tmp_path):
    data = gestures.load_spikes(synthetic_root, train=False, config=FRAMES, cache_dir=tmp_path)
    assert data.spikes.shape == (100, 8, 2048) and set(np.unique(data.spikes)) <= {0, 1}
    assert data.files == sorted(data.files)
    # every event is a spike, merged into one, or outside the time bins
    np.testing.assert_array_equal(data.spikes.sum(axis=(1, 2)) + data.merged + data.dropped, data.events)
    assert "merged" in data.summary() and "outside tonic's time bins" in data.summary()
    cached = list(tmp_path.glob("*.npz"))
    assert len(cached) == 1
    again = gestures.load_spikes(synthetic_root, train=False, config=FRAMES, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.spikes, data.spikes)
    assert again.users == data.users and again.files == data.files
    # another setting or a changed recording gives another cache file, never stale data
    gestures.load_spikes(
        synthetic_root, train=False, config=gestures.FrameConfig(n_time_bins=4, size=32), cache_dir=tmp_path
    )
    assert len(list(tmp_path.glob("*.npz"))) == 2
    path = gestures.dataset_dir(synthetic_root) / "ibmGestureTest" / data.files[0]
    raw = np.load(path)
    np.save(path, raw[: len(raw) // 2])
    changed = gestures.load_spikes(synthetic_root, train=False, config=FRAMES, cache_dir=tmp_path)
    assert changed.events[0] < data.events[0]
    np.save(path, raw)


def test_synthetic_classes_differ_where_the_gesture_says():
    rng = np.random.default_rng(0)
    mean_x = {k: np.mean([gestures.synthetic_recording(k, rng)[:, 0].mean() for _ in range(5)]) for k in range(11)}
    for right, left in ((1, 2), (3, 5), (4, 6)):
        assert mean_x[right] > mean_x[left] + 20
    # clockwise and counter-clockwise circles: same place, opposite sense of rotation
    for k, sense in ((3, 1), (4, -1)):
        calm = gestures.SyntheticConfig(noise=0.0, hot_pixels=0.0, distractor=0.0, speed_jitter=0.0)
        rec = gestures.synthetic_recording(k, np.random.default_rng(1), calm)
        angle = np.unwrap(np.arctan2(rec[:, 1] - rec[:, 1].mean(), rec[:, 0] - rec[:, 0].mean()))
        assert np.sign(np.polyfit(rec[:, 3], angle, 1)[0]) == sense


def test_synthetic_generator_is_seeded():
    a, la = gestures.synthetic_recordings(4, seed=1, config=SMALL)
    b, lb = gestures.synthetic_recordings(4, seed=1, config=SMALL)
    c, _ = gestures.synthetic_recordings(4, seed=2, config=SMALL)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)) and np.array_equal(la, lb)
    assert not np.array_equal(a[0], c[0])
    assert all(r.min() >= 0 and r[:, :2].max() <= 127 and set(np.unique(r[:, 2])) <= {0, 1} for r in a)
    with pytest.raises(ConfigError, match="at least 100"):
        gestures.write_synthetic_dataset("/nonexistent", n_train=10)


def test_recordings_file_round_trip(tmp_path):
    recs, labels = gestures.synthetic_recordings(3, seed=5, config=SMALL)
    path = tmp_path / "recs.npz"
    gestures.save_recordings(path, recs, labels)
    back, back_labels = gestures.load_recordings(path)
    assert back_labels.tolist() == labels.tolist()
    for raw, ev in zip(recs, back, strict=True):
        for i, name in enumerate(("x", "y", "p")):
            assert ev[name].astype(int).tolist() == raw[:, i].tolist()
        assert (ev["t"] == raw[:, 3] * 1000).all()
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(TraceError, match=re.escape("bad.npz")):
        gestures.load_recordings(tmp_path / "bad.npz")
    unsorted = recs[0].copy()
    unsorted[[0, -1], 3] = unsorted[[-1, 0], 3]
    with pytest.raises(ConfigError, match=r"recording 1: .*unsorted"):
        gestures.save_recordings(tmp_path / "x.npz", [recs[1], unsorted], [0, 1])


def test_frame_config_checks():
    with pytest.raises(ConfigError):
        gestures.FrameConfig(size=30)
    with pytest.raises(ConfigError):
        gestures.FrameConfig(n_time_bins=0)
    assert gestures.FrameConfig(size=16).n_inputs == 512
