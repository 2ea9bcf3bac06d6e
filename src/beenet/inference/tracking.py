"""Multi-person tracking: one ``person_id`` per real person across the frames of a video.

Per frame, detections are matched to live tracks by the Hungarian algorithm
(:func:`~beenet.inference.assignment.linear_sum_assignment`, scipy's least-cost matching without
scipy.optimize's import) on a cost that mixes box overlap (1 - IoU) and the mean
distance between matching joints, normalised by the track's box size. Each track is compared at
the place it is *predicted* to be in this frame (constant velocity of its box and of each joint,
from its last two detections), so two people who cross keep their ids.

A track is *tentative* until it has been matched ``min_hits`` times in a row (frames the
pose backend ran on); a tentative track
that misses a frame ends at once (a flicker of a false detection). A confirmed track survives
``max_age`` frames without a match (a person briefly occluded or missed by the detector keeps
their id). :meth:`Tracker.cut` ends every live track (a shot cut: nobody crosses it).

Whether a track is a person is only known once it has ended, so :meth:`Tracker.update` returns
*provisional* ids (counting up from 0 in order of creation) and :meth:`Tracker.finalize` maps them
to the final ids: a track is kept when it was confirmed, spans at least ``min_track_frames``
frames, its detections' mean score is at least ``min_confidence`` and its body is upright
(median lean from vertical at most ``max_tilt`` degrees, unless a person detector boxed it).
With ``relink_frames``, a kept track that starts within that many frames after another kept track ended, in the same shot, close to
where it ended and looking alike (:mod:`beenet.inference.appearance`: the clothes' colours of
their detections), continues it under the same id: a person hidden behind another for longer
than ``max_age`` keeps their id. The kept people are numbered densely 0..n-1 in order of first
appearance; dropped tracks are absent from the map.

Defaults were chosen on real footage (``benchmarks/bench_tracking.py``, docs/predict.md
"Tracking").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from beenet.inference.appearance import similarity
from beenet.inference.assignment import linear_sum_assignment
from beenet.inference.pose import Box, PoseDetection, box_iou, is_unposed, valid_mask
from beenet.inference.pose.boxes import centre

_INFEASIBLE = 1e6
#: A detection goes back to a person lost moments ago (:meth:`Tracker._reclaim`) only when it looks
#: like them at least this much (:func:`~beenet.inference.appearance.similarity`). Chosen on
#: vtest.avi (docs/predict.md "Tracking"): the switches it undid scored 0.78-0.93 against the person
#: lost, 0.36-0.58 against the track they were matched to.
RECLAIM_SIMILARITY = 0.75


def body_tilt(keypoints: np.ndarray) -> float | None:
    """Degrees between the body axis (neck -> mid-hip) and straight down: about 0 for a person
    standing or sitting, 90 lying, 180 upside down. None without the neck and a hip."""
    ok = valid_mask(keypoints)
    hips = [h for h in (8, 11) if ok[h]]
    if not ok[1] or not hips:
        return None
    v = keypoints[hips, :2].mean(axis=0) - keypoints[1, :2]
    return float(np.degrees(np.arctan2(abs(float(v[0])), float(v[1]))))


def _scores(d: PoseDetection, floor: float) -> list[float]:
    """What a detection adds to its track's scores: its score, or nothing for a person the
    detector boxed without joints (:func:`~beenet.inference.pose.is_unposed`: a track needs a
    posed detection to reach ``min_confidence``), unless the detector vouched for them (boxed
    among people on several calls): then ``floor``, the least score a kept track has."""
    if is_unposed(d):
        return [floor] if d.vouched else []
    return [float(d.score)]


def keypoint_distance(a: np.ndarray, b: np.ndarray, scale: float) -> float | None:
    """Mean distance between joints valid in both ``[18, 3]`` skeletons, divided by ``scale``.

    None when the two share fewer than two valid joints (then only the boxes decide).
    """
    ok = valid_mask(a) & valid_mask(b)
    if ok.sum() < 2:
        return None
    d = np.linalg.norm(a[ok, :2] - b[ok, :2], axis=1).mean()
    return float(d / max(scale, 1.0))


@dataclass
class Track:
    """A person followed over frames: the last box and skeleton seen, their velocity per frame,
    when they were seen and with what detection scores."""

    person_id: int  # provisional
    box: Box
    keypoints: np.ndarray
    last_frame: int
    first_frame: int
    hits: int = 1
    confirmed: bool = False
    box_velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    keypoint_velocity: np.ndarray | None = None
    scores: list[float] = field(default_factory=list)
    tilts: list[float] = field(default_factory=list)
    #: Whether a person detector boxed the body on any of its detections (``PoseDetection.body``).
    boxed: bool = False
    #: The box of the first detection (where the track began).
    first_box: Box | None = None
    #: Shot cuts the tracker had seen when the track began (tracks of two shots are never joined).
    shot: int = 0
    #: Appearance (:func:`~beenet.inference.appearance.appearance`) of the detections that had one,
    #: summed per region, with how many detections described each region.
    appearance_sum: np.ndarray | None = None
    appearance_count: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.first_box is None:
            self.first_box = self.box

    def see(self, look: np.ndarray | None) -> None:
        """Add a detection's appearance (None: the detection had none)."""
        if look is None:
            return
        seen = (look.sum(1) > 0).astype(np.float32)
        if self.appearance_sum is None:
            self.appearance_sum, self.appearance_count = np.zeros_like(look), np.zeros_like(seen)
        self.appearance_sum += look
        self.appearance_count += seen

    def looks(self) -> np.ndarray | None:
        """The mean appearance of the track's detections (None: none had one)."""
        if self.appearance_sum is None:
            return None
        return self.appearance_sum / np.maximum(self.appearance_count, 1.0)[:, None]

    @property
    def length(self) -> int:
        """Frames from first to last detection, both included."""
        return self.last_frame - self.first_frame + 1

    @property
    def tilt(self) -> float | None:
        """Median :func:`body_tilt` of the detections that show it (None: none did)."""
        return float(np.median(self.tilts)) if self.tilts else None

    @property
    def confidence(self) -> float:
        """Mean detection score."""
        return float(np.mean(self.scores)) if self.scores else 0.0

    def predicted(self, frame_index: int) -> tuple[Box, np.ndarray]:
        """Box and joints extrapolated to ``frame_index`` at constant velocity."""
        dt = frame_index - self.last_frame
        b = np.asarray(self.box, dtype=np.float64) + self.box_velocity * dt
        box: Box = (float(b[0]), float(b[1]), float(max(b[2], 1.0)), float(max(b[3], 1.0)))
        kp = self.keypoints
        if self.keypoint_velocity is not None and dt:
            kp = kp.copy()
            kp[:, :2] = kp[:, :2] + self.keypoint_velocity * dt
        return box, kp


class Tracker:
    """Assigns a provisional id to each detection, frame after frame; :meth:`finalize` says which
    tracks are people and their final ids.

    ``max_age``: frames a confirmed track may go unmatched; ``max_cost``: a pair costing more is
    never matched; ``iou_weight`` / ``keypoint_weight`` mix the two costs; ``min_hits``: matches in
    a row before a track is confirmed; ``min_track_frames``: shortest kept track (first to last
    detection); ``min_confidence``: least mean detection score of a kept track; ``velocity_smoothing``:
    weight of the newest velocity estimate (1 = last two detections only); ``constant_velocity=False``
    compares each track where it was last seen (the tracker before issue 11); ``max_tilt``: a track
    whose median body axis leans more than this many degrees from upright is dropped (None: never),
    unless a person detector boxed it on some frame (``PoseDetection.body``).
    ``relink_frames`` (0: never) joins a kept track to one that ended at most that many frames
    before it began, in the same shot, when its first box centre lies within ``relink_distance``
    box heights of the other's last, and the :func:`similarity` of their mean appearance is at least
    ``relink_similarity``; the most alike pairs are joined first, each track at most once each way.
    With ``relink_frames``, a detection matched to one track that looks far more like a person
    lost moments ago close by (``reclaim_margin``, 0: never) goes back to that person
    (:meth:`_reclaim`), and two detections each matched to the other's track swap (:meth:`_swap`).
    The whole tracks are compared, not their ends: where two people cross, the tracker can carry
    an id from one to the other for the last frames of a track, and its ends then look like the
    wrong person (vtest.avi: the ends matched at 0.92-0.97 where the whole tracks, two people,
    were at 0.67-0.74).
    Measured on the real footage, detector false positives (a parked bicycle, a cartoon title) are
    skeletons lying at 90-100 degrees, upright people under 20; a person lying down is dropped too,
    unless a person detector boxed them (the default CNN: a parked bicycle is not a person to it).
    """

    def __init__(self, max_age: int = 15, max_cost: float = 0.8, iou_weight: float = 0.5,
                 keypoint_weight: float = 0.5, min_hits: int = 3, min_track_frames: int = 1,
                 min_confidence: float = 0.0, velocity_smoothing: float = 0.5,
                 constant_velocity: bool = True, max_tilt: float | None = 45.0, relink_frames: int = 0,
                 relink_similarity: float = 0.9, relink_distance: float = 1.0, reclaim_margin: float = 0.25) -> None:
        if max_age < 0:
            raise ValueError(f"max_age must be >= 0, got {max_age}")
        if min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {min_hits}")
        if min_track_frames < 1:
            raise ValueError(f"min_track_frames must be >= 1, got {min_track_frames}")
        if not 0.0 < velocity_smoothing <= 1.0:
            raise ValueError(f"velocity_smoothing must be in (0, 1], got {velocity_smoothing}")
        if relink_frames < 0 or relink_distance < 0:
            raise ValueError(f"relink_frames and relink_distance must be >= 0, got {relink_frames}, {relink_distance}")
        self.max_age = max_age
        self.max_cost = max_cost
        self.iou_weight = iou_weight
        self.keypoint_weight = keypoint_weight
        self.min_hits = int(min_hits)
        self.min_track_frames = int(min_track_frames)
        self.min_confidence = float(min_confidence)
        self.velocity_smoothing = float(velocity_smoothing)
        self.constant_velocity = bool(constant_velocity)
        self.max_tilt = max_tilt
        self.relink_frames = int(relink_frames)
        self.relink_similarity = float(relink_similarity)
        self.relink_distance = float(relink_distance)
        self.reclaim_margin = float(reclaim_margin)
        self.reset()

    def reset(self) -> None:
        """Forget every track (a new video)."""
        self.tracks: list[Track] = []  # live
        self.ended: list[Track] = []
        self._fixed: set[int] = set()  # ids given by the source (BoLD joints files)
        self._next_id = 0
        self._shots = 0  # shot cuts seen

    # -- matching ------------------------------------------------------------------------------
    def cost(self, track: Track, det: PoseDetection, frame_index: int | None = None) -> float:
        """Matching cost in [0, 1]-ish: 0 = where and how the track was predicted to be."""
        if frame_index is None or not self.constant_velocity:
            box, kps = track.box, track.keypoints
        else:
            box, kps = track.predicted(frame_index)
        overlap = box_iou(box, det.box)
        scale = float(np.hypot(box[2], box[3]))
        kd = keypoint_distance(kps, det.keypoints, scale)
        if kd is None:
            return 1.0 - overlap
        return self.iou_weight * (1.0 - overlap) + self.keypoint_weight * min(kd, 1.0)

    def cost_matrix(self, tracks: list[Track], dets: list[PoseDetection], frame_index: int | None = None) -> np.ndarray:
        """:meth:`cost` of every ``(track, detection)`` pair, ``[len(tracks), len(dets)]``, in one
        go: each track is extrapolated once, and the boxes' IoU and the joints' distances are
        worked out over all pairs at once (the same numbers as :meth:`cost`, to float rounding)."""
        if frame_index is None or not self.constant_velocity:
            predicted = [(t.box, t.keypoints) for t in tracks]
        else:
            predicted = [t.predicted(frame_index) for t in tracks]
        a = np.array([b for b, _ in predicted], dtype=np.float64).reshape(-1, 1, 4)
        b = np.array([d.box for d in dets], dtype=np.float64).reshape(1, -1, 4)
        iw = np.clip(np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
        ih = np.clip(np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
        inter = iw * ih
        union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        ka = np.stack([np.asarray(k, dtype=np.float32) for _, k in predicted])[:, None]  # [T, 1, J, 3]
        kb = np.stack([np.asarray(d.keypoints, dtype=np.float32) for d in dets])[None]  # [1, D, J, 3]
        ok = valid_mask(ka) & valid_mask(kb)
        n = ok.sum(-1)
        dist = np.where(ok, np.linalg.norm(np.nan_to_num(ka[..., :2] - kb[..., :2]), axis=-1), 0.0).sum(-1)
        scale = np.maximum(np.hypot(a[..., 2], a[..., 3]), 1.0)
        kd = dist / np.maximum(n, 1) / scale
        both = self.iou_weight * (1.0 - overlap) + self.keypoint_weight * np.minimum(kd, 1.0)
        return np.where(n >= 2, both, 1.0 - overlap)

    @property
    def tentative(self) -> bool:
        """Whether a live track is still tentative (seen, not yet ``min_hits`` times in a row)."""
        return any(not t.confirmed for t in self.tracks)

    def tentative_boxes(self, frame_index: int) -> list[Box]:
        """Where each tentative track is expected on ``frame_index`` (:meth:`Track.predicted`)."""
        return [t.predicted(frame_index)[0] for t in self.tracks if not t.confirmed]

    def _end(self, keep: list[Track]) -> None:
        alive = {id(t) for t in keep}
        self.ended.extend(t for t in self.tracks if id(t) not in alive)
        self.tracks = keep

    def cut(self, frame_index: int | None = None) -> None:
        """A shot cut before ``frame_index``: every live track ends; whoever is seen next is new."""
        self._end([])
        self._shots += 1

    def update(self, frame_index: int, detections: list[PoseDetection]) -> list[int]:
        """Match ``detections`` of frame ``frame_index``; returns one provisional id per detection.

        Detections that carry a ``track_id`` (BoLD joints files) keep it, bypass matching and are
        always kept by :meth:`finalize` under that id.
        """
        self._end([t for t in self.tracks if frame_index - t.last_frame <= self.max_age + 1])
        ids: list[int | None] = [None] * len(detections)
        free = [i for i, d in enumerate(detections) if d.track_id is None]
        for i, d in enumerate(detections):
            if d.track_id is not None:
                ids[i] = int(d.track_id)
                self._fixed.add(int(d.track_id))
                self._next_id = max(self._next_id, int(d.track_id) + 1)
        matched: set[int] = set()
        if free and self.tracks:
            cost = self.cost_matrix(self.tracks, [detections[i] for i in free], frame_index)
            gated = np.where(cost > self.max_cost, _INFEASIBLE, cost)
            rows, cols = linear_sum_assignment(gated)
            for r, c in zip(rows, cols):
                if gated[r, c] < _INFEASIBLE:
                    ids[free[c]] = self.tracks[r].person_id
                    matched.add(r)
            if self.reclaim_margin > 0 and self.relink_frames > 0:
                self._reclaim(frame_index, detections, free, ids, matched)
                self._swap(detections, free, ids)
        # A tentative track that missed this frame was a flicker: it ends now.
        self._end([t for r, t in enumerate(self.tracks) if r in matched or t.confirmed])
        by_id = {t.person_id: t for t in self.tracks}
        for i, d in enumerate(detections):
            pid = ids[i]
            if pid is None:
                pid = self._next_id
                self._next_id += 1
                ids[i] = pid
            t = by_id.get(pid)
            if t is None:
                t = Track(pid, d.box, np.asarray(d.keypoints, dtype=np.float32), frame_index, frame_index,
                          scores=_scores(d, self.min_confidence), shot=self._shots)
                t.see(d.appearance)
                t.boxed = d.body
                tilt = body_tilt(t.keypoints)
                if tilt is not None:
                    t.tilts.append(tilt)
                t.confirmed = self.min_hits <= 1 or d.track_id is not None
                self.tracks.append(t)
                by_id[pid] = t
            else:
                self._advance(t, frame_index, d)
        return [int(i) for i in ids]  # type: ignore[arg-type]

    def _reclaim(self, frame_index: int, detections: list[PoseDetection], free: list[int],
                 ids: list[int | None], matched: set[int]) -> None:
        """Where two people cross, the pose backend can follow the wrong body: the detection
        matched to one person's track is then the other person, whose own track is missing this
        frame or ended a moment ago (vtest.avi: a man walking past a standing one took the
        standing one's id). A matched detection that looks like such a person (a confirmed track
        unmatched on this frame, or ended in the last ``relink_frames``, in this shot, within
        ``relink_distance`` box heights) at :data:`RECLAIM_SIMILARITY` or more, and at least
        ``reclaim_margin`` more than like its own track, goes back to that person: their track
        goes on from here, and the other track missed this frame."""
        lost = [t for t in self.ended if 0 < frame_index - t.last_frame <= self.relink_frames
                and t.shot == self._shots and t.confirmed and t.person_id not in self._fixed]
        lost += [t for r, t in enumerate(self.tracks) if r not in matched and t.confirmed]
        if not lost:
            return
        for i in free:
            d = detections[i]
            r = next((r for r, t in enumerate(self.tracks) if t.person_id == ids[i] and r in matched), None)
            own = self.tracks[r].looks() if r is not None else None
            if d.appearance is None or own is None or (alike := similarity(d.appearance, own)) is None:
                continue
            best, best_alike = None, RECLAIM_SIMILARITY
            for t in lost:
                dist = np.hypot(*(np.asarray(centre(t.box)) - np.asarray(centre(d.box)))) / max(t.box[3], d.box[3], 1.0)
                looks = t.looks() if dist <= self.relink_distance else None
                other = similarity(d.appearance, looks) if looks is not None else None
                if other is not None and other >= best_alike and other - alike >= self.reclaim_margin:
                    best, best_alike = t, other
            if best is None:
                continue
            ids[i] = best.person_id
            matched.discard(r)
            lost = [t for t in lost if t is not best]
            if any(t is best for t in self.ended):  # by identity: a Track holds arrays
                self.ended = [t for t in self.ended if t is not best]
                self.tracks.append(best)
            matched.add(next(k for k, t in enumerate(self.tracks) if t is best))
            if self.tracks[r].confirmed:  # the track it left may be someone else's now
                lost.append(self.tracks[r])

    def _swap(self, detections: list[PoseDetection], free: list[int], ids: list[int | None]) -> None:
        """Where two people cross, the pose backend can follow each onto the other: both people are
        matched, each to the other's track (vtest.avi: two men passing each other, frames 164-185,
        each detection 0.3-0.5 like its own track). Two detections close by (within
        ``relink_distance`` box heights), matched to two confirmed tracks, that each look like the
        other's track at :data:`RECLAIM_SIMILARITY` or more and at least ``reclaim_margin`` more
        than like their own, swap ids. Each detection swaps at most once a frame."""
        by_id = {t.person_id: t for t in self.tracks if t.confirmed}
        pairs = [(i, by_id[ids[i]]) for i in free if ids[i] in by_id and detections[i].appearance is not None]
        looks = {t.person_id: t.looks() for _, t in pairs}
        done: set[int] = set()
        for a, (i, ti) in enumerate(pairs):
            for j, tj in pairs[a + 1:]:
                if i in done or j in done or looks[ti.person_id] is None or looks[tj.person_id] is None:
                    continue
                di, dj = detections[i], detections[j]
                gap = np.hypot(*(np.asarray(centre(di.box)) - np.asarray(centre(dj.box))))
                if gap > self.relink_distance * max(di.box[3], dj.box[3], 1.0):
                    continue
                own_i, other_i = (similarity(di.appearance, looks[t.person_id]) for t in (ti, tj))
                own_j, other_j = (similarity(dj.appearance, looks[t.person_id]) for t in (tj, ti))
                if None in (own_i, other_i, own_j, other_j):
                    continue
                margin = min(other_i - own_i, other_j - own_j)
                if min(other_i, other_j) >= RECLAIM_SIMILARITY and margin >= self.reclaim_margin:
                    ids[i], ids[j] = ids[j], ids[i]
                    done |= {i, j}

    def _advance(self, t: Track, frame_index: int, d: PoseDetection) -> None:
        dt = max(1, frame_index - t.last_frame)
        a = self.velocity_smoothing
        v = (np.asarray(d.box, dtype=np.float64) - np.asarray(t.box, dtype=np.float64)) / dt
        t.box_velocity = a * v + (1 - a) * t.box_velocity if t.hits > 1 else v
        new = np.asarray(d.keypoints, dtype=np.float32)
        ok = valid_mask(new) & valid_mask(t.keypoints)
        kv = np.zeros((len(new), 2), dtype=np.float64)
        kv[ok] = (new[ok, :2] - t.keypoints[ok, :2]) / dt
        old = t.keypoint_velocity if t.keypoint_velocity is not None else kv
        t.keypoint_velocity = np.where(ok[:, None], a * kv + (1 - a) * old, 0.0) if t.hits > 1 else kv
        t.box, t.keypoints, t.last_frame = d.box, new, frame_index
        t.hits += 1
        t.scores += _scores(d, self.min_confidence)
        t.see(d.appearance)
        t.boxed = t.boxed or d.body
        tilt = body_tilt(new)
        if tilt is not None:
            t.tilts.append(tilt)
        if t.hits >= self.min_hits:  # in a row: a tentative track ends at its first miss
            t.confirmed = True

    # -- the end ---------------------------------------------------------------------------------
    def kept(self, track: Track) -> bool:
        """Whether ``track`` counts as a person (confirmed, long, confident and upright enough)."""
        if track.person_id in self._fixed:
            return True
        upright = self.max_tilt is None or track.boxed or track.tilt is None or track.tilt <= self.max_tilt
        return (track.confirmed and track.length >= self.min_track_frames
                and track.confidence >= self.min_confidence and upright)

    def all_tracks(self) -> list[Track]:
        """Every track of the video so far, ended and live, in order of creation."""
        return sorted(self.ended + self.tracks, key=lambda t: t.person_id)

    def finalize(self) -> dict[int, int]:
        """``provisional id -> final id`` for the kept tracks, numbered 0..n-1 by first appearance
        (ids given by the source keep their value); the tracks of one person joined by relinking
        share an id. Dropped tracks are absent."""
        tracks = self.all_tracks()
        fixed = {t.person_id: t.person_id for t in tracks if t.person_id in self._fixed}
        fixed.update({i: i for i in self._fixed})
        kept = sorted((t for t in tracks if t.person_id not in self._fixed and self.kept(t)),
                      key=lambda t: (t.first_frame, t.person_id))
        before = {b: a for a, b in self.relinks(kept)}  # track -> the track it continues
        out = dict(fixed)
        next_id = max(fixed.values(), default=-1) + 1
        for t in kept:  # in order of first appearance: a track's predecessor is numbered first
            a = before.get(t.person_id)
            if a is not None:
                out[t.person_id] = out[a]
            else:
                out[t.person_id], next_id = next_id, next_id + 1
        return out

    def relinks(self, kept: list[Track]) -> list[tuple[int, int]]:
        """``(earlier, later)`` provisional ids of the kept tracks that are one person (see the
        class docstring), the most alike first."""
        if self.relink_frames <= 0:
            return []
        pairs = []
        for b in kept:
            for a in kept:
                gap = b.first_frame - a.last_frame
                if not 0 < gap <= self.relink_frames or a.shot != b.shot:
                    continue
                end, begin = a.box, b.first_box
                assert begin is not None
                height = max(end[3], begin[3], 1.0)
                dist = np.hypot(begin[0] + begin[2] / 2 - end[0] - end[2] / 2,
                                begin[1] + begin[3] / 2 - end[1] - end[3] / 2) / height
                if dist > self.relink_distance:
                    continue
                look_a, look_b = a.looks(), b.looks()
                alike = similarity(look_a, look_b) if look_a is not None and look_b is not None else None
                if alike is not None and alike >= self.relink_similarity:
                    pairs.append((alike, a.person_id, b.person_id))
        out, has_next, has_prev = [], set(), set()
        for _, a, b in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
            if a not in has_next and b not in has_prev:
                out.append((a, b))
                has_next.add(a)
                has_prev.add(b)
        return out
