"""The context vector and the sources that produce it.

A clip's context is one float32 vector of :data:`CONTEXT_DIM` = 445 values: the 365 Places365
scene probabilities (a distribution, sums to 1) followed by the 80 COCO object scores (per class
summed detection confidence, normalised to sum 1; all zeros when nothing was detected). A source
that knows only one half (a scene CNN alone, a detector alone) leaves the other half at zero.

:class:`FrameExpertSource` holds what every frozen expert shares: decode a few evenly spaced
frames of a clip, score each frame, average, normalise.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from beenet.errors import VideoDecodeError
from beenet.labels import CONTEXT_DIM, CONTEXT_SLICES, NUM_COCO, NUM_PLACES

#: Bump when the way experts turn frames into vectors changes, so old caches are not reused.
CONTEXT_FORMAT_VERSION = 1

Part = Literal["places", "objects"]


def split_context(vec: Any) -> tuple[Any, Any]:
    """``[..., 445]`` -> (places ``[..., 365]``, objects ``[..., 80]``); numpy or torch, views."""
    if vec.shape[-1] != CONTEXT_DIM:
        raise ValueError(f"expected a context vector of length {CONTEXT_DIM}, got shape {tuple(vec.shape)}")
    return vec[..., CONTEXT_SLICES["places"]], vec[..., CONTEXT_SLICES["objects"]]


def join_context(places: np.ndarray | None, objects: np.ndarray | None) -> np.ndarray:
    """(places ``[..., 365]``, objects ``[..., 80]``) -> float32 ``[..., 445]``; ``None`` = zeros."""
    if places is None and objects is None:
        return np.zeros(CONTEXT_DIM, dtype=np.float32)
    ref = places if places is not None else objects
    lead = np.asarray(ref).shape[:-1]
    p = np.zeros(lead + (NUM_PLACES,), np.float32) if places is None else np.asarray(places, np.float32)
    o = np.zeros(lead + (NUM_COCO,), np.float32) if objects is None else np.asarray(objects, np.float32)
    if p.shape[-1] != NUM_PLACES or o.shape[-1] != NUM_COCO:
        raise ValueError(f"expected places [..., {NUM_PLACES}] and objects [..., {NUM_COCO}], "
                         f"got {p.shape} and {o.shape}")
    return np.concatenate([p, o], axis=-1).astype(np.float32, copy=False)


def normalise_scores(x: np.ndarray) -> np.ndarray:
    """Scale non-negative scores ``[..., D]`` to sum 1 along the last axis; all-zero rows stay zero."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, None)
    total = x.sum(axis=-1, keepdims=True)
    out = np.divide(x, total, out=np.zeros_like(x), where=total > 0)
    return out.astype(np.float32)


def normalise_parts(vec: np.ndarray) -> np.ndarray:
    """Each half of context vectors ``[..., 445]`` scaled to sum 1 (all-zero halves stay zero)."""
    places, objects = split_context(np.asarray(vec, dtype=np.float32))
    return join_context(normalise_scores(places), normalise_scores(objects))


def describe_fingerprint(name: str, description: dict[str, Any]) -> str:
    """``"<name>-<hash>"``: a short, stable id of a source's weights and settings."""
    payload = json.dumps({"format": CONTEXT_FORMAT_VERSION, **description}, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(payload.encode()).hexdigest()[:16]}"


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 (first 16 hex digits) of a file's bytes: the identity of user-supplied weights."""
    from beenet.weights import file_sha256  # lazy: beenet.weights imports torch

    return file_sha256(path, chunk)[:16]


@runtime_checkable
class ContextSource(Protocol):
    """Anything that turns a clip into its 445-d context vector.

    A clip is named by its key (the BoLD-relative video name, e.g. ``003/x.mp4/0001.mp4``: what
    the cache and the sidecar are keyed by) and found at ``path`` (its mp4). ``fingerprint`` must
    change whenever the vectors would (other weights, other settings): the on-disk cache is keyed
    by it.
    """

    name: str

    @property
    def fingerprint(self) -> str: ...

    def label_clip(self, video: str, path: str | Path) -> np.ndarray: ...


def evenly_spaced(num_frames: int, k: int) -> list[int]:
    """``k`` frame indices at the centres of ``k`` equal parts of the clip (the middle for k=1)."""
    if num_frames <= 0:
        return []
    k = max(1, min(k, num_frames))
    idx = ((np.arange(k) + 0.5) * num_frames / k).astype(np.int64)
    return sorted(set(int(i) for i in np.clip(idx, 0, num_frames - 1)))


class FrameExpertSource(ABC):
    """A frozen expert that labels frames; a clip's label is the normalised mean over its frames.

    Subclasses set :attr:`name` and :attr:`part` and implement :meth:`score_frames` and
    :meth:`describe`. The rest (decoding, averaging, placing the part in the 445 vector) is here.
    """

    name: str = "expert"
    part: Part = "places"

    def __init__(self, frames_per_clip: int = 3) -> None:
        if frames_per_clip < 1:
            raise ValueError(f"frames_per_clip must be >= 1, got {frames_per_clip}")
        self.frames_per_clip = int(frames_per_clip)

    @property
    def part_dim(self) -> int:
        return NUM_PLACES if self.part == "places" else NUM_COCO

    @abstractmethod
    def score_frames(self, frames: np.ndarray) -> np.ndarray:
        """uint8 RGB frames ``[K, H, W, 3]`` -> non-negative float ``[K, part_dim]`` per-frame scores."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Weights identity and every setting that changes the output (feeds :attr:`fingerprint`)."""

    @property
    def fingerprint(self) -> str:
        return describe_fingerprint(self.name, {"part": self.part, **self.describe()})

    def label_part(self, frames: np.ndarray) -> np.ndarray:
        """Frames -> this expert's half of the context (``[part_dim]``, sums to 1 or all zero)."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
            raise ValueError(f"expected uint8 frames [K, H, W, 3] with K >= 1, got {frames.shape}")
        scores = np.asarray(self.score_frames(frames), dtype=np.float64)
        if scores.shape != (frames.shape[0], self.part_dim):
            raise ValueError(f"{self.name}: expected scores of shape {(frames.shape[0], self.part_dim)}, "
                             f"got {scores.shape}")
        return normalise_scores(scores.mean(axis=0))

    def label_rows(self, frames: np.ndarray, batch: int = 16) -> np.ndarray:
        """Frames ``[K, H, W, 3]`` -> float32 ``[K, part_dim]``: each frame's own label (its scores
        normalised to sum 1, or all zero), scored ``batch`` frames at a time. Row k equals
        :meth:`label_part` of frame k alone (per-frame distillation targets, ``context.targets=frame``)."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
            raise ValueError(f"expected uint8 frames [K, H, W, 3] with K >= 1, got {frames.shape}")
        rows = []
        for i in range(0, frames.shape[0], max(1, int(batch))):
            chunk = frames[i : i + batch]
            scores = np.asarray(self.score_frames(chunk), dtype=np.float64)
            if scores.shape != (chunk.shape[0], self.part_dim):
                raise ValueError(f"{self.name}: expected scores of shape {(chunk.shape[0], self.part_dim)}, "
                                 f"got {scores.shape}")
            rows.append(normalise_scores(scores))
        return np.concatenate(rows).astype(np.float32, copy=False)

    def label_frames(self, frames: np.ndarray) -> np.ndarray:
        """Frames -> float32 ``[445]`` with this expert's half filled and the other half zero."""
        part = self.label_part(frames)
        return join_context(part, None) if self.part == "places" else join_context(None, part)

    def read_frames(self, path: str | Path) -> np.ndarray:
        """Decode ``frames_per_clip`` evenly spaced frames of the video at ``path``."""
        from beenet.media.video import VideoReader  # lazy: imports av (PyAV), needed only to decode

        with VideoReader(path) as reader:
            indices = evenly_spaced(int(reader.num_frames), self.frames_per_clip)
            if not indices:
                raise VideoDecodeError(f"{path}: the video has no frames; re-extract or remove this clip")
            return reader.read(indices)

    def label_video(self, path: str | Path) -> np.ndarray:
        """The 445-d context of the video file at ``path``."""
        return self.label_frames(self.read_frames(path))

    def label_clip(self, video: str, path: str | Path) -> np.ndarray:
        """The 445-d context of clip ``video``, read from ``path`` (the key is not needed)."""
        return self.label_video(path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


class CombinedContext:
    """Places from one expert and objects from another, joined into one 445 vector.

    When both are frame experts reading the same number of frames, each clip is decoded once.
    """

    name = "experts"

    def __init__(self, places: FrameExpertSource, objects: FrameExpertSource) -> None:
        if places.part != "places" or objects.part != "objects":
            raise ValueError(f"CombinedContext needs a places expert and an objects expert, got "
                             f"{places.name} ({places.part}) and {objects.name} ({objects.part})")
        self.places = places
        self.objects = objects

    @property
    def frames_per_clip(self) -> int:
        """Frames a clip (or a predict window) is labelled from: the larger of the two experts'."""
        return max(self.places.frames_per_clip, self.objects.frames_per_clip)

    @property
    def parts(self) -> tuple[FrameExpertSource, FrameExpertSource]:
        return (self.places, self.objects)

    @property
    def fingerprint(self) -> str:
        return describe_fingerprint(self.name, {"places": self.places.fingerprint,
                                                "objects": self.objects.fingerprint})

    def label_frames(self, frames: np.ndarray) -> np.ndarray:
        return join_context(self.places.label_part(frames), self.objects.label_part(frames))

    def label_video(self, path: str | Path) -> np.ndarray:
        if self.places.frames_per_clip == self.objects.frames_per_clip:
            return self.label_frames(self.places.read_frames(path))
        return join_context(self.places.label_part(self.places.read_frames(path)),
                            self.objects.label_part(self.objects.read_frames(path)))

    def label_clip(self, video: str, path: str | Path) -> np.ndarray:
        return self.label_video(path)

    def __repr__(self) -> str:
        return f"CombinedContext(places={self.places!r}, objects={self.objects!r})"
