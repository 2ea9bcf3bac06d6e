"""Sliding windows per person, and which frames each window feeds the model.

A video is cut into windows of ``window`` seconds every ``stride`` seconds; each tracked person
present in enough of a window's frames gets one prediction for it. Inside a window the frames are
chosen the way the checkpoint was trained to see a person (its ``data`` config): ``uniform``
sampling takes T evenly spaced frames over the frames where the person is present; ``still``
sampling scores the middle present frame (or averages ``stills`` evenly spaced stills). The
skeleton stream and the body crops follow the dataset's evaluation sampling too, so a window is
seen the way a BoLD clip was seen in training.

:class:`WindowSchedule` is the streaming side: given the frames each window needs, it says which
windows want a frame and which windows are complete once a frame has been seen (all their frames
seen), a track has ended, or the video has ended, so a caller can score windows while the video
streams past and drop frames nobody needs any more. It holds frame indices only, never pixels.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from beenet.context.base import evenly_spaced
from beenet.data.sampling import spread
from beenet.inference.pose import valid_mask
from beenet.labels import NUM_JOINTS
from beenet.media.arrays import Box, box_from_keypoints


def window_bounds(num_frames: int, window_frames: int, stride_frames: int) -> list[tuple[int, int]]:
    """``(start, end)`` (end inclusive) of each window; the last one is moved to end on the last frame.

    A video shorter than one window gives one window over all of it.
    """
    if num_frames <= 0:
        return []
    window_frames = max(1, int(window_frames))
    stride_frames = max(1, int(stride_frames))
    if num_frames <= window_frames:
        return [(0, num_frames - 1)]
    starts = list(range(0, num_frames - window_frames + 1, stride_frames))
    if starts[-1] + window_frames < num_frames:
        starts.append(num_frames - window_frames)
    return [(s, s + window_frames - 1) for s in starts]


@dataclass
class PersonTrack:
    """One person's joints over the whole video: ``keypoints`` ``[N, 18, 3]`` (NaN where missing)
    and ``present`` ``[N]``; ``boxes`` ``[N, 4]`` (``x, y, w, h``, NaN where missing; None when not
    kept): the box of each frame, the body a person detector boxed where no joint was found
    (:func:`~beenet.inference.pose.is_unposed`). Kept as small arrays (232 bytes a frame), never
    as pixels."""

    person_id: int
    keypoints: np.ndarray
    present: np.ndarray
    boxes: np.ndarray | None = None

    def box_of(self, frames: np.ndarray, width: int, height: int) -> Box | None:
        """The box around this person's ``boxes`` on ``frames``, clipped to the frame; None
        without one."""
        if self.boxes is None:
            return None
        b = self.boxes[np.asarray(frames)]
        b = b[np.isfinite(b).all(1)]
        if not len(b):
            return None
        x0, y0 = max(0.0, float(b[:, 0].min())), max(0.0, float(b[:, 1].min()))
        x1, y1 = min(float(width), float((b[:, 0] + b[:, 2]).max())), min(float(height), float((b[:, 1] + b[:, 3]).max()))
        return (x0, y0, x1 - x0, y1 - y0) if x1 - x0 >= 1 and y1 - y0 >= 1 else None


class TrackStore:
    """Collects per-frame detections of every person while the video streams past.

    Each row is a detection's joints, box and score. :meth:`relabel` applies the tracker's final
    ids (dropping the tracks that were not people); :meth:`interpolate` fills the frames inside a
    track that have no detection (a missed detection, or frames the pose backend skipped) with the
    straight line between the detections on either side: joints, box and confidence. A filled
    frame is marked interpolated; nothing is filled before a track's first detection or after its
    last one.
    """

    def __init__(self) -> None:
        # person -> frame -> (keypoints, box, confidence)
        self._rows: dict[int, dict[int, tuple[np.ndarray, Box, float]]] = {}
        self._interpolated: dict[int, set[int]] = {}
        self.num_frames = 0
        #: Frames that start a new shot (set by the predictor's shot-cut detector).
        self.cuts: list[int] = []

    def add(self, frame_index: int, person_id: int, keypoints: np.ndarray, box: Box,
            confidence: float = 1.0) -> None:
        self._rows.setdefault(int(person_id), {})[int(frame_index)] = (
            np.asarray(keypoints, dtype=np.float32), tuple(float(v) for v in box), float(confidence))  # type: ignore[misc]

    def frame_done(self, frame_index: int) -> None:
        self.num_frames = max(self.num_frames, int(frame_index) + 1)

    @property
    def person_ids(self) -> list[int]:
        return sorted(self._rows)

    def relabel(self, mapping: dict[int, int]) -> None:
        """Rename person ``p`` to ``mapping[p]``; persons absent from ``mapping`` are dropped, and
        persons mapped to one id are joined into one (a frame both have keeps the first's row)."""
        rows_of: dict[int, dict] = {}
        filled: dict[int, set[int]] = {}
        for p in sorted(self._rows):
            if p in mapping:
                joined = rows_of.setdefault(mapping[p], {})
                for f, row in self._rows[p].items():
                    joined.setdefault(f, row)
        for p, frames in self._interpolated.items():
            if p in mapping:
                filled.setdefault(mapping[p], set()).update(frames)
        self._rows, self._interpolated = rows_of, filled

    def interpolate(self, max_gap: int | None = None) -> int:
        """Fill the frames missing inside each track (gaps of at most ``max_gap`` frames; None =
        any) by linear interpolation; returns how many person-frames were filled. A joint is
        filled only where it is valid on both sides."""
        filled = 0
        for pid, rows in self._rows.items():
            frames = sorted(rows)
            for a, b in itertools.pairwise(frames):
                gap = b - a - 1
                if gap <= 0 or (max_gap is not None and gap > max_gap):
                    continue
                (ka, ba, ca), (kb, bb, cb) = rows[a], rows[b]
                ok = valid_mask(ka) & valid_mask(kb)
                for f in range(a + 1, b):
                    w = (f - a) / (b - a)
                    kp = np.full_like(ka, np.nan)
                    kp[:, 2] = 0.0
                    kp[ok] = (1 - w) * ka[ok] + w * kb[ok]
                    box = tuple(float((1 - w) * x + w * y) for x, y in zip(ba, bb))
                    rows[f] = (kp, box, float((1 - w) * ca + w * cb))  # type: ignore[assignment]
                    self._interpolated.setdefault(pid, set()).add(f)
                    filled += 1
        return filled

    def row(self, person_id: int, frame_index: int) -> tuple[np.ndarray, Box, float]:
        """Person ``person_id``'s row on frame ``frame_index``: joints, box, confidence."""
        return self._rows[int(person_id)][int(frame_index)]

    def boxes_on(self, frame_index: int) -> list[Box]:
        """The boxes of every person with a row on frame ``frame_index``."""
        return [rows[frame_index][1] for rows in self._rows.values() if frame_index in rows]

    def tracks(self) -> dict[int, PersonTrack]:
        """Every person's joints as dense arrays over the ``num_frames`` frames seen."""
        out: dict[int, PersonTrack] = {}
        n = self.num_frames
        for pid, rows in sorted(self._rows.items()):
            arr = np.full((n, NUM_JOINTS, 3), np.nan, dtype=np.float32)
            arr[..., 2] = 0.0
            boxes = np.full((n, 4), np.nan, dtype=np.float32)
            present = np.zeros(n, dtype=bool)
            idx = np.asarray(sorted(rows), dtype=np.int64)
            arr[idx] = np.stack([rows[f][0] for f in idx])
            boxes[idx] = np.asarray([rows[f][1] for f in idx], dtype=np.float32).reshape(-1, 4)
            present[idx] = True
            out[pid] = PersonTrack(pid, arr, present, boxes)
        return out

    def boxes(self) -> dict[int, dict[int, Box]]:
        """``person_id -> frame -> box`` (detected or interpolated)."""
        return {pid: {f: r[1] for f, r in sorted(rows.items())} for pid, rows in sorted(self._rows.items())}

    def confidences(self) -> dict[int, dict[int, float]]:
        """``person_id -> frame -> confidence`` (the detection's score; interpolated in gaps)."""
        return {pid: {f: r[2] for f, r in sorted(rows.items())} for pid, rows in sorted(self._rows.items())}

    def interpolated(self) -> dict[int, set[int]]:
        """``person_id -> frames`` that were interpolated, not detected."""
        return {pid: set(self._interpolated.get(pid, ())) for pid in sorted(self._rows)}


@dataclass(frozen=True)
class Sampling:
    """How the checkpoint saw a person in training (from its ``data`` config)."""

    mode: str = "still"  # "still" | "uniform"
    num_frames: int = 1
    skeleton_frames: int = 0  # 0 = no skeleton stream
    box_margin: float = 0.15
    #: Stills averaged per window (``still`` mode only; 1 = the middle frame, as evaluation does).
    stills: int = 1

    @classmethod
    def from_data_config(cls, data: dict, skeleton: bool, stills: int = 1) -> "Sampling":
        mode = str(data.get("sampling", "still"))
        if mode not in ("still", "uniform"):
            raise ValueError(f"unknown sampling {mode!r} in the checkpoint's data config")
        return cls(
            mode=mode,
            num_frames=1 if mode == "still" else int(data.get("num_frames", 8)),
            skeleton_frames=int(data.get("skeleton_frames", 32)) if skeleton else 0,
            box_margin=float(data.get("box_margin", 0.15)),
            stills=max(1, int(stills)) if mode == "still" else 1,
        )


@dataclass
class WindowPlan:
    """One (person, window) prediction to make.

    ``samples`` holds one list of frame indices per model input (several for averaged stills); the
    model's outputs over them are averaged into the row. ``crop_boxes`` gives the body-crop box of
    each of those frames; ``skeleton`` is ``[<=Ts, 18, 3]`` pixels or None; ``box`` is the tight box
    around all the person's joints in the window (the table's box columns).
    """

    person_id: int
    start_frame: int
    end_frame: int
    samples: list[list[int]]
    box: Box
    crop_boxes: dict[int, Box | None] = field(default_factory=dict)
    skeleton: np.ndarray | None = None
    present_frames: int = 0
    index: int = field(default=-1)

    @property
    def needed_frames(self) -> set[int]:
        return {f for s in self.samples for f in s}

    @property
    def last_needed(self) -> int:
        return max(self.needed_frames)


def plan_windows(
    tracks: dict[int, PersonTrack],
    num_frames: int,
    fps: float,
    width: int,
    height: int,
    sampling: Sampling,
    window_s: float = 4.0,
    stride_s: float = 2.0,
    min_presence: float = 0.25,
) -> list[WindowPlan]:
    """Every (person, window) with the person in at least ``min_presence`` of the window's frames
    (and at least 2 frames), in order of (start frame, person id).

    Frames are chosen exactly as :class:`beenet.data.dataset.BoLDDataset` does at evaluation, with
    the window standing for the clip: stills take the middle present frame, uniform sampling the
    middle of T equal parts of the present frames, the skeleton Ts frames spread over the span from
    first to last presence, and crops the box of that frame's joints (the window's box as fallback).
    """
    fps = fps if fps and fps > 0 else 25.0
    wf = max(1, int(round(window_s * fps)))
    sf = max(1, int(round(stride_s * fps)))
    plans: list[WindowPlan] = []
    for start, end in window_bounds(num_frames, wf, sf):
        length = end - start + 1
        for pid in sorted(tracks):
            tr = tracks[pid]
            present = np.flatnonzero(tr.present[start : end + 1]) + start
            if len(present) < max(min(2, length), int(np.ceil(min_presence * length))):
                continue
            kp = tr.keypoints
            union = box_from_keypoints(kp[present], width, height, margin=sampling.box_margin)
            tight = box_from_keypoints(kp[present], width, height, margin=0.0)
            if union is None or tight is None:  # no joint in the window: the body's boxes, if boxed
                union = tight = tr.box_of(present, width, height)
                if union is None:
                    continue
            if sampling.mode == "uniform":
                samples = [spread(present, sampling.num_frames, None).tolist()]
            elif sampling.stills == 1:
                samples = [[int(present[len(present) // 2])]]
            else:
                samples = [[int(f)] for f in spread(present, sampling.stills, None)]
            crop_boxes: dict[int, Box | None] = {}
            for f in {f for s in samples for f in s}:
                b = box_from_keypoints(kp[f], width, height, margin=sampling.box_margin)
                crop_boxes[f] = b if b is not None else tr.box_of(np.array([f]), width, height) or union
            skel = None
            if sampling.skeleton_frames > 0:
                span = np.arange(present[0], present[-1] + 1)
                skel = kp[spread(span, sampling.skeleton_frames, None)]
            plans.append(WindowPlan(pid, start, end, samples, tight, crop_boxes, skel, len(present)))
    for i, p in enumerate(plans):
        p.index = i
    return plans


def context_frames(start: int, end: int, k: int) -> list[int]:
    """The ``k`` frames of the span ``start..end`` (inclusive) the context experts label: the
    centres of ``k`` equal parts, as the experts sample a whole clip."""
    return [start + i for i in evenly_spaced(end - start + 1, k)]


class WindowSchedule:
    """Which frames each window needs, and when each window is complete, as frames stream past.

    ``needs`` maps a window key (any hashable: a plan index, a frame span) to the frame indices it
    needs; ``owners`` optionally maps a key to the track (person id) it belongs to, so that
    :meth:`end_track` can close that person's windows. A window is complete once every frame it
    needs has been seen (:meth:`see`, in any order), when its track ends (:meth:`end_track`), or
    when the video ends (:meth:`end_video`); each of those returns the windows completed by that
    event, in the order of ``needs``, and each window is returned once. :meth:`missing` says which
    needed frames a window completed without.
    """

    def __init__(self, needs: Mapping[Hashable, Iterable[int]],
                 owners: Mapping[Hashable, Hashable] | None = None) -> None:
        self._order = {key: i for i, key in enumerate(needs)}
        self._needs = {key: frozenset(int(f) for f in frames) for key, frames in needs.items()}
        self._owner = dict(owners or {})
        self._left = {key: set(frames) for key, frames in self._needs.items()}
        self._wanted_by: dict[int, list[Hashable]] = defaultdict(list)
        for key, frames in self._needs.items():
            for f in sorted(frames):
                self._wanted_by[f].append(key)
        self._seen: set[int] = set()

    @classmethod
    def for_plans(cls, plans: Sequence[WindowPlan], context_k: int = 0) -> WindowSchedule:
        """The schedule of ``plans`` (keyed by ``plan.index``): each window needs the frames its
        samples read and, with ``context_k`` > 0, the ``context_k`` context frames of its span."""
        needs: dict[int, set[int]] = {}
        for p in plans:
            frames = set(p.needed_frames)
            if context_k > 0:
                frames.update(context_frames(p.start_frame, p.end_frame, context_k))
            needs[p.index] = frames
        return cls(needs, {p.index: p.person_id for p in plans})

    # -- what is needed ------------------------------------------------------------------------
    def needs(self, key: Hashable) -> frozenset[int]:
        """Every frame window ``key`` needs."""
        return self._needs[key]

    def wanted_by(self, frame: int) -> list[Hashable]:
        """The windows that need ``frame`` (open or complete), in the order of ``needs``."""
        return list(self._wanted_by.get(int(frame), ()))

    @property
    def frames(self) -> list[int]:
        """Every frame some window needs, sorted."""
        return sorted(self._wanted_by)

    @property
    def first_frame(self) -> int | None:
        return min(self._wanted_by, default=None)

    @property
    def last_frame(self) -> int | None:
        return max(self._wanted_by, default=None)

    # -- progress ------------------------------------------------------------------------------
    @property
    def open(self) -> list[Hashable]:
        """Windows not complete yet, in the order of ``needs``."""
        return [k for k in self._order if k in self._left]

    def missing(self, key: Hashable) -> frozenset[int]:
        """Frames window ``key`` needs that were not seen (empty for a window completed by its frames)."""
        return frozenset(f for f in self._needs[key] if f not in self._seen)

    def see(self, frame: int) -> list[Hashable]:
        """Record that ``frame`` has passed; the windows it completes."""
        frame = int(frame)
        self._seen.add(frame)
        done = []
        for key in self._wanted_by.get(frame, ()):
            left = self._left.get(key)
            if left is None:
                continue
            left.discard(frame)
            if not left:
                done.append(key)
        return self._close(done)

    def end_track(self, owner: Hashable) -> list[Hashable]:
        """Track ``owner`` will not be seen again: its open windows are complete with what they have."""
        return self._close([k for k in self._left if self._owner.get(k) == owner])

    def end_video(self) -> list[Hashable]:
        """No frame will come any more: every open window is complete with what it has."""
        return self._close(list(self._left))

    def _close(self, keys: list[Hashable]) -> list[Hashable]:
        for k in keys:
            del self._left[k]
        return sorted(keys, key=self._order.__getitem__)
