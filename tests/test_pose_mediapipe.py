"""The multi-person ``mediapipe`` pose backend (BlazePose on LiteRT): its options, the messages
when something is missing, and what it finds on real footage (hand-checked frames). Where its
model files come from: tests/test_pose_models.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from footage import footage

from beenet.errors import BeenetError
from beenet.inference.pose import (
    INSTALL_HINT,
    MediaPipeMultiPose,
    PoseOptionError,
    make_pose_backend,
    mediapipe_available,
    resolve_backend_name,
)
from beenet.inference.pose import boxes as geometry
from beenet.inference.pose.runtime import litert_available

#: The test needs the backend to run: ai-edge-litert and the model files (skips without them).
needs_blazepose = pytest.mark.usefixtures("blazepose_models")


def _hide(monkeypatch, package: str) -> None:
    """``import package`` (and its submodules) raises ImportError for the rest of the test."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)


def test_without_litert_the_message_gives_the_install_command(monkeypatch):
    _hide(monkeypatch, "ai_edge_litert")
    assert not mediapipe_available() and not litert_available()
    assert resolve_backend_name("auto") == "rcnn"
    with pytest.raises(BeenetError) as err:
        make_pose_backend("mediapipe")
    assert "ai-edge-litert" in str(err.value) and INSTALL_HINT in str(err.value)
    assert "pip install ai-edge-litert" in INSTALL_HINT and "install-pose" not in INSTALL_HINT


@needs_blazepose
def test_the_backend_needs_no_mediapipe_package(monkeypatch):
    """With ``import mediapipe`` failing, ``auto`` is still the mediapipe backend and it runs."""
    _hide(monkeypatch, "mediapipe")
    assert mediapipe_available() and resolve_backend_name("auto") == "mediapipe"
    pose = make_pose_backend("auto")
    assert isinstance(pose, MediaPipeMultiPose) and pose.engine == "litert"
    assert pose(np.full((120, 160, 3), 127, np.uint8), 0) == []
    pose.close()
    assert sys.modules["mediapipe"] is None


def test_the_tasks_engine_and_the_single_person_backend_are_gone():
    with pytest.raises(PoseOptionError, match="pose engine 'tasks' .* was removed: it needed the mediapipe package"):
        make_pose_backend("mediapipe", engine="tasks")
    with pytest.raises(PoseOptionError, match="pose engine 'onnx': choose one of litert$"):
        make_pose_backend("mediapipe", engine="onnx")
    with pytest.raises(BeenetError, match="unknown pose backend 'mediapipe-single'"):
        make_pose_backend("mediapipe-single")


@needs_blazepose
def test_options_reach_the_backend_and_wrong_ones_are_refused():
    pose = make_pose_backend("auto", tiles=2, num_poses=3, engine="litert")  # engine=litert: old commands
    assert isinstance(pose, MediaPipeMultiPose) and pose.name == "mediapipe"
    assert pose.tiles == 2 and pose.num_poses == 3 and pose.engine == "litert"
    assert pose.settings["engine"] == "litert" and pose.settings["hog_every"] == 2
    assert pose(np.full((120, 160, 3), 127, np.uint8), 0) == []
    for shape in ((8, 8, 3), (20, 300, 3), (300, 20, 3)):  # smaller than a HOG window: nobody, no crash
        assert pose(np.full(shape, 127, np.uint8), 1) == []
    pose.close()
    with pytest.raises(PoseOptionError, match="pose option confirm_every must be >= 1, got 0"):
        make_pose_backend("mediapipe", confirm_every=0)
    with pytest.raises(PoseOptionError, match="does not take the option 'tile'$"):
        make_pose_backend("mediapipe", tile=2, tiles=1)  # only the one it does not take is named
    with pytest.raises(BeenetError, match="pose option tiles must be >= 1, got 0"):
        make_pose_backend("mediapipe", tiles=0)
    with pytest.raises(BeenetError, match="pose detector .yolo.: choose one of centernet, blazepose, hog"):
        make_pose_backend("mediapipe", detector="yolo")
    with pytest.raises(BeenetError, match="pose option hog_every must be >= 1, got 0"):
        make_pose_backend("mediapipe", hog_every=0)
    # values of the wrong kind are named, not turned into something else ('no' is not True)
    assert make_pose_backend("mediapipe", follow="no", motion="off").settings["follow"] is False
    for option, value, what in (("follow", "maybe", "true or false"), ("hog_scale", "fast", "a number"),
                                ("hog_every", 2.5, "a whole number"), ("motion", 2, "true or false")):
        with pytest.raises(PoseOptionError, match=f"pose option {option} must be {what}, got {value!r}"):
            make_pose_backend("mediapipe", **{option: value})


def test_tiles_cover_the_frame_and_overlap():
    tiles = geometry.tile_grid(768, 576, 3, 0.25)
    assert len(tiles) == 9
    covered = np.zeros((576, 768), bool)
    for x0, y0, w, h in tiles:
        assert x0 >= 0 and y0 >= 0 and x0 + w <= 768 and y0 + h <= 576
        covered[y0:y0 + h, x0:x0 + w] = True
    assert covered.all()
    assert tiles[1][0] < tiles[0][0] + tiles[0][2]  # neighbours overlap


def _frames(path: Path, first: int, last: int):
    import av

    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i > last:
                return
            if i >= first:
                yield i, f.to_ndarray(format="rgb24")


@needs_blazepose
@pytest.mark.slow
def test_three_pedestrians_in_one_frame_are_found_with_tiles():
    """vtest.avi frame 0 holds three pedestrians (counted by eye); the whole-frame detector sees
    them at 224x224 and finds none, 3x3 tiles find all three, each box on one of them."""
    _, frame = next(_frames(footage("vtest.avi"), 0, 0))
    people = [(266, 265), (513, 193), (663, 281)]  # centres, read off the frame by eye
    whole = make_pose_backend("mediapipe", detector="blazepose")
    whole.reset()
    assert whole(frame, 0) == []
    pose = make_pose_backend("mediapipe", tiles=3, detector="blazepose")
    pose.reset()
    dets = pose(frame, 0)
    assert len(dets) == 3
    for cx, cy in people:
        hits = [d for d in dets if d.box[0] <= cx <= d.box[0] + d.box[2] and d.box[1] <= cy <= d.box[1] + d.box[3]]
        assert len(hits) == 1, (cx, cy, [d.box for d in dets])
    assert all(0.0 <= d.score <= 1.0 and d.keypoints.shape == (18, 3) for d in dets)
    pose.close()
    whole.close()


@needs_blazepose
@pytest.mark.slow
def test_real_footage_one_person_and_nobody():
    """talking.mp4: one woman (a close-up: her shoulders are at the frame's edge, so she is found in
    24 of frames 0-40), never two; bikes.mp4 103-136: the cyclist (right half), alone; the
    animated title of face_noface.mov (frames 75-115, looked at): nobody."""
    pose = make_pose_backend("mediapipe")
    pose.reset()
    counts = [len(pose(f, i)) for i, f in _frames(footage("talking.mp4"), 0, 40)]
    assert max(counts) == 1 and sum(counts) >= 20, counts

    pose.reset()
    found = [(i, pose(f, i - 100)) for i, f in _frames(footage("bikes.mp4"), 100, 136)]
    cyclist = [d for i, dets in found if i >= 103 for d in dets]
    assert all(len(dets) <= 1 for _, dets in found)
    assert len(cyclist) >= 30
    assert all(d.box[0] + d.box[2] / 2 > 0.6 * 640 and d.score > 0.5 for d in cyclist)

    pose.reset()
    title = [len(pose(f, i - 75)) for i, f in _frames(footage("face_noface.mov"), 75, 115)]
    assert len(title) == 41 and sum(title) == 0, title
    pose.close()



def test_duplicates_from_tiles_are_one_person_and_neighbours_stay_two():
    whole = (100.0, 100.0, 40.0, 120.0)
    assert geometry.box_iou(whole, (102.0, 98.0, 40.0, 118.0)) >= 0.4  # same person, seen twice: merged
    assert geometry.box_iou(whole, (150.0, 100.0, 40.0, 120.0)) == 0.0  # the next person
    # one person half hidden behind another (vtest.avi frame 560): kept as two
    assert geometry.box_iou(whole, (100.0, 100.0, 40.0, 40.0)) < 0.4


def test_square_crops_stay_inside_the_frame_and_proposals_are_suppressed():
    assert geometry.square_crop((10.0, 20.0, 40.0, 80.0), 1.2, 768, 576) == (0, 12, 96, 96)  # moved, not cut
    assert geometry.square_crop((700.0, 500.0, 60.0, 120.0), 1.0, 768, 576) == (648, 456, 120, 120)
    assert geometry.square_crop((0.0, 0.0, 300.0, 300.0), 1.5, 320, 240) == (0, 0, 320, 240)  # frame too small
    boxes = [(100.0, 100.0, 64.0, 128.0), (104.0, 98.0, 64.0, 128.0), (300.0, 100.0, 64.0, 128.0),
             (120.0, 140.0, 30.0, 60.0)]  # a duplicate, another person, a part of the first
    assert geometry.nms(boxes, [2.0, 1.0, 1.5, 0.5], 0.3) == [0, 2]


#: vtest.avi frame 720, looked at: eight pedestrians; these four are whole, apart and upright.
#: Centres (x, y) read off the frame by eye.
VTEST_720_PEOPLE = [(573, 245), (482, 242), (75, 296), (314, 201)]


@needs_blazepose
def test_default_finds_several_small_people_in_one_frame():
    """The whole-frame detector alone finds nobody in vtest.avi frame 720 (people 1/7 of the frame
    tall); the default adds HOG proposals verified on crops and finds several, one box each."""
    _, frame = next(_frames(footage("vtest.avi"), 720, 720))
    whole = make_pose_backend("mediapipe", detector="blazepose")
    whole.reset()
    assert whole(frame, 0) == []
    whole.close()
    pose = make_pose_backend("mediapipe")
    assert pose.detector == "centernet"
    pose.reset()
    dets = pose(frame, 0)
    pose.close()
    assert len(dets) >= 2, [d.box for d in dets]
    hits = [[d for d in dets if d.box[0] <= cx <= d.box[0] + d.box[2] and d.box[1] <= cy <= d.box[1] + d.box[3]]
            for cx, cy in VTEST_720_PEOPLE]
    assert all(len(h) <= 1 for h in hits), [d.box for d in dets]  # never two boxes on one person
    assert sum(len(h) == 1 for h in hits) >= 3, [d.box for d in dets]
    assert all(d.box[3] < 200 and 0.5 <= d.score <= 1.0 for d in dets)  # pedestrian-sized, scored


@needs_blazepose
def test_hog_false_positives_are_dropped_by_the_verifier():
    """Proposals on things that are not people find nobody on their crop: HOG's own false positive
    on the blurred cars of bikes.mp4 frame 40 (weight just above 0, seen on a contact sheet), the
    lamp post and the camera tripod of vtest.avi; a proposal on a pedestrian is kept."""
    pose = make_pose_backend("mediapipe", detector="hog")
    pose.reset()
    _, bikes = next(_frames(footage("bikes.mp4"), 40, 40))
    assert pose.runner.verify(bikes, [(117.0, 28.0, 87.0, 174.0)], 640, 272) == []
    _, vtest = next(_frames(footage("vtest.avi"), 0, 0))
    pole, tripod, person = (400.0, 20.0, 60.0, 200.0), (455.0, 330.0, 75.0, 150.0), (233.0, 202.0, 66.0, 131.0)
    assert pose.runner.verify(vtest, [pole, tripod], 768, 576) == []
    kept = pose.runner.verify(vtest, [person], 768, 576)
    assert len(kept) == 1 and geometry.inside(266, 265, kept[0].box)
    pose.close()


@needs_blazepose
@pytest.mark.slow
def test_two_pedestrians_are_scored_in_the_same_window(tmp_path):
    """Predictor.run with the default pose on the first 40 frames (4 s) of vtest.avi: at least two
    people get an id and are scored over the same time."""
    import av
    from _predict_helpers import make_checkpoint

    from beenet.inference.predictor import Predictor

    clip = tmp_path / "vtest40.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
        stream.options = {"crf": "18"}
        for _, f in _frames(footage("vtest.avi"), 0, 39):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())
    ckpt = make_checkpoint(tmp_path / "tiny.pt")
    with Predictor(ckpt, device="cpu", window=2.0, stride=1.0, show_progress=False) as predictor:
        result = predictor.run(clip)
        assert predictor.settings()["pose"]["options"]["detector"] == "centernet"
    spans: dict[int, list[tuple[float, float]]] = {}
    for pid, s, e in zip(result.table["person_id"], result.table["start_s"], result.table["end_s"]):
        spans.setdefault(int(pid), []).append((float(s), float(e)))
    assert len(spans) >= 2, (spans, result.stats)
    overlapping = [(a, b) for a in spans for b in spans if a < b
                   for sa, ea in spans[a] for sb, eb in spans[b] if sa < eb and sb < ea]
    assert overlapping, spans


@needs_blazepose
def test_pose_flags_reach_the_backend_and_the_table_settings(tmp_path):
    from _predict_helpers import make_checkpoint

    from beenet.cli.predict import build_parser, pose_options
    from beenet.inference.predictor import ConfigError, Predictor

    parser = build_parser("beenet predict")
    base = ["v.mp4", "--checkpoint", "c.pt", "--out", "o"]
    assert pose_options(parser.parse_args(base)) == {}  # the backend's defaults
    args = parser.parse_args(base + ["--pose-detector", "blazepose", "--pose-tiles", "2"])
    assert pose_options(args) == {"detector": "blazepose", "tiles": 2}
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--pose-detector", "yolo"])
    # --pose-option: any option of the backend, typed from its text
    typed = parser.parse_args(base + ["--pose-option", "hog_every=2", "--pose-option", "motion=false",
                                      "--pose-option", "crop_margin=1.3", "--pose-detector", "hog",
                                      "--pose-option", "follow=no", "--pose-option", "hog_every=3"])
    assert pose_options(typed) == {"detector": "hog", "hog_every": 3, "motion": False, "crop_margin": 1.3,
                                   "follow": False}  # given twice: the last one
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--pose-option", "hog_every"])
    from beenet.cli.predict import SetupError

    with pytest.raises(SetupError, match="contradicts --pose-detector hog"):
        pose_options(parser.parse_args(base + ["--pose-detector", "hog", "--pose-option", "detector=blazepose"]))

    ckpt = make_checkpoint(tmp_path / "tiny.pt")
    with Predictor(ckpt, device="cpu", pose_options=pose_options(args)) as predictor:
        assert predictor.settings()["pose"]["options"] == {"detector": "blazepose", "tiles": 2}  # not built yet
        assert predictor.pose.detector == "blazepose" and predictor.pose.tiles == 2
        options = predictor.settings()["pose"]["options"]
        assert options["detector"] == "blazepose" and options["tiles"] == 2 and "hog_every" in options
    with pytest.raises(ConfigError, match="pose_options"):
        Predictor(ckpt, device="cpu", pose=make_pose_backend("mediapipe"), pose_options={"tiles": 2})


@needs_blazepose
def test_threads_change_the_time_not_the_people():
    """People followed and crops verified by two workers side by side, HOG beside them: the same people, boxes and joints as one thread, frame by frame (vtest.avi 0-5,
    several small people)."""
    frames = list(_frames(footage("vtest.avi"), 0, 5))
    runs, jobs = [], []
    for threads in (1, 2):
        pose = make_pose_backend("mediapipe", threads=threads)
        assert pose.settings["threads"] == threads
        pose.reset()
        run = pose.runner.people
        pose.runner.people = lambda f, some, *a, _run=run, **kw: (jobs.append(len(some)), _run(f, some, *a, **kw))[1]
        runs.append([pose(f, i) for i, f in frames])
        pose.close()
    assert max(jobs) >= 2  # calls with several jobs: with 2 threads they ran side by side
    assert sum(len(r) for r in runs[0]) >= 5
    for one, two in zip(*runs):
        assert [d.box for d in one] == [d.box for d in two]
        assert all(np.array_equal(a.keypoints, b.keypoints) for a, b in zip(one, two))
    with pytest.raises(BeenetError, match="threads"):
        make_pose_backend("mediapipe", threads=0)


@needs_blazepose
def test_hog_runs_only_where_the_frame_changed():
    """Between whole-frame runs HOG looks only where the frame changed since the last call; nothing
    changed, nowhere; a pan (everything changed), the whole frame; every hog_full_every-th call and
    after a shot cut, the whole frame."""
    import cv2

    pose = make_pose_backend("mediapipe", hog_full_every=4, hog_every=1)
    pose.reset()

    def regions(frame):  # the windows of the grey frame HOG would look at this call
        return pose.hog.regions(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), pose._calls)

    rng = np.random.default_rng(0)
    still = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    assert regions(still) is None  # first call of a video: the whole frame
    pose._calls = 1
    assert regions(still) == []  # nothing moved
    moved = still.copy()
    moved[120:200, 300:330] = 255  # something appears there
    pose._calls = 2
    (x0, y0, x1, y1), = regions(moved)
    assert x0 <= 300 and x1 >= 330 and y0 <= 120 and y1 >= 200
    assert (x1 - x0) * (y1 - y0) < 0.3 * 640 * 360  # grown around it, not the frame
    speck = moved.copy()
    speck[8:16, 600:608] = 0  # one 8x8 cell changes (noise): no window
    pose._calls = 2
    assert regions(speck) == []
    edge = speck.copy()
    edge[0:24, 0:24] = 255  # a small change in the corner: a window inside the frame, at least HOG's size
    pose._calls = 2
    (x0, y0, x1, y1), = regions(edge)
    up = pose.hog.up(640 * 360)
    assert (x0, y0) == (0, 0) and x1 - x0 >= (64 + 16) / up - 1 and y1 - y0 >= (128 + 16) / up - 1
    pose.hog.new_shot()  # forgets the last HOG call's frame
    regions(moved)  # back to the frame the pan below is made from
    pose._calls = 3
    assert regions(np.roll(moved, 40, axis=1)) is None  # a pan: the whole frame
    pose._calls = 4
    assert regions(np.roll(moved, 40, axis=1)) is None  # hog_full_every
    pose._calls = 5
    assert regions(np.roll(moved, 40, axis=1)) == []
    pose.new_shot()
    assert regions(moved) is None and pose.runner.follower.tracked == []
    pose.new_shot()
    pose._calls = 1  # not a whole-frame call by the count: the cut alone makes it one
    assert regions(moved) is None
    with pytest.raises(BeenetError, match="pose option hog_full_every must be >= 1, got 0"):
        make_pose_backend("mediapipe", hog_full_every=0)
    pose.close()


def test_motion_windows_grow_to_a_size_and_merge_when_they_overlap():
    assert geometry.at_least(10, 10, 20, 20, 50, 100, 640, 360) == (0, 0, 50, 100)  # moved inward, not cut
    assert geometry.at_least(600, 300, 640, 360, 80, 144, 640, 360) == (560, 216, 640, 360)
    assert geometry.at_least(0, 0, 10, 10, 900, 900, 640, 360) == (0, 0, 640, 360)  # frame smaller: the frame
    assert geometry.merge_windows([(0, 0, 10, 10), (5, 5, 20, 20), (30, 30, 40, 40)]) == [(0, 0, 20, 20), (30, 30, 40, 40)]
    assert geometry.merge_windows([(0, 0, 10, 10), (10, 0, 20, 10)]) == [(0, 0, 10, 10), (10, 0, 20, 10)]  # touching


def _run(pose, frames) -> list:
    pose.reset()
    out = [pose(f, i) for i, f in frames]
    pose.close()
    return out


@needs_blazepose
def test_motion_gated_hog_and_followed_crops_keep_the_people_on_real_footage():
    """vtest.avi (a fixed camera, pedestrians), every 2nd frame of 0-40 as predict poses it at
    10 fps: HOG only where the frame changed (between whole-frame runs) finds at least 90% of the
    people that HOG on every whole frame finds, looking at under 60% of the frame on those calls;
    HOG on every 3rd call only, the calls between still find most of them (26 of 34: the crops
    follow them), which without following they do not (the whole-frame pass alone finds nobody
    in vtest). Pinned to ``detector=hog`` on purpose: motion gating is HOG's alone; the default
    path's following is tested below."""
    frames = [(i, f) for i, f in _frames(footage("vtest.avi"), 0, 40) if i % 2 == 0]
    full = _run(make_pose_backend("mediapipe", detector="hog", motion=False), frames)
    pose = make_pose_backend("mediapipe", detector="hog")
    pose.reset()
    gated, shares = [], []
    for k, (i, f) in enumerate(frames):
        gated.append(pose(f, i))
        if k % pose.hog.full_every:
            shares.append(pose.hog_share)
    pose.close()
    n_full, n_gated = sum(map(len, full)), sum(map(len, gated))
    assert n_full >= 2 * len(frames) and n_gated >= 0.9 * n_full, (n_full, n_gated)
    assert max(shares) < 0.6 and np.mean(shares) < 0.5, shares
    for follow in (True, False):
        runs = _run(make_pose_backend("mediapipe", detector="hog", hog_every=3, follow=follow), frames)
        between = sum(len(d) for k, d in enumerate(runs) if k % 3)
        if follow:
            assert between >= 0.6 * sum(len(d) for k, d in enumerate(full) if k % 3), between
        else:
            assert between == 0


@needs_blazepose
@pytest.mark.slow
def test_between_person_detector_calls_the_followed_people_are_kept_on_real_footage():
    """The default path's counterpart of the HOG test above: vtest.avi, every 2nd frame of 0-20,
    the person detector on every 3rd call only (``person_every=3``; it does not run on the others
    while people are followed: counted). On the calls between, the people followed by their
    landmarks are at least 80% of those the detector on every call finds there (24 of 27 when
    measured), each where that run has a person too (not a square slid onto the background).
    ``unposed=0``: the default also runs the detector on a call where someone followed is lost
    (tests/test_unposed.py)."""
    frames = [(i, f) for i, f in _frames(footage("vtest.avi"), 0, 20) if i % 2 == 0]
    full = _run(make_pose_backend("mediapipe", unposed=0), frames)
    pose = make_pose_backend("mediapipe", person_every=3, unposed=0)
    detector, ran = pose.runner.person, []
    pose.runner.person = lambda frame, *size: ran.append(1) or detector(frame, *size)  # counts, then the real detector
    sparse = _run(pose, frames)
    assert len(ran) == 4  # calls 0, 3, 6, 9
    between = [k for k in range(len(frames)) if k % 3]
    assert sum(len(sparse[k]) for k in between) >= 0.8 * sum(len(full[k]) for k in between) > 0
    for k in between:
        for p in sparse[k]:
            assert max((geometry.box_iou(p.box, q.box) for q in full[k]), default=0) >= 0.3, (frames[k][0], p.box)
