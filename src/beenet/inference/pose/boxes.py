"""Box geometry shared by the pose backends and the tracker: boxes are ``(x, y, w, h)`` in pixels.

The one box IoU of beenet (:func:`box_iou`; the tracker's cost uses it too), greedy suppression,
the merge of people found twice, the windows HOG and the tiles look at, the square crops around a
proposal, and BlazePose's rotated square (:class:`Roi`, :func:`roi_from_points`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

Box = tuple[float, float, float, float]  # x, y, w, h in pixels
#: A window of the frame as corners ``(x0, y0, x1, y1)``, whole pixels.
Window = tuple[int, int, int, int]
#: mediapipe's margin around the alignment points' square (``RectTransformationCalculator``).
ROI_SCALE = 1.25

T = TypeVar("T")


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes (0 when both are empty)."""
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def inside(x: float, y: float, box: Box) -> bool:
    """Whether the point ``(x, y)`` lies in ``box`` (edges included)."""
    return box[0] <= x <= box[0] + box[2] and box[1] <= y <= box[1] + box[3]


def centre(box: Box) -> tuple[float, float]:
    """The centre ``(x, y)`` of ``box``."""
    return box[0] + box[2] / 2, box[1] + box[3] / 2


def nms(boxes: Sequence[Box], scores: Sequence[float], iou: float) -> list[int]:
    """Indices of the boxes kept by greedy non-maximum suppression (highest score first); a box is
    also dropped when its centre lies inside a kept box (HOG's part-of-a-person windows)."""
    kept: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda i: -scores[i]):
        b = boxes[i]
        cx, cy = centre(b)
        if all(box_iou(b, boxes[k]) < iou and not inside(cx, cy, boxes[k]) for k in kept):
            kept.append(i)
    return kept


def merge_found(items: Sequence[T], person: Callable[[T], Any], iou: float) -> list[T]:
    """``items`` without those whose ``person(item)`` (anything with a ``box`` and a ``score``)
    overlaps, by box IoU of ``iou`` or more, one of higher score (kept first): one person found
    twice (on the frame and a tile, or on a crop) is one."""
    kept: list[T] = []
    for it in sorted(items, key=lambda it: -person(it).score):
        if all(box_iou(person(it).box, person(k).box) < iou for k in kept):
            kept.append(it)
    return kept


def merge_windows(windows: list[Window]) -> list[Window]:
    """Windows that overlap replaced by the box around both, until none overlap (HOG would
    otherwise look at the overlap twice)."""
    out: list[Window] = []
    for w in windows:
        while (hit := next((o for o in out if o[0] < w[2] and w[0] < o[2] and o[1] < w[3] and w[1] < o[3]), None)):
            out.remove(hit)
            w = (min(w[0], hit[0]), min(w[1], hit[1]), max(w[2], hit[2]), max(w[3], hit[3]))
        out.append(w)
    return out


def at_least(x0: float, y0: float, x1: float, y1: float, min_w: float, min_h: float, width: int,
             height: int) -> Window:
    """The window ``(x0, y0, x1, y1)`` grown about its centre to at least ``min_w x min_h`` (moved
    inward at the frame's edges, cut only where the frame is smaller), in whole pixels."""
    w, h = min(max(x1 - x0, min_w), width), min(max(y1 - y0, min_h), height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    nx0 = int(min(max(cx - w / 2, 0), width - w))
    ny0 = int(min(max(cy - h / 2, 0), height - h))
    return nx0, ny0, min(width, int(np.ceil(nx0 + w))), min(height, int(np.ceil(ny0 + h)))


def tile_grid(width: int, height: int, tiles: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """``tiles x tiles`` windows ``(x0, y0, w, h)`` that cover the frame, neighbours overlapping by
    ``overlap`` of a tile."""
    out = []
    tw = int(np.ceil(width / (tiles - (tiles - 1) * overlap)))
    th = int(np.ceil(height / (tiles - (tiles - 1) * overlap)))
    for iy in range(tiles):
        for ix in range(tiles):
            x0 = min(round(ix * tw * (1 - overlap)), width - tw)
            y0 = min(round(iy * th * (1 - overlap)), height - th)
            out.append((max(x0, 0), max(y0, 0), min(tw, width), min(th, height)))
    return out


def square_crop(box: Box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """A square window ``(x0, y0, w, h)`` around ``box``, ``margin`` times its longer side, moved
    (not cut) to lie inside the frame; cut only where the frame is smaller than the square."""
    cx, cy = centre(box)
    side = max(box[2], box[3]) * margin
    w, h = round(min(side, width)), round(min(side, height))
    x0 = round(min(max(cx - w / 2, 0), width - w))
    y0 = round(min(max(cy - h / 2, 0), height - h))
    return x0, y0, w, h


@dataclass(frozen=True)
class Roi:
    """A rotated square of the frame, in pixels: centre, side, rotation (radians, clockwise on the
    image, 0 for an upright body)."""

    cx: float
    cy: float
    side: float
    angle: float

    def bounds(self) -> Box:
        """The axis-aligned box ``(x, y, w, h)`` around the square."""
        half = self.side / 2 * (abs(math.cos(self.angle)) + abs(math.sin(self.angle)))
        return self.cx - half, self.cy - half, 2 * half, 2 * half

    def moved(self, dx: float, dy: float) -> Roi:
        """The same square, its centre ``(dx, dy)`` pixels further."""
        return Roi(self.cx + dx, self.cy + dy, self.side, self.angle)


def roi_from_points(centre, scale_point) -> Roi:
    """mediapipe's ``AlignmentPointsRectsCalculator`` (rotation target 90 degrees) followed by its
    ``RectTransformationCalculator`` (scale 1.25, square on the long side), in pixels: centred on
    ``centre``, side 2.5 times the distance to ``scale_point``, turned so that the body is upright."""
    dx, dy = float(scale_point[0] - centre[0]), float(scale_point[1] - centre[1])
    side = 2.0 * math.hypot(dx, dy) * ROI_SCALE
    angle = math.pi / 2 - math.atan2(-dy, dx)
    angle = (angle + math.pi) % (2 * math.pi) - math.pi
    return Roi(float(centre[0]), float(centre[1]), side, angle)
