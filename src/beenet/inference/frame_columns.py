"""The columns of the per-frame table that describe one person in one frame, one entry each.

``beenet predict --per-frame`` writes a row per person and frame: ``video, frame, time_s``, then
the columns of :data:`PER_FRAME_COLUMNS` in order, then the 26 categories and V/A/D of the window
covering the frame. Each entry is a name and the function that computes the value from a
:class:`PersonFrame`; :data:`beenet.inference.table.FRAME_COLUMNS` and the rows of
:func:`beenet.inference.results.frames_table` are read off this table, so adding a column is one
entry here (and a test).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from beenet.inference.pose import Box, valid_mask


@dataclass(frozen=True)
class PersonFrame:
    """One tracked person in one frame, as the per-frame table sees them."""

    frame: int
    person_id: int
    box: Box  # the stored box, or the box of the frame's joints for an interpolated frame
    keypoints: np.ndarray | None  # [18, 3] (x, y, confidence; NaN where missing), None if not stored
    detection_confidence: float | None  # what the tracker recorded for the frame, if anything
    interpolated: bool


def confidence(p: PersonFrame) -> float:
    """The detection confidence recorded for the frame, else the mean of its valid joints', else 0."""
    if p.detection_confidence is not None:
        return float(p.detection_confidence)
    if p.keypoints is not None and valid_mask(p.keypoints).any():
        return float(np.mean(p.keypoints[valid_mask(p.keypoints), 2]))
    return 0.0


#: name -> value of a person in a frame, in column order.
PER_FRAME_COLUMNS: dict[str, Callable[[PersonFrame], Any]] = {
    "person_id": lambda p: int(p.person_id),
    "confidence": confidence,
    "box_x": lambda p: float(p.box[0]),
    "box_y": lambda p: float(p.box[1]),
    "box_w": lambda p: float(p.box[2]),
    "box_h": lambda p: float(p.box[3]),
    "interpolated": lambda p: bool(p.interpolated),
    "joints": lambda p: int(valid_mask(p.keypoints).sum()) if p.keypoints is not None else 0,
}
