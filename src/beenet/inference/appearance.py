"""What a person looks like, to tell whether two tracks are one person: colour histograms of the
torso and of the legs, placed by the skeleton.

The tracker follows people by where they are; a person hidden behind another or missed by the
detector for longer than ``max_gap`` comes back under a new id. :func:`appearance` describes a
detection by its clothes, :func:`similarity` compares two descriptions, and
:class:`~beenet.inference.tracking.Tracker` joins a kept track to one that ended shortly before,
close by, when they look alike (``relink_frames``; docs/predict.md "Tracking" has the
measurements).

A region is the rectangle spanned by its joints (torso: shoulders and hips; legs: hips to knees
or ankles), at least a third as wide as it is tall (a person seen from the side has their
shoulders on top of each other), trimmed by a tenth at the sides (the background next to the
body). Its pixels go into a hue x saturation x value histogram of ``8 x 3 x 3`` bins, normalised
to sum to 1 (:func:`~beenet.inference.shots.hsv_histogram`, the shot-cut detector's); dark and grey clothes, which have no reliable hue, still differ in value.
"""

from __future__ import annotations

import numpy as np

from beenet.inference.pose import valid_mask
from beenet.inference.shots import hsv_histogram

#: OpenPose-18 joints of each region: (joints at its top, joints at its bottom).
REGIONS = (((2, 5), (8, 11)), ((8, 11), (9, 12, 10, 13)))
#: Histogram bins of hue, saturation, value.
BINS = (8, 3, 3)
#: A region needs at least this many pixels to be described.
MIN_PIXELS = 24


def _region(keypoints: np.ndarray, ok: np.ndarray, top: tuple[int, ...], bottom: tuple[int, ...],
            width: int, height: int) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` of a region in frame pixels, or None when its joints are not seen."""
    t = [j for j in top if ok[j]]
    b = [j for j in bottom if ok[j]]
    if not t or not b:
        return None
    pts = keypoints[t + b, :2]
    y0 = float(keypoints[t, 1].mean())
    y1 = float(keypoints[b, 1].max())
    if y1 - y0 < 4:
        return None
    x0, x1 = float(pts[:, 0].min()), float(pts[:, 0].max())
    cx, w = (x0 + x1) / 2, max(x1 - x0, (y1 - y0) / 3) * 0.8
    x0, x1 = max(0, int(round(cx - w / 2))), min(width, int(round(cx + w / 2)))
    y0, y1 = max(0, int(round(y0))), min(height, int(round(y1)))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def appearance(frame: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """``(2, 72)`` float32: the torso's and the legs' HSV histograms in ``frame`` (RGB uint8), each
    summing to 1, or to 0 where that region is not seen (too few joints or pixels)."""
    height, width = frame.shape[:2]
    ok = valid_mask(keypoints)
    out = np.zeros((len(REGIONS), int(np.prod(BINS))), np.float32)
    for k, (top, bottom) in enumerate(REGIONS):
        r = _region(keypoints, ok, top, bottom, width, height)
        if r is None:
            continue
        x0, y0, x1, y1 = r
        if (x1 - x0) * (y1 - y0) < MIN_PIXELS:
            continue
        out[k] = hsv_histogram(frame[y0:y1, x0:x1], width=None, bins=BINS)
    return out


def similarity(a: np.ndarray, b: np.ndarray) -> float | None:
    """Mean Bhattacharyya coefficient (1 = the same histograms, 0 = nothing in common) over the
    regions both descriptions have; None when they share none. ``a`` and ``b`` may be means of
    several descriptions (each region summing to 1, or to 0 where never seen)."""
    seen = (a.sum(1) > 0) & (b.sum(1) > 0)
    if not seen.any():
        return None
    pa = a[seen] / a[seen].sum(1, keepdims=True)
    pb = b[seen] / b[seen].sum(1, keepdims=True)
    return float(np.sqrt(pa * pb).sum(1).mean())
