"""Which of the CNN person detector's boxes are tried as new people (``detector="centernet"``).

A box no person found covers is tried as a new person (the landmark model poses it, or not)
when it scores ``threshold`` (``person_threshold``, 0.3) or more, or ``weak`` (``person_weak``:
0.3 by default, so off; 0.2 finds more people) or more, on two conditions that keep the weak
boxes' cost and false people down (the second applies to every box):

- **a weak box that could not be posed is not tried again at that place for**
  :data:`FORGET_CALLS` **detector calls** (IoU :data:`SAME_PLACE` or more with it). The weak boxes
  are many where a crowd or an audience is small or blurred, and most of those that fail, fail
  again: without this, tennis.mp4's first 10 s took 297 failed tries (2-3 landmark runs each)
  against 8 at 0.3, and 4x the time;
- **no box is tried that looks like a part of a person**: one whose centre lies in the box of a
  person found or of a better box tried on the call, and under :data:`PART_OF` of its height (a
  tie, a hand: the landmark model poses a small skeleton there). Checking against every box
  of the call, however weak, was tried: a large weak box over a backlit corridor then made its
  walker "a part" (corridor_walk.webm 91% -> 36%).

On the footage benchmark's sampled frames the detector scores 0.1-0.3 about a fifth of the
people it boxes at 512 px (the crowd clip: 20-27 of 24-32 people a frame boxed at 0.3 or more,
24-32 at 0.1 or more); docs/predict.md, "New people from weak boxes", has what the weak boxes
found and cost, and why they are not the default.
"""

from __future__ import annotations

from collections.abc import Sequence

from beenet.inference.pose.boxes import Box, box_iou, centre, inside

#: Calls of the detector for which a weak box that could not be posed is not tried at that place.
FORGET_CALLS = 4
#: The IoU at which a weak box is at the place of one that failed.
SAME_PLACE = 0.5
#: A box under this share of the height of a box its centre lies in is a part of that person.
PART_OF = 0.5


def covers(box: Box, person: Box) -> bool:
    """Whether a detector box is a person's: the person's box centre inside it, or IoU >= 0.3."""
    return inside(*centre(person), box) or box_iou(box, person) >= 0.3


def part_of(box: Box, other: Box) -> bool:
    """Whether ``box`` looks like a part of the person boxed by ``other``: its centre inside
    ``other`` and under :data:`PART_OF` of its height."""
    return box[3] < PART_OF * other[3] and inside(*centre(box), other)


class Newcomers:
    """The boxes of each detector call to try as new people (module docstring); ``weak`` at or
    above ``threshold`` turns the weak boxes off."""

    def __init__(self, threshold: float, weak: float) -> None:
        self.threshold, self.weak = float(threshold), min(float(weak), float(threshold))
        self._failed: list[tuple[Box, int]] = []  # weak boxes not posed, with the call they failed on
        self._calls = 0

    def clear(self) -> None:
        """A new video or shot: no place is remembered."""
        self._failed.clear()

    def boxes(self, boxes: Sequence[tuple[Box, float]], people: Sequence[Box]) -> list[tuple[Box, float]]:
        """Of one detector call's ``boxes`` (``(box, score)``, best first), those to try as new
        people, best first; ``people``: the boxes of the people found on the call."""
        self._calls += 1
        self._failed = [(b, k) for b, k in self._failed if self._calls - k <= FORGET_CALLS]
        out: list[tuple[Box, float]] = []
        for box, score in boxes:
            if score < self.weak or any(covers(box, p) for p in people):
                continue
            if score < self.threshold and any(box_iou(box, b) >= SAME_PLACE for b, _ in self._failed):
                continue
            if any(part_of(box, other) for other in [*people, *(b for b, _ in out)]):
                continue
            out.append((box, score))
        return out

    def failed(self, tried: Sequence[tuple[Box, float]]) -> None:
        """The boxes of :meth:`boxes` the landmark model could not pose on this call: the weak
        ones are not tried at their place for a while."""
        self._failed += [(box, self._calls) for box, score in tried if score < self.threshold]
