"""Tracking: stable person ids across frames, gaps, newcomers, and given ids."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _predict_helpers import person_keypoints
from beenet.inference.pose import detection_from_keypoints
from beenet.inference.tracking import Tracker, iou, keypoint_distance


def _det(cx: float, top: float = 20.0, height: float = 60.0, phase: float = 0.0, track_id=None):
    d = detection_from_keypoints(person_keypoints(cx, top, height, phase))
    d.track_id = track_id
    return d


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_keypoint_distance_is_scale_free():
    a = person_keypoints(50, 20, 60)
    b = a.copy()
    b[:, 0] += 6
    assert keypoint_distance(a, b, 60) == pytest.approx(0.1)
    assert keypoint_distance(a * 2, b * 2, 120) == pytest.approx(0.1, rel=1e-5)
    none = np.full_like(a, np.nan)
    none[:, 2] = 0
    assert keypoint_distance(a, none, 60) is None


def test_two_people_keep_their_ids_whatever_the_detection_order():
    tr = Tracker()
    rng = np.random.default_rng(0)
    first = None
    for t in range(40):
        people = [_det(40 + t, phase=t / 5), _det(160 - t, phase=t / 3)]
        order = rng.permutation(2)
        ids = tr.update(t, [people[i] for i in order])
        by_person = [ids[list(order).index(k)] for k in range(2)]
        if first is None:
            first = by_person
        assert by_person == first
    assert sorted(first) == [0, 1]


def test_short_gap_keeps_the_id_long_gap_gives_a_new_one():
    tr = Tracker(max_age=5)
    for t in range(10):
        assert tr.update(t, [_det(50 + t)]) == [0]
    assert tr.update(15, [_det(60)]) == [0]  # 5 frames missed: same person
    assert tr.update(30, [_det(60)]) == [1]  # 14 frames missed: the track ended


def test_newcomer_gets_the_next_id_and_far_jumps_are_new_people():
    tr = Tracker()
    assert tr.update(0, [_det(30)]) == [0]
    assert tr.update(1, [_det(31), _det(200)]) == [0, 1]
    assert tr.update(2, [_det(400)]) == [2]  # nowhere near anyone: a new person
    assert tr.update(3, [_det(32), _det(201)]) == [0, 1]


def test_given_track_ids_are_kept_and_new_ids_do_not_collide():
    tr = Tracker()
    assert tr.update(0, [_det(30, track_id=7)]) == [7]
    assert tr.update(1, [_det(31, track_id=7), _det(300)]) == [7, 8]


def test_reset_starts_from_zero():
    tr = Tracker()
    tr.update(0, [_det(30), _det(200)])
    tr.reset()
    assert tr.update(0, [_det(200)]) == [0]


@settings(max_examples=25, deadline=None)
@given(
    n_people=st.integers(1, 4),
    steps=st.integers(2, 12),
    speed=st.floats(-3.0, 3.0),
    seed=st.integers(0, 10_000),
)
def test_property_ids_follow_well_separated_people(n_people, steps, speed, seed):
    rng = np.random.default_rng(seed)
    starts = 60 + 150 * np.arange(n_people)
    tr = Tracker()
    expected = None
    for t in range(steps):
        order = rng.permutation(n_people)
        dets = [_det(starts[k] + speed * t, phase=t) for k in order]
        ids = tr.update(t, dets)
        mapping = {int(k): ids[i] for i, k in enumerate(order)}
        if expected is None:
            expected = mapping
            assert sorted(mapping.values()) == list(range(n_people))
        assert mapping == expected
