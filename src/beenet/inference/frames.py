"""Per-frame outputs of one video: the frames table (one row per person and frame, as OpenFace and
py-feat write) and the keypoints in BoLD's joints ``.npy`` format.

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

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from beenet.inference.pose import keypoint_box, valid_mask
from beenet.inference.table import FRAME_COLUMNS, FrameTable, empty_frames_table
from beenet.labels import CATEGORIES, NUM_JOINTS, VAD_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from beenet.inference.predictor import VideoResult


def frames_table(result: "VideoResult") -> FrameTable:
    """The per-frame table of ``result`` (columns :data:`~beenet.inference.table.FRAME_COLUMNS`).

    ``confidence`` is the detection confidence the tracker recorded for the frame
    (``result.confidences``); where none was recorded, the mean confidence of the frame's valid
    joints, so the column is never empty. ``box_*`` are the stored per-frame boxes
    (``result.boxes``), or the box of the frame's joints for an interpolated frame without one.
    """
    from beenet.inference.render import window_for_frames

    table = result.table
    meta = dict(table.metadata)
    name = meta.get("video") or Path(result.video).name
    fps = float(result.fps) if result.fps else 25.0
    chosen = window_for_frames(table, result.num_frames)
    scores = table.loc[:, list(CATEGORIES) + list(VAD_NAMES)].to_numpy(dtype=np.float64) if len(table) else None
    cols: dict[str, list[Any]] = {c: [] for c in ("frame", "person_id", "confidence", "box_x", "box_y",
                                                   "box_w", "box_h", "interpolated")}
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
            if f in conf:
                c = float(conf[f])
            elif kp is not None and valid_mask(kp).any():
                c = float(np.mean(kp[valid_mask(kp), 2]))
            else:
                c = 0.0
            cols["frame"].append(int(f))
            cols["person_id"].append(int(pid))
            cols["confidence"].append(c)
            for k, v in zip(("box_x", "box_y", "box_w", "box_h"), box):
                cols[k].append(float(v))
            cols["interpolated"].append(f in interp)
            picked.append(int(rows[f]) if rows is not None and f < len(rows) else -1)
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


def keypoints_array(result: "VideoResult") -> np.ndarray:
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


def save_keypoints(result: "VideoResult", path: str | Path) -> Path:
    """Write :func:`keypoints_array` of ``result`` to ``path`` (``.npy``, atomically)."""
    from beenet.atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, keypoints_array(result))
    return path
