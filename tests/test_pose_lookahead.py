"""Pass 1 reads ahead: the CNN person detector starts on the regular frames to come
(``upcoming``) while the calls before them run. Real detector, real landmark model, real
frames of vtest.avi (tests/footage.py)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from footage import footage_frame

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class _Counting:
    """The real detector, counting the frames it ran on (by their first pixels) and the thread."""

    def __init__(self, real) -> None:
        self.real, self.frames, self.threads = real, [], set()
        self.__dict__.update(threshold=real.threshold, size=real.size)

    def __call__(self, frame, *size):
        self.frames.append(frame)
        self.threads.add(threading.current_thread().name)
        return self.real(frame, *size)


@pytest.fixture(scope="module")
def vtest_frames():
    return {i: footage_frame("vtest.avi", i) for i in range(100, 112, 2)}


def _backend(counting: bool = True, **options):
    from beenet.inference.pose.backends import make_pose_backend

    pose = make_pose_backend("mediapipe", **options)
    if counting:
        pose.runner.person = _Counting(pose.runner.person)
    return pose


def test_the_detector_runs_ahead_on_the_frames_handed_over(blazepose_models, vtest_frames):
    """Frames 100..110 (every 2nd) handed over before their calls: with ``person_every=2`` the
    detector runs on the 1st, 3rd and 5th of them, on its own thread, and each call that uses it
    gets the boxes of its own frame (the same people as a call that runs the detector itself).
    ``unposed=0``: by default it also runs, at the call, on one where the landmark model loses
    someone followed (tests/test_unposed.py)."""
    pose = _backend(unposed=0)
    assert pose.lookahead == 2
    pose.reset()
    indices = sorted(vtest_frames)
    for i in indices[:3]:
        pose.upcoming(vtest_frames[i], i)
    counts = []
    for k, i in enumerate(indices):
        if k + 3 < len(indices):
            pose.upcoming(vtest_frames[indices[k + 3]], indices[k + 3])
        counts.append(len(pose(vtest_frames[i], i)))
    ran = pose.runner.person.frames
    pose.close()
    assert [next(j for j in indices if vtest_frames[j] is f or np.array_equal(vtest_frames[j], f)) for f in ran] \
        == [100, 104, 108]
    assert pose.runner.person.threads == {"beenet-person_0"}
    assert min(counts) >= 5

    # the same frame without anything handed over: the detector runs at the call, same people
    alone = _backend(counting=False)
    alone.reset()
    first = alone(vtest_frames[100], 100)
    alone.close()
    ahead = _backend(counting=False)
    ahead.reset()
    ahead.upcoming(vtest_frames[100], 100)
    again = ahead(vtest_frames[100], 100)
    ahead.close()
    assert [d.box for d in again] == [d.box for d in first]


def test_work_started_ahead_is_dropped_at_a_new_video(blazepose_models, vtest_frames):
    """A video ended before the frames it handed over were posed: ``reset`` drops that work (none
    is left running), and the next video's first call runs the detector on its own frame."""
    pose = _backend()
    pose.reset()
    pose.upcoming(vtest_frames[100], 100)
    pose.upcoming(vtest_frames[102], 102)
    pose.upcoming(vtest_frames[104], 104)
    pose.reset()
    assert pose.runner._ahead == {}
    ran = pose.runner.person.frames
    before = len(ran)
    found = pose(vtest_frames[110], 0)
    assert len(ran) == before + 1 and ran[-1] is not vtest_frames[100]
    assert len(found) >= 5
    pose.close()


def test_pass_one_reads_ahead_by_the_backends_lookahead(blazepose_models):
    """track_people hands each regular frame (every --pose-every-th) to the backend before the
    calls before it, ``lookahead`` calls ahead, at most LOOKAHEAD_BYTES of frames held."""
    from beenet.inference.people import LOOKAHEAD_BYTES, lookahead_frames

    class Reader:
        width, height = 1280, 720

    pose = _backend(counting=False)
    assert lookahead_frames(pose, 2, Reader()) == 4
    assert lookahead_frames(pose, 5, Reader()) == 10
    Reader.width, Reader.height = 7680, 4320  # 8K: 100 MB a frame
    assert lookahead_frames(pose, 5, Reader()) == LOOKAHEAD_BYTES // (3 * 7680 * 4320) == 2
    from beenet.inference.pose.backends import make_pose_backend

    assert lookahead_frames(make_pose_backend("mediapipe", detector="hog"), 2, Reader()) == 0
    pose.close()


def test_track_people_hands_frames_over_before_their_turn(blazepose_models):
    """Through pass 1 (track_people) on 20 real frames: every regular frame is handed over
    before the call on the frame ``lookahead`` calls earlier, and every frame is posed once."""
    from pathlib import Path

    from beenet.inference.people import track_people
    from beenet.inference.timing import StageTimer
    from beenet.inference.tracking_config import TrackingConfig
    from beenet.media.video import VideoReader
    from footage import footage

    with VideoReader(footage("vtest.avi")) as r:
        frames = [f for _, f in r.iter_frames(100, 120)]

    class Reader:
        fps, num_frames, width, height, path = 10.0, len(frames), frames[0].shape[1], frames[0].shape[0], Path("v.avi")

        def iter_frames(self):
            yield from enumerate(frames)

    pose = _backend(counting=False)
    events = []
    real_up, real_call = pose.upcoming, pose.__call__

    class Spy:
        name, needs_pixels, lookahead, settings = pose.name, True, pose.lookahead, pose.settings

        def upcoming(self, frame, index):
            events.append(("up", index))
            real_up(frame, index)

        def __call__(self, frame, index=None):
            events.append(("call", index))
            return real_call(frame, index)

        def reset(self):
            pose.reset()

        def new_shot(self):
            pose.new_shot()

        def close(self):
            pose.close()

    store = track_people(Reader(), Spy(), TrackingConfig(pose_every=2), StageTimer(), show_progress=False)
    pose.close()
    ups = [i for kind, i in events if kind == "up"]
    calls = [i for kind, i in events if kind == "call"]
    assert ups == list(range(0, 20, 2))
    assert len(calls) == len(set(calls)) and set(range(0, 20, 2)) <= set(calls)
    for r in ups:  # handed over before the call 4 frames (2 regular calls) earlier
        if r >= 4:
            assert events.index(("up", r)) < events.index(("call", r - 4))
    assert len(store.boxes()) > 0


def test_follow_every_rests_settled_people_between_detector_calls(blazepose_models):
    """``follow_every=2`` on vtest.avi frames 100..118 (every 2nd): on the calls the detector
    skips (odd calls), the people followed for 3 calls or more are not posed but stay followed
    (their square carried to the next call); on the detector's calls everyone is posed again, as
    many people as with the default ``follow_every=1``."""
    from beenet.inference.pose.backends import make_pose_backend

    frames = [(i, footage_frame("vtest.avi", i)) for i in range(100, 120, 2)]
    counts, followed = {}, {}
    for every in (1, 2):
        pose = make_pose_backend("mediapipe", follow_every=every)
        assert pose.settings["follow_every"] == every
        pose.reset()
        counts[every], followed[every] = [], []
        for i, f in frames:
            counts[every].append(len(pose(f, i)))
            followed[every].append(len(pose.runner.follower.tracked))
        pose.close()
    one, two = counts[1], counts[2]
    assert one[:3] == two[:3]  # nobody has been followed for 3 calls yet
    for k in (3, 5, 7, 9):  # resting calls: only people new since the last detector call are posed
        assert two[k] <= 1 < one[k], (k, one, two)
        assert followed[2][k] >= followed[2][k - 1] - 1  # the resting people are still followed
    for k in (4, 6, 8):  # the detector's calls: everyone posed
        assert abs(two[k] - one[k]) <= 1, (k, one, two)
