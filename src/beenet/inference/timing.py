"""Where the time of a prediction goes: seconds per stage (decode, pose, track, model, ...), the
``timings`` of a :class:`~beenet.inference.results.VideoResult`."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any


class StageTimer:
    """Accumulates seconds per stage."""

    def __init__(self) -> None:
        self.t: dict[str, float] = defaultdict(float)

    def add(self, stage: str, seconds: float) -> None:
        self.t[stage] += seconds

    def timed_iter(self, it: Iterator[Any], stage: str) -> Iterator[Any]:
        """``it``'s items, the time spent waiting for each added to ``stage``; closing this closes
        ``it`` (a prefetching thread stops with it)."""
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    self.add(stage, time.perf_counter() - t0)
                    return
                self.add(stage, time.perf_counter() - t0)
                yield item
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
