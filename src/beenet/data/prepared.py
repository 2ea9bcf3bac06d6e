"""The prepared cache: every clip decoded once, stored as what training and evaluation read.

``beenet prepare`` (:func:`prepare`) makes it; ``beenet train`` and ``beenet eval`` find it with
:func:`find_prepared` and read it through :class:`PreparedFrames`, a
:class:`~beenet.data.dataset.FrameSource`. Layout of one cache::

    <root>/<key>/manifest.json        fingerprint, clips (file, source stamp, frames, bytes), failed
    <root>/<key>/context.npz          videos [N], vectors float32 [N, 445] (when the run reads context)
    <root>/<key>/clips/<video>.frames one file per clip

``<key>`` is the first 16 hex digits of the sha256 of the fingerprint (data root, protocol, split
seed, sampling, image size, crop settings, context source fingerprint, storage, beenet version),
so caches of several configs live side by side and a cache of another config is never read.

A clip file is ``MAGIC``, a little-endian uint64 header length, a JSON header and the frame
blobs. The header names the clip, its frame count and size, the stamp (size, mtime) of the video
and joints files it was made from, the offset and length of each stored frame (the frames any
sampler can ask for: every frame where an annotated person is present, or every frame of a clip
without joints) and of each person crop (``body_crop``), and the clip's context vector. Whole
frames are stored after :func:`~beenet.media.transforms.resize_uint8`, so ``raw`` storage gives
the very tensors decoding on the fly gives; ``jpeg`` (quality 95) is lossy and 6x smaller (see
``docs/training.md``). Crops are stored as uint8 at ``crop_size`` (rounded from the float crop).
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from beenet import atomic
from beenet.version import __version__
from beenet.data.bold import BoLD
from beenet.data.dataset import (
    VideoFrames,
    _VideoClip,
    candidate_frames,
    crop_boxes,
    crops_of,
)
from beenet.media.transforms import IMAGENET_MEAN, IMAGENET_STD, Box, normalize, resize_uint8
from beenet.errors import BeenetError, ConfigError, DataNotFoundError
from beenet.labels import CONTEXT_DIM
from beenet.paths import cache_dir

if TYPE_CHECKING:  # pragma: no cover
    from beenet.run_config import RunConfig

log = logging.getLogger(__name__)

#: Bump when the clip file layout or what is stored in it changes.
PREPARED_FORMAT = 1
MAGIC = b"BEENETF1"
Storage = Literal["jpeg", "png", "raw"]
STORAGES: tuple[str, ...] = ("jpeg", "png", "raw")
#: The storage ``beenet prepare`` uses unless told: JPEG q95 (measured in docs/training.md).
DEFAULT_STORAGE = "jpeg"
JPEG_QUALITY = 95
SPLITS = ("train", "val", "test")


# --------------------------------------------------------------------------- frames <-> bytes


def encode_frame(frame: np.ndarray, storage: str) -> bytes:
    """uint8 RGB ``[H, W, 3]`` -> bytes in ``storage``."""
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    if storage == "raw":
        return frame.tobytes()
    import cv2

    ext, params = (".jpg", [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]) if storage == "jpeg" else \
        (".png", [cv2.IMWRITE_PNG_COMPRESSION, 1])
    ok, buf = cv2.imencode(ext, frame[..., ::-1], params)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise ValueError(f"OpenCV could not encode a {frame.shape} frame as {storage}")
    return buf.tobytes()


def decode_frame(data: bytes, storage: str, size: int) -> np.ndarray:
    """Bytes of one stored frame -> uint8 RGB ``[size, size, 3]``."""
    if storage == "raw":
        return np.frombuffer(data, dtype=np.uint8).reshape(size, size, 3)
    import cv2

    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("not a decodable image")
    return img[..., ::-1]


def _crop_pixels(crops: torch.Tensor) -> np.ndarray:
    """Normalised float crops ``[K, 3, C, C]`` -> uint8 ``[K, C, C, 3]`` (rounded pixels)."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    x = (crops * std + mean).mul_(255.0).round_().clamp_(0, 255)
    return x.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


# --------------------------------------------------------------------------- clip files


def _stamp(path: Path) -> list[int]:
    """(size, mtime in ns) of a file, or (-1, -1) when it does not exist."""
    try:
        st = path.stat()
    except OSError:
        return [-1, -1]
    return [int(st.st_size), int(st.st_mtime_ns)]


def clip_stamp(bold: BoLD, video: str) -> list[int]:
    """What a prepared clip was made from: the stamps of its video and joints files."""
    return _stamp(bold.video_path(video)) + _stamp(bold.joints_path(video))


def write_clip(path: Path, header: dict[str, Any], blobs: Sequence[bytes]) -> int:
    """Write one clip file atomically; ``header["frames"]``/``["crops"]`` get their offsets here.
    Returns the file size."""
    head = json.dumps(header, separators=(",", ":")).encode()
    with atomic.atomic_open(path, "wb", encoding=None) as fh:
        fh.write(MAGIC)
        fh.write(struct.pack("<Q", len(head)))
        fh.write(head)
        for b in blobs:
            fh.write(b)
    return len(MAGIC) + 8 + len(head) + sum(len(b) for b in blobs)


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """The JSON header of a clip file and the offset where its blobs start."""
    with open(path, "rb") as fh:
        magic = fh.read(len(MAGIC))
        if magic != MAGIC:
            raise ValueError(f"{path}: not a beenet prepared clip file")
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    return header, len(MAGIC) + 8 + n


class _CachedClip:
    """One prepared clip: serves exactly the frames (and crops) stored for it."""

    def __init__(self, path: Path, storage: str) -> None:
        self.path = path
        self.storage = storage
        self.header, self._base = read_header(path)
        self.num_frames = int(self.header["num_frames"])
        self.width, self.height = int(self.header["width"]), int(self.header["height"])
        self._fh = open(path, "rb")
        self._last: np.ndarray | None = None

    def _blob(self, entry: list[int]) -> bytes:
        self._fh.seek(self._base + int(entry[0]))
        return self._fh.read(int(entry[1]))

    def frames(self, indices: np.ndarray, size: int) -> torch.Tensor:
        if size != int(self.header["image_size"]):
            raise ConfigError(f"{self.path}: prepared at image size {self.header['image_size']}, asked for {size}")
        table = self.header["frames"]
        out = np.empty((len(indices), size, size, 3), dtype=np.uint8)
        for k, t in enumerate(np.asarray(indices).tolist()):
            entry = table.get(str(t))
            if entry is None:
                raise DataNotFoundError(
                    f"{self.path}: frame {t} of clip {self.header['clip']!r} is not in the prepared cache "
                    "(the cache stores the frames of the annotated persons); run 'beenet prepare' again"
                )
            out[k] = decode_frame(self._blob(entry), self.storage, size)
        self._last = np.asarray(indices)
        return torch.from_numpy(out)

    def frame_context(self, indices: np.ndarray) -> np.ndarray:
        """The per-frame distillation target of frames ``indices`` (``context.targets=frame``):
        the stored label of each frame (of the nearest labelled frame with ``context.label_every``
        > 1), averaged over the frames, each half scaled to sum 1: float32 ``[445]``."""
        from beenet.context.base import normalise_parts

        table = self.header.get("frame_context")
        if not table:
            raise DataNotFoundError(f"{self.path}: clip {self.header['clip']!r} was prepared without per-frame "
                                    "context labels; run 'beenet prepare' with context.targets=frame")
        labelled = np.asarray(table["frames"], dtype=np.int64)
        rows = nearest_rows(labelled, np.asarray(indices, dtype=np.int64))
        width = CONTEXT_DIM * 2  # float16
        base = int(table["blob"][0])
        out = np.empty((len(rows), CONTEXT_DIM), dtype=np.float32)
        for k, r in enumerate(rows.tolist()):
            out[k] = np.frombuffer(self._blob([base + r * width, width]), dtype="<f2")
        return normalise_parts(out.mean(axis=0))

    def crops(self, person_id: int, indices: np.ndarray, boxes: Sequence[Box | None], size: int) -> torch.Tensor:
        table = self.header.get("crops") or {}
        if size != int(self.header.get("crop_size") or -1):
            raise ConfigError(f"{self.path}: prepared without crops of size {size}")
        out = np.empty((len(indices), size, size, 3), dtype=np.uint8)
        for k, t in enumerate(np.asarray(indices).tolist()):
            entry = table.get(f"{int(person_id)}:{t}")
            if entry is None:
                raise DataNotFoundError(f"{self.path}: no crop of person {person_id} in frame {t}; "
                                        "run 'beenet prepare' again")
            out[k] = decode_frame(self._blob(entry), self.storage, size)
        x = torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
        return normalize(x).contiguous()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "_CachedClip":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class PreparedFrames:
    """A frame source reading a prepared cache; clips it does not hold (failed, changed since,
    added later) are decoded from the video, as :class:`~beenet.data.dataset.VideoFrames` does."""

    def __init__(self, cache_dir: str | Path, storage: str, served: set[str]) -> None:
        self.cache_dir = Path(cache_dir)
        self.storage = storage
        self.served = served
        self._video = VideoFrames()

    def open(self, bold: BoLD, video: str) -> "_CachedClip | _VideoClip":
        if video in self.served:
            return _CachedClip(clip_path(self.cache_dir, video), self.storage)
        return self._video.open(bold, video)


def nearest_rows(labelled: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """For each frame of ``indices``, the row in sorted ``labelled`` of the nearest labelled frame
    (the earlier one on a tie)."""
    pos = np.clip(np.searchsorted(labelled, indices), 0, len(labelled) - 1)
    before = np.clip(pos - 1, 0, len(labelled) - 1)
    take_before = np.abs(indices - labelled[before]) <= np.abs(labelled[pos] - indices)
    return np.where(take_before, before, pos)


def clip_path(cache_dir: Path, video: str) -> Path:
    return cache_dir / "clips" / f"{video}.frames"


# --------------------------------------------------------------------------- fingerprint


def fingerprint(cfg: "RunConfig", data_dir: str | Path, storage: str = DEFAULT_STORAGE,
                context: str | None | Literal[False] = False) -> dict[str, Any]:
    """What a prepared cache depends on; two configs with the same fingerprint read the same cache.
    ``context``: the context source's fingerprint when already known (False: compute it)."""
    d = cfg.data
    fp: dict[str, Any] = {
        "format": PREPARED_FORMAT,
        "beenet": __version__,
        "data": str(Path(data_dir).resolve()),
        "protocol": cfg.run.protocol,
        "split_seed": cfg.run.split_seed,
        "sampling": d.sampling,
        "image_size": d.image_size,
        "crops": {"crop_size": d.crop_size, "box_margin": d.box_margin} if d.body_crop else None,
        "context": _context_fingerprint(cfg, data_dir) if context is False else context,
        "storage": storage,
    }
    if fp["context"] is not None and frame_targets_used(cfg):
        # Only when not the default, so a clip-target cache keeps its key and bytes.
        fp["context_targets"] = {"targets": cfg.context.targets, "label_every": cfg.context.label_every}
    return fp


def _context_fingerprint(cfg: "RunConfig", data_dir: str | Path) -> str | None:
    if not _reads_context(cfg):
        return None
    from beenet.context.build import make_context_source

    return make_context_source(cfg.context, "cpu", data_dir).fingerprint


def frame_targets_used(cfg: "RunConfig") -> bool:
    """True when ``cfg`` distils context streams on per-frame labels: ``context.targets=frame``
    and a model with a place or object stream (``fusion_context=streams``). A model without such
    streams distils nothing; it reads the clip vectors (priors, fusion input) whatever
    ``targets`` says."""
    m = cfg.model
    return (cfg.context.targets == "frame" and _reads_context(cfg) and m.fusion_context == "streams"
            and bool(m.place_stream or m.object_stream))


def _reads_context(cfg: "RunConfig") -> bool:
    from beenet.run_config import needs_context

    return cfg.context.source != "none" and needs_context(cfg)


def cache_key(fp: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


def default_prepared_root() -> Path:
    """``prepared/`` next to the context cache: ``$BEENET_CACHE/../prepared`` or ``~/.cache/beenet/prepared``."""
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
        return PreparedFrames(self.path, self.manifest["fingerprint"]["storage"], self.served)

    def context(self, videos: Sequence[str]) -> dict[str, np.ndarray] | None:
        """The context vectors of ``videos`` when the cache holds every one of them, else None."""
        path = self.path / "context.npz"
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            table = dict(zip((str(v) for v in data["videos"]), np.asarray(data["vectors"], np.float32)))
        if any(v not in table for v in videos):
            return None
        return {v: table[v] for v in videos}


def find_prepared(cfg: "RunConfig", bold: BoLD, videos: Sequence[str], root: str | Path | None = None,
                  ) -> PreparedCache | None:
    """The prepared cache of ``cfg`` under ``root`` (default: ``run.prepared_dir``) that serves
    ``videos``, or None; logs which one is used and how many clips it serves, or why none is.

    A clip is served from the cache only when its video and joints files are unchanged since it
    was prepared; the others are decoded on the fly.
    """
    base = Path(root) if root is not None else prepared_root(cfg.run.prepared_dir)
    if base is None:
        log.info("prepared cache off (run.prepared_dir=off): decoding the videos on the fly")
        return None
    wanted: dict[str, Any] | None = None
    matched: Path | None = None
    others: list[tuple[Path, dict[str, Any]]] = []
    try:
        ctx = _context_fingerprint(cfg, bold.root)
    except BeenetError as exc:  # e.g. expert weights not cached and no network
        log.info("prepared cache not looked up: the context experts cannot be identified (%s); decoding "
                 "the videos on the fly", exc)
        return None
    for storage in STORAGES:
        fp = fingerprint(cfg, bold.root, storage, ctx)
        path = base / cache_key(fp)
        if (path / "manifest.json").is_file():
            wanted, matched = fp, path
            break
    if matched is None:
        wanted = fingerprint(cfg, bold.root, DEFAULT_STORAGE, ctx)
        for m in sorted(base.glob("*/manifest.json")) if base.is_dir() else []:
            try:
                others.append((m.parent, json.loads(m.read_text())["fingerprint"]))
            except (OSError, ValueError, KeyError):
                continue
        same_data = [(p, f) for p, f in others if f.get("data") == wanted["data"]]
        if same_data:
            p, f = same_data[0]
            diff = sorted(k for k in set(f) | set(wanted) if k != "storage" and f.get(k) != wanted.get(k))
            log.info("prepared cache %s does not match this run (differs in: %s); decoding the videos on the "
                     "fly (run 'beenet prepare' with this config to make one)", p, ", ".join(diff))
        else:
            log.info("no prepared cache for %s in %s: decoding the videos on the fly "
                     "(run 'beenet prepare' first to decode each clip once)", wanted["data"], base)
        return None
    try:
        manifest = json.loads((matched / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        log.warning("prepared cache %s: unreadable manifest (%s); decoding on the fly", matched, exc)
        return None
    clips = manifest.get("clips", {})
    served = {v for v in videos if v in clips and clips[v]["stamp"] == clip_stamp(bold, v)}
    log.info("using prepared cache %s (%s storage%s): %d of %d clips from the cache, %d decoded on the fly",
             matched, manifest["fingerprint"]["storage"],
             ", lossy" if manifest["fingerprint"]["storage"] == "jpeg" else ", lossless",
             len(served), len(set(videos)), len(set(videos) - served))
    return PreparedCache(matched, manifest, served)


def context_targets(cfg: "RunConfig", prepared: PreparedCache | None, videos: Sequence[str]) -> str:
    """What the training dataset of ``cfg`` gives as ``batch["context"]``: ``"frame"`` (the
    per-frame labels of the prepared cache, ``context.targets=frame``) or ``"clip"`` (the clip
    vectors). Per-frame labels exist only in a prepared cache: with ``targets=frame`` and no cache
    serving every clip of ``videos``, this refuses (no labelling on the fly)."""
    if not frame_targets_used(cfg):
        if cfg.context.targets == "frame" and _reads_context(cfg):
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
             "label_every=%d), from the prepared cache", cfg.context.label_every)
    return "frame"


# --------------------------------------------------------------------------- prepare


@dataclass
class PrepareResult:
    """What :func:`prepare` did."""

    path: Path
    clips: int
    reused: int
    prepared: int
    failed: list[tuple[str, str]]
    bytes: int
    seconds: float
    complete: bool


def _split_instances(bold: BoLD, cfg: "RunConfig") -> list[Any]:
    out: list[Any] = []
    for split in SPLITS:
        try:
            out += bold.instances(split, protocol=cfg.run.protocol, seed=cfg.run.split_seed)
        except DataNotFoundError as exc:
            log.info("split %s: %s (skipped)", split, exc)
    return out


def _make_expert(cfg_dict: dict[str, Any], device: str, root: str) -> Any:
    from beenet.context.build import make_context_source
    from beenet.context.config import ContextConfig

    return make_context_source(ContextConfig.from_dict(cfg_dict), device, root)


_WORKER: dict[str, Any] = {}


def _worker_init(task: dict[str, Any]) -> None:
    torch.set_num_threads(1)
    _WORKER.clear()
    _WORKER.update(task)
    _WORKER["bold"] = BoLD(task["root"])
    _WORKER["source"] = None


def _source() -> Any:
    if _WORKER["source"] is None and _WORKER["context"] is not None:
        _WORKER["source"] = _make_expert(_WORKER["context"], _WORKER["device"], _WORKER["root"])
    return _WORKER["source"]


def _parts(source: Any) -> list[Any]:
    """The frame experts of a source (one, or places and objects), [] for the sidecar."""
    from beenet.context.base import CombinedContext, FrameExpertSource

    if isinstance(source, CombinedContext):
        return list(source.parts)
    return [source] if isinstance(source, FrameExpertSource) else []


def _prepare_clip(job: tuple[str, list[int]]) -> dict[str, Any]:
    """Decode one clip once; write its file. Runs in a worker. Never raises: failures are returned."""
    from beenet.context.base import evenly_spaced, join_context
    from beenet.data.dataset import DataConfig
    from beenet.data.joints import load_person_joints
    from beenet.media.video import VideoReader

    video, persons = job
    w = _WORKER
    bold: BoLD = w["bold"]
    dcfg = DataConfig(**w["data"])
    try:
        with VideoReader(bold.video_path(video)) as reader:
            n, width, height = reader.num_frames, reader.width, reader.height
            jpath = bold.joints_path(video)
            joints = {p: (load_person_joints(jpath, p, num_frames=n) if jpath.is_file() else None) for p in persons}
            cand = {p: candidate_frames(joints[p], n) for p in persons}
            stored = sorted(set().union(*(set(c.tolist()) for c in cand.values())))
            source = _source()
            experts = _parts(source)
            expert_idx = {e.name: evenly_spaced(n, e.frames_per_clip) for e in experts}
            needed = sorted(set(stored).union(*(set(i) for i in expert_idx.values())))
            decoded = reader.read(needed)
        row = {t: k for k, t in enumerate(needed)}
        blobs: list[bytes] = []
        offset = 0

        def add(data: bytes) -> list[int]:
            nonlocal offset
            blobs.append(data)
            offset += len(data)
            return [offset - len(data), len(data)]

        whole = resize_uint8(decoded[[row[t] for t in stored]], dcfg.image_size).numpy()
        frames = {str(t): add(encode_frame(whole[k], w["storage"])) for k, t in enumerate(stored)}
        crops: dict[str, list[int]] = {}
        if dcfg.body_crop:
            for p in persons:
                idx = cand[p]
                boxes = crop_boxes(dcfg, idx, joints[p], width, height)
                pix = _crop_pixels(crops_of(decoded[[row[t] for t in idx.tolist()]], boxes, dcfg.crop_size))
                for k, t in enumerate(idx.tolist()):
                    crops[f"{p}:{t}"] = add(encode_frame(pix[k], w["storage"]))
        context = parts = None
        if source is not None:
            if experts:
                parts = {e.name: e.label_frames(decoded[[row[t] for t in expert_idx[e.name]]]) for e in experts}
                vecs = list(parts.values())
                context = vecs[0] if len(vecs) == 1 else join_context(vecs[0][:365], vecs[1][365:])
            else:
                context = np.asarray(source.label_clip(video, bold.video_path(video)), np.float32)
            if context.shape != (CONTEXT_DIM,) or not np.isfinite(context).all():
                raise ValueError(f"context source returned shape {context.shape} or non-finite values")
        frame_context = None
        if source is not None and w["frame_targets"]:
            labelled = stored[:: int(w["context"].get("label_every", 1))]
            if experts:  # each expert's label of each frame, from the frames decoded above
                pix = decoded[[row[t] for t in labelled]]
                halves = {e.part: e.label_rows(pix) for e in experts}
                table = join_context(halves.get("places"), halves.get("objects"))
            else:  # the sidecar knows one vector per clip: every frame gets it
                table = np.repeat(context[None], len(labelled), axis=0)
            if table.shape != (len(labelled), CONTEXT_DIM) or not np.isfinite(table).all():
                raise ValueError(f"per-frame context of shape {table.shape} or non-finite values")
            frame_context = {"frames": labelled, "dtype": "float16",
                             "blob": add(np.ascontiguousarray(table, dtype="<f2").tobytes())}
        header = {
            "format": PREPARED_FORMAT, "key": w["key"], "clip": video, "num_frames": n, "width": width,
            "height": height, "stamp": w["stamps"][video], "image_size": dcfg.image_size,
            "crop_size": dcfg.crop_size if dcfg.body_crop else None, "frames": frames, "crops": crops,
            "context": None if context is None else [float(x) for x in context],
            "context_parts": None if parts is None else {k: [float(x) for x in v] for k, v in parts.items()},
        }
        if frame_context is not None:  # absent with clip targets: those files keep their bytes
            header["frame_context"] = frame_context
        size = write_clip(clip_path(Path(w["out"]), video), header, blobs)
        return {"video": video, "ok": True, "frames": len(stored), "bytes": size}
    except Exception as exc:  # noqa: BLE001 - a failed clip is listed and skipped, never fatal
        return {"video": video, "ok": False, "reason": f"{type(exc).__name__}: {exc}"}


def _reusable(path: Path, key: str, stamp: list[int]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        header, _ = read_header(path)
    except (OSError, ValueError, struct.error):
        return None
    return header if header.get("key") == key and header.get("stamp") == stamp else None


def prepare(cfg: "RunConfig", data_dir: str | Path, out_root: str | Path | None = None, *, workers: int = 1,
            storage: str = DEFAULT_STORAGE, limit: int | None = None, show_progress: bool = True) -> PrepareResult:
    """Decode every clip of the protocol's splits once and store what training and evaluation read.

    A clip already prepared for this fingerprint (and unchanged since) is reused, so a killed run
    continues where it stopped. ``limit`` stops after that many newly prepared clips (as a kill
    would, for tests). A clip that fails is listed in the manifest (file, reason) and skipped.
    """
    from beenet.progress import progress

    if storage not in STORAGES:
        raise ConfigError(f"storage {storage!r}: choose one of {', '.join(STORAGES)}")
    t0 = time.perf_counter()
    bold = BoLD(data_dir)
    fp = fingerprint(cfg, data_dir, storage)
    key = cache_key(fp)
    base = Path(out_root) if out_root is not None else (prepared_root(cfg.run.prepared_dir) or default_prepared_root())
    out = base / key
    instances = _split_instances(bold, cfg)
    persons: dict[str, set[int]] = {}
    for inst in instances:
        persons.setdefault(inst.video, set()).add(int(inst.person_id))
    videos = sorted(persons)
    failed: list[tuple[str, str]] = []
    stamps = {v: clip_stamp(bold, v) for v in videos}
    present = []
    for v in videos:
        if stamps[v][0] < 0:
            failed.append((str(bold.video_path(v)), "no video file"))
        else:
            present.append(v)
    entries: dict[str, dict[str, Any]] = {}
    todo = []
    for v in present:
        header = _reusable(clip_path(out, v), key, stamps[v])
        if header is not None:
            entries[v] = {"stamp": stamps[v], "frames": len(header["frames"]),
                          "bytes": clip_path(out, v).stat().st_size, "context": header.get("context"),
                          "context_parts": header.get("context_parts")}
        else:
            todo.append(v)
    reused = len(entries)
    log.info("prepare %s -> %s: %d clips, %d reused from an earlier run, %d to decode (%d workers, %s storage)",
             data_dir, out, len(videos), reused, len(todo), workers, storage)
    out.mkdir(parents=True, exist_ok=True)
    _write_manifest(out, fp, entries, failed, complete=False)
    from beenet.device import resolve_device

    task = {"root": str(bold.root), "out": str(out), "key": key, "storage": storage, "stamps": stamps,
            "device": str(resolve_device(cfg.run.device)),  # where experts run when context.device is auto
            "data": {f: getattr(cfg.data, f) for f in cfg.data.__dataclass_fields__},
            "frame_targets": frame_targets_used(cfg),
            "context": ({f: getattr(cfg.context, f) for f in cfg.context.__dataclass_fields__}
                        if _reads_context(cfg) else None)}
    jobs = [(v, sorted(persons[v])) for v in (todo if limit is None else todo[:limit])]
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        pool = mp.get_context("spawn").Pool(workers, initializer=_worker_init, initargs=(task,))
        results = pool.imap_unordered(_prepare_clip, jobs)
    else:
        pool = None
        _worker_init(task)
        results = map(_prepare_clip, jobs)
    done = 0
    try:
        for res in progress(results, total=len(jobs), desc="prepare", unit="clip",
                            disable=None if show_progress else True):
            if res["ok"]:
                header, _ = read_header(clip_path(out, res["video"]))
                entries[res["video"]] = {"stamp": stamps[res["video"]], "frames": res["frames"],
                                         "bytes": res["bytes"], "context": header.get("context"),
                                         "context_parts": header.get("context_parts")}
            else:
                failed.append((str(bold.video_path(res["video"])), res["reason"]))
                log.warning("prepare: %s failed (%s); skipped", bold.video_path(res["video"]), res["reason"])
            done += 1
            if done % 50 == 0:
                _write_manifest(out, fp, entries, failed, complete=False)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    complete = limit is None or len(todo) <= limit
    _write_manifest(out, fp, entries, failed, complete=complete)
    _write_context(out, cfg, entries)
    total = sum(e["bytes"] for e in entries.values())
    result = PrepareResult(out, len(videos), reused, len(entries) - reused, failed, total,
                           time.perf_counter() - t0, complete)
    log.info("prepared %s: %d clips (%d reused, %d decoded now), %d failed, %.1f MB, %.1fs%s", out, len(entries),
             reused, result.prepared, len(failed), total / 1e6, result.seconds,
             "" if complete else " (stopped before the end: run again to continue)")
    for path, reason in failed:
        log.warning("failed clip: %s: %s", path, reason)
    return result


def _write_manifest(out: Path, fp: dict[str, Any], entries: dict[str, dict[str, Any]],
                    failed: list[tuple[str, str]], complete: bool) -> None:
    clips = {v: {k: e[k] for k in ("stamp", "frames", "bytes")} for v, e in sorted(entries.items())}
    atomic.write_json(out / "manifest.json", {"fingerprint": fp, "key": cache_key(fp), "complete": complete,
                                              "clips": clips, "failed": [list(f) for f in failed]})


def _write_context(out: Path, cfg: "RunConfig", entries: dict[str, dict[str, Any]]) -> None:
    """``context.npz`` of the cache, and each expert's vectors into the context cache of
    ``context.cache_dir`` (so eval, predict and the ablation find them labelled too)."""
    have = {v: e for v, e in entries.items() if e.get("context") is not None}
    if not have:
        return
    videos = sorted(have)
    vectors = np.asarray([have[v]["context"] for v in videos], dtype=np.float32)
    with atomic.atomic_open(out / "context.npz", "wb", encoding=None) as fh:
        np.savez(fh, videos=np.array(videos, dtype=str), vectors=vectors)
    if cfg.context.source in ("sidecar", "none"):
        return
    from beenet.context.build import default_cache_dir, make_context_source
    from beenet.context.cache import ContextCache

    cache = ContextCache(cfg.context.cache_dir or default_cache_dir())
    for expert in _parts(make_context_source(cfg.context, "cpu", None)):
        cache.put(expert, {v: np.asarray(have[v]["context_parts"][expert.name], np.float32) for v in videos
                           if (have[v].get("context_parts") or {}).get(expert.name) is not None})
