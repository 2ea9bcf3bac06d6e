"""On-disk cache of context vectors: each clip is labelled by an expert once, ever.

One ``.npz`` per source fingerprint holds ``videos`` (str ``[N]``), ``vectors`` (float32
``[N, 445]``) and ``fingerprint`` (str). It is rewritten atomically (temp file + ``os.replace``)
every ``save_every`` new clips and at the end, so an interrupted labelling resumes where it
stopped. A file that cannot be read, or that belongs to another fingerprint, is ignored with a
warning and recomputed. Several processes (DDP ranks) may share a cache dir: each merges what is
on disk before it writes, and the worst case is recomputing a clip, never a corrupt file.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from beenet.atomic import atomic_open
from beenet.context.base import ContextSource
from beenet.labels import CONTEXT_DIM
from beenet.errors import BeenetError
from beenet.progress import progress

log = logging.getLogger(__name__)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "source"


class ContextCache:
    """Context vectors of clips, stored under ``cache_dir`` per source fingerprint."""

    def __init__(self, cache_dir: str | Path, save_every: int = 50) -> None:
        if save_every < 1:
            raise ValueError(f"save_every must be >= 1, got {save_every}")
        self.cache_dir = Path(cache_dir).expanduser()
        self.save_every = int(save_every)

    def path_for(self, source: ContextSource) -> Path:
        """The cache file of ``source``: readable name + hash of the full fingerprint."""
        digest = hashlib.sha256(source.fingerprint.encode()).hexdigest()[:16]
        return self.cache_dir / f"{_safe(source.name)}-{digest}.npz"

    def load(self, source: ContextSource) -> dict[str, np.ndarray]:
        """What is cached for ``source`` ({} when nothing, or when the file is unreadable/stale)."""
        return self._read(self.path_for(source), source.fingerprint)

    def _read(self, path: Path, fingerprint: str) -> dict[str, np.ndarray]:
        if not path.is_file():
            return {}
        try:
            with np.load(path, allow_pickle=False) as data:
                stored = str(data["fingerprint"])
                videos = [str(v) for v in data["videos"]]
                vectors = np.asarray(data["vectors"], dtype=np.float32)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("context cache %s is unreadable (%s); recomputing its clips", path, exc)
            return {}
        if stored != fingerprint:
            log.warning("context cache %s belongs to fingerprint %r, not %r; recomputing",
                        path, stored, fingerprint)
            return {}
        if vectors.shape != (len(videos), CONTEXT_DIM) or not np.isfinite(vectors).all():
            log.warning("context cache %s holds vectors of shape %s (or non-finite values) for %d clips; "
                        "recomputing", path, vectors.shape, len(videos))
            return {}
        return dict(zip(videos, vectors))

    def _write(self, path: Path, fingerprint: str, entries: dict[str, np.ndarray]) -> None:
        merged = self._read(path, fingerprint)  # keep what another process added meanwhile
        merged.update(entries)
        entries.update(merged)
        videos = sorted(merged)
        vectors = np.stack([merged[v] for v in videos]).astype(np.float32) if videos else \
            np.zeros((0, CONTEXT_DIM), np.float32)
        with atomic_open(path, "wb", fsync=True) as f:
            np.savez(f, fingerprint=np.array(fingerprint), videos=np.array(videos, dtype=str),
                     vectors=vectors)

    def put(self, source: ContextSource, entries: dict[str, np.ndarray]) -> None:
        """Add vectors ``source`` computed elsewhere (``beenet prepare``) to its cache file."""
        if entries:
            self._write(self.path_for(source), source.fingerprint,
                        {v: np.asarray(x, dtype=np.float32) for v, x in entries.items()})

    def get_or_compute(
        self, source: ContextSource, clips: Mapping[str, str | Path]
    ) -> dict[str, np.ndarray]:
        """``{video: float32[445]}`` for every clip of ``clips`` (``{clip key: path to its mp4}``,
        the key being the BoLD-relative video name the cache is keyed by): cached ones are loaded,
        the missing ones labelled by ``source`` (progress bar) and added to the cache."""
        paths = {str(v): p for v, p in clips.items()}
        wanted = list(paths)
        path = self.path_for(source)
        fingerprint = source.fingerprint
        entries = self._read(path, fingerprint)
        missing = [v for v in wanted if v not in entries]
        log.info("context %s: %d of %d clips cached in %s, labelling %d",
                 source.name, len(wanted) - len(missing), len(wanted), path, len(missing))
        fresh = 0
        try:
            for video in progress(missing, desc=f"context {source.name}", unit="clip"):
                vec = np.asarray(source.label_clip(video, paths[video]), dtype=np.float32)
                if vec.shape != (CONTEXT_DIM,) or not np.isfinite(vec).all():
                    raise BeenetError(f"context source {source.name} returned a vector of shape "
                                      f"{vec.shape} (or non-finite values) for clip {video}; "
                                      f"expected {CONTEXT_DIM} finite floats")
                entries[video] = vec
                fresh += 1
                if fresh % self.save_every == 0:
                    self._write(path, fingerprint, entries)
        finally:
            if fresh % self.save_every:
                self._write(path, fingerprint, entries)
        return {v: entries[v] for v in wanted}
