"""Writing mp4 files with PyAV (h264, yuv420p): synthetic BoLD clips and annotated predictions."""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def fps_fraction(fps: float) -> Fraction:
    """A frame rate as the exact fraction codecs expect (29.97 -> 30000/1001)."""
    for num, den in ((24000, 1001), (30000, 1001), (60000, 1001)):
        if abs(fps - num / den) < 1e-3:
            return Fraction(num, den)
    return Fraction(fps).limit_denominator(1001)


class VideoWriter:
    """Streams RGB uint8 ``[H, W, 3]`` frames into an mp4.

    Written to ``<path>.part`` and renamed on :meth:`close`, so a crash never leaves a truncated
    file under the final name. Use as a context manager.
    """

    def __init__(self, path: str | Path, fps: float, width: int, height: int, crf: int = 23) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"h264 needs even frame sizes, got {width}x{height}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + ".part")
        self._container = av.open(str(self._tmp), mode="w", format="mp4")
        try:
            self._stream = self._container.add_stream("libx264", rate=fps_fraction(fps))
            self._stream.width, self._stream.height = width, height
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        except BaseException:
            self.abort()
            raise
        self.frames_written = 0

    def write(self, frame: np.ndarray) -> None:
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected uint8 [H, W, 3] frames, got {frame.dtype} {frame.shape}")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()  # a failed flush (disk full) leaves no .part behind
            raise

    def abort(self) -> None:
        """Stop writing and remove the partial file (even when closing the container fails)."""
        container, self._container = self._container, None
        try:
            if container is not None:
                container.close()
        except Exception:
            pass
        finally:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> int:
    """Write every frame of ``frames`` (RGB uint8, same even size) to ``path``; returns the count."""
    writer: VideoWriter | None = None
    try:
        for frame in frames:
            if writer is None:
                writer = VideoWriter(path, fps, frame.shape[1], frame.shape[0])
            writer.write(frame)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is None:
        raise ValueError(f"no frames to write to {path}")
    writer.close()
    return writer.frames_written
