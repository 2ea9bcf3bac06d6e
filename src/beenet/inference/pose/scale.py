"""The person detector's input size, fixed or chosen from the people it finds (``person_size=auto``).

CenterNet's recall falls with a person's height in its input: on the footage benchmark's sampled
frames (every clip, 2026-12-07), at 384 px it boxed 34% of the people 24-32 px tall in its input,
68% of those 32-40 px tall and 83-100% of those taller; the same people at 512 px (a third taller
in the input) 78%, 87% and 95-100% (docs/predict.md, "The person detector's size"). A clip of
small people needs a larger input; one of large people would pay for it for nothing (a call costs
about the square of the size).

:class:`DetectorScale` with ``auto`` keeps the heights (frame px) of the people the detector
boxed confidently on its last :data:`WINDOW` calls, and picks the smallest size of
:data:`LADDER` (never below the starting size, never above the frame's longer side rounded up to
32, :data:`LADDER`'s last at most) at which their median is :data:`MIN_PX` tall in the input.
It goes down only when the median would be :data:`DOWN_PX` there (no back-and-forth), and after
a change it starts counting again. Decisions are made on the main thread, in frame order, from
the calls' boxes (:meth:`observe`), and a run takes the size current when it was handed out
(:attr:`size`), so a video gives the same sizes on every run.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

#: The sizes ``auto`` chooses from (input px of the frame's longer side): 512 is the size the
#: network was trained at; 640 found no more people on the footage benchmark and cost more.
LADDER: tuple[int, ...] = (384, 512)
#: The median height (input px) of the people found that ``auto`` keeps them at or above.
MIN_PX = 40.0
#: A smaller size is taken only when the median would be this tall there.
DOWN_PX = 48.0
#: The detector calls whose boxes are counted.
WINDOW = 6
#: What a decision needs: boxes counted, and calls.
MIN_BOXES, MIN_CALLS = 6, 3


class DetectorScale:
    """The size the person detector runs at: ``start`` for ever (``auto`` false), or chosen
    from the people found (``auto``); ``threshold``: the lowest score of a box counted (a box
    that may make a new person)."""

    def __init__(self, start: int, auto: bool = False, threshold: float = 0.3) -> None:
        self.start, self.auto, self.threshold = int(start), bool(auto), float(threshold)
        self.size = self.start
        self.sizes_used: set[int] = {self.start}
        self._heights: deque[list[float]] = deque(maxlen=WINDOW)
        self._longer = 0  # the frame's longer side (px), from the last observed call

    def reset(self) -> None:
        """A new video: back to the starting size."""
        self.size = self.start
        self._heights.clear()

    def observe(self, boxes: list, width: int, height: int) -> None:
        """The boxes ``[(box, score), ...]`` of one detector call on a ``width`` x ``height``
        frame (frame px; ``box`` is x, y, w, h): with ``auto``, maybe a new size for later runs."""
        if not self.auto:
            return
        self._longer = max(int(width), int(height))
        self._heights.append([float(b[3]) for b, s in boxes if s >= self.threshold])
        heights = [h for call in self._heights for h in call]
        if len(self._heights) < MIN_CALLS or len(heights) < MIN_BOXES:
            return
        size = self.choose(float(np.median(heights)), self._longer)
        if size != self.size:
            self.size = size
            self.sizes_used.add(size)
            self._heights.clear()

    def choose(self, median_px: float, longer: int) -> int:
        """The size for people whose median height is ``median_px`` frame px, on a frame whose
        longer side is ``longer`` px (rule in the module docstring)."""
        cap = max(self.start, min(LADDER[-1], 32 * math.ceil(longer / 32)))
        steps = sorted({s for s in LADDER if self.start <= s <= cap} | {self.start, cap})

        def tall(size: int) -> float:
            return median_px * size / longer

        up = next((s for s in steps if tall(s) >= MIN_PX), steps[-1])
        if up >= self.size:
            return up
        # going down: only to a size where the median is DOWN_PX tall
        down = next((s for s in steps if tall(s) >= DOWN_PX), self.size)
        return min(down, self.size)
