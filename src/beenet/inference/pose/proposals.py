"""Where people may be: person proposals from OpenCV's HOG people detector (Dalal-Triggs SVM, it
ships with OpenCV, nothing to download), run only where the frame moved between whole-frame runs.

HOG finds people 1/7 of the frame tall that BlazePose's whole-frame view (224x224) misses. Its
boxes are only proposals: the engine verifies each on a crop around it (a HOG window on a pole or
a bin finds no person there). HOG runs on the grey frame scaled by ``upscale`` (at most
``max_pixels``: HOG's window needs a person about 96 px tall, and its cost grows with the
pixels). With ``motion``, it looks at the whole frame only on every ``full_every``-th HOG call
(and the first of a video or shot); on the others only where the frame changed since the last
HOG call (:meth:`HogProposals.regions`).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from beenet.inference.pose.boxes import Box, Window, at_least, box_iou, centre, inside, merge_windows, nms

#: OpenCV's default people detector window (width, height), px.
HOG_WINDOW = (64, 128)
#: Motion-gated HOG (``motion``): grey-level change (of 255, on the frame at 1/8 size) that counts
#: as motion, the smallest changed blob (cells of 8x8 px), how far a blob is grown on each side (of
#: the frame height, at least), and the largest share of the frame HOG runs on before it runs on
#: the whole frame instead.
MOTION_THRESHOLD = 12
MOTION_MIN_CELLS = 3
MOTION_GROW = 0.1
MOTION_MAX_SHARE = 0.6
#: IoU (or a centre inside) at which a proposal is one already made or a person already found.
PROPOSAL_IOU = 0.3


def new_proposals(boxes: list[tuple[Box, Any]], have: list) -> list[tuple[Box, Any]]:
    """The ``(box, tag)`` of ``boxes`` to verify: none that overlaps a person found already
    (``have``: anything with a ``box``) or an earlier proposal."""
    out: list[tuple[Box, Any]] = []
    for b, e in boxes:
        cx, cy = centre(b)
        if any(inside(cx, cy, k.box) or box_iou(b, k.box) >= PROPOSAL_IOU for k in have):
            continue
        if any(box_iou(b, o) >= PROPOSAL_IOU or inside(cx, cy, o) for o, _ in out):
            continue
        out.append((b, e))
    return out


class HogProposals:
    """HOG on every ``every``-th call of the backend (``calls`` counts them since the shot began),
    on its own worker thread when ``threads`` > 1, beside the landmark work. :attr:`share` is the
    share of the frame the last call's HOG looked at (0 when it did not run)."""

    def __init__(self, every: int, full_every: int, threshold: float, scale: float, upscale: float,
                 max_pixels: int, motion: bool, threads: int) -> None:
        self.every, self.full_every = every, full_every
        self.threshold, self.scale, self.upscale, self.max_pixels = threshold, scale, upscale, max_pixels
        self.motion, self.threads = motion, threads
        self.share = 0.0
        self._motion_prev: np.ndarray | None = None  # the last HOG call's grey frame at 1/8 size
        self._local = threading.local()  # a HOG descriptor for each thread that runs HOG
        self._pool: ThreadPoolExecutor | None = None  # one worker: HOG

    def due(self, calls: int) -> bool:
        """Whether HOG runs on call ``calls``."""
        return calls % self.every == 0

    def whole_frame_due(self, calls: int) -> bool:
        """Whether call ``calls`` is one on which HOG looks at the whole frame (with ``motion``)."""
        return calls % (self.every * self.full_every) == 0

    def new_shot(self) -> None:
        """A shot cut: the next HOG run looks at the whole frame."""
        self._motion_prev = None

    def close(self) -> None:
        """Let the HOG worker go."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._pool = None

    def regions(self, grey: np.ndarray, calls: int) -> list[Window] | None:
        """Where HOG runs on call ``calls``, as windows ``(x0, y0, x1, y1)``, or None for the whole frame.

        With ``motion``, between whole-frame runs (the first HOG call of a video or shot, every
        ``full_every``-th HOG call), HOG runs only where the frame changed since the last HOG
        call: the grey frame at 1/8 of its size, differences over ``MOTION_THRESHOLD`` grey levels,
        each changed blob of at least ``MOTION_MIN_CELLS`` changed cells grown by half its height
        (at least ``MOTION_GROW`` of the frame height) on every side, so that a person moving there
        lies whole in the window with HOG's margin, and each window at least as large as HOG's
        detection window at the scale HOG runs at. A moving camera changes most of the frame: when
        the windows would cover more than ``MOTION_MAX_SHARE`` of it, the whole frame. People who
        stand still are the followed crops' (or the next whole-frame run's)."""
        if not self.motion:
            return None
        import cv2  # lazy: heavy, only when HOG runs

        height, width = grey.shape
        small = cv2.resize(grey, (max(1, width // 8), max(1, height // 8)), interpolation=cv2.INTER_AREA)
        prev, self._motion_prev = self._motion_prev, small
        if prev is None or prev.shape != small.shape or self.whole_frame_due(calls):
            return None
        changed = (cv2.absdiff(small, prev) > MOTION_THRESHOLD).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(changed, np.ones((3, 3), np.uint8)))
        cells = np.bincount(labels[changed > 0], minlength=n)  # changed cells (not the dilation) per blob
        sy, sx = height / small.shape[0], width / small.shape[1]  # frame px per cell (8, or a little more)
        up = self.up(width * height)
        min_w, min_h = (HOG_WINDOW[0] + 16) / up, (HOG_WINDOW[1] + 16) / up  # HOG's window and padding
        windows = []
        for k in range(1, n):
            if cells[k] < MOTION_MIN_CELLS:
                continue
            x, y, w, h = (int(v) for v in stats[k, :4])
            g = max(h // 2, round(MOTION_GROW * small.shape[0]))
            x0, y0 = max(0, x - g) * sx, max(0, y - g) * sy
            x1 = width if x + w + g >= small.shape[1] else (x + w + g) * sx
            y1 = height if y + h + g >= small.shape[0] else (y + h + g) * sy
            windows.append(at_least(x0, y0, x1, y1, min_w, min_h, width, height))
        windows = merge_windows(windows)
        if sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in windows) > MOTION_MAX_SHARE * width * height:
            return None
        return windows

    def start(self, frame: np.ndarray, calls: int) -> Future:
        """Start HOG on ``frame`` (the whole frame, or the windows of :meth:`regions`); returns the
        future of its boxes. With ``threads`` > 1 it runs on a worker thread, beside the
        whole-frame pass and the followed crops (OpenCV's HOG is parallel itself: on 720p,
        640x360 and 640x272 frames its two threads cost the CPU time of one, at half the wall
        time; cutting the frame into two overlapping strips run side by side cost 17-20% more
        CPU, measured interleaved)."""
        import cv2  # lazy: heavy, only when HOG runs

        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)  # once, for the motion windows and HOG
        height, width = grey.shape
        windows = self.regions(grey, calls)
        if windows is None:
            windows = [(0, 0, width, height)]
        self.share = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in windows) / float(width * height)
        jobs = [(grey[y0:y1, x0:x1], x0, y0, height * width) for x0, y0, x1, y1 in windows]

        def run() -> list:
            return self._nms([r for job in jobs for r in self._raw(*job)])

        if self.threads == 1:
            done: Future = Future()
            done.set_result(run())
            return done
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="beenet-hog")
        return self._pool.submit(run)

    def boxes(self, frame: np.ndarray) -> list[Box]:
        """HOG on the whole grey frame: boxes ``(x, y, w, h)`` in frame pixels with an SVM weight
        of at least ``threshold``, after non-maximum suppression."""
        import cv2  # lazy: heavy, only when HOG runs

        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        return self._nms(self._raw(grey, 0, 0, grey.size))

    def up(self, pixels: int) -> float:
        """How much HOG scales a frame of ``pixels`` pixels (``upscale``, at most ``max_pixels``
        after it)."""
        return min(self.upscale, float(np.sqrt(self.max_pixels / pixels)))

    def _nms(self, found: list) -> list[Box]:
        boxes = [b for b, w in found]
        return [boxes[i] for i in nms(boxes, [w for b, w in found], PROPOSAL_IOU)]

    def _raw(self, grey: np.ndarray, x_offset: int, y_offset: int, pixels: int) -> list:
        """``(box, weight)`` of HOG's windows on ``grey`` (a part of a grey frame of ``pixels``
        pixels, which sets the scaling, at ``x_offset, y_offset``) with a weight of at least
        ``threshold``, before suppression."""
        import cv2  # lazy: heavy, only when HOG runs

        hog = getattr(self._local, "hog", None)
        if hog is None:  # one descriptor a thread
            hog = self._local.hog = cv2.HOGDescriptor()
            hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        grey = np.ascontiguousarray(grey)
        up = self.up(pixels)
        if abs(up - 1.0) > 1e-3:
            grey = cv2.resize(grey, None, fx=up, fy=up, interpolation=cv2.INTER_LINEAR)
        if grey.shape[0] < HOG_WINDOW[1] or grey.shape[1] < HOG_WINDOW[0]:
            return []  # smaller than one HOG window (OpenCV would fail an assertion)
        rects, weights = hog.detectMultiScale(grey, winStride=(8, 8), padding=(8, 8), scale=self.scale)
        if len(rects) == 0:
            return []
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        return [((float(r[0]) / up + x_offset, float(r[1]) / up + y_offset, float(r[2]) / up, float(r[3]) / up),
                 float(wt)) for r, wt in zip(rects, weights) if wt >= self.threshold]
