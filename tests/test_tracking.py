"""Tracking: stable person ids across frames, gaps, newcomers, given ids; min hits, dropped tracks,
dense final ids, shot cuts, constant velocity, interpolation inside gaps; real footage."""

from __future__ import annotations

import numpy as np
import pytest
from _predict_helpers import person_keypoints
from hypothesis import given, settings
from hypothesis import strategies as st

from beenet.inference.pose import box_iou, detection_from_keypoints
from beenet.inference.tracking import Tracker, body_tilt, keypoint_distance
from beenet.inference.tracking_config import TrackingConfig
from beenet.inference.windows import TrackStore


def _det(cx: float, top: float = 20.0, height: float = 60.0, phase: float = 0.0, track_id=None):
    d = detection_from_keypoints(person_keypoints(cx, top, height, phase))
    d.track_id = track_id
    return d


def test_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_keypoint_distance_is_scale_free():
    a = person_keypoints(50, 20, 60)
    b = a.copy()
    b[:, 0] += 6
    assert keypoint_distance(a, b, 60) == pytest.approx(0.1)
    assert keypoint_distance(a * 2, b * 2, 120) == pytest.approx(0.1, rel=1e-5)
    none = np.full_like(a, np.nan)
    none[:, 2] = 0
    assert keypoint_distance(a, none, 60) is None


def test_cost_matrix_is_the_cost_of_every_pair():
    """The tracker's all-pairs cost (one extrapolation a track) equals :meth:`Tracker.cost` pair by
    pair: moving tracks, joints missing or unsure on either side, boxes apart, a single shared joint."""
    rng = np.random.default_rng(3)
    tr = Tracker()
    for t in range(4):  # three people walking, their tracks get velocities
        tr.update(t, [_det(40 + 3 * t, phase=t / 4), _det(120 - 2 * t, top=30), _det(300, height=90)])
    dets = []
    for k in range(7):
        d = _det(float(rng.uniform(0, 320)), top=float(rng.uniform(0, 80)), height=float(rng.uniform(30, 120)))
        kp = d.keypoints.copy()
        kp[rng.random(len(kp)) < 0.3, :2] = np.nan  # joints not found
        kp[rng.random(len(kp)) < 0.2, 2] = 0.05  # joints too unsure to count
        if k == 6:  # one joint alone in common with anyone: the boxes decide
            kp[1:, 2] = 0.0
        d.keypoints = kp
        dets.append(d)
    for frame in (None, 4, 9):
        got = tr.cost_matrix(tr.tracks, dets, frame)
        want = np.array([[tr.cost(t, d, frame) for d in dets] for t in tr.tracks])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


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
    tr = Tracker(min_hits=1)
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


# -- who counts as a person ------------------------------------------------------------------------
def _run(tr: Tracker, frames: dict[int, list]) -> list[list[int]]:
    return [tr.update(t, frames.get(t, [])) for t in range(max(frames) + 1)]


def test_a_track_counts_after_min_hits_in_a_row():
    tr = Tracker(min_hits=3)
    _run(tr, {0: [_det(30)], 1: [_det(31)], 5: [_det(200)], 6: [_det(201)], 7: [_det(202)]})
    # the first person was seen twice, then missed: a flicker, dropped; the second counts
    assert tr.finalize() == {1: 0}


def test_a_tentative_track_that_misses_a_frame_ends_at_once():
    tr = Tracker(min_hits=3, max_age=10)
    assert tr.update(0, [_det(30)]) == [0]
    assert tr.update(1, []) == []
    assert tr.update(2, [_det(30)]) == [1]  # not re-joined: a new tentative track
    tr2 = Tracker(min_hits=1, max_age=10)
    tr2.update(0, [_det(30)])
    tr2.update(1, [])
    assert tr2.update(2, [_det(30)]) == [0]  # a confirmed track survives the miss


def test_short_and_low_confidence_tracks_are_dropped_and_ids_are_dense():
    tr = Tracker(min_hits=2, min_track_frames=5, min_confidence=0.5)
    frames: dict[int, list] = {}
    for t in range(20):
        people = [_det(40 + t)]  # person A: whole clip
        if 2 <= t < 5:
            people.append(_det(150))  # B: 3 frames, too short
        if 4 <= t < 14:
            faint = _det(260 + t)
            faint.score = 0.3
            people.append(faint)  # C: long but faint
        if 8 <= t < 20:
            people.append(_det(380))  # D: kept
        frames[t] = people
    _run(tr, frames)
    final = tr.finalize()
    assert sorted(final.values()) == [0, 1]  # dense, whatever was dropped in between
    a, d = (next(t.person_id for t in tr.all_tracks() if t.first_frame == f) for f in (0, 8))
    assert final == {a: 0, d: 1}


def test_final_ids_follow_first_appearance():
    tr = Tracker(min_hits=1)
    _run(tr, {t: ([_det(300)] if t >= 0 else []) + ([_det(40)] if t >= 3 else []) for t in range(10)})
    final = tr.finalize()
    first = {t.person_id: t.first_frame for t in tr.all_tracks()}
    assert sorted(final, key=final.get) == sorted(first, key=first.get)


def test_a_lying_skeleton_is_not_a_person():
    standing = person_keypoints(100, 20, 60)
    lying = standing.copy()
    lying[:, 0] = 100 + (standing[:, 1] - 20)  # rotated by 90 degrees about the neck
    lying[:, 1] = 20 - (standing[:, 0] - 100)
    assert body_tilt(standing) == pytest.approx(0.0, abs=1e-3)
    assert body_tilt(lying) == pytest.approx(90.0, abs=1e-3)
    tr = Tracker(min_hits=1)
    for t in range(10):
        tr.update(t, [detection_from_keypoints(standing), detection_from_keypoints(lying + [300, 0, 0])])
    assert tr.finalize() == {0: 0}
    tr = Tracker(min_hits=1, max_tilt=None)
    for t in range(10):
        tr.update(t, [detection_from_keypoints(standing), detection_from_keypoints(lying + [300, 0, 0])])
    assert tr.finalize() == {0: 0, 1: 1}


def test_a_lying_person_a_person_detector_boxed_is_kept():
    """The same lying skeleton, its box from a person detector (``body``): a person lying down,
    kept under the default max_tilt, also when only some of its detections were boxed."""
    from dataclasses import replace

    standing = person_keypoints(100, 20, 60)
    lying = standing.copy()
    lying[:, 0] = 100 + (standing[:, 1] - 20)
    lying[:, 1] = 20 - (standing[:, 0] - 100)
    boxed = replace(detection_from_keypoints(lying + [300, 0, 0]), body=True)
    tr = Tracker(min_hits=1)
    for t in range(10):
        tr.update(t, [detection_from_keypoints(standing), boxed])
    assert tr.finalize() == {0: 0, 1: 1}
    tr = Tracker(min_hits=1)  # boxed on its first 3 frames only (then followed by its joints)
    for t in range(10):
        tr.update(t, [detection_from_keypoints(standing), boxed if t < 3 else detection_from_keypoints(lying + [300, 0, 0])])
    assert tr.finalize() == {0: 0, 1: 1}


def test_cut_ends_every_track():
    tr = Tracker(min_hits=1, max_age=30)
    for t in range(10):
        assert tr.update(t, [_det(50)]) == [0]
    tr.cut(10)
    assert tr.update(10, [_det(50)]) == [1]  # same place, after the cut: someone else
    assert tr.update(11, [_det(50)]) == [1]
    assert tr.finalize() == {0: 0, 1: 1}
    assert [t.last_frame for t in tr.all_tracks()] == [9, 11]


@pytest.mark.parametrize("velocity", [True, False])
def test_two_people_crossing_keep_their_ids(velocity):
    """Two people walk through each other at 8 px a frame; without constant-velocity prediction
    the tracker swaps them where they overlap."""
    tr = Tracker(min_hits=1, constant_velocity=velocity)
    first = None
    swapped = False
    for t in range(30):
        a, b = _det(60 + 8 * t, phase=0.0), _det(292 - 8 * t, phase=0.0)
        ids = tr.update(t, [a, b])
        first = first or ids
        swapped |= ids != first
    assert swapped is not velocity
    if velocity:
        assert tr.finalize() == {0: 0, 1: 1}


# -- the store: final ids, confidences, interpolation ---------------------------------------------
def test_store_interpolates_inside_gaps_and_never_past_the_ends():
    store = TrackStore()
    a, b = person_keypoints(50, 20, 60), person_keypoints(80, 20, 60)
    b[3] = [np.nan, np.nan, 0.0]  # a joint missing on one side stays missing
    store.add(2, 7, a, (10.0, 10.0, 20.0, 40.0), 0.8)
    store.add(5, 7, b, (40.0, 10.0, 20.0, 40.0), 0.5)
    store.add(3, 9, a, (0.0, 0.0, 5.0, 5.0), 0.9)  # a track that will be dropped
    for f in range(10):
        store.frame_done(f)
    store.relabel({7: 0})
    assert store.interpolate() == 2
    assert store.person_ids == [0]
    assert store.interpolated() == {0: {3, 4}}
    assert sorted(store.boxes()[0]) == [2, 3, 4, 5]  # nothing before 2 or after 5
    assert store.boxes()[0][3] == pytest.approx((20.0, 10.0, 20.0, 40.0))
    assert store.confidences()[0][4] == pytest.approx(0.6)
    tr = store.tracks()[0]
    assert tr.present.tolist() == [False, False, True, True, True, True, False, False, False, False]
    np.testing.assert_allclose(tr.keypoints[4, 0, :2], (a[0, :2] + 2 * b[0, :2]) / 3, rtol=1e-5)
    assert np.isnan(tr.keypoints[4, 3, 0]) and tr.keypoints[4, 3, 2] == 0


def test_store_leaves_gaps_longer_than_max_gap():
    store = TrackStore()
    kp = person_keypoints(50, 20, 60)
    for f in (0, 1, 9):
        store.add(f, 0, kp, (0.0, 0.0, 10.0, 10.0))
    assert store.interpolate(max_gap=3) == 0
    assert store.interpolated() == {0: set()}


# -- through the Predictor ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    from _predict_helpers import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "still.pt", fusion_form="odds")


def test_pose_every_interpolates_between_posed_frames(tmp_path, tiny_ckpt):
    from _predict_helpers import ScriptedPose, write_people_video

    from beenet.inference.predictor import Predictor

    video = tmp_path / "two.mp4"
    scene = write_people_video(video, num_frames=30, width=96, height=64, people=2, fps=12.0)
    full = Predictor(tiny_ckpt, pose=ScriptedPose(scene), tracking=TrackingConfig(pose_every=1),
                     show_progress=False).run(video)
    pose = ScriptedPose(scene)
    res = Predictor(tiny_ckpt, pose=pose, tracking=TrackingConfig(pose_every=4), show_progress=False).run(video)
    # frames 0, 4, ..., 28, the last one (29), and 1, 2 while the two new tracks were tentative
    # (min_hits 3 in a row)
    posed = {0, 1, 2, *range(0, 30, 4), 29}
    assert pose.calls == len(posed) == 11
    assert res.stats["posed_frames"] == 11 and res.stats["shot_cuts"] == 0
    assert sorted(res.tracks) == sorted(full.tracks) == [0, 1]
    for pid in (0, 1):
        assert sorted(res.boxes[pid]) == list(range(30))  # to the end: the last frame is posed
        assert res.interpolated[pid] == set(range(30)) - posed
        assert full.interpolated[pid] == set()
        assert set(res.confidences[pid]) == set(res.boxes[pid])
        assert all(0.0 < c <= 1.0 for c in res.confidences[pid].values())
        # a straight line between the poses is close to the real, gently swaying, skeleton
        err = np.nanmean(np.abs(res.tracks[pid].keypoints[:, :, :2] - full.tracks[pid].keypoints[:, :, :2]))
        assert err < 1.0, err


@pytest.mark.slow
@pytest.mark.usefixtures("blazepose_models")
def test_real_footage_one_id_per_person(tiny_ckpt):
    """talking.mp4: one woman, one id over the whole clip. face_noface.mov: one man, whose track
    ends at the cut to the animated title (frame 72); the title is nobody. Default pose stride."""
    from footage import footage

    from beenet.inference.predictor import Predictor

    with Predictor(tiny_ckpt, pose="mediapipe", show_progress=False) as p:
        talk = p.run(footage("talking.mp4"))
        assert sorted(talk.tracks) == [0]
        # Posed every 5th frame (auto): she is first found at frame 45, not 17 as with every frame
        # (docs/predict.md, "Tracking"), and kept to the end.
        assert len(talk.boxes[0]) > 0.85 * talk.num_frames and max(talk.boxes[0]) == talk.num_frames - 1
        face = p.run(footage("face_noface.mov"))
    assert sorted(face.tracks) == [0]
    assert face.stats["shot_cuts"] == 1
    # ends at the cut (72), within one pose stride (auto: every 5th frame at 26 fps) before it
    assert min(face.boxes[0]) < 5 and 72 - face.stats["pose_every"] <= max(face.boxes[0]) <= 71
    assert set(face.table.person_id) == {0}


def test_pose_raising_mid_video_stops_the_decode_thread(tmp_path, tiny_ckpt):
    """The decode thread is stopped (and the reader closed after it) when pose raises."""
    import threading

    from _predict_helpers import ScriptedPose, write_people_video

    from beenet.inference.predictor import Predictor

    video = tmp_path / "two.mp4"
    scene = write_people_video(video, num_frames=30, width=96, height=64, people=2, fps=12.0)

    class Fails(ScriptedPose):
        def __call__(self, frame, index=None):
            if index == 5:
                raise RuntimeError("pose failed on frame 5")
            return super().__call__(frame, index)

    with pytest.raises(RuntimeError, match="frame 5"):
        Predictor(tiny_ckpt, pose=Fails(scene), tracking=TrackingConfig(pose_every=1), show_progress=False).run(video)
    assert not [t for t in threading.enumerate() if t.name == "beenet-prefetch"]


@pytest.mark.usefixtures("blazepose_models")
def test_close_closes_the_backend_the_predictor_built_not_one_it_was_given(tiny_ckpt):
    from _predict_helpers import ScriptedPose

    from beenet.inference.predictor import Predictor

    pred = Predictor(tiny_ckpt, pose="mediapipe", show_progress=False)
    built = pred.pose
    assert built._started  # started (reset) when built
    pred.close()
    assert not built._started and not built.runner.pool.started  # closed before interpreter shutdown
    assert built.runner._engines == []  # litert's interpreters let go too
    assert pred.pose is not built  # a later video builds it again
    pred.close()

    class Owned(ScriptedPose):
        closed = 0

        def close(self):
            Owned.closed += 1

    with Predictor(tiny_ckpt, pose=Owned([]), show_progress=False):
        pass
    assert Owned.closed == 0  # the caller's own backend is the caller's to close


def test_tracking_config_checks_its_values_and_builds_the_tracker():
    from beenet.errors import ConfigError
    from beenet.inference.tracking_config import MAX_GAP_S, MIN_HITS, RELINK_S

    cfg = TrackingConfig()
    assert (cfg.max_gap, cfg.relink, cfg.min_hits, cfg.pose_every) == (MAX_GAP_S, RELINK_S, MIN_HITS, "auto")
    assert list(cfg.settings()) == ["max_gap_s", "relink_s", "min_hits", "min_track_s", "min_confidence",
                                    "max_tilt", "shot_cuts", "pose_every", "reclaim", "look_back_s"]
    tr = TrackingConfig(max_gap=1.0, relink=2.0, min_track=0.4).tracker(25.0, every=5)
    assert tr.reclaim_margin > 0 and TrackingConfig(reclaim=False).tracker(25.0).reclaim_margin == 0
    assert (tr.max_age, tr.relink_frames, tr.min_track_frames) == (25, 50, 10)
    assert TrackingConfig(max_gap=0.1).tracker(25.0, every=5).max_age == 5  # at least one pose stride
    assert TrackingConfig(pose_every="auto").pose_stride(30.0) == 6 and TrackingConfig(pose_every=3).pose_stride(30.0) == 3
    assert TrackingConfig(pose_every=3).pose_stride(30.0, needs_pixels=False) == 1
    for bad, match in [({"pose_every": 0}, "pose_every"), ({"pose_every": "2"}, "pose_every"),
                       ({"min_hits": 0}, "min_hits=0"), ({"max_gap": -1}, "max_gap=-1"), ({"relink": -1}, "relink=-1")]:
        with pytest.raises(ConfigError, match=match):
            TrackingConfig(**bad)


def test_old_tracking_keywords_still_work_with_a_deprecation_warning(tiny_ckpt):
    from beenet.inference.predictor import Predictor

    with pytest.warns(DeprecationWarning, match=r"tracking=TrackingConfig\(pose_every=2, max_gap=1.0\)"):
        old = Predictor(tiny_ckpt, pose_every=2, max_gap=1.0)
    assert old.tracking == TrackingConfig(pose_every=2, max_gap=1.0)
    new = Predictor(tiny_ckpt, tracking=TrackingConfig(pose_every=2, max_gap=1.0))
    assert old.settings()["tracker"] == new.settings()["tracker"] == {**TrackingConfig().settings(),
                                                                     "pose_every": 2, "max_gap_s": 1.0}
    with pytest.warns(DeprecationWarning):  # on top of a config: the keyword wins
        assert Predictor(tiny_ckpt, tracking=TrackingConfig(relink=0.0), min_hits=5).tracking == \
            TrackingConfig(relink=0.0, min_hits=5)
    with pytest.raises(TypeError, match="'max_gaps'"):
        Predictor(tiny_ckpt, max_gaps=1.0)
