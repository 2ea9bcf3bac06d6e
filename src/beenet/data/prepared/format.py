"""The on-disk format of a prepared cache: frames as bytes, clip files, the manifest, ``context.npz``.

Layout of one cache::

    <root>/<key>/manifest.json        fingerprint, clips (source stamps, frames, bytes, crc32), failed
    <root>/<key>/context.npz          videos [N], vectors float32 [N, 445] (when the run reads context)
    <root>/<key>/clips/<video>.frames one file per clip

A clip file is ``MAGIC``, a little-endian uint64 header length, a JSON header, the frame blobs
and a 16-byte end record (length and CRC-32 of all before it: :mod:`.integrity`). The header
names the clip, its frame count and size, the content stamp (size, digest of the first and last
64 KiB) of the video and joints files it was made from, the offset and length of each stored frame (the frames any
sampler can ask for: every frame where an annotated person is present, or every frame of a clip
without joints) and of each person crop (``body_crop``), and the clip's context vector. Whole
frames are stored after :func:`~beenet.media.transforms.resize_uint8`, so ``raw`` storage gives
the very tensors decoding on the fly gives; ``jpeg`` (quality 95) is lossy and 6x smaller (see
``docs/training.md``). Crops are stored as uint8 at ``crop_size`` (rounded from the float crop).

:class:`PreparedFrames` reads the clip files: a :class:`~beenet.data.dataset.FrameSource`. A clip
file found damaged while reading (cut short, overwritten, a header that does not parse) is named
in a WARNING and its clip decoded from the video instead; ``beenet prepare`` re-makes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch

from beenet import atomic
from beenet.context.base import normalise_parts
from beenet.data.bold import BoLD
from beenet.data.dataset import VideoFrames, _VideoClip
from beenet.data.prepared.integrity import DamagedClipError, content_stamp, seen_stamp, trailer
from beenet.data.worker_cache import BoundedCache
from beenet.errors import ConfigError, DataNotFoundError
from beenet.labels import CONTEXT_DIM
from beenet.media.transforms import IMAGENET_MEAN, IMAGENET_STD, Box, normalize

#: Bump when the clip file layout or what is stored in it changes. 2: content stamps (a cache
#: survives a copy of the dataset), the end record with a CRC-32, the annotations' digest in the
#: fingerprint instead of the data folder's path.
PREPARED_FORMAT = 2
MAGIC = b"BEENETF1"
Storage = Literal["jpeg", "png", "raw"]
STORAGES: tuple[str, ...] = ("jpeg", "png", "raw")
#: The storage ``beenet prepare`` uses unless told: JPEG q95 (measured in docs/training.md).
DEFAULT_STORAGE = "jpeg"
JPEG_QUALITY = 95
MANIFEST = "manifest.json"
CONTEXT_FILE = "context.npz"

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- frames <-> bytes


def encode_frame(frame: np.ndarray, storage: str) -> bytes:
    """uint8 RGB ``[H, W, 3]`` -> bytes in ``storage``."""
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    if storage == "raw":
        return frame.tobytes()
    import cv2  # lazy: OpenCV is slow to import and raw storage does without it

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
    import cv2  # lazy: OpenCV is slow to import and raw storage does without it

    try:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ValueError(f"not a decodable image ({exc})") from None
    if img is None:
        raise ValueError("not a decodable image")
    return img[..., ::-1]


def decode_planes(data: bytes, storage: str, size: int, out: np.ndarray) -> None:
    """Bytes of one stored frame -> ``out``, uint8 ``[3, size, size]`` (R, G, B planes): the pixels
    of :func:`decode_frame` laid out channels first, without its reversed-stride copy (a worker's
    biggest cost after the decode itself)."""
    if storage == "raw":
        out[...] = np.frombuffer(data, dtype=np.uint8).reshape(size, size, 3).transpose(2, 0, 1)
        return
    import cv2  # lazy: OpenCV is slow to import and raw storage does without it

    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("not a decodable image")
    blue, green, red = cv2.split(img)
    out[0], out[1], out[2] = red, green, blue


def crop_pixels(crops: torch.Tensor) -> np.ndarray:
    """Normalised float crops ``[K, 3, C, C]`` -> uint8 ``[K, C, C, 3]`` (rounded pixels)."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    x = (crops * std + mean).mul_(255.0).round_().clamp_(0, 255)
    return x.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


# --------------------------------------------------------------------------- clip files


def clip_stamp(bold: BoLD, video: str) -> list[Any]:
    """What a prepared clip was made from, by content: ``[video size, video digest, joints size,
    joints digest]`` (:func:`~.integrity.content_stamp`; -1 and "" for a missing file). Where the
    dataset lives and when its files were copied do not enter."""
    return content_stamp(bold.video_path(video)) + content_stamp(bold.joints_path(video))


def clip_seen(bold: BoLD, video: str) -> list[int]:
    """``[video size, mtime, joints size, mtime]``: recorded with each clip so that a lookup
    reads a source again (:func:`clip_stamp`) only when these changed."""
    return seen_stamp(bold.video_path(video)) + seen_stamp(bold.joints_path(video))


def clip_path(cache_dir: Path, video: str) -> Path:
    return cache_dir / "clips" / f"{video}.frames"


def write_clip(path: Path, header: dict[str, Any], blobs: Sequence[bytes]) -> tuple[int, int]:
    """Write one clip file atomically (the header, the blobs, the end record); the header's
    offsets are relative to the first blob. Returns (file size, CRC-32 of all but the end record)."""
    head = json.dumps(header, separators=(",", ":")).encode()
    crc, body = 0, 0
    with atomic.atomic_open(path, "wb", encoding=None) as fh:
        for part in (MAGIC, struct.pack("<Q", len(head)), head, *blobs):
            fh.write(part)
            crc, body = zlib.crc32(part, crc), body + len(part)
        fh.write(trailer(body, crc))
    return body + len(trailer(0, 0)), crc


def read_header(path: Path, size: int | None = None) -> tuple[dict[str, Any], int]:
    """The JSON header of a clip file and the offset where its blobs start. A file that is not
    ``size`` bytes (when given), lacks the magic, or whose header does not fit or parse raises
    :class:`~.integrity.DamagedClipError` naming it; the header length is checked against the
    file's size before anything is read."""
    def damaged(why: str) -> DamagedClipError:
        return DamagedClipError(f"{path}: damaged prepared clip file ({why})")

    try:
        with open(path, "rb") as fh:
            actual = os.fstat(fh.fileno()).st_size
            if size is not None and actual != size:
                raise damaged(f"{actual} bytes, the manifest records {size}: cut short or overwritten")
            if fh.read(len(MAGIC)) != MAGIC:
                raise damaged("it does not start as one: overwritten")
            (n,) = struct.unpack("<Q", fh.read(8).ljust(8, b"\xff"))
            if not 2 <= n <= actual - len(MAGIC) - 8:
                raise damaged(f"header length {n} does not fit its {actual} bytes")
            header = json.loads(fh.read(n))
    except OSError as exc:
        raise damaged(f"cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise damaged(f"the header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise damaged("the header is not a JSON object")
    return header, len(MAGIC) + 8 + n


def nearest_rows(labelled: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """For each frame of ``indices``, the row in sorted ``labelled`` of the nearest labelled frame
    (the earlier one on a tie)."""
    pos = np.clip(np.searchsorted(labelled, indices), 0, len(labelled) - 1)
    before = np.clip(pos - 1, 0, len(labelled) - 1)
    take_before = np.abs(indices - labelled[before]) <= np.abs(labelled[pos] - indices)
    return np.where(take_before, before, pos)


class ClipIndex:
    """What a clip file's header says, kept compact for a worker's cache: the header's small fields,
    and the frame and crop tables as sorted int64 keys and ``[offset, length]`` rows (~24 bytes a
    frame, where the JSON's dict takes ~200)."""

    def __init__(self, header: dict[str, Any], base: int) -> None:
        self.base = base
        self.frame_keys, self.frame_rows = _table({int(t): e for t, e in header.pop("frames", {}).items()})
        crops = header.pop("crops", None) or {}
        self.crop_keys, self.crop_rows = _table({_crop_key(*map(int, k.split(":"))): e for k, e in crops.items()})
        self.header = header  # what is left: names, sizes, the context vector and frame_context's table

    @property
    def nbytes(self) -> int:
        """Bytes held (the arrays, the context vector's floats, about 100 for each other field)."""
        arrays = sum(a.nbytes for a in (self.frame_keys, self.frame_rows, self.crop_keys, self.crop_rows))
        ctx = self.header.get("context")
        labelled = (self.header.get("frame_context") or {}).get("frames") or ()
        return arrays + 32 * (len(ctx) if isinstance(ctx, list) else 0) + 32 * len(labelled) + 100 * len(self.header)

    @staticmethod
    def lookup(keys: np.ndarray, rows: np.ndarray, key: int) -> tuple[int, int] | None:
        i = int(np.searchsorted(keys, key))
        if i < len(keys) and int(keys[i]) == key:
            return int(rows[i, 0]), int(rows[i, 1])
        return None


def _crop_key(person_id: int, t: int) -> int:
    return (int(person_id) << 32) | int(t)


def _table(entries: dict[int, Any]) -> tuple[np.ndarray, np.ndarray]:
    keys = np.asarray(sorted(entries), dtype=np.int64)
    rows = np.asarray([entries[int(k)] for k in keys], dtype=np.int64).reshape(len(keys), 2)
    return keys, rows


def read_index(path: Path, size: int | None = None) -> ClipIndex:
    """The :class:`ClipIndex` of the clip file ``path`` (its header checked by :func:`read_header`;
    a table that is not one raises :class:`~.integrity.DamagedClipError` naming the file)."""
    header, base = read_header(path, size)
    try:
        return ClipIndex(header, base)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise DamagedClipError(f"{path}: damaged prepared clip file (its frame or crop table: {exc})") from None


class _CachedClip:
    """One prepared clip: serves exactly the frames (and crops) stored for it. ``index`` is its
    header when the caller already read it (:class:`PreparedFrames` keeps them per worker): then
    the file is opened once, for the frames only. A damage found while reading
    (:class:`~.integrity.DamagedClipError`) goes to ``fallback``, which returns the clip decoded
    from its video; this clip then serves from that (without one, it raises)."""

    def __init__(self, path: Path, storage: str, index: ClipIndex | None = None, size: int | None = None,
                 fallback: Callable[[DamagedClipError], Any] | None = None) -> None:
        self.path = path
        self.storage = storage
        self.index = index if index is not None else read_index(path, size)
        self.header, self._base = self.index.header, self.index.base
        try:
            self.num_frames = int(self.header["num_frames"])
            self.width, self.height = int(self.header["width"]), int(self.header["height"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DamagedClipError(f"{path}: damaged prepared clip file (header lacks {exc})") from None
        self._fh = open(path, "rb")
        self._fallback = fallback
        self._video: Any = None
        self._last: np.ndarray | None = None
        self._fallback = fallback
        self._video: Any = None

    def _blob(self, entry: Sequence[int]) -> bytes:
        try:
            offset, length = int(entry[0]), int(entry[1])
            self._fh.seek(self._base + offset)
        except (TypeError, ValueError, IndexError, OSError) as exc:
            raise DamagedClipError(f"{self.path}: damaged prepared clip file (entry {entry!r}: {exc})") from None
        data = self._fh.read(length)
        if len(data) != length:
            raise DamagedClipError(f"{self.path}: damaged prepared clip file (cut short: {len(data)} of "
                                   f"{length} bytes at offset {self._base + offset})")
        return data

    def _decode(self, data: bytes, size: int, out: np.ndarray | None = None) -> np.ndarray:
        """A stored image, decoded (into ``out``'s channel planes when given: a frame)."""
        try:
            if out is not None:
                decode_planes(data, self.storage, size, out)
                return out
            return decode_frame(data, self.storage, size)
        except ValueError as exc:
            raise DamagedClipError(f"{self.path}: damaged prepared clip file (a stored image does not "
                                   f"decode: {exc})") from None

    def _damaged(self, exc: DamagedClipError) -> Any:
        if self._fallback is None:
            raise exc
        self._fh.close()
        self._video = self._fallback(exc)
        return self._video

    def frames(self, indices: np.ndarray, size: int) -> torch.Tensor:
        if self._video is None:
            try:
                return self._frames(indices, size)
            except DamagedClipError as exc:
                self._damaged(exc)
        return self._video.frames(indices, size)

    def _frames(self, indices: np.ndarray, size: int) -> torch.Tensor:
        if size != int(self.header["image_size"]):
            raise ConfigError(f"{self.path}: prepared at image size {self.header['image_size']}, asked for {size}")
        ix = self.index
        out = np.empty((len(indices), 3, size, size), dtype=np.uint8)  # channels first: what the dataset ships
        for k, t in enumerate(np.asarray(indices).tolist()):
            entry = ix.lookup(ix.frame_keys, ix.frame_rows, int(t))
            if entry is None:
                raise DataNotFoundError(
                    f"{self.path}: frame {t} of clip {self.header['clip']!r} is not in the prepared cache "
                    "(the cache stores the frames of the annotated persons); run 'beenet prepare' again"
                )
            self._decode(self._blob(entry), size, out[k])
        self._last = np.asarray(indices)
        return torch.from_numpy(out).permute(0, 2, 3, 1)  # [K, S, S, 3] as the protocol says, a view

    def frame_context(self, indices: np.ndarray) -> np.ndarray:
        """The per-frame distillation target of frames ``indices`` (``context.targets=frame``):
        the stored label of each frame (of the nearest labelled frame with ``context.label_every``
        > 1), averaged over the frames, each half scaled to sum 1: float32 ``[445]``."""
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
        if self._video is None:
            try:
                return self._crops(person_id, indices, size)
            except DamagedClipError as exc:
                self._damaged(exc).frames(indices, size)  # the video clip crops the frames it read last
        return self._video.crops(person_id, indices, boxes, size)

    def _crops(self, person_id: int, indices: np.ndarray, size: int) -> torch.Tensor:
        if size != int(self.header.get("crop_size") or -1):
            raise ConfigError(f"{self.path}: prepared without crops of size {size}")
        ix = self.index
        out = np.empty((len(indices), size, size, 3), dtype=np.uint8)
        for k, t in enumerate(np.asarray(indices).tolist()):
            entry = ix.lookup(ix.crop_keys, ix.crop_rows, _crop_key(person_id, t))
            if entry is None:
                raise DataNotFoundError(f"{self.path}: no crop of person {person_id} in frame {t}; "
                                        "run 'beenet prepare' again")
            out[k] = self._decode(self._blob(entry), size)
        x = torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
        return normalize(x).contiguous()

    def close(self) -> None:
        self._fh.close()
        if self._video is not None:
            self._video.close()

    def __enter__(self) -> "_CachedClip":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class PreparedFrames:
    """A frame source reading a prepared cache; clips it does not hold (failed, changed since,
    added later) are decoded from the video, as :class:`~beenet.data.dataset.VideoFrames` does,
    and so are clips whose file turns out damaged (named once per process in a WARNING).
    ``sizes``: each clip file's size as the manifest records it (checked at each open)."""

    #: Bytes of clip headers each process (each DataLoader worker) keeps (~4 kB a clip of 167
    #: stored frames: the whole of BoLD's 9,876 clips fits).
    INDEX_CACHE_BYTES = 64 << 20

    def __init__(self, cache_dir: str | Path, storage: str, served: set[str],
                 sizes: dict[str, int] | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.storage = storage
        self.served = served
        self.sizes = dict(sizes or {})
        self.damaged: set[str] = set()
        self._video = VideoFrames()
        self._indices = BoundedCache(self.INDEX_CACHE_BYTES)

    def open(self, bold: BoLD, video: str) -> "_CachedClip | _VideoClip":
        if video in self.served and video not in self.damaged:
            try:
                clip = _CachedClip(clip_path(self.cache_dir, video), self.storage, self._indices.get(video),
                                   self.sizes.get(video), lambda exc: self._fall_back(bold, video, exc))
            except DamagedClipError as exc:
                return self._fall_back(bold, video, exc)
            self._indices.put(video, clip.index, clip.index.nbytes)
            return clip
        return self._video.open(bold, video)

    def _fall_back(self, bold: BoLD, video: str, exc: DamagedClipError) -> _VideoClip:
        if video not in self.damaged:
            self.damaged.add(video)
            log.warning("%s; decoding clip %s from its video instead (run 'beenet prepare' again to re-make "
                        "the file)", exc, video)
        return self._video.open(bold, video)


# --------------------------------------------------------------------------- manifest, context.npz


def cache_key(fp: dict[str, Any]) -> str:
    """The folder name of the cache of fingerprint ``fp``: 16 hex digits of its sha256."""
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


#: What the manifest records of each clip: its sources' content stamps (:func:`clip_stamp`) and
#: (size, mtime) when stamped (:func:`clip_seen`), its stored frames, its file's size and CRC-32.
ENTRY_KEYS = ("stamp", "seen", "frames", "bytes", "crc32")


def write_manifest(out: Path, fp: dict[str, Any], entries: dict[str, dict[str, Any]],
                   failed: list[tuple[str, str]], complete: bool) -> None:
    clips = {v: {k: e[k] for k in ENTRY_KEYS} for v, e in sorted(entries.items())}
    atomic.write_json(out / MANIFEST, {"fingerprint": fp, "key": cache_key(fp), "complete": complete,
                                       "clips": clips, "failed": [list(f) for f in failed]})


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the cache folder ``path``: OSError when it cannot be read, ValueError
    (saying what is wrong) when it is not JSON or not a manifest of this format."""
    manifest = json.loads((path / MANIFEST).read_text())
    if not isinstance(manifest, dict):
        raise ValueError(f"a JSON {type(manifest).__name__}, not an object")
    fp, clips = manifest.get("fingerprint"), manifest.get("clips")
    if not isinstance(fp, dict) or fp.get("storage") not in STORAGES:
        raise ValueError("no fingerprint with a storage")
    if fp.get("format") != PREPARED_FORMAT:
        return manifest  # an older format: its key never matches a run of this version
    if not isinstance(clips, dict) or not isinstance(manifest.get("failed", []), list):
        raise ValueError("no 'clips' table")
    for video, entry in clips.items():
        if not isinstance(entry, dict) or any(k not in entry for k in ENTRY_KEYS) \
                or not isinstance(entry["bytes"], int) or not isinstance(entry["stamp"], list):
            raise ValueError(f"clip {video!r} has no valid entry")
    return manifest


def write_context_table(out: Path, vectors: dict[str, Any]) -> None:
    """``context.npz`` of the cache: ``videos`` (sorted) and their float32 ``vectors``."""
    videos = sorted(vectors)
    table = np.asarray([vectors[v] for v in videos], dtype=np.float32)
    with atomic.atomic_open(out / CONTEXT_FILE, "wb", encoding=None) as fh:
        np.savez(fh, videos=np.array(videos, dtype=str), vectors=table)


def read_context_table(out: Path) -> dict[str, np.ndarray] | None:
    """``{video: float32[445]}`` from the cache's ``context.npz``; None when it has none."""
    path = out / CONTEXT_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return dict(zip((str(v) for v in data["videos"]), np.asarray(data["vectors"], np.float32)))
