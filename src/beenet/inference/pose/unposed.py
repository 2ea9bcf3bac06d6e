"""People the CNN person detector boxes firmly but the landmark model cannot pose.

A player cut by the frame's edge (one arm and the legs), a body whose face and shoulders are out
of the frame, a person too blurred for BlazePose: the detector scores such a box 0.5 and more,
and the landmark model, which needs a body around a torso, gives it presence under its threshold
or joints outside the box. Without this they are simply not found. With ``unposed`` (a score),
such a box is kept as a person with its box and no joints (every joint missing: NaN, confidence
0), once the detector has boxed it on ``SEEN`` of its calls in a row (a box it gives once is
not a person; a person posed on the call before counts as boxed on it: a player whose body
leaves the frame stays a person). While someone is unposed, the detector runs on every call
(nothing else follows them), and tries the landmark model on them again: a person posed there
is a person with joints from then on. The tracker keeps a track only when some of its
detections were posed (an unposed detection adds no score to the track's mean).

**Inside the frame, among people** (``group``, a score; 0: never): where the landmark model poses
:data:`GROUP_PEOPLE` or more people on a call, a box inside the frame that covers none of them, is
the height of the people posed (within :data:`GROUP_SIZE` of their median, upright: taller than
:data:`UPRIGHT` times its width) and scored ``group`` or more on :data:`GROUP_SEEN` detector calls
in a row is a person too, *vouched* for by the detector: the tracker keeps them without a posed
detection. This is for crowds of small people seen from above and for people half hidden in a
group, whom BlazePose cannot pose (the overhead crowd clip of the footage benchmark: a group of
four talking, of whom the landmark model poses one); the size rule keeps a sign or a bag that the
detector boxes weakly among pedestrians from being a person (two on vtest.avi without it).
"""

from __future__ import annotations

import numpy as np

from beenet.inference.pose.boxes import Box, box_iou, centre, inside
from beenet.inference.pose.keypoints import PoseDetection

#: Detector calls in a row that must box a person the landmark model cannot pose before it is one.
SEEN = 2
#: IoU at which a box of one detector call is the same unposed person as one of the call before.
SAME_IOU = 0.3
#: Share of the frame's width or height within which a box reaches its edge: only a body cut by
#: the frame is unposed (inside the frame, a body the landmark model cannot pose is mostly one
#: hidden behind another, whose box would carry the wrong id).
EDGE = 0.02
#: OpenPose-18 joints: what a person without joints carries, every one missing.
JOINTS = 18
#: People posed on a call for a box inside the frame to be an unposed person among them (``group``).
GROUP_PEOPLE = 3
#: A box inside the frame is a person's height when within this factor of the posed people's median.
GROUP_SIZE = 0.6
#: ... and upright: its height at least this times its width.
UPRIGHT = 1.2
#: Detector calls in a row that must box a person inside the frame before they are one.
GROUP_SEEN = 3


def unposed_person(box: Box, score: float, vouched: bool = False) -> PoseDetection:
    """A person boxed by the detector, with every joint missing (``vouched``: kept by the tracker
    without a posed detection)."""
    keypoints = np.full((JOINTS, 3), np.nan, np.float32)
    keypoints[:, 2] = 0.0
    return PoseDetection(keypoints, tuple(float(v) for v in box), float(score), body=True, vouched=vouched)


def among(box: Box, posed: list[Box]) -> bool:
    """Whether ``box`` is the height of the :data:`GROUP_PEOPLE` or more people ``posed`` (within
    :data:`GROUP_SIZE` of their median height) and upright (taller than :data:`UPRIGHT` its width)."""
    if len(posed) < GROUP_PEOPLE:
        return False
    median = float(np.median([p[3] for p in posed]))
    return GROUP_SIZE * median <= box[3] <= median / GROUP_SIZE and box[3] >= UPRIGHT * box[2]


def at_edge(box: Box, width: int, height: int) -> bool:
    """Whether ``box`` reaches the frame's edge (within ``EDGE`` of its width or height)."""
    x, y, w, h = box
    return x <= EDGE * width or y <= EDGE * height or x + w >= (1 - EDGE) * width or y + h >= (1 - EDGE) * height


def _covers(box: Box, other: Box) -> bool:
    return inside(*centre(other), box) or box_iou(box, other) >= SAME_IOU


class UnposedPeople:
    """The unposed people of one shot: each as ``(box, score, detector calls in a row)``."""

    def __init__(self, threshold: float, confirm: float, group: float = 0.0) -> None:
        self.threshold = float(threshold)  # 0: never
        self.confirm = min(float(confirm), self.threshold)
        self.group = float(group) if self.threshold > 0 else 0.0  # 0: only at the edge
        self.boxes: list[tuple[Box, float, int]] = []
        self._size = (1, 1)  # the frame's width and height on the last call
        self.posed: list[Box] = []  # the boxes of the people posed on the detector's last call

    def clear(self) -> None:
        self.boxes, self.posed = [], []

    def seen(self, boxes: list[tuple[Box, float]], posed: list[Box], width: int, height: int) -> list[PoseDetection]:
        """A detector call: its ``boxes`` that cover none of the people ``posed`` on this call. At
        the frame's edge, a box where a person was on the call before (posed, or an unposed box)
        continues them at ``confirm`` or more (the detector's score falls as a body leaves the
        frame); any other starts a count at ``threshold`` or more; those boxed on ``SEEN`` calls in
        a row (a person posed counts as boxed) are returned as people. Inside the frame (with
        ``group``), a box :func:`among` the people posed counts at ``group`` or more, and is a
        person, vouched for, after ``GROUP_SEEN`` calls in a row."""
        if self.threshold <= 0:
            return []
        self._size = (width, height)
        before = list(self.boxes) + [(b, 1.0, SEEN - 1) for b in self.posed]
        self.posed, now = list(posed), []
        for box, score in sorted(boxes, key=lambda b: -b[1]):
            edge = at_edge(box, width, height)
            low, start = (self.confirm, self.threshold) if edge else (self.group, self.group)
            if score < low or not edge and (self.group <= 0 or not among(box, posed)) \
                    or any(_covers(box, p) or _covers(p, box) for p in posed) \
                    or any(box_iou(box, b) >= SAME_IOU for b, *_ in now):
                continue
            match = max(before, key=lambda b: box_iou(box, b[0]), default=None)
            if match is not None and box_iou(box, match[0]) >= SAME_IOU:
                before.remove(match)
                now.append((box, score, match[2] + 1))
            elif score >= start:
                now.append((box, score, 1))
        self.boxes = now
        people = []
        for box, score, n in now:
            edge = at_edge(box, width, height)
            if n >= (SEEN if edge else GROUP_SEEN):
                people.append(unposed_person(box, score, vouched=not edge))
        return people

    @property
    def following(self) -> bool:
        """Whether a box of the detector's last call at the frame's edge awaits the next, or an
        unposed person inside it is one (the detector then runs on every call: nothing else follows
        a person it boxed and the landmark model could not pose). A box inside the frame on its way
        to :data:`GROUP_SEEN` counts on the calls the detector runs anyway."""
        return any(n >= GROUP_SEEN or at_edge(b, *self._size) for b, _, n in self.boxes)

    def skipped(self, posed: list[Box]) -> list[PoseDetection]:
        """A call the detector did not run on (nobody unposed was followed): the people ``posed``
        on it are those of the call before the next one."""
        self.posed = list(posed)
        return []
