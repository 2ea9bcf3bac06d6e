"""Pass 1 of ``beenet predict`` (people found and tracked) on one video, cached.

:func:`tracked_people` runs :func:`beenet.inference.people.track_people`, the Predictor's pass 1,
with the same pose backend and :class:`~beenet.inference.tracking_config.TrackingConfig`, so the
person ids are the ones ``beenet predict`` and ``beenet view`` show for the same settings. The
result is stored in ``$BEENET_CACHE/tracks/<key>.npz``, the key a sha256 over the video file's
bytes, the pose backend's name and options, the tracker's settings and beenet's version: a second
import of the same video with the same settings does not pose it again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from beenet.atomic import atomic_path, to_builtins
from beenet.inference.people import track_people
from beenet.inference.pose import PoseBackend
from beenet.inference.timing import StageTimer
from beenet.inference.tracking_config import TrackingConfig
from beenet.labels import NUM_JOINTS
from beenet.media.video import VideoReader
from beenet.paths import cache_dir
from beenet.version import __version__


@dataclass
class Tracked:
    """The tracked people of a video: ``rows`` float64 ``[M, 3 + 54]`` = ``[frame, person_id,
    interpolated, x0, y0, c0, ..., x17, y17, c17]`` (missing joints 0, 0, 0), one per frame a
    person is tracked in (detected, or filled in by the tracker inside a gap)."""

    num_frames: int
    fps: float
    width: int
    height: int
    rows: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def person_ids(self) -> list[int]:
        return sorted(int(p) for p in np.unique(self.rows[:, 1])) if len(self.rows) else []

    def frames_of(self, person_id: int) -> np.ndarray:
        """The frames ``person_id`` is tracked in (sorted)."""
        return np.sort(self.rows[self.rows[:, 1] == person_id, 0].astype(np.int64))

    def longest(self) -> int | None:
        """The person tracked in the most frames (the lowest id among equals), None when nobody."""
        ids = self.person_ids
        return max(ids, key=lambda p: (len(self.frames_of(p)), -p)) if ids else None

    def joints(self, start: int, end: int) -> np.ndarray:
        """BoLD joints rows ``[frame, person_id, x0, y0, c0, ...]`` (float64 ``[N, 56]``) of every
        person tracked in frames ``start..end``, the frame numbers absolute (the source video's).
        When nobody is in frame ``start``, a row with every joint missing pins the frame axis
        there (BoLD's loaders re-base on the file's smallest frame number)."""
        sel = (self.rows[:, 0] >= start) & (self.rows[:, 0] <= end)
        out = np.delete(self.rows[sel], 2, axis=1)
        out = out[np.lexsort((out[:, 0], out[:, 1]))]
        if not len(out) or out[:, 0].min() > start:
            pin = np.zeros((1, 2 + 3 * NUM_JOINTS))
            pin[0, 0] = start
            pin[0, 1] = out[0, 1] if len(out) else 0
            out = np.concatenate([pin, out])
        return out


def _rows(store: Any) -> np.ndarray:
    interpolated = store.interpolated()
    rows = []
    for pid, track in store.tracks().items():
        filled = interpolated.get(pid, set())
        for f in np.flatnonzero(track.present):
            kp = np.asarray(track.keypoints[f], dtype=np.float64).copy()
            kp[~np.isfinite(kp).all(-1)] = 0.0
            rows.append(np.concatenate([[float(f), float(pid), float(int(f) in filled)], kp.ravel()]))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 3 + 3 * NUM_JOINTS)


def _key(video: Path, settings: dict[str, Any]) -> str:
    h = hashlib.sha256()
    with open(video, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()


def pass_one_settings(backend: PoseBackend, tracking: TrackingConfig) -> dict[str, Any]:
    """What the person ids depend on: the pose backend and its options, the tracker, beenet's version."""
    return {"pose": {"name": backend.name, "options": to_builtins(backend.settings)},
            "tracker": tracking.settings(), "beenet_version": __version__}


def tracked_people(video: str | Path, backend: PoseBackend, tracking: TrackingConfig,
                   show_progress: bool | None = None, cache: bool = True) -> Tracked:
    """The tracked people of ``video`` (from the cache when this video was tracked with these
    settings before). Raises :class:`~beenet.errors.VideoDecodeError` for a video that cannot be read."""
    video = Path(video)
    settings = pass_one_settings(backend, tracking)
    path = cache_dir("tracks") / f"{_key(video, settings)}.npz"
    if cache and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return Tracked(int(meta["num_frames"]), float(meta["fps"]), int(meta["width"]), int(meta["height"]),
                           z["rows"], settings)
    with VideoReader(video) as reader:
        store = track_people(reader, backend, tracking, StageTimer(), {}, show_progress)
        result = Tracked(store.num_frames, float(reader.fps or 25.0), reader.width, reader.height,
                         _rows(store), settings)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"num_frames": result.num_frames, "fps": result.fps, "width": result.width,
                "height": result.height, "video": str(video), **settings}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, rows=result.rows, meta=np.asarray(json.dumps(meta)))
    return result
