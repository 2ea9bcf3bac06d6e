"""What every pose backend returns, in BoLD's OpenPose-18 layout: :class:`PoseDetection`, and the
mappings of each backend's skeleton onto that layout (BlazePose's 33 landmarks, COCO-17, OpenPose
BODY_25), done here once.

The models were trained on OpenPose COCO-18 joints (BoLD's joints files), so a backend that sees
another skeleton maps it here: :func:`mediapipe_to_openpose`, :func:`coco17_to_openpose`,
:func:`openpose_flat_to_18`; :func:`detection_from_keypoints` then boxes the joints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beenet.errors import BoLDFormatError
from beenet.inference.pose.boxes import Box
from beenet.labels import MIN_KEYPOINT_CONFIDENCE, NUM_JOINTS

#: OpenPose-18 joint <- mediapipe landmark (neck: mean of the shoulders, filled in separately).
MEDIAPIPE_TO_OPENPOSE: tuple[int | None, ...] = (
    0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7,
)
#: OpenPose-18 joint <- COCO-17 keypoint (neck: mean of the shoulders 5 and 6).
COCO17_TO_OPENPOSE: tuple[int | None, ...] = (
    0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3,
)
#: OpenPose-18 joint <- OpenPose BODY_25 keypoint (BODY_25 adds MidHip at 8 and 6 foot points).
BODY25_TO_OPENPOSE: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
_SHOULDERS = {"mediapipe": (11, 12), "coco17": (5, 6)}
#: BlazePose's landmarks of the body (its landmark model gives 39: 33 and 34 align the next square).
BODY_LANDMARKS = 33


@dataclass
class PoseDetection:
    """One person in one frame.

    ``keypoints`` is float32 ``[18, 3]`` (x, y in pixels, confidence), NaN x/y and 0 confidence for
    missing joints; ``box`` is ``(x, y, w, h)``; ``track_id`` is set only when the source already
    knows who is who (BoLD joints files), and then tracking keeps it; ``appearance`` is what the
    person looks like (:func:`beenet.inference.appearance.appearance`, set by the predictor from
    the frame), which the tracker uses to join one person's tracks. ``body`` is True when a person
    detector boxed the body (the CNN of the default backend): the tracker does not hold such a
    person's lean against them (a person lying down is a person). ``vouched``: a person the
    detector boxed without joints whom the tracker keeps without a posed detection (one among
    people posed, boxed on several calls: :mod:`beenet.inference.pose.unposed`).
    """

    keypoints: np.ndarray
    box: Box
    score: float
    track_id: int | None = None
    appearance: np.ndarray | None = None
    body: bool = False
    vouched: bool = False


def valid_mask(keypoints: np.ndarray, min_confidence: float = MIN_KEYPOINT_CONFIDENCE) -> np.ndarray:
    """True for joints with finite x, y and confidence at least ``min_confidence``."""
    kp = np.asarray(keypoints)
    conf = kp[..., 2] >= min_confidence  # a NaN confidence counts as 0 (np.nan_to_num, without its cost)
    if min_confidence <= 0:
        conf |= np.isnan(kp[..., 2])
    return np.isfinite(kp[..., 0]) & np.isfinite(kp[..., 1]) & conf


def is_unposed(person: PoseDetection) -> bool:
    """Whether ``person`` is a body a person detector boxed without a single joint found
    (:func:`beenet.inference.pose.unposed.unposed_person`: cut by the frame's edge, blurred)."""
    return bool(person.body) and not valid_mask(person.keypoints, 1e-12).any()


def keypoint_box(keypoints: np.ndarray, min_confidence: float = MIN_KEYPOINT_CONFIDENCE) -> Box | None:
    """Tight ``(x, y, w, h)`` around the valid joints of ``[18, 3]``; None when fewer than two."""
    ok = valid_mask(keypoints, min_confidence)
    if ok.sum() < 2:
        return None
    xs, ys = keypoints[ok, 0], keypoints[ok, 1]
    return (float(xs.min()), float(ys.min()), float(max(xs.max() - xs.min(), 1.0)), float(max(ys.max() - ys.min(), 1.0)))


def _map_keypoints(src: np.ndarray, table: Sequence[int | None], shoulders: tuple[int, int] | None) -> np.ndarray:
    """Pick rows of ``src`` ``[K, 3]`` into OpenPose-18 order; the neck is the mid-shoulders."""
    out = np.full((NUM_JOINTS, 3), np.nan, dtype=np.float32)
    out[:, 2] = 0.0
    for j, k in enumerate(table):
        if k is not None:
            out[j] = src[k]
    if shoulders is not None:
        a, b = src[shoulders[0]], src[shoulders[1]]
        if np.isfinite(a[:2]).all() and np.isfinite(b[:2]).all():
            out[1, :2] = (a[:2] + b[:2]) / 2.0
            out[1, 2] = min(float(a[2]), float(b[2]))
    missing = ~valid_mask(out, 1e-12) | ~np.isfinite(out[:, 2])
    out[missing, :2] = np.nan
    out[missing, 2] = 0.0
    return out


def mediapipe_to_openpose(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """BlazePose ``[33, 3]`` (x, y normalised to [0, 1], visibility) -> OpenPose-18 in pixels.

    Landmarks that BlazePose extrapolates outside the frame are dropped (OpenPose would not see
    them), so the skeleton stream sees the same kind of gaps as in BoLD.
    """
    lm = np.asarray(landmarks, dtype=np.float32).reshape(33, 3).copy()
    lm[:, 0] *= width
    lm[:, 1] *= height
    outside = (lm[:, 0] < 0) | (lm[:, 0] > width - 1) | (lm[:, 1] < 0) | (lm[:, 1] > height - 1)
    lm[outside, 2] = 0.0
    return _map_keypoints(lm, MEDIAPIPE_TO_OPENPOSE, _SHOULDERS["mediapipe"])


def coco17_to_openpose(keypoints: np.ndarray) -> np.ndarray:
    """COCO-17 ``[17, 3]`` (x, y pixels, confidence) -> OpenPose-18."""
    kp = np.asarray(keypoints, dtype=np.float32).reshape(17, 3)
    return _map_keypoints(kp, COCO17_TO_OPENPOSE, _SHOULDERS["coco17"])


def openpose_flat_to_18(flat: Sequence[float], source: str | Path = "<keypoints>") -> np.ndarray:
    """An OpenPose ``pose_keypoints_2d`` list (COCO-18: 54 values, BODY_25: 75) -> ``[18, 3]``.

    OpenPose writes (0, 0, 0) for joints it did not find; those become NaN with confidence 0.
    """
    arr = np.asarray(flat, dtype=np.float32)
    if arr.size == NUM_JOINTS * 3:
        kp = arr.reshape(NUM_JOINTS, 3).copy()
    elif arr.size == 25 * 3:
        kp = arr.reshape(25, 3)[list(BODY25_TO_OPENPOSE)].copy()
    else:
        raise BoLDFormatError(
            source, None,
            f"pose_keypoints_2d has {arr.size} values; expected 54 (COCO-18) or 75 (BODY_25). "
            "Run OpenPose with --model_pose COCO or BODY_25.",
        )
    missing = (kp[:, 2] < MIN_KEYPOINT_CONFIDENCE) | ((kp[:, 0] == 0) & (kp[:, 1] == 0))
    kp[missing, :2] = np.nan
    kp[missing, 2] = 0.0
    return kp


def detection_from_keypoints(keypoints: np.ndarray, score: float | None = None,
                             track_id: int | None = None) -> PoseDetection | None:
    """A :class:`PoseDetection` whose box is the tight box of its joints; None when under two."""
    box = keypoint_box(keypoints)
    if box is None:
        return None
    ok = valid_mask(keypoints)
    s = float(np.mean(keypoints[ok, 2])) if score is None else float(score)
    return PoseDetection(keypoints.astype(np.float32), box, s, track_id)


def landmark_person(lm: np.ndarray, width: int, height: int) -> PoseDetection | None:
    """A detection (OpenPose-18 joints, confidence = visibility) of BlazePose landmarks ``(x, y,
    visibility, ...)`` in frame pixels, or None when no two joints lie in the frame."""
    arr = np.stack([lm[:BODY_LANDMARKS, 0] / width, lm[:BODY_LANDMARKS, 1] / height, lm[:BODY_LANDMARKS, 2]], 1)
    return detection_from_keypoints(mediapipe_to_openpose(arr.astype(np.float32), width, height))
