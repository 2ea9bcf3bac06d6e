"""Joints files: person filter, re-basing, gaps kept as gaps, confidence rules, duplicates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bold_fixture import BYSTANDER_ID, write_bold_fixture
from beenet.data.joints import load_clip_joints, load_joints_array, load_person_joints
from beenet.errors import BoLDFormatError, DataNotFoundError


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return write_bold_fixture(tmp_path_factory.mktemp("bold") / "BOLD_public",
                              clips_per_split={"train": 1, "val": 1, "test": 1}, num_frames=14)


def _rows(path: Path, person: int) -> np.ndarray:
    arr = np.load(path)
    return arr[arr[:, 1] == person]


def test_fixture_rows_are_shuffled_and_absolute(fx):
    video = fx.clips("train")[0]
    arr = np.load(fx.joints_path(video))
    assert arr.shape[1] == 56 and len(np.unique(arr[:, 1])) == 3  # two annotated + bystander
    assert (np.diff(arr[:, 0]) < 0).any()  # not sorted
    assert arr[:, 0].min() == fx.frame_offsets[video] > 0


def test_person_frames_are_rebased_and_gaps_stay_gaps(fx):
    video = fx.clips("train")[0]
    path = fx.joints_path(video)
    pj = load_person_joints(path, 0)
    offset = fx.frame_offsets[video]
    assert pj.frame_offset == offset
    assert pj.keypoints.shape == (fx.num_frames, 18, 3) and pj.keypoints.dtype == np.float32
    np.testing.assert_array_equal(pj.present_frames, fx.present[(video, 0)])
    missing = np.setdiff1d(np.arange(fx.num_frames), fx.present[(video, 0)])
    assert list(missing) == [3, 8, 13]
    assert np.isnan(pj.keypoints[missing, :, :2]).all() and (pj.keypoints[missing, :, 2] == 0).all()
    # Frames after a gap carry their own row's values, not a neighbour's.
    rows = _rows(path, 0)
    for t in (2, 4, 9, 12):
        [row] = [r for r in rows if r[0] == offset + t]
        kp = row[2:].reshape(18, 3)
        np.testing.assert_allclose(pj.keypoints[t, :16], kp[:16], rtol=1e-6)


def test_person_entering_late_uses_the_whole_file_offset(fx):
    video = fx.clips("val")[0]
    pj = load_person_joints(fx.joints_path(video), 1)
    assert pj.frame_offset == fx.frame_offsets[video]
    np.testing.assert_array_equal(pj.present_frames, fx.present[(video, 1)])
    assert pj.present_frames[0] == 2 and not pj.present[:2].any()


def test_low_confidence_and_zero_keypoints_are_missing(fx):
    pj = load_person_joints(fx.joints_path(fx.clips("train")[0]), 1)
    t = pj.present_frames
    assert np.isnan(pj.keypoints[t, 16, :2]).all() and (pj.keypoints[t, 16, 2] == 0).all()  # (0, 0, 0)
    assert np.isnan(pj.keypoints[t, 17, :2]).all() and (pj.keypoints[t, 17, 2] == 0).all()  # c = 0.05
    assert np.isfinite(pj.keypoints[t, :16]).all() and (pj.keypoints[t, :16, 2] >= 0.1).all()


def test_duplicate_rows_keep_the_most_confident(fx):
    pj = load_person_joints(fx.joints_path(fx.clips("train")[0]), 0)
    assert (pj.keypoints[0, :16, 0] < fx.width + 10).all()  # the +1000 px duplicate was dropped


def test_num_frames_pads_or_drops(fx):
    path = fx.joints_path(fx.clips("train")[0])
    longer = load_person_joints(path, 0, num_frames=fx.num_frames + 5)
    assert longer.keypoints.shape[0] == fx.num_frames + 5 and not longer.present[fx.num_frames :].any()
    shorter = load_person_joints(path, 0, num_frames=5)
    assert shorter.keypoints.shape[0] == 5
    np.testing.assert_array_equal(shorter.present_frames, [0, 1, 2, 4])


def test_unknown_person_has_no_present_frames(fx):
    pj = load_person_joints(fx.joints_path(fx.clips("train")[0]), 42)
    assert pj.keypoints.shape[0] == fx.num_frames and not pj.present.any()
    assert np.isnan(pj.keypoints[..., :2]).all()


def test_clip_joints_hold_every_person_on_one_axis(fx):
    video = fx.clips("test")[0]
    people = load_clip_joints(fx.joints_path(video))
    assert set(people) == {0, 1, BYSTANDER_ID}
    assert {p.keypoints.shape for p in people.values()} == {(fx.num_frames, 18, 3)}
    assert people[BYSTANDER_ID].present.all()
    np.testing.assert_array_equal(people[0].present_frames, fx.present[(video, 0)])


def test_bad_shapes_and_files_name_the_file(tmp_path):
    bad = tmp_path / "0001.npy"
    np.save(bad, np.zeros((4, 55)))
    with pytest.raises(BoLDFormatError, match=r"0001\.npy.*shape \(4, 55\).*\(N, 56\)"):
        load_person_joints(bad, 0)
    np.save(bad, np.zeros(56))
    with pytest.raises(BoLDFormatError, match="0001.npy"):
        load_joints_array(bad)
    np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BoLDFormatError, match="0001.npy"):
        load_joints_array(bad)
    frac = np.zeros((2, 56))
    frac[1, 0] = 3.5
    np.save(bad, frac)
    with pytest.raises(BoLDFormatError, match="row 1"):
        load_joints_array(bad)
    bad.write_bytes(b"not numpy")
    with pytest.raises(BoLDFormatError, match="0001.npy"):
        load_joints_array(bad)
    with pytest.raises(DataNotFoundError, match="0002.npy"):
        load_person_joints(tmp_path / "0002.npy", 0)


def test_empty_joints_file(tmp_path):
    path = tmp_path / "e.npy"
    np.save(path, np.zeros((0, 56)))
    pj = load_person_joints(path, 0, num_frames=7)
    assert pj.keypoints.shape == (7, 18, 3) and not pj.present.any()
    assert load_clip_joints(path) == {}


@settings(max_examples=30, deadline=None)
@given(
    frames=st.lists(st.integers(0, 40), min_size=1, max_size=25),
    offset=st.integers(0, 10_000),
    seed=st.integers(0, 2**31),
)
def test_row_order_never_matters(tmp_path_factory, frames, offset, seed):
    rng = np.random.default_rng(seed)
    n = len(frames)
    arr = np.zeros((n + 1, 56))
    arr[:n, 0] = offset + np.asarray(frames)
    arr[:n, 1] = 3
    arr[:n, 2:] = rng.uniform(0, 100, (n, 54))
    arr[n, 0], arr[n, 1] = offset, 7  # another person sets the clip's first frame
    d = tmp_path_factory.mktemp("perm")
    np.save(d / "a.npy", arr)
    np.save(d / "b.npy", arr[rng.permutation(n + 1)])
    a, b = load_person_joints(d / "a.npy", 3), load_person_joints(d / "b.npy", 3)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(a.present_frames, sorted(set(frames)))
    assert a.frame_offset == offset and a.keypoints.shape[0] == max(frames) + 1


def test_a_corrupt_low_frame_number_is_named_when_most_rows_fall_out(tmp_path, caplog):
    """Frames are re-based on the lowest frame number (the format's rule); one corrupt low number
    pushes the real rows past the clip's end. They are left out, and the log names the row."""
    rows = np.zeros((6, 56))
    rows[:, 0] = [1000, 1001, 1002, 1003, 1004, 7]  # row 5: a corrupt frame number
    rows[:, 2:] = 0.5
    path = tmp_path / "j.npy"
    np.save(path, rows)
    with caplog.at_level("WARNING", logger="beenet.data.joints"):
        person = load_person_joints(path, 0, num_frames=20)
    assert person.present_frames.tolist() == [0]
    assert any("5 of 6 rows" in r.getMessage() and "row 5" in r.getMessage() and "next lowest is 1000" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    caplog.clear()
    with caplog.at_level("WARNING", logger="beenet.data.joints"):
        load_person_joints(path, 0, num_frames=20)  # read again (each sample does): said once
        clean = tmp_path / "clean.npy"
        np.save(clean, rows[:5])  # without the corrupt row: nothing to say
        assert load_person_joints(clean, 0, num_frames=3).present_frames.tolist() == [0, 1, 2]
    assert not caplog.records
