"""The window schedule of ``beenet predict``: which frames each window needs, and when it is complete."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _predict_helpers import make_track
from beenet.inference.windows import (
    Sampling,
    WindowSchedule,
    context_frames,
    plan_windows,
    window_bounds,
)


def test_needs_and_wanted_by() -> None:
    s = WindowSchedule({"a": [3, 1, 2], "b": [2, 5]})
    assert s.needs("a") == {1, 2, 3} and s.needs("b") == {2, 5}
    assert s.wanted_by(2) == ["a", "b"] and s.wanted_by(4) == [] and s.wanted_by(5) == ["b"]
    assert s.frames == [1, 2, 3, 5] and (s.first_frame, s.last_frame) == (1, 5)
    assert s.open == ["a", "b"]


def test_complete_when_every_frame_is_seen_in_any_order() -> None:
    s = WindowSchedule({0: [4, 6], 1: [5, 6], 2: [9]})
    assert s.see(6) == [] and s.see(5) == [1]
    assert s.see(6) == [], "a frame seen twice completes nothing twice"
    assert s.see(4) == [0]
    assert s.open == [2] and s.missing(0) == frozenset()
    assert s.see(100) == [] and s.see(9) == [2] and s.open == []


def test_one_frame_completes_several_windows_in_their_order() -> None:
    s = WindowSchedule({"late": [7], "early": [1, 7], "mid": [7]})
    s.see(1)
    assert s.see(7) == ["late", "early", "mid"]


def test_track_end_closes_that_persons_windows_only() -> None:
    s = WindowSchedule({0: [1, 2, 3], 1: [1, 2, 3], 2: [8, 9]}, owners={0: "p0", 1: "p1", 2: "p0"})
    s.see(1)
    assert s.end_track("p0") == [0, 2]
    assert s.missing(0) == {2, 3} and s.missing(2) == {8, 9}
    assert s.open == [1] and s.see(2) == [] and s.see(3) == [1]
    assert s.end_track("p0") == [] and s.end_track("nobody") == []


def test_video_end_closes_every_open_window() -> None:
    s = WindowSchedule({0: [0, 1], 1: [1, 30], 2: [40]})
    s.see(0)
    assert s.see(1) == [0]
    assert s.end_video() == [1, 2]
    assert s.missing(1) == {30} and s.missing(2) == {40}
    assert s.end_video() == [] and s.open == []


def test_context_frames_are_spread_over_the_span() -> None:
    assert context_frames(10, 19, 1) == [15]
    assert context_frames(10, 19, 2) == [12, 17]
    assert context_frames(0, 1, 5) == [0, 1]  # never more frames than the span has


def test_for_plans_adds_each_windows_context_frames() -> None:
    present = np.ones(48, bool)
    plans = plan_windows({0: make_track(0, present), 1: make_track(1, present)}, 48, 12.0, 100, 100,
                         Sampling("still"), window_s=2.0, stride_s=1.0)
    plain = WindowSchedule.for_plans(plans)
    with_ctx = WindowSchedule.for_plans(plans, context_k=3)
    for p in plans:
        assert plain.needs(p.index) == p.needed_frames
        ctx = set(context_frames(p.start_frame, p.end_frame, 3))
        assert with_ctx.needs(p.index) == p.needed_frames | ctx
        assert all(p.start_frame <= f <= p.end_frame for f in with_ctx.needs(p.index))
    # Two people in the same span share its context frames.
    assert with_ctx.wanted_by(context_frames(0, 23, 3)[0]) == [p.index for p in plans if p.start_frame == 0]
    # Person ids are the owners: a track that ends closes its windows.
    assert with_ctx.end_track(1) == [p.index for p in plans if p.person_id == 1]


def test_stride_longer_than_the_window_skips_frames() -> None:
    present = np.ones(100, bool)
    plans = plan_windows({0: make_track(0, present)}, 100, 10.0, 300, 100, Sampling("uniform", num_frames=4),
                         window_s=1.0, stride_s=3.0)
    assert [(p.start_frame, p.end_frame) for p in plans] == [(0, 9), (30, 39), (60, 69), (90, 99)]
    s = WindowSchedule.for_plans(plans, context_k=2)
    for f in range(10, 30):
        assert s.wanted_by(f) == []
    for p in plans:
        assert s.needs(p.index) and all(p.start_frame <= f <= p.end_frame for f in s.needs(p.index))
    done = [w for f in s.frames for w in s.see(f)]
    assert done == [p.index for p in plans] and s.end_video() == []


def test_short_tracks() -> None:
    """A person seen in a few frames of a window needs only those; one seen too briefly gets none."""
    present = np.zeros(24, bool)
    present[4:10] = True  # 6 of 24 frames: exactly min_presence 0.25
    brief = np.zeros(24, bool)
    brief[20] = True
    plans = plan_windows({0: make_track(0, present), 1: make_track(1, brief)}, 24, 12.0, 100, 100,
                         Sampling("uniform", num_frames=8), window_s=2.0, stride_s=2.0)
    assert [p.person_id for p in plans] == [0]
    s = WindowSchedule.for_plans(plans)
    assert s.needs(0) <= set(range(4, 10))
    assert s.needs(0) == set(plans[0].samples[0]) and len(s.needs(0)) <= 6  # never a frame they are not in
    for f in sorted(s.needs(0))[:-1]:
        assert s.see(f) == []
    assert s.see(sorted(s.needs(0))[-1]) == [0]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 120), w=st.integers(1, 40), stride=st.integers(1, 50), k=st.integers(0, 4),
       seed=st.integers(0, 10_000))
def test_any_frame_order_completes_every_window_exactly_once(n, w, stride, k, seed) -> None:
    rng = np.random.default_rng(seed)
    present = rng.random(n) < 0.8
    plans = plan_windows({0: make_track(0, present)}, n, 10.0, 200, 200, Sampling("uniform", num_frames=4),
                         window_s=w / 10.0, stride_s=stride / 10.0)
    s = WindowSchedule.for_plans(plans, context_k=k)
    order = rng.permutation(s.frames)
    seen: set[int] = set()
    done: list[int] = []
    for f in order:
        seen.add(int(f))
        for key in s.see(int(f)):
            assert s.needs(key) <= seen, "complete only once every needed frame was seen"
            done.append(key)
    assert sorted(done) == [p.index for p in plans] and s.end_video() == []
    if plans:
        assert (s.first_frame, s.last_frame) == (min(s.frames), max(s.frames))
        bounds = window_bounds(n, w, stride)
        assert {(p.start_frame, p.end_frame) for p in plans} <= set(bounds)


def test_a_window_with_no_frames_closes_at_video_end() -> None:
    s = WindowSchedule({"empty": [], "x": [1]})
    assert s.see(1) == ["x"] and s.end_video() == ["empty"]
    with pytest.raises(KeyError):
        s.needs("nope")


def test_a_body_boxed_without_joints_is_cropped_at_its_box() -> None:
    """A person the detector boxed whose joints were not found (``unposed``): where a window has
    no joint of theirs, its box is the union of their boxes and each crop is that frame's box;
    where some frames have joints, the frames without take their own box, not the joints'
    union. Without boxes (``PersonTrack`` of joints only) such a window is not planned."""
    from beenet.inference.windows import PersonTrack

    n = 40
    present = np.ones(n, bool)
    posed = np.zeros(n, bool)
    posed[:10] = True  # joints on frames 0-9 only
    track = make_track(0, posed)
    boxes = np.full((n, 4), np.nan, np.float32)
    boxes[:, 0] = 100 + np.arange(n)  # walking right, 50x120
    boxes[:, 1], boxes[:, 2], boxes[:, 3] = 20, 50, 120
    boxed = PersonTrack(0, track.keypoints, present, boxes)
    sampling = Sampling("uniform", num_frames=4)
    plans = plan_windows({0: boxed}, n, 10.0, 400, 300, sampling, window_s=2.0, stride_s=2.0)
    assert [(p.start_frame, p.end_frame) for p in plans] == [(0, 19), (20, 39)]
    mixed, unposed = plans
    for f, b in mixed.crop_boxes.items():
        if f >= 10:
            assert b == pytest.approx((100 + f, 20, 50, 120)), (f, b)
    assert unposed.box == pytest.approx((120, 20, 139 + 50 - 120, 120))
    for f, b in unposed.crop_boxes.items():
        assert b == pytest.approx((100 + f, 20, 50, 120)), (f, b)
    joints_only = PersonTrack(0, track.keypoints, present)
    assert [(p.start_frame, p.end_frame) for p in plan_windows({0: joints_only}, n, 10.0, 400, 300, sampling,
                                                                window_s=2.0, stride_s=2.0)] == [(0, 19)]
