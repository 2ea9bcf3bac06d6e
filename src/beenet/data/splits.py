"""The evaluation protocols: BoLD's ``official`` split, BEE-NET's ``paper`` split, and a stricter
``paper-video`` split (``docs/method.md`` section 2.9).

``paper`` is a clip-disjoint 60/10/30 split of every labelled instance (train.csv + val.csv): all
people of one clip land in the same part (the paper's protocol). ``paper-video`` keeps every clip
of one source video (``003/<video>.mp4/<clip>.mp4`` -> ``003/<video>.mp4``) in one part, so that no
scene, person or camera of a test clip was seen in training through another clip of the same video.
Each is drawn once from ``numpy.random.default_rng(seed)`` and written to
``<root>/splits/<protocol>-seed<seed>.json`` (or a cache directory when the dataset is read-only),
so that every later run, and anyone with the file, uses the very same split.

This module reads a dataset only through :class:`AnnotatedDataset` (what ``BoLD`` offers), so
``beenet.data.bold`` imports it and not the other way round.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from beenet import atomic
from beenet.errors import BoLDFormatError
from beenet.paths import cache_dir

log = logging.getLogger(__name__)

PAPER_FRACTIONS: tuple[float, float, float] = (0.6, 0.1, 0.3)
DEFAULT_SEED = 42
SPLIT_FORMAT = "beenet-split"
SPLIT_VERSION = 1
PARTS: tuple[str, ...] = ("train", "val", "test")
#: The drawn protocols and the unit each keeps whole: a clip, or a source video (all its clips).
GROUP_OF_PROTOCOL: dict[str, str] = {"paper": "clip", "paper-video": "video"}
#: Every protocol ``BoLD.instances`` reads (``RunSettings.protocol`` allows the same; a test checks).
PROTOCOLS: tuple[str, ...] = ("official", *GROUP_OF_PROTOCOL)


class Annotated(Protocol):
    """One annotated (clip, person): ``beenet.data.bold.Instance``."""

    @property
    def clip(self) -> str: ...

    @property
    def key(self) -> tuple[str, int]: ...


class AnnotatedDataset(Protocol):
    """What a split is drawn from: ``beenet.data.bold.BoLD``."""

    root: Path

    @property
    def annotations_dir(self) -> Path: ...

    def annotations(self, split: str) -> Sequence[Annotated]: ...


def source_video(clip: str) -> str:
    """The source video of a clip path: ``003/<video>.mp4/<clip>.mp4`` -> ``003/<video>.mp4``
    (BoLD's layout); a path with fewer than three parts is its own source."""
    parts = clip.split("/")
    return "/".join(parts[:-1]) if len(parts) >= 3 else clip


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/beenet/splits`` (``~/.cache/beenet/splits`` by default)."""
    return cache_dir("splits")


def split_file_name(seed: int, protocol: str = "paper") -> str:
    return f"{protocol}-seed{seed}.json"


def draw_paper_split(
    instances: list[Annotated], seed: int = DEFAULT_SEED,
    fractions: tuple[float, float, float] = PAPER_FRACTIONS, group: str = "clip",
) -> dict[str, list[str]]:
    """Assign whole units (``group``: ``clip``, or ``video``: every clip of a source video) to
    train/val/test so that each part holds about ``fractions`` of the instances. Returns the clips
    of each part (sorted). Every part gets at least one unit when there are three or more.
    """
    if group not in ("clip", "video"):
        raise ValueError(f"draw_paper_split: group must be 'clip' or 'video', got {group!r}")
    unit_of = (lambda clip: clip) if group == "clip" else source_video
    clips_of: dict[str, set[str]] = {}
    for inst in instances:
        clips_of.setdefault(unit_of(inst.clip), set()).add(inst.clip)
    clips = sorted(clips_of)  # the units
    counts = {c: 0 for c in clips}
    for inst in instances:
        counts[unit_of(inst.clip)] += 1
    rng = np.random.default_rng(seed)
    order = [clips[i] for i in rng.permutation(len(clips))]
    n = len(order)
    cum = np.cumsum([counts[c] for c in order]) if n else np.zeros(0)
    total = float(cum[-1]) if n else 0.0

    def cut(fraction: float) -> int:
        # number of leading clips whose instance count is closest to fraction * total
        if n == 0:
            return 0
        target = fraction * total
        cands = np.concatenate([[0.0], cum])
        return int(np.argmin(np.abs(cands - target)))

    k1 = cut(fractions[0])
    k2 = max(cut(fractions[0] + fractions[1]), k1)
    if n >= 3:
        k1 = min(max(k1, 1), n - 2)
        k2 = min(max(k2, k1 + 1), n - 1)
    def expand(units: list[str]) -> list[str]:
        return sorted(c for u in units for c in clips_of[u])

    return {"train": expand(order[:k1]), "val": expand(order[k1:k2]), "test": expand(order[k2:])}


def _fingerprint(instances: list[Annotated]) -> str:
    h = hashlib.sha256()
    for key in sorted(inst.key for inst in instances):
        h.update(f"{key[0]}\t{key[1]}\n".encode())
    return h.hexdigest()


def _write_json_atomic(path: Path, payload: dict) -> None:
    atomic.write_json(path, payload, indent=1)


def _cache_path(bold: AnnotatedDataset, seed: int, splits_dir: Path | None, protocol: str = "paper") -> Path:
    if splits_dir is not None:
        return Path(splits_dir) / split_file_name(seed, protocol)
    root = bold.root.resolve()
    tag = hashlib.sha256(str(root).encode()).hexdigest()[:10]
    return default_cache_dir() / f"{root.name}-{tag}" / split_file_name(seed, protocol)


def paper_split_path(
    bold: AnnotatedDataset, seed: int = DEFAULT_SEED, splits_dir: str | Path | None = None, protocol: str = "paper"
) -> Path:
    """Where the split of ``protocol`` and ``seed`` is (or would be) stored: the first existing of
    ``<root>/splits/``, ``splits_dir`` / the cache; else ``<root>/splits/``."""
    in_root = bold.root / "splits" / split_file_name(seed, protocol)
    fallback = _cache_path(bold, seed, Path(splits_dir) if splits_dir is not None else None, protocol)
    for p in (in_root, fallback):
        if p.is_file():
            return p
    return in_root


def _load_split(path: Path, labelled: list[Annotated], seed: int, protocol: str = "paper",
                ) -> dict[str, list[Annotated]]:
    what_to_do = "delete this file to draw the split again from the seed"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BoLDFormatError(path, None, f"unreadable split file ({exc}); {what_to_do}") from None
    if not isinstance(data, dict) or data.get("format") != SPLIT_FORMAT or not isinstance(data.get("clips"), dict):
        raise BoLDFormatError(path, None, f"not a beenet split file; {what_to_do}")
    if data.get("seed") != seed:
        raise BoLDFormatError(path, None, f"written for seed {data.get('seed')}, not {seed}; {what_to_do}")
    if data.get("protocol", "paper") != protocol:
        raise BoLDFormatError(path, None, f"written for protocol {data.get('protocol')!r}, not {protocol!r}; {what_to_do}")
    part_of: dict[str, str] = {}
    for part in PARTS:
        for clip in data["clips"].get(part, []):
            part_of[clip] = part
    ours = {inst.clip for inst in labelled}
    unknown = sorted(set(part_of) - ours)
    missing = sorted(ours - set(part_of))
    if unknown or missing or data.get("fingerprint") != _fingerprint(labelled):
        detail = []
        if missing:
            detail.append(f"{len(missing)} annotated clips are not in it (e.g. {missing[0]})")
        if unknown:
            detail.append(f"{len(unknown)} of its clips are not annotated any more (e.g. {unknown[0]})")
        if not detail:
            detail.append("the annotated (video, person) pairs changed")
        raise BoLDFormatError(
            path, None, f"the split no longer matches the annotations: {'; '.join(detail)}; {what_to_do}"
        )
    parts: dict[str, list[Annotated]] = {p: [] for p in PARTS}
    for inst in labelled:
        parts[part_of[inst.clip]].append(inst)
    return parts


def paper_split(
    bold: AnnotatedDataset, seed: int = DEFAULT_SEED, splits_dir: str | Path | None = None, protocol: str = "paper",
) -> dict[str, list[Annotated]]:
    """A 60/10/30 split of the labelled instances, reused from disk when present and written there
    otherwise: ``paper`` (BEE-NET's clip-disjoint one) or ``paper-video`` (source-video-disjoint).
    Instances keep their annotation-file order in each part.
    """
    if protocol not in GROUP_OF_PROTOCOL:
        raise ValueError(f"paper_split: protocol must be one of {', '.join(GROUP_OF_PROTOCOL)}, got {protocol!r}")
    train_rows = list(bold.annotations("train"))
    if not train_rows:
        raise BoLDFormatError(
            bold.annotations_dir / "train.csv", None,
            f"holds no instance: the {protocol} protocol splits train.csv + val.csv 60/10/30, and "
            "without train.csv that would be a split of val.csv alone; restore the release's train.csv",
        )
    labelled = train_rows + list(bold.annotations("val"))
    path = paper_split_path(bold, seed, splits_dir, protocol)
    if path.is_file():
        log.info("using the %s split %s", protocol, path)
        return _load_split(path, labelled, seed, protocol)
    clips = draw_paper_split(labelled, seed, group=GROUP_OF_PROTOCOL[protocol])
    payload = {
        "format": SPLIT_FORMAT,
        "version": SPLIT_VERSION,
        "protocol": protocol,
        "unit": GROUP_OF_PROTOCOL[protocol],
        "seed": seed,
        "fractions": list(PAPER_FRACTIONS),
        "sources": ["annotations/train.csv", "annotations/val.csv"],
        "fingerprint": _fingerprint(labelled),
        "instances": {p: 0 for p in PARTS},
        "clips": clips,
    }
    part_of = {c: p for p, cs in clips.items() for c in cs}
    parts: dict[str, list[Annotated]] = {p: [] for p in PARTS}
    for inst in labelled:
        parts[part_of[inst.clip]].append(inst)
    payload["instances"] = {p: len(v) for p, v in parts.items()}
    try:
        _write_json_atomic(path, payload)
    except OSError as exc:
        fallback = _cache_path(bold, seed, Path(splits_dir) if splits_dir is not None else None, protocol)
        log.info("cannot write %s (%s); writing the split to %s", path, exc.strerror or exc, fallback)
        _write_json_atomic(fallback, payload)
        path = fallback
    log.info("wrote the %s split (seed %d: %s instances) to %s", protocol, seed,
             "/".join(str(len(parts[p])) for p in PARTS), path)
    return parts
