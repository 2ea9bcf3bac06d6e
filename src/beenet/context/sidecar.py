"""The synthetic dataset's own context: exact scene and objects read from ``synthetic_context.json``.

``beenet synth`` knows what it drew, so its context needs no expert: the scene becomes a
Places365 distribution (one-hot, optionally smoothed) and the objects a normalised count per COCO
class. It is the context a perfect pair of experts would give, which makes it the right
source to test the fusion with, and useless on real BoLD (which has no sidecar).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from beenet.context.base import describe_fingerprint, file_digest, join_context
from beenet.errors import BoLDFormatError, DataNotFoundError
from beenet.labels import NUM_COCO, NUM_PLACES

SIDECAR_NAME = "synthetic_context.json"
SIDECAR_VERSION = 1


class SidecarContext:
    """Context vectors from ``<root>/synthetic_context.json`` (the format is in docs/design.md).

    ``place_smoothing`` = eps spreads eps of the scene's mass uniformly over the 365 classes
    (0 = one-hot), like a confident but imperfect scene classifier.
    """

    name = "sidecar"

    def __init__(self, root: str | Path, place_smoothing: float = 0.0) -> None:
        if not 0.0 <= place_smoothing < 1.0:
            raise ValueError(f"place_smoothing must be in [0, 1), got {place_smoothing}")
        self.root = Path(root)
        self.path = self.root / SIDECAR_NAME
        self.place_smoothing = float(place_smoothing)
        if not self.path.is_file():
            raise DataNotFoundError(
                f"{self.path}: no synthetic context sidecar. Only 'beenet synth' output has one; for the "
                "real BoLD use an expert context source (places365, coco or experts)")
        self._digest = file_digest(self.path)
        self._clips = self._read()

    def _read(self) -> dict[str, tuple[int, list[int]]]:
        """Parse and check the sidecar: {video: (places365 index, [coco index, ...])}."""
        def bad(reason: str) -> BoLDFormatError:
            return BoLDFormatError(self.path, None, f"{reason}; regenerate it with 'beenet synth'")

        try:
            data: Any = json.loads(self.path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise bad(f"not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise bad("expected a JSON object")
        if data.get("version") != SIDECAR_VERSION:
            raise bad(f"version {data.get('version')!r}, this beenet reads version {SIDECAR_VERSION}")
        for key in ("scenes", "objects", "clips"):
            if not isinstance(data.get(key), dict):
                raise bad(f"missing or malformed key {key!r}")
        scenes, objects = data["scenes"], data["objects"]
        for name, idx in scenes.items():
            if not isinstance(idx, int) or not 0 <= idx < NUM_PLACES:
                raise bad(f"scene {name!r} has Places365 index {idx!r}, expected an integer in 0..{NUM_PLACES - 1}")
        for name, idx in objects.items():
            if not isinstance(idx, int) or not 0 <= idx < NUM_COCO:
                raise bad(f"object {name!r} has COCO index {idx!r}, expected an integer in 0..{NUM_COCO - 1}")
        clips: dict[str, tuple[int, list[int]]] = {}
        for video, entry in data["clips"].items():
            if not isinstance(entry, dict) or entry.get("scene") not in scenes:
                raise bad(f"clip {video!r}: scene {entry.get('scene') if isinstance(entry, dict) else entry!r} "
                          "is not one of 'scenes'")
            names = entry.get("objects", [])
            if not isinstance(names, list) or any(n not in objects for n in names):
                raise bad(f"clip {video!r}: objects {names!r} are not all listed in 'objects'")
            clips[video] = (scenes[entry["scene"]], [objects[n] for n in names])
        return clips

    @property
    def fingerprint(self) -> str:
        return describe_fingerprint(self.name, {"file": self._digest, "place_smoothing": self.place_smoothing})

    @property
    def videos(self) -> list[str]:
        return list(self._clips)

    def vector(self, video: str) -> np.ndarray:
        """float32 ``[445]`` of clip ``video`` (a path relative to ``videos/``)."""
        if video not in self._clips:
            raise DataNotFoundError(f"{self.path}: no entry for clip {video!r}; the sidecar belongs to "
                                    "another synthetic dataset, or the clip is not synthetic")
        place, objs = self._clips[video]
        places = np.full(NUM_PLACES, self.place_smoothing / NUM_PLACES, dtype=np.float64)
        places[place] += 1.0 - self.place_smoothing
        counts = np.bincount(np.asarray(objs, dtype=np.int64), minlength=NUM_COCO).astype(np.float64)
        objects = counts / counts.sum() if counts.sum() > 0 else counts
        return join_context(places, objects)

    def label_clip(self, video: str, path: str | Path | None = None) -> np.ndarray:
        """The :class:`~beenet.context.base.ContextSource` entry point; ``path`` is not needed."""
        return self.vector(video)

    def vectors(self) -> dict[str, np.ndarray]:
        """``{video: float32[445]}`` for every clip in the sidecar."""
        return {v: self.vector(v) for v in self._clips}

    def __repr__(self) -> str:
        return f"SidecarContext({str(self.root)!r}, place_smoothing={self.place_smoothing})"
