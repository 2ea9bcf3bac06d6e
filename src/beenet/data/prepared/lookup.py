"""Which prepared cache a run reads: its settings, its fingerprint, where caches live, finding one.

``<key>`` (the cache's folder under the root) is the first 16 hex digits of the sha256 of the
fingerprint (the annotations' digest, protocol, split seed, sampling, image size, crop settings,
context source fingerprint, storage, beenet version), so caches of several configs live side by
side and a cache of another config is never read. Nothing in it names where the data lives, and
each clip is matched by the content of its files (:func:`~.format.clip_stamp`), so a cache still
serves a dataset copied elsewhere.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from beenet.context.build import make_context_source
from beenet.context.config import ContextConfig
from beenet.data.bold import ANNOTATION_FILES, BoLD
from beenet.data.dataset import DataConfig
from beenet.data.prepared.format import (
    DEFAULT_STORAGE,
    MANIFEST,
    PREPARED_FORMAT,
    STORAGES,
    PreparedFrames,
    cache_key,
    clip_path,
    clip_seen,
    clip_stamp,
    read_context_table,
    read_manifest,
)
from beenet.data.usable import ClipStatus
from beenet.errors import BeenetError, ConfigError
from beenet.paths import cache_dir
from beenet.version import __version__

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareSettings:
    """What the prepared cache reads of a run's config (``prepare_settings`` of the run config
    module makes it from a ``RunConfig``): how clips become tensors, the context source, the split,
    where caches live, and what the model does with context."""

    data: DataConfig
    context: ContextConfig
    protocol: str  # run.protocol
    split_seed: int  # run.split_seed
    prepared_dir: str  # run.prepared_dir: '' = the default root, 'off' = no cache, else that folder
    device: str  # run.device: where the experts run when context.device is auto
    model_reads_context: bool  # the model reads context labels (priors, distillation targets or input)
    context_streams: bool  # the model has place / object streams to distil (fusion_context=streams)

    @property
    def reads_context(self) -> bool:
        """True when a context source labels the clips for this run."""
        return self.context.source != "none" and self.model_reads_context

    @property
    def frame_targets(self) -> bool:
        """True when the run distils context streams on per-frame labels: ``context.targets=frame``
        and a model with a place or object stream (``fusion_context=streams``). A model without such
        streams distils nothing; it reads the clip vectors (priors, fusion input) whatever
        ``targets`` says."""
        return self.context.targets == "frame" and self.reads_context and self.context_streams


# --------------------------------------------------------------------------- fingerprint


def fingerprint(settings: PrepareSettings, data_dir: str | Path, storage: str = DEFAULT_STORAGE,
                context: str | None | Literal[False] = False) -> dict[str, Any]:
    """What a prepared cache depends on; two runs with the same fingerprint read the same cache.
    ``context``: the context source's fingerprint when already known (False: compute it)."""
    d = settings.data
    fp: dict[str, Any] = {
        "format": PREPARED_FORMAT,
        "beenet": __version__,
        "annotations": annotations_digest(data_dir),
        "protocol": settings.protocol,
        "split_seed": settings.split_seed,
        "sampling": d.sampling,
        "image_size": d.image_size,
        "crops": {"crop_size": d.crop_size, "box_margin": d.box_margin} if d.body_crop else None,
        "context": context_fingerprint(settings, data_dir) if context is False else context,
        "storage": storage,
    }
    if fp["context"] is not None and settings.frame_targets:
        # Only when not the default, so a clip-target cache keeps its key and bytes.
        fp["context_targets"] = {"targets": settings.context.targets, "label_every": settings.context.label_every}
    return fp


def annotations_digest(data_dir: str | Path) -> str:
    """16 hex digits of the sha256 of the annotation CSVs (train.csv, val.csv, test_meta.csv; a
    missing one counts as missing): what names the dataset in a fingerprint, wherever it lives."""
    h = hashlib.sha256()
    for name, _ in ANNOTATION_FILES.values():
        try:
            data = (Path(data_dir) / "annotations" / name).read_bytes()
        except OSError:
            data = b"\0missing"
        h.update(f"{name}\0{len(data)}\0".encode() + data)
    return h.hexdigest()[:16]


def context_fingerprint(settings: PrepareSettings, data_dir: str | Path) -> str | None:
    """The fingerprint of the context source that labels the run's clips (None when none does)."""
    if not settings.reads_context:
        return None
    return make_context_source(settings.context, "cpu", data_dir).fingerprint


def default_prepared_root() -> Path:
    """``prepared/`` under beenet's cache root (:func:`beenet.paths.cache_dir`)."""
    return cache_dir("prepared")


def prepared_root(setting: str) -> Path | None:
    """``run.prepared_dir``: '' = the default root, 'off' = no cache, else that folder."""
    if setting.strip().lower() == "off":
        return None
    return Path(setting).expanduser() if setting.strip() else default_prepared_root()


# --------------------------------------------------------------------------- finding a cache


@dataclass
class PreparedCache:
    """A prepared cache that matches a run: where, what it holds, and its frame source."""

    path: Path
    manifest: dict[str, Any]
    served: set[str] = field(default_factory=set)

    def frames(self) -> PreparedFrames:
        clips = self.manifest["clips"]
        return PreparedFrames(self.path, self.manifest["fingerprint"]["storage"], self.served,
                              {v: int(clips[v]["bytes"]) for v in self.served})

    def context(self, videos: Sequence[str]) -> dict[str, np.ndarray] | None:
        """The context vectors of ``videos`` when the cache holds every one of them, else None."""
        table = read_context_table(self.path)
        if table is None or any(v not in table for v in videos):
            return None
        return {v: table[v] for v in videos}

    def statuses(self, bold: BoLD) -> dict[str, ClipStatus]:
        """The usable-clip verdict (:mod:`beenet.data.usable`) of each served clip with at least
        one stored frame, from the cache's record: ``prepare`` opened its video and loaded its
        joints, and its files are unchanged since, so neither is opened again at launch."""
        out: dict[str, ClipStatus] = {}
        for v in self.served:
            entry = self.manifest["clips"][v]
            if int(entry["frames"]) < 1:
                continue
            if int(entry["stamp"][2]) < 0:
                out[v] = ClipStatus(v, None, f"{bold.joints_path(v)}: joints file not found", True)
            else:
                out[v] = ClipStatus(v, None, None, False)
        return out


def _log_no_match(base: Path, wanted: dict[str, Any], data_dir: Path) -> None:
    """Say why no cache under ``base`` serves the run: an older format, the nearest one differs in
    what, or none."""
    others: list[tuple[Path, dict[str, Any]]] = []
    for m in sorted(base.glob(f"*/{MANIFEST}")) if base.is_dir() else []:
        try:
            others.append((m.parent, read_manifest(m.parent)["fingerprint"]))
        except (OSError, ValueError, KeyError):
            continue
    old = [(p, f) for p, f in others if f.get("format") != PREPARED_FORMAT and f.get("data") == str(data_dir.resolve())]
    same_data = [(p, f) for p, f in others if f.get("annotations") == wanted["annotations"]]
    if old and not same_data:
        log.warning("prepared cache %s was made by an earlier beenet (cache format %s, which named the data by its "
                    "path); this version does not read it: run 'beenet prepare' with this config again (then "
                    "delete %s); decoding the videos on the fly", old[0][0], old[0][1].get("format"), old[0][0])
    elif same_data:
        p, f = same_data[0]
        diff = sorted(k for k in set(f) | set(wanted) if k != "storage" and f.get(k) != wanted.get(k))
        log.info("prepared cache %s does not match this run (differs in: %s); decoding the videos on the "
                 "fly (run 'beenet prepare' with this config to make one)", p, ", ".join(diff))
    else:
        log.info("no prepared cache for %s in %s: decoding the videos on the fly "
                 "(run 'beenet prepare' first to decode each clip once)", data_dir, base)


def _clip_check(bold: BoLD, cache: Path, entry: dict[str, Any] | None, video: str) -> tuple[str | None, bool]:
    """(why ``video`` is not served from the cache or None, whether its cache file is damaged).
    Its sources are read (:func:`clip_stamp`) only when their size or mtime changed since."""
    if entry is None:
        return "not in the cache (it failed in 'beenet prepare', or is new since)", False
    if entry["seen"] != clip_seen(bold, video):
        now, was = clip_stamp(bold, video), entry["stamp"]
        if now != was:
            which = "video" if now[:2] != was[:2] else "joints"
            k = 0 if which == "video" else 2
            what = f"size {now[k]}, the cache's {was[k]}" if now[k] != was[k] else "same size, other content"
            return f"its {which} file differs from the one prepared ({what})", False
    try:
        size = clip_path(cache, video).stat().st_size
    except OSError:
        size = -1
    if size != entry["bytes"]:
        return (f"{clip_path(cache, video)}: damaged prepared clip file ({size} bytes, the manifest records "
                f"{entry['bytes']})"), True
    return None, False


def served_clips(bold: BoLD, cache: Path, manifest: dict[str, Any], videos: Sequence[str]
                 ) -> tuple[set[str], dict[str, str]]:
    """The clips of ``videos`` the cache serves, and why each other one is not (in order). A
    damaged clip file is named in a WARNING (its clip is then decoded from the video)."""
    todo = list(dict.fromkeys(videos))
    clips = manifest["clips"]
    with ThreadPoolExecutor(max_workers=8) as pool:  # stats and 64 KiB reads: I/O, not the GIL
        checks = list(pool.map(lambda v: _clip_check(bold, cache, clips.get(v), v), todo))
    why = {v: r for v, (r, _) in zip(todo, checks) if r is not None}
    damaged = [why[v] for v, (_, bad) in zip(todo, checks) if bad]
    for reason in damaged[:5]:
        log.warning("%s; its clip is decoded from the video (run 'beenet prepare' again to re-make it)", reason)
    if len(damaged) > 5:
        log.warning("... and %d more damaged prepared clip files", len(damaged) - 5)
    return set(todo) - set(why), why


def find_prepared(settings: PrepareSettings, bold: BoLD, videos: Sequence[str], root: str | Path | None = None,
                  ) -> PreparedCache | None:
    """The prepared cache of ``settings`` under ``root`` (default: ``settings.prepared_dir``) that
    serves ``videos``, or None; logs which one is used and how many clips it serves, or why none is.

    A clip is served from the cache only when its video and joints files have the content it was
    prepared from (wherever the dataset lives now) and its cache file has the recorded size; the
    others are decoded on the fly. Under 95 % served, a WARNING names the first clip not served.
    """
    base = Path(root) if root is not None else prepared_root(settings.prepared_dir)
    if base is None:
        log.info("prepared cache off (run.prepared_dir=off): decoding the videos on the fly")
        return None
    try:
        ctx = context_fingerprint(settings, bold.root)
    except BeenetError as exc:  # e.g. expert weights not cached and no network
        log.info("prepared cache not looked up: the context experts cannot be identified (%s); decoding "
                 "the videos on the fly", exc)
        return None
    matched: Path | None = None
    for storage in STORAGES:
        path = base / cache_key(fingerprint(settings, bold.root, storage, ctx))
        if (path / MANIFEST).is_file():
            matched = path
            break
    if matched is None:
        _log_no_match(base, fingerprint(settings, bold.root, DEFAULT_STORAGE, ctx), Path(bold.root))
        return None
    try:
        manifest = read_manifest(matched)
    except (OSError, ValueError) as exc:
        log.warning("prepared cache %s: damaged %s (%s); decoding the videos on the fly. To fix it, delete %s or "
                    "run 'beenet prepare --rebuild' with this config", matched, MANIFEST, exc, matched)
        return None
    served, why = served_clips(bold, matched, manifest, videos)
    n = len(set(videos))
    storage = manifest["fingerprint"]["storage"]
    log.info("using prepared cache %s (%s storage%s): %d of %d clips from the cache, %d decoded on the fly",
             matched, storage, ", lossy" if storage == "jpeg" else ", lossless", len(served), n, n - len(served))
    if why and len(served) < 0.95 * n:
        first = next(iter(why))
        log.warning("prepared cache %s serves only %d of %d clips (%.0f%%); the first it does not serve: %s: %s. "
                    "Run 'beenet prepare' with this config on this data to (re)make them", matched, len(served), n,
                    100.0 * len(served) / max(1, n), first, why[first])
    return PreparedCache(matched, manifest, served)


def context_targets(settings: PrepareSettings, prepared: PreparedCache | None, videos: Sequence[str]) -> str:
    """What the training dataset of a run gives as ``batch["context"]``: ``"frame"`` (the
    per-frame labels of the prepared cache, ``context.targets=frame``) or ``"clip"`` (the clip
    vectors). Per-frame labels exist only in a prepared cache: with ``targets=frame`` and no cache
    serving every clip of ``videos``, this refuses (no labelling on the fly)."""
    if not settings.frame_targets:
        if settings.context.targets == "frame" and settings.reads_context:
            log.info("context.targets=frame has no effect: this model has no place / object stream to distil "
                     "(it reads the clips' context vectors)")
        return "clip"
    how = ("run 'beenet prepare --data DIR' with this run's config and settings (context.targets=frame "
           "included) first, or set context.targets=clip")
    if prepared is None:
        raise ConfigError("context.targets=frame: the per-frame context labels are made by 'beenet prepare', "
                          f"and no prepared cache matches this run (the log says why); {how}")
    missing = sorted(set(videos) - prepared.served)
    if missing:
        raise ConfigError(f"context.targets=frame: {len(missing)} training clip(s), e.g. {missing[0]!r}, are not in "
                          f"the prepared cache {prepared.path} (they failed or changed since it was made); {how}")
    log.info("distillation targets: the experts' labels of the frames each sample sees (context.targets=frame, "
             "label_every=%d), from the prepared cache", settings.context.label_every)
    return "frame"
