"""What one video gives: :class:`VideoResult` (the table, the tracks, where time went), the table of
scored windows and its rows, the per-frame rows, the keypoints file, and the files ``beenet
predict`` (and :meth:`~beenet.inference.predictor.Predictor.predict_many`) write for a video.

:func:`frames_table` has a row for every frame in which a person was detected, or interpolated
inside a short gap by the tracker, never before a person's first or after their last detection.
Each row carries the scores of the window that covers the frame; where windows overlap, the window
whose centre is nearest the frame (the same choice the annotated video makes, so labels change
halfway through an overlap). A frame no window covers (the person was there too briefly to be
scored) has NaN scores.

:func:`save_keypoints` writes rows ``[frame, person_id, x0, y0, c0, ..., x17, y17, c17]``, which
``beenet predict VIDEO --keypoints FILE`` (or ``FILE.npy`` beside ``FILE.mp4``) reads back, so a
video can be scored again with another checkpoint without running pose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from beenet.atomic import atomic_path
from beenet.inference.frame_columns import PER_FRAME_COLUMNS, PersonFrame
from beenet.inference.pose import Box, keypoint_box
from beenet.inference.render import render_video, window_for_frames
from beenet.inference.timeline import render_timeline, unseen_times
from beenet.inference.columns import FRAME_COLUMNS
from beenet.labels import CATEGORIES, NUM_CATEGORIES, NUM_JOINTS, VAD_NAMES, VAD_SCALE

if TYPE_CHECKING:  # pragma: no cover
    from beenet.inference.table import FrameTable, PredictionTable
    from beenet.inference.windows import PersonTrack, WindowPlan


@dataclass
class VideoResult:
    """Everything one video produced: the table, the tracks (for drawing) and where time went."""

    video: Path
    table: PredictionTable
    tracks: dict[int, PersonTrack]
    boxes: dict[int, dict[int, Box]]
    num_frames: int
    fps: float
    width: int
    height: int
    timings: dict[str, float] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    #: ``person_id -> frame -> confidence`` (the detection's score; interpolated inside gaps).
    confidences: dict[int, dict[int, float]] = field(default_factory=dict)
    #: ``person_id -> frames`` whose joints and box were interpolated, not detected.
    interpolated: dict[int, set[int]] = field(default_factory=dict)
    #: Why the table is empty (nobody found, or nobody stayed long enough for a window); else None.
    note: str | None = None

    @property
    def frames(self) -> FrameTable:
        """One row per (frame, person) with the scores of the window covering the frame
        (:func:`frames_table`)."""
        return frames_table(self)


# -- the table of scored windows ----------------------------------------------------------------
def clip_scores(categories: np.ndarray, vad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Category scores into [0, 1], VAD into [0, 10] (the BoLD scale).

    The paper's ``scale`` fusion (prior x score / lambda) can leave [0, 1]; in a table a person
    reads, a score of 1 means "as strong as it gets". The model's ranking below 1 is unchanged.
    """
    return np.clip(categories, 0.0, 1.0), np.clip(vad, 0.0, VAD_SCALE)


def window_table(plans: Sequence[WindowPlan], scores: np.ndarray, streams: dict[str, np.ndarray],
                 video: str, fps: float, metadata: dict[str, Any]) -> PredictionTable:
    """One row per scored window (``plans``, with their mean outputs ``scores`` and per-stream
    ``streams``); with no window, the empty table carrying ``metadata``."""
    from beenet.inference.table import empty_table, make_table  # lazy: pandas, not before pass 1's first frame

    if not plans:
        return empty_table(video=video, fps=fps, **metadata)
    start = np.array([p.start_frame for p in plans], dtype=np.int64)
    end = np.array([p.end_frame for p in plans], dtype=np.int64)
    boxes = np.array([p.box for p in plans], dtype=np.float64)
    rows: dict[str, Any] = {
        "video": [video] * len(plans),
        "person_id": [p.person_id for p in plans],
        "start_frame": start, "end_frame": end,
        "start_s": start / fps, "end_s": (end + 1) / fps,
        "box_x": boxes[:, 0], "box_y": boxes[:, 1], "box_w": boxes[:, 2], "box_h": boxes[:, 3],
    }
    cats, vad = clip_scores(scores[:, :NUM_CATEGORIES], scores[:, NUM_CATEGORIES:])
    for j, c in enumerate(CATEGORIES):
        rows[c] = cats[:, j]
    for j, v in enumerate(VAD_NAMES):
        rows[v] = vad[:, j]
    per_stream = {}
    for sname, arr in streams.items():
        sc, sv = clip_scores(arr[:, :NUM_CATEGORIES], arr[:, NUM_CATEGORIES:] * VAD_SCALE)
        per_stream[sname] = np.concatenate([sc, sv], axis=1)
    return make_table(rows, per_stream)


# -- per-frame rows and keypoints ---------------------------------------------------------------
def _frame_rows(result: VideoResult, chosen: dict[int, np.ndarray]) -> tuple[dict[str, list[Any]], list[int]]:
    """The columns of the per-frame rows (``frame`` and :data:`PER_FRAME_COLUMNS`), person by
    person, and each row's window (-1: none)."""
    cols: dict[str, list[Any]] = {c: [] for c in ("frame", *PER_FRAME_COLUMNS)}
    picked: list[int] = []
    for pid in sorted(set(result.boxes) | set(result.interpolated)):
        boxes = result.boxes.get(pid, {})
        track = result.tracks.get(pid)
        interp = result.interpolated.get(pid, set())
        conf = result.confidences.get(pid, {})
        frames = set(boxes)
        if track is not None:  # interpolated frames count only inside the stored track
            frames |= {f for f in interp if 0 <= f < len(track.present) and track.present[f]}
        rows = chosen.get(pid)
        for f in sorted(frames):
            kp = track.keypoints[f] if track is not None and f < len(track.keypoints) else None
            box = boxes.get(f)
            if box is None:
                box = keypoint_box(kp) if kp is not None else None
                if box is None:
                    continue
            person = PersonFrame(int(f), int(pid), box, kp, conf.get(f), f in interp)
            cols["frame"].append(int(f))
            for name, value in PER_FRAME_COLUMNS.items():
                cols[name].append(value(person))
            picked.append(int(rows[f]) if rows is not None and f < len(rows) else -1)
    return cols, picked


def frames_table(result: VideoResult) -> FrameTable:
    """The per-frame table of ``result`` (columns :data:`~beenet.inference.table.FRAME_COLUMNS`).

    ``confidence`` is the detection confidence the tracker recorded for the frame
    (``result.confidences``); where none was recorded, the mean confidence of the frame's valid
    joints, so the column is never empty. ``box_*`` are the stored per-frame boxes
    (``result.boxes``), or the box of the frame's joints for an interpolated frame without one.
    """
    from beenet.inference.table import FrameTable, empty_frames_table  # lazy: pandas, as in window_table

    table = result.table
    meta = dict(table.metadata)
    name = meta.get("video") or Path(result.video).name
    fps = float(result.fps) if result.fps else 25.0
    chosen = window_for_frames(table, result.num_frames)
    scores = table.loc[:, list(CATEGORIES) + list(VAD_NAMES)].to_numpy(dtype=np.float64) if len(table) else None
    cols, picked = _frame_rows(result, chosen)
    if not cols["frame"]:
        return empty_frames_table(**meta)
    n = len(cols["frame"])
    frame = np.asarray(cols["frame"], dtype=np.int64)
    data: dict[str, Any] = {"video": [str(name)] * n, "frame": frame, "time_s": frame / fps}
    data.update({k: np.asarray(v) for k, v in cols.items() if k != "frame"})
    idx = np.asarray(picked, dtype=np.int64)
    vals = np.full((n, len(CATEGORIES) + len(VAD_NAMES)), np.nan)
    if scores is not None:
        ok = idx >= 0
        vals[ok] = scores[idx[ok]]
    for j, c in enumerate(list(CATEGORIES) + list(VAD_NAMES)):
        data[c] = vals[:, j]
    out = FrameTable({c: data[c] for c in FRAME_COLUMNS})
    out = out.sort_values(["frame", "person_id"], kind="stable").reset_index(drop=True)
    out["person_id"] = out["person_id"].astype(np.int64)
    out["interpolated"] = out["interpolated"].astype(bool)
    return FrameTable(out).set_metadata(**meta)


def keypoints_array(result: VideoResult) -> np.ndarray:
    """Every tracked person's joints as BoLD joints rows ``[frame, person_id, x0, y0, c0, ...]``
    (float64 ``[N, 56]``), for the frames each person was detected in, missing joints as 0, 0, 0
    (as BoLD writes them). Frames the tracker interpolated are left out: read back (``--keypoints``)
    the same gaps are interpolated again, so the tables come out the same.

    BoLD files count frames from the file's first row, so when frame 0 has no person a row at
    frame 0 with every joint missing is added: it pins the frame axis and is read back as no
    detection."""
    rows = []
    for pid in sorted(result.tracks):
        tr = result.tracks[pid]
        filled = result.interpolated.get(pid, set())
        for f in np.flatnonzero(tr.present):
            if int(f) in filled:
                continue
            kp = np.asarray(tr.keypoints[f], dtype=np.float64).copy()
            kp[~np.isfinite(kp).all(-1)] = 0.0
            rows.append(np.concatenate([[float(f), float(pid)], kp.ravel()]))
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 2 + 3 * NUM_JOINTS)
    if len(arr) and arr[:, 0].min() > 0:
        pin = np.zeros((1, arr.shape[1]))
        pin[0, 1] = arr[0, 1]
        arr = np.concatenate([pin, arr])
    return arr


def save_keypoints(result: VideoResult, path: str | Path) -> Path:
    """Write :func:`keypoints_array` of ``result`` to ``path`` (``.npy``, atomically)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, keypoints_array(result))
    return path


# -- the files of a video -----------------------------------------------------------------------
def output_endings(formats: Sequence[str], video: bool, per_frame: bool = False,
                   keypoints: bool = False) -> list[str]:
    """What ``beenet predict`` appends to a video's stem to name each file it writes."""
    ends = [f".{f}" for f in formats]
    if "csv" in formats:
        ends.append(".meta.json")  # the CSV's metadata sidecar (table.meta_sidecar)
    if per_frame:
        ends += [f"_frames.{f}" for f in formats]
        if "csv" in formats:
            ends.append("_frames.meta.json")
    ends.append("_timeline.png")
    if video:
        ends.append("_annotated.mp4")
    if keypoints:
        ends.append("_keypoints.npy")
    return ends


def write_outputs(result: VideoResult, folder: Path, stem: str, formats: Sequence[str], *,
                  per_frame: bool = False, keypoints: bool = False, video: bool = False,
                  title: str | None = None) -> None:
    """Write the files :func:`output_endings` names for ``result`` as ``folder/<stem><ending>``:
    the table in each of ``formats``, the per-frame table, the keypoints, the timeline and the
    annotated video."""
    for fmt in formats:
        result.table.write(folder / f"{stem}.{fmt}", fmt)
    if per_frame:
        rows = frames_table(result)
        for fmt in formats:
            rows.write(folder / f"{stem}_frames.{fmt}", fmt)
    if keypoints:
        save_keypoints(result, folder / f"{stem}_keypoints.npy")
    end = result.num_frames / result.fps
    unseen = {pid: unseen_times(np.flatnonzero(tr.present), result.fps, end) for pid, tr in result.tracks.items()}
    render_timeline(result.table, folder / f"{stem}_timeline.png", duration_s=end, title=title, unseen=unseen)
    if video:
        render_video(result, folder / f"{stem}_annotated.mp4")
