"""Multi-person tracking: a stable ``person_id`` per person across the frames of a video.

Per frame, detections are matched to live tracks by the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``) on a cost that mixes box overlap (1 - IoU) and the mean
distance between matching joints, normalised by the track's box size. A track survives
``max_age`` frames without a match (a person briefly occluded or missed by the detector keeps
their id); an unmatched detection opens a new track with the next id. Ids count up from 0 in
order of first appearance, so they are stable and repeatable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from beenet.inference.pose import Box, PoseDetection, valid_mask

_INFEASIBLE = 1e6


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


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
    """A person followed over frames: the last box and skeleton seen, and when."""

    person_id: int
    box: Box
    keypoints: np.ndarray
    last_frame: int
    first_frame: int
    hits: int = 1


class Tracker:
    """Assigns a stable ``person_id`` to each detection, frame after frame.

    ``iou_weight`` and ``keypoint_weight`` mix the two costs; a pair whose cost exceeds
    ``max_cost`` is never matched (a new person rather than a jump); tracks unseen for more than
    ``max_age`` frames end.
    """

    def __init__(self, max_age: int = 15, max_cost: float = 0.8, iou_weight: float = 0.5,
                 keypoint_weight: float = 0.5) -> None:
        if max_age < 0:
            raise ValueError(f"max_age must be >= 0, got {max_age}")
        self.max_age = max_age
        self.max_cost = max_cost
        self.iou_weight = iou_weight
        self.keypoint_weight = keypoint_weight
        self.tracks: list[Track] = []
        self._next_id = 0

    def reset(self) -> None:
        """Forget every track (a new video)."""
        self.tracks = []
        self._next_id = 0

    def cost(self, track: Track, det: PoseDetection) -> float:
        """Matching cost in [0, 1]-ish: 0 = same place and posture."""
        overlap = iou(track.box, det.box)
        scale = float(np.hypot(track.box[2], track.box[3]))
        kd = keypoint_distance(track.keypoints, det.keypoints, scale)
        if kd is None:
            return 1.0 - overlap
        return self.iou_weight * (1.0 - overlap) + self.keypoint_weight * min(kd, 1.0)

    def update(self, frame_index: int, detections: list[PoseDetection]) -> list[int]:
        """Match ``detections`` of frame ``frame_index``; returns one ``person_id`` per detection.

        Detections that carry a ``track_id`` (BoLD joints files) keep it and bypass matching.
        """
        self.tracks = [t for t in self.tracks if frame_index - t.last_frame <= self.max_age + 1]
        ids: list[int | None] = [None] * len(detections)
        free = [i for i, d in enumerate(detections) if d.track_id is None]
        for i, d in enumerate(detections):
            if d.track_id is not None:
                ids[i] = int(d.track_id)
                self._next_id = max(self._next_id, int(d.track_id) + 1)
        if free and self.tracks:
            cost = np.array([[self.cost(t, detections[i]) for i in free] for t in self.tracks])
            gated = np.where(cost > self.max_cost, _INFEASIBLE, cost)
            rows, cols = linear_sum_assignment(gated)
            for r, c in zip(rows, cols):
                if gated[r, c] < _INFEASIBLE:
                    ids[free[c]] = self.tracks[r].person_id
        by_id = {t.person_id: t for t in self.tracks}
        for i, d in enumerate(detections):
            pid = ids[i]
            if pid is None:
                pid = self._next_id
                self._next_id += 1
                ids[i] = pid
            t = by_id.get(pid)
            if t is None:
                t = Track(pid, d.box, d.keypoints, frame_index, frame_index)
                self.tracks.append(t)
                by_id[pid] = t
            else:
                t.box, t.keypoints, t.last_frame = d.box, d.keypoints, frame_index
                t.hits += 1
        return [int(i) for i in ids]  # type: ignore[arg-type]
