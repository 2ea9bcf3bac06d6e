"""Pass 1 of a prediction: the people of a video.

Every frame is decoded once (and read ahead by the backend's ``lookahead`` regular calls: a
backend with an ``upcoming`` method, the CNN person detector's, starts on the frames to come
while the calls before them run); a shot-cut detector (:class:`~beenet.inference.shots.ShotCutDetector`)
ends every track at a cut; the pose backend runs on every N-th frame (and the frames
:func:`pose_due` adds); the tracker (:class:`~beenet.inference.tracking.Tracker`, settings
:class:`~beenet.inference.tracking_config.TrackingConfig`) gives each detection a provisional id and,
at the end, the final ids, joining a person hidden for a while to their earlier track
(relinking, by the clothes' colours: :mod:`beenet.inference.appearance`); the joints are
interpolated inside each track's gaps. Only joints are kept (216 bytes a person-frame): the result
is a :class:`~beenet.inference.windows.TrackStore`, the tracked people of the video.
"""

from __future__ import annotations

import math
import time
from collections import deque
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from beenet.errors import BeenetError
from beenet.inference.appearance import appearance
from beenet.inference.pose import Box, PoseBackend, PrecomputedPose, box_iou, is_unposed, shot_cut, valid_mask
from beenet.inference.shots import ShotCutDetector
from beenet.inference.timing import StageTimer
from beenet.inference.tracking import Tracker
from beenet.inference.tracking_config import TrackingConfig
from beenet.inference.windows import TrackStore
from beenet.media.video import prefetch
from beenet.progress import progress

#: A detection with fewer valid joints than this is ignored (a stray hand, a false positive).
MIN_JOINTS = 4


def pose_due(index: int, every: int, cut: bool, tracker: Tracker, last: bool = False) -> bool:
    """Whether pass 1 runs pose on frame ``index`` with ``--pose-every N`` (``every``): every N-th
    frame, the first frame of each shot, the last frame of the video (``last``: a person still
    there keeps their track to the end), and every frame while a track is tentative, so that a
    person who appears is confirmed (``min_hits`` detections in a row) on consecutive frames, as
    with N = 1, instead of N frames apart. Measured on vtest.avi at N = 2 with the pose backend of
    476b618, before it followed people (docs/predict.md, "Tracking"): the tracks cover 94.6 % of
    the person-frames pose on every frame tracks, with 51 ids kept, against 90.4 % and 55 ids
    with the stride alone, for 20 % more posed frames."""
    return index % every == 0 or cut or last or tracker.tentative


def load_keypoints(path: str | Path, num_frames: int | None = None) -> PrecomputedPose:
    """A BoLD joints ``.npy`` or a folder of OpenPose ``*_keypoints.json`` as a pose source;
    ``num_frames`` (the video's) bounds the frame numbers a joints file may hold."""
    path = Path(path)
    if path.is_dir():
        return PrecomputedPose.from_openpose_json(path)
    if path.suffix.lower() == ".npy":
        return PrecomputedPose.from_bold_joints(path, num_frames)
    raise BeenetError(f"{path}: keypoints must be a BoLD joints .npy file or a folder of OpenPose *_keypoints.json")


#: A person posed on a frame of the past is someone tracked already when their box overlaps a row
#: of that frame by this IoU (or more): the look-back stops there.
LOOK_BACK_OVERLAP = 0.3
#: ... and is someone else (or not a person) when their joints moved more than this share of the
#: box's longer side from one posed frame to the next (a walker moves about a sixth of their
#: height in 0.2 s).
LOOK_BACK_MOTION = 0.25


class LookBack:
    """Pose a new person on the frames before they were first found.

    A person the detector scored too low at first (small, far, backlit, in the first frames of a
    clip) is found some frames after they could be seen. Pass 1 keeps its regular posed frames of
    the last ``frames`` frames of the shot; when a track is confirmed, the backend's
    ``pose_boxes`` (the landmark model, as on a new detector box) poses that person on those
    frames, newest first, on the box of their detection after, while it finds them there, with
    at least :data:`MIN_JOINTS` joints, and nobody with a row on that frame is there already
    (:data:`LOOK_BACK_OVERLAP`). Each pose found is a row of the track; the frames between are
    interpolated as any gap is."""

    def __init__(self, frames: int, every: int) -> None:
        self.frames = int(frames)
        self.held: deque[tuple[int, np.ndarray]] = deque(maxlen=self.frames // max(1, every) + 1)
        self.added = 0  # person-frames found

    def keep(self, idx: int, frame: np.ndarray) -> None:
        self.held.append((idx, frame))

    def clear(self) -> None:
        """A shot cut: the frames before it are another shot's."""
        self.held.clear()

    def run(self, backend: PoseBackend, store: TrackStore, tracks: list[Any]) -> None:
        """Look back for each of ``tracks`` (the tracker's, just confirmed), extending it in the
        store and moving its first frame and box."""
        for t in tracks:
            box, joints = t.first_box, store.row(t.person_id, t.first_frame)[0]
            for idx, frame in reversed(self.held):
                if idx >= t.first_frame:
                    continue
                if t.first_frame - idx > self.frames:
                    break
                found = backend.pose_boxes(frame, [box])[0]  # type: ignore[attr-defined]
                if found is None or valid_mask(found.keypoints).sum() < MIN_JOINTS:
                    break
                moved = follow_box(box, joints, found.keypoints, frame.shape)
                if moved is None or any(box_iou(moved, b) >= LOOK_BACK_OVERLAP for b in store.boxes_on(idx)):
                    break
                store.add(idx, t.person_id, found.keypoints, moved, found.score)
                t.first_frame, t.first_box, box, joints = idx, moved, moved, found.keypoints
                self.added += 1


def follow_box(box: Box, before: np.ndarray, after: np.ndarray, shape: tuple[int, ...]) -> Box | None:
    """``box`` (a person's body box where their joints were ``before``) moved by the mean motion of
    the joints found both ``before`` and ``after``, inside a frame of ``shape``: the extent of the
    body, not of the joints found (which may be a few). None when fewer than 2 joints are in both,
    when they moved more than :data:`LOOK_BACK_MOTION` of the box's longer side, or when the box
    leaves the frame."""
    both = valid_mask(before) & valid_mask(after)
    if both.sum() < 2:
        return None
    dx, dy = (np.asarray(after)[both, :2] - np.asarray(before)[both, :2]).mean(axis=0).tolist()
    if math.hypot(dx, dy) > LOOK_BACK_MOTION * max(box[2], box[3]):
        return None
    x0, y0 = max(0.0, box[0] + dx), max(0.0, box[1] + dy)
    x1, y1 = min(float(shape[1]), box[0] + box[2] + dx), min(float(shape[0]), box[1] + box[3] + dy)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


class _PassOne:
    """The state of pass 1 on one video: the tracker, the shot-cut detector and what was kept."""

    def __init__(self, backend: PoseBackend, tracking: TrackingConfig, fps: float, timer: StageTimer) -> None:
        self.backend, self.timer = backend, timer
        self.every = tracking.pose_stride(fps, backend.needs_pixels)
        self.tracker = tracking.tracker(fps, self.every)
        self.relink = tracking.relink > 0
        self.shots = ShotCutDetector() if tracking.shot_cuts and backend.needs_pixels else None
        self.store = TrackStore()
        self.cuts: list[int] = []
        self.posed = self.detections = 0
        self.takes_focus = bool(getattr(backend, "takes_focus", False))
        back = round(tracking.look_back * fps)
        self.look_back = (LookBack(back, self.every) if back > 0 and backend.needs_pixels
                          and hasattr(backend, "pose_boxes") else None)

    def cut(self, idx: int, frame: np.ndarray | None) -> bool:
        """Whether frame ``idx`` starts a new shot (then every track ends, and the backend is told)."""
        if self.shots is None:
            return False
        t0 = time.perf_counter()
        cut = self.shots(frame)
        self.timer.add("shots", time.perf_counter() - t0)
        if cut:
            self.cuts.append(idx)
            self.tracker.cut(idx)
            shot_cut(self.backend)
            if self.look_back is not None:
                self.look_back.clear()
        return cut

    def pose(self, idx: int, frame: np.ndarray | None, focus: list | None = None) -> None:
        """Pose on frame ``idx``, each detection's look (to relink), and the tracker's ids. ``focus``
        (a backend that ``takes_focus``): the boxes of the people this frame is posed for; the
        backend may leave people it has followed for a while elsewhere to the tracker's
        interpolation on this frame."""
        t0 = time.perf_counter()
        found = self.backend(frame, idx) if focus is None else self.backend(frame, idx, focus=focus)
        # a person the detector boxed and the landmark model could not pose has no joints at all
        dets = [d for d in found if valid_mask(d.keypoints).sum() >= MIN_JOINTS or is_unposed(d)]
        t1 = time.perf_counter()
        self.posed += 1
        self.detections += len(dets)
        if frame is not None and self.relink:  # what each person looks like, to relink
            for d in dets:
                d.appearance = appearance(frame, d.keypoints)
        confirmed = {t.person_id for t in self.tracker.tracks if t.confirmed}
        ids = self.tracker.update(idx, dets)
        for pid, d in zip(ids, dets):
            self.store.add(idx, pid, d.keypoints, d.box, d.score)
        t2 = time.perf_counter()
        new = [t for t in self.tracker.tracks if t.confirmed and t.person_id not in confirmed]
        if new and self.look_back is not None:
            self.look_back.run(self.backend, self.store, new)
        self.timer.add("pose", t1 - t0 + time.perf_counter() - t2)
        self.timer.add("track", t2 - t1)

    def step(self, idx: int, frame: np.ndarray | None, n: int, bar: Any) -> None:
        """Frame ``idx`` of ``n``: shot cut, and pose when due (:func:`pose_due`). A frame posed only
        because a track is tentative is posed for the new people: a backend that ``takes_focus``
        gets their expected boxes (the people it follows elsewhere are posed on the next regular
        frame, and interpolated on this one)."""
        cut = self.cut(idx, frame)
        self.store.frame_done(idx)
        bar.update(1)
        last = idx == n - 1
        if not pose_due(idx, self.every, cut, self.tracker, last=last):
            return
        extra = not (idx % self.every == 0 or cut or last)
        focus = self.tracker.tentative_boxes(idx) if extra and self.takes_focus else None
        self.pose(idx, frame, focus)
        if self.look_back is not None and not extra and frame is not None:
            self.look_back.keep(idx, frame)

    def finish(self, stats: dict[str, int] | None) -> TrackStore:
        """The final ids, and interpolation inside each track's gaps."""
        t0 = time.perf_counter()
        mapping = self.tracker.finalize()
        self.store.relabel(mapping)
        filled = self.store.interpolate(max_gap=self.tracker.max_age)
        self.timer.add("track", time.perf_counter() - t0)
        self.store.cuts = self.cuts
        if stats is not None:
            stats.update(pose_every=self.every, posed_frames=self.posed, detections=self.detections,
                         shot_cuts=len(self.cuts), tracks_started=len(self.tracker.all_tracks()),
                         tracks_kept=len(mapping), interpolated_frames=filled,
                         looked_back=self.look_back.added if self.look_back is not None else 0)
        return self.store


def track_people(reader: Any, backend: PoseBackend, tracking: TrackingConfig, timer: StageTimer,
                 stats: dict[str, int] | None = None, show_progress: bool | None = None) -> TrackStore:
    """The tracked people of the video ``reader`` reads: pose on the frames (every
    ``pose_every``-th, the first of each shot, and while a track is tentative: :func:`pose_due`),
    tracking, the final ids, and interpolation inside each track's gaps. ``stats`` gets the counts
    (posed frames, detections, shot cuts, tracks started and kept, interpolated frames)."""
    fps = float(reader.fps or 25.0)
    state = _PassOne(backend, tracking, fps, timer)
    t0 = time.perf_counter()
    backend.reset()
    timer.add("pose_init", time.perf_counter() - t0)
    n = reader.num_frames
    bar = progress(total=n, desc=f"pose {reader.path.name}",
                   disable=None if show_progress is None else not show_progress)
    if backend.needs_pixels:
        frames = timer.timed_iter(prefetch(reader.iter_frames()), "decode")
    else:
        frames = ((i, None) for i in range(n))
    # closed also when pose raises: the decode thread stops before the reader is closed
    # frames read ahead: a backend with a lookahead (the CNN person detector) starts on the
    # regular frames to come while the calls before them run
    ahead = lookahead_frames(backend, state.every, reader) if backend.needs_pixels else 0
    held: deque[tuple[int, Any]] = deque()
    with closing(frames):
        for idx, frame in frames:
            held.append((idx, frame))
            if ahead and idx % state.every == 0:
                backend.upcoming(frame, idx)
            while held and held[0][0] <= idx - ahead:
                state.step(*held.popleft(), n, bar)
        while held:
            state.step(*held.popleft(), n, bar)
    bar.close()
    return state.finish(stats)


#: The frames pass 1 may hold to read ahead, at most this many bytes of them.
LOOKAHEAD_BYTES = 256 * 2**20


def lookahead_frames(backend: PoseBackend, every: int, reader: Any) -> int:
    """How many frames pass 1 reads ahead of the frame it poses: the backend's ``lookahead``
    (regular calls; 0 or missing: none) times the stride, at most :data:`LOOKAHEAD_BYTES` of
    frames."""
    calls = int(getattr(backend, "lookahead", 0) or 0)
    if calls <= 0 or not hasattr(backend, "upcoming"):
        return 0
    frame_bytes = 3 * max(1, int(getattr(reader, "width", 0) or 0)) * max(1, int(getattr(reader, "height", 0) or 0))
    return max(0, min(calls * every, LOOKAHEAD_BYTES // frame_bytes))
