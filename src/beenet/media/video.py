"""Frame-accurate video reading with PyAV: decode only the frames asked for.

Frame index ``t`` is the ``t``-th frame in presentation order (the index BoLD's joints use). The
reader first lists the stream's packets (cheap: no decoding) to map each presentation timestamp
to its index and to know where the keyframes are; this works for variable frame rates and for
containers that do not store a frame count. :meth:`VideoReader.read` then seeks to the keyframe
before a target when that skips decoding, and otherwise decodes forward.
"""

from __future__ import annotations

import bisect
import logging
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
import numpy as np

from beenet.errors import DataNotFoundError, VideoDecodeError

T = TypeVar("T")

log = logging.getLogger(__name__)

#: FFmpeg's AVFMT_TS_DISCONT: the format's timestamps may jump (MPEG program and transport
#: streams), and its seeks search the file for a timestamp rather than look it up in an index.
_AVFMT_TS_DISCONT = 0x200

_AV_ERRORS: tuple[type[BaseException], ...] = (av.FFmpegError, OSError, ValueError, EOFError)


def prefetch(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """``items`` (e.g. :meth:`VideoReader.iter_frames`) produced by a background thread, up to
    ``depth`` ahead of the consumer, in order: decoding overlaps the caller's work on the frames
    before (PyAV and NumPy release the GIL while they decode and convert). An exception of the
    producer is raised here, at the item where it happened. When this generator is closed (by the
    end of a ``for`` loop that breaks, by ``close()``, or by ``contextlib.closing`` when the loop's
    body raises), the thread stops and the source generator is closed in it before ``close()``
    returns; so a reader can be closed right after. Use ``with closing(prefetch(...))`` inside the
    reader's ``with``: an exception's traceback can keep an unclosed generator alive.
    """
    if depth < 1:
        raise ValueError(f"prefetch depth must be >= 1, got {depth}")
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                out.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        it = None
        try:
            it = iter(items)
            for item in it:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put((end, exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="beenet-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = out.get()
            if item is end:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        worker.join()



def _reason(exc: BaseException) -> str:
    """FFmpeg's message without the file name PyAV appends (our messages name the file once)."""
    return str(getattr(exc, "strerror", None) or exc)


class VideoReader:
    """Random and streaming access to the frames of one video (RGB uint8). A context manager.

    ``seek_margin``: seek only when the keyframe before the next target lies more than this many
    frames ahead of the decoder (a seek flushes the decoder, so tiny skips are cheaper decoded).
    ``threads``: decoder threads (None: FFmpeg's choice, about one a core, each holding frames of
    its own; 1 for a process that is one of many workers, each on a core: ``beenet prepare``).
    """

    def __init__(self, path: str | Path, seek_margin: int = 4, threads: int | None = None) -> None:
        self.path = Path(path)
        self.seek_margin = int(seek_margin)
        self._container = None
        self._decoder: Iterator[tuple[int, av.VideoFrame]] | None = None
        if not self.path.is_file():
            raise DataNotFoundError(f"{self.path}: video file not found")
        try:
            self._container = av.open(str(self.path), mode="r")
            if not self._container.streams.video:
                raise VideoDecodeError(f"{self.path}: no video stream in this file")
            self._threads = threads
            self._use_stream()
            self._index_packets()
        except VideoDecodeError:
            self.close()
            raise
        except _AV_ERRORS as exc:
            self.close()
            raise VideoDecodeError(f"{self.path}: cannot open video ({_reason(exc)})") from None
        cc = self._stream.codec_context
        self.width = int(cc.width)
        self.height = int(cc.height)
        self._time_base: Fraction | None = self._stream.time_base
        self._rate: Fraction | None = self._stream.average_rate or self._stream.guessed_rate
        if self.width <= 0 or self.height <= 0:
            self.close()
            raise VideoDecodeError(f"{self.path}: video stream has no frame size (corrupt header?)")
        self._next = -1  # index of the next frame the current decoder yields; -1: none open
        #: Keyframes to seek before the one wanted: raised each time a seek lands after it.
        self._seek_back = 0
        #: Counters for tests and benchmarks: seeks issued and frames decoded so far.
        self.seeks = 0
        self.frames_decoded = 0

    def _use_stream(self) -> None:
        """Take the container's first video stream, with the decoder threads asked for."""
        self._stream = self._container.streams.video[0]
        if self._threads is None:
            self._stream.thread_type = "AUTO"
        else:
            self._stream.thread_count = max(1, int(self._threads))

    # -- packet index ---------------------------------------------------------------------
    def _index_packets(self) -> None:
        """List presentation timestamps and keyframes of every frame without decoding."""
        stream = self._stream
        pts: list[int] = []
        key_pts: list[int] = []
        for packet in self._container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None:
                continue
            pts.append(ts)
            if packet.is_keyframe:
                key_pts.append(ts)
        pts.sort()
        # Presentation order; a timestamp seen twice (broken muxers) counts once.
        self._pts = [p for i, p in enumerate(pts) if i == 0 or p != pts[i - 1]]
        self._pts_to_index = {p: i for i, p in enumerate(self._pts)}
        self._key_index = sorted({self._pts_to_index[p] for p in key_pts if p in self._pts_to_index})
        if not self._pts:
            raise VideoDecodeError(f"{self.path}: the video stream holds no frames (empty or truncated file)")
        if not self._key_index or self._key_index[0] != 0:
            self._key_index.insert(0, 0)
        # AVI stores no presentation times: FFmpeg numbers its packets in decode order, so with
        # B-frames (H.264 in AVI) the decoded frames' timestamps come out scrambled (0, 3, 2, 4,
        # 1, ...). There, frames are numbered as the decoder outputs them (presentation order),
        # from the file's start: no seeking.
        self._output_order = self._container.format.name == "avi" and bool(
            getattr(stream.codec_context, "has_b_frames", False))

    # -- metadata -------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return len(self._pts)

    @property
    def fps(self) -> float:
        if self._rate:
            return float(self._rate)
        if self.num_frames > 1 and self._time_base:
            span = (self._pts[-1] - self._pts[0]) * self._time_base
            return float((self.num_frames - 1) / span) if span else 0.0
        return 0.0

    @property
    def duration(self) -> float:
        """Seconds, from the stream's timestamps (falls back to frames / fps)."""
        tb = self._time_base
        if tb and self.num_frames > 1:
            step = (self._pts[-1] - self._pts[0]) / (self.num_frames - 1)
            return float((self._pts[-1] - self._pts[0] + step) * tb)
        fps = self.fps
        return self.num_frames / fps if fps else 0.0

    @property
    def keyframes(self) -> list[int]:
        """Indices of the keyframes (where a seek can land)."""
        return list(self._key_index)

    # -- decoding -------------------------------------------------------------------------
    def _frames_from(self, index: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decode forward starting at the keyframe at or before ``index`` (seeking if needed).

        Demuxers with an index (mp4, mkv, avi) land a seek to a keyframe's presentation time on
        that keyframe. MPEG program and transport streams (.mpg, .vob, .ts) search the file for a
        timestamp instead and land on a later keyframe, or mid-frame, where the first frame
        decoded is a broken one labelled with the next timestamp; there a seek counts only when
        its first frame lies before the keyframe wanted. A seek that does not count is tried again
        a keyframe earlier (later seeks start that much earlier); before the first keyframe the
        file is opened afresh, which always starts at its first frame.
        """
        if self._output_order:
            self._reopen()
            return self._decode()
        pos = bisect.bisect_right(self._key_index, index) - 1
        k = self._key_index[pos]
        pos -= self._seek_back
        searched = bool(self._container.format.flags & _AVFMT_TS_DISCONT)
        while pos >= (1 if searched else 0):
            self.seeks += 1
            self._container.seek(self._pts[self._key_index[pos]], stream=self._stream, backward=True,
                                 any_frame=False)
            decoder = self._decode()
            first = next(decoder, None)
            if first is not None and (first[0] < k or (first[0] == k and not searched)):
                return self._chain(first, decoder)
            decoder.close()
            log.debug("%s: seek to keyframe %d landed at frame %s; seeking earlier", self.path,
                      self._key_index[pos], None if first is None else first[0])
            self._seek_back = min(self._seek_back + 1, len(self._key_index))
            pos -= 1
        self._reopen()
        return self._decode()

    @staticmethod
    def _chain(first: T, rest: Iterator[T]) -> Iterator[T]:
        try:
            yield first
            yield from rest
        finally:
            rest.close()

    def _reopen(self) -> None:
        """Open the file afresh: decoding starts at its first frame, whatever seeking does."""
        self.seeks += 1
        decoder, self._decoder = self._decoder, None
        if decoder is not None:
            decoder.close()
        self._container.close()
        try:
            self._container = av.open(str(self.path), mode="r")
            self._use_stream()
        except _AV_ERRORS as exc:
            self._container = None
            raise VideoDecodeError(f"{self.path}: cannot open video again ({_reason(exc)})") from None

    def _decode(self) -> Iterator[tuple[int, av.VideoFrame]]:
        last = -1
        try:
            for frame in self._container.decode(self._stream):
                ts = None if self._output_order else frame.pts  # output order: from the start
                idx = self._pts_to_index.get(ts) if ts is not None else None
                if idx is None:
                    if ts is not None and self._pts:
                        idx = min(bisect.bisect_left(self._pts, ts), len(self._pts) - 1)
                    else:
                        idx = last + 1
                last = idx
                self.frames_decoded += 1
                yield idx, frame
        except _AV_ERRORS as exc:
            raise VideoDecodeError(
                f"{self.path}: decoding failed near frame {last + 1} ({_reason(exc)})"
            ) from None

    def _check_indices(self, idx: np.ndarray) -> None:
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_frames):
            bad = int(idx[(idx < 0) | (idx >= self.num_frames)][0])
            raise VideoDecodeError(
                f"{self.path}: frame {bad} requested, but the video has {self.num_frames} frames "
                f"(0..{self.num_frames - 1}); are the joints or annotations of another clip?"
            )

    def read(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames ``indices`` (any order, repeats allowed) as RGB uint8 ``[K, H, W, 3]``."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        self._check_indices(idx)
        out = np.empty((len(idx), self.height, self.width, 3), dtype=np.uint8)
        if idx.size == 0:
            return out
        wanted = np.unique(idx)
        got: dict[int, np.ndarray] = {}
        for target in wanted.tolist():
            if self._decoder is None or self._should_seek(target):
                self._decoder = self._frames_from(target)
                self._next = -1
            for i, frame in self._decoder:
                self._next = i + 1
                if i == target:
                    got[i] = self._to_rgb(frame)
                    break
                if i > target:  # the seek overshot (odd index): start over from the beginning
                    log.debug("%s: seek overshot frame %d (landed at %d), decoding from the start",
                              self.path, target, i)
                    got[target] = self._decode_from_start(target)
                    break
            else:
                self._decoder = None
                raise VideoDecodeError(
                    f"{self.path}: stream ended before frame {target} of {self.num_frames} (truncated video?)"
                )
        for j, i in enumerate(idx.tolist()):
            out[j] = got[i]
        return out

    def _should_seek(self, target: int) -> bool:
        if self._next < 0 or target < self._next:
            return True
        k = self._key_index[bisect.bisect_right(self._key_index, target) - 1]
        return k > self._next + self.seek_margin

    def _decode_from_start(self, target: int) -> np.ndarray:
        self._reopen()
        self._decoder = self._decode()
        for i, frame in self._decoder:
            self._next = i + 1
            if i == target:
                return self._to_rgb(frame)
        self._decoder = None
        raise VideoDecodeError(f"{self.path}: frame {target} not found while decoding (corrupt timestamps?)")

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        # threads=1: PyAV keeps its scaler between calls, and one made with slice threads (its
        # default, 0: auto) hangs for ever in a process forked after it was made (a DataLoader
        # worker decoding clips after the parent decoded one: the threads are not in the child)
        arr = frame.to_ndarray(format="rgb24", threads=1)
        if arr.shape[:2] != (self.height, self.width):  # resolution change mid-stream
            arr = frame.reformat(width=self.width, height=self.height, format="rgb24", threads=1).to_ndarray()
        return arr

    def iter_frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` for ``range(start, stop, step)``, decoding as a stream.

        Only one frame is held at a time, so memory stays flat however long the video is.
        """
        if step < 1:
            raise ValueError(f"step must be >= 1, got {step}")
        stop = self.num_frames if stop is None else min(int(stop), self.num_frames)
        if start >= stop:
            return
        self._check_indices(np.asarray([start]))
        self._decoder = None  # the stream is ours now; a later read() seeks afresh
        self._next = -1
        last = start + (stop - 1 - start) // step * step
        expected = start
        for i, frame in self._frames_from(start):
            if i > last:
                break
            if i >= start and (i - start) % step == 0:
                expected = i + step
                yield i, self._to_rgb(frame)
                if i == last:
                    break
        if expected <= last:
            raise VideoDecodeError(
                f"{self.path}: stream ended at frame {expected} of {self.num_frames} (truncated video?)"
            )

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Release the decoder now (its threads too).

        A paused decode generator refers back to the reader, so without this the codec context
        would live until the garbage collector found the cycle; a process forked meanwhile (a
        DataLoader worker) then inherits a threaded decoder it cannot free, and hangs or crashes.
        """
        decoder, self._decoder = self._decoder, None
        if decoder is not None:
            decoder.close()
        self._stream = None
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"VideoReader({str(self.path)!r}, {self.num_frames} frames, {self.width}x{self.height}, {self.fps:.3f} fps)"
