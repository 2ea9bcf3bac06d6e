"""BoLD joints files: OpenPose-18 keypoints per (frame, person), re-based to the clip's frame 0.

A joints ``.npy`` holds float rows ``[frame, person_id, x0, y0, c0, ..., x17, y17, c17]`` for every
person detected in the clip, in no particular order. Frame numbers are absolute-like: subtracting
the file's minimum frame makes them the decoded frame indices of the clip's mp4. Frames in which a
person was not detected have no row; they stay missing, they never shift later frames.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beenet.errors import BoLDFormatError, DataNotFoundError
from beenet.labels import MIN_KEYPOINT_CONFIDENCE, NUM_JOINTS

log = logging.getLogger(__name__)

#: Columns of a joints row: frame, person_id, then (x, y, c) per joint.
JOINTS_COLUMNS = 2 + 3 * NUM_JOINTS


@dataclass
class PersonJoints:
    """One person's keypoints over a clip.

    ``keypoints`` float32 ``[T, 18, 3]`` (x, y, c in pixels; x = y = NaN and c = 0 where missing),
    ``present`` bool ``[T]`` (the person has a row in that frame), ``frame_offset`` the minimum
    frame number of the whole file (subtracted from every frame number).
    """

    person_id: int
    keypoints: np.ndarray
    present: np.ndarray
    frame_offset: int

    @property
    def num_frames(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def present_frames(self) -> np.ndarray:
        """Frame indices (int64, increasing) in which the person has a row."""
        return np.flatnonzero(self.present)


#: np.load parses the .npy header with ``ast.literal_eval``, and CPython < 3.11.8 can fail
#: ("AST constructor recursion depth mismatch", a SystemError) when threads parse at once
#: (python/cpython#106905); the setup check loads joints from a thread pool.
_NPY_HEADER_LOCK = threading.Lock()


def load_joints_array(path: str | Path) -> np.ndarray:
    """Load and validate a joints file: float64 ``[N, 56]`` with integer frame and person columns.

    Raises :class:`DataNotFoundError` when the file is absent and :class:`BoLDFormatError`
    (line ``None``) naming the file when it is unreadable or has the wrong shape.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: joints file not found")
    try:
        with _NPY_HEADER_LOCK:
            raw = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, SystemError) as exc:
        raise BoLDFormatError(path, None, f"not a readable .npy joints file ({exc})") from None
    if not isinstance(raw, np.ndarray) or raw.ndim != 2 or raw.shape[1] != JOINTS_COLUMNS:
        shape = getattr(raw, "shape", None)
        raise BoLDFormatError(
            path, None,
            f"joints array has shape {shape}, expected (N, {JOINTS_COLUMNS}): "
            f"[frame, person_id, x0, y0, c0, ..., x17, y17, c17] per row",
        )
    if not np.issubdtype(raw.dtype, np.number):
        raise BoLDFormatError(path, None, f"joints array has dtype {raw.dtype}, expected a numeric array")
    arr = raw.astype(np.float64, copy=False)
    ids = arr[:, :2]
    if not np.isfinite(ids).all() or (ids != np.round(ids)).any():
        bad = int(np.flatnonzero(~np.isfinite(ids).all(1) | (ids != np.round(ids)).any(1))[0])
        raise BoLDFormatError(
            path, None, f"row {bad}: frame and person_id must be integers, got {arr[bad, :2].tolist()}"
        )
    return arr


def _rows_to_person(
    rows: np.ndarray, person_id: int, frame_offset: int, num_frames: int, source: Path
) -> PersonJoints:
    keypoints = np.full((num_frames, NUM_JOINTS, 3), np.nan, dtype=np.float32)
    keypoints[..., 2] = 0.0
    present = np.zeros(num_frames, dtype=bool)
    if len(rows):
        t = rows[:, 0].astype(np.int64) - frame_offset
        inside = (t >= 0) & (t < num_frames)
        if not inside.all():
            log.debug("%s: person %d has %d rows past frame %d, dropped", source, person_id,
                      int((~inside).sum()), num_frames)
        rows, t = rows[inside], t[inside]
        kp = rows[:, 2:].reshape(-1, NUM_JOINTS, 3).copy()
        with np.errstate(invalid="ignore"):
            missing = (
                ~np.isfinite(kp).all(-1)
                | (kp[..., 2] < MIN_KEYPOINT_CONFIDENCE)
                | (kp == 0.0).all(-1)
            )
        kp[missing] = (np.nan, np.nan, 0.0)
        # Duplicate rows for one frame: keep the most confident (largest total confidence).
        score = kp[..., 2].sum(-1)
        order = np.lexsort((score, t))  # by frame, then by confidence ascending
        t, kp = t[order], kp[order]
        last = np.r_[t[1:] != t[:-1], True] if len(t) else np.zeros(0, dtype=bool)
        keypoints[t[last]] = kp[last]
        present[t[last]] = True
    return PersonJoints(person_id=int(person_id), keypoints=keypoints, present=present,
                        frame_offset=int(frame_offset))


#: The longest frame span read off a joints file alone (no ``num_frames``): 11 h at 25 fps.
#: One corrupt frame number (4e12) must not size the ``[T, 18, 3]`` arrays.
MAX_FILE_SPAN = 1_000_000


_WARNED_REBASE: set[str] = set()  # files whose re-basing was already reported


def _frame_range(arr: np.ndarray, num_frames: int | None, source: Path) -> tuple[int, int]:
    if len(arr) == 0:
        return 0, int(num_frames or 0)
    offset = int(arr[:, 0].min())
    if num_frames is not None and len(arr) > 1:
        past = int((arr[:, 0] - offset >= num_frames).sum())
        if 2 * past > len(arr) and str(source) not in _WARNED_REBASE:  # most rows past the clip's end
            _WARNED_REBASE.add(str(source))  # once per file: the dataset reads it for every sample
            row = int(np.argmin(arr[:, 0]))
            above = arr[arr[:, 0] > offset, 0]
            second = float(above.min()) if len(above) else offset
            log.warning("%s: %d of %d rows lie past the clip's %d frames once re-based on the lowest frame "
                        "number, %d (row %d; the next lowest is %.0f): that number may be corrupt; those rows "
                        "are left out", source, past, len(arr), num_frames, offset, row, second)
    if num_frames is None:
        num_frames = int(arr[:, 0].max()) - offset + 1
        if num_frames > MAX_FILE_SPAN:
            row = int(np.argmax(arr[:, 0]))
            raise BoLDFormatError(
                source, None,
                f"row {row}: frame {arr[row, 0]:.0f} lies {num_frames - 1} frames after the file's first "
                f"frame {offset} (more than {MAX_FILE_SPAN}); a frame number is corrupt, or pass the "
                "clip's num_frames",
            )
    return offset, int(num_frames)


def load_person_joints(path: str | Path, person_id: int, num_frames: int | None = None) -> PersonJoints:
    """One person's keypoints ``[T, 18, 3]`` from a BoLD joints file.

    ``T`` is ``num_frames`` when given (the clip's decoded frame count; rows past it are dropped),
    else the file's frame span. A person without any row comes back with ``present`` all False.
    """
    path = Path(path)
    arr = load_joints_array(path)
    offset, T = _frame_range(arr, num_frames, path)
    rows = arr[arr[:, 1] == person_id]
    return _rows_to_person(rows, person_id, offset, T, path)


def load_clip_joints(path: str | Path, num_frames: int | None = None) -> dict[int, PersonJoints]:
    """Every person of a joints file (``person_id -> PersonJoints``), all on the same frame axis."""
    path = Path(path)
    arr = load_joints_array(path)
    offset, T = _frame_range(arr, num_frames, path)
    people: dict[int, PersonJoints] = {}
    for pid in np.unique(arr[:, 1]).astype(np.int64):
        people[int(pid)] = _rows_to_person(arr[arr[:, 1] == pid], int(pid), offset, T, path)
    return people


def person_ids(path: str | Path) -> set[int]:
    """The person ids that have at least one row in a joints file."""
    arr = load_joints_array(path)
    return {int(p) for p in np.unique(arr[:, 1])}
