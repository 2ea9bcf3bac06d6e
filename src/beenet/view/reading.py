"""What the viewer reads, checked: every path resolves (links followed) inside the results folder
or a video folder the user named, and every file is what ``beenet predict`` writes.

A results folder may come from someone else, so nothing in it is trusted: a summary's ``outputs``
that lead out of the folder (``../x.csv``, ``/abs/x.csv``, a link to elsewhere), a ``video`` that
is no video the user named, a binary CSV, a bad ``meta.json``, a pickled ``.npy``: each raises
:class:`ViewInputError`, one line naming the file, and costs only that video its page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from beenet.errors import BeenetError
from beenet.inference.table import meta_sidecar, read_table_file
from beenet.labels import CATEGORIES, NUM_JOINTS, VAD_NAMES

#: The longest video a page is made for (frames): 10**7 is 4.6 days at 25 fps. A table with a
#: larger frame number is refused, not allocated.
MAX_FRAMES = 10_000_000
BOX = ("box_x", "box_y", "box_w", "box_h")
WINDOW_COLUMNS = ("person_id", "start_frame", "end_frame", *CATEGORIES, *VAD_NAMES)
FRAME_NEEDED = ("frame", "person_id", *BOX)


class ViewInputError(BeenetError, ValueError):
    """A file of a results folder the viewer refuses: outside the folder, or not readable as what
    ``beenet predict`` writes. The message names the file."""


def within(root: Path, p: Path) -> bool:
    """Whether ``p`` resolves (links followed) to ``root`` or below it (``root`` resolved too)."""
    try:
        Path(p).resolve().relative_to(Path(root).resolve())
        return True
    except (ValueError, OSError, RuntimeError):  # elsewhere; a link loop
        return False


@dataclass(frozen=True)
class Roots:
    """Where the viewer may read: the results folder ``out`` and the videos (folders or files)
    the user named (``beenet view --videos``; ``predict --html``: its inputs)."""

    out: Path
    videos: tuple[Path, ...] = ()

    @classmethod
    def of(cls, out: Path, videos: Sequence[str | Path] = ()) -> Roots:
        return cls(Path(out), tuple(Path(v) for v in videos))

    def inside(self, p: Path) -> bool:
        return within(self.out, p)

    def video_allowed(self, p: Path) -> bool:
        return self.inside(p) or any(within(v, p) for v in self.videos)

    def checked(self, p: Path, what: str) -> Path:
        """``p`` if it resolves inside the results folder, else :class:`ViewInputError`."""
        if not self.inside(p):
            raise ViewInputError(f"{p}: {what} resolves outside {self.out} (to {_resolved(p)}); refused")
        return p


def _resolved(p: Path) -> str:
    try:
        return str(Path(p).resolve())
    except (OSError, RuntimeError):
        return "a link loop"


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def read_summary(path: Path) -> dict[str, Any]:
    """A ``predict_summary.json``: a JSON object whose ``videos`` and ``failures`` are lists."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ViewInputError(f"{path}: not a readable predict summary ({_why(exc)})") from exc
    if not isinstance(doc, dict):
        raise ViewInputError(f"{path}: not a predict summary (a JSON {type(doc).__name__}, not an object)")
    for key in ("videos", "failures"):
        if not isinstance(doc.get(key, []), list):
            raise ViewInputError(f"{path}: not a predict summary ('{key}' is not a list)")
    return doc


def summary_entry(summary: Path, i: int, v: Any) -> tuple[list[str], str | None]:
    """The ``outputs`` and ``video`` of entry ``i`` of a summary's ``videos``, checked for type."""
    where = f"{summary}: videos[{i}]"
    if not isinstance(v, dict):
        raise ViewInputError(f"{where} is not an object")
    outputs, video = v.get("outputs", []), v.get("video")
    if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
        raise ViewInputError(f"{where}: 'outputs' is not a list of file names")
    if video is not None and not isinstance(video, str):
        raise ViewInputError(f"{where}: 'video' is not a path")
    return outputs, video


def _numeric(df: pd.DataFrame, cols: Sequence[str], path: Path) -> None:
    for c in cols:
        if c not in df:
            continue
        try:
            df[c] = pd.to_numeric(df[c], errors="raise").astype(np.float64)
        except (ValueError, TypeError) as exc:
            raise ViewInputError(f"{path}: column '{c}' holds a value that is not a number ({_why(exc)})") from exc


def _frame_numbers(df: pd.DataFrame, cols: Sequence[str], path: Path) -> None:
    for c in cols:
        v = df[c].to_numpy(np.float64)
        bad = ~np.isfinite(v) | (v != np.round(v)) | (v < 0) | (v >= MAX_FRAMES)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise ViewInputError(f"{path}: row {r + 1}, column '{c}': {v[r]!r} is not a whole number in 0..{MAX_FRAMES - 1}")
        df[c] = v.astype(np.int64)


def read_meta(table: Path) -> dict[str, Any]:
    """The sidecar ``<stem>.meta.json`` of a CSV table: a JSON object (empty when there is none)."""
    side = meta_sidecar(table)
    if not side.is_file():
        return {}
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ViewInputError(f"{side}: not a readable table metadata file ({_why(exc)})") from exc
    if not isinstance(meta, dict):
        raise ViewInputError(f"{side}: not a table metadata file (a JSON {type(meta).__name__}, not an object)")
    return meta


def _check_meta(meta: Any, where: Path) -> dict[str, Any]:
    if not isinstance(meta, dict):
        raise ViewInputError(f"{where}: its metadata is not an object")
    fps = meta.get("fps")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps < 0):
        raise ViewInputError(f"{where}: metadata 'fps' is {fps!r}, not a frame rate")
    if meta.get("video") is not None and not isinstance(meta["video"], str):
        raise ViewInputError(f"{where}: metadata 'video' is {meta['video']!r}, not a file name")
    try:
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:  # NaN, inf (JSON has none): the page embeds the metadata
        raise ViewInputError(f"{where}: its metadata holds a value JSON cannot hold ({_why(exc)})") from exc
    return meta


def read_window_table(roots: Roots, path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A window table (csv + sidecar, json or parquet) inside the folder, its numbers checked."""
    roots.checked(path, "the window table")
    sidecar: dict[str, Any] | None = None
    if path.suffix.lower() == ".csv":
        if meta_sidecar(path).exists():
            roots.checked(meta_sidecar(path), "the table's metadata")
        sidecar = read_meta(path)  # first, so that a bad one is named
    try:
        df, meta = read_table_file(path, "predict table", WINDOW_COLUMNS)
    except (BeenetError, OSError, ValueError, ImportError) as exc:
        raise ViewInputError(f"{path}: not a readable predict table ({_why(exc)})") from exc
    meta = _check_meta(sidecar if sidecar is not None else meta, path)
    df = df.reset_index(drop=True)
    _numeric(df, (*WINDOW_COLUMNS, *BOX), path)
    _frame_numbers(df, ("person_id", "start_frame", "end_frame"), path)
    scores = df.loc[:, [*CATEGORIES, *VAD_NAMES]].to_numpy(np.float64)
    if not np.isfinite(scores).all():
        r, c = (int(i[0]) for i in np.nonzero(~np.isfinite(scores)))
        raise ViewInputError(f"{path}: row {r + 1}, column '{[*CATEGORIES, *VAD_NAMES][c]}': {scores[r, c]!r} is not a score")
    back = np.flatnonzero(df["end_frame"].to_numpy() < df["start_frame"].to_numpy())
    if len(back):
        raise ViewInputError(f"{path}: row {int(back[0]) + 1} ends (end_frame) before it starts (start_frame)")
    return df, meta


def read_frames(roots: Roots, path: Path) -> pd.DataFrame | None:
    """The per-frame table ``<stem>_frames.csv`` (None when there is none), its numbers checked."""
    if not path.exists():
        return None
    roots.checked(path, "the per-frame table")
    try:
        df = pd.read_csv(path, dtype={"video": str})
    except (OSError, ValueError) as exc:  # binary bytes: UnicodeDecodeError; bad rows: ParserError
        raise ViewInputError(f"{path}: not a readable per-frame table ({_why(exc)})") from exc
    missing = [c for c in FRAME_NEEDED if c not in df.columns]
    if missing:
        raise ViewInputError(f"{path}: not a per-frame table of 'beenet predict --per-frame': no column {', '.join(repr(c) for c in missing)}")
    _numeric(df, (*FRAME_NEEDED, "confidence", *CATEGORIES, *VAD_NAMES), path)
    _frame_numbers(df, ("frame", "person_id"), path)
    return df


def read_keypoints(roots: Roots, path: Path) -> np.ndarray | None:
    """``<stem>_keypoints.npy`` (None when there is none): a float array ``[N, 2 + 3 * 18]`` of
    BoLD joints rows; pickles (object arrays) are refused unread."""
    if not path.exists():
        return None
    roots.checked(path, "the keypoints file")
    try:
        kp = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ViewInputError(f"{path}: not a readable keypoints file ({_why(exc)}; pickled arrays are refused)") from exc
    if not isinstance(kp, np.ndarray) or kp.dtype.kind not in "iuf":
        raise ViewInputError(f"{path}: keypoints of dtype {getattr(kp, 'dtype', type(kp).__name__)}; want numbers")
    width = 2 + 3 * NUM_JOINTS
    if kp.ndim != 2 or kp.shape[1] != width:
        raise ViewInputError(f"{path}: keypoints of shape {tuple(kp.shape)}; want [N, {width}] "
                             f"(BoLD joints rows: frame, person_id, then x, y, c of {NUM_JOINTS} joints)")
    kp = kp.astype(np.float64)
    ids = kp[:, :2]
    bad = ~np.isfinite(ids).all(1) | (ids < 0).any(1) | (kp[:, 0] >= MAX_FRAMES)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise ViewInputError(f"{path}: row {r}: frame {kp[r, 0]!r}, person {kp[r, 1]!r} are not frame and person numbers")
    return kp
