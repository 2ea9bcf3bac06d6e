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
    file under the final name. Use as a context manager. ``audio_from``: a video whose first
    audio track goes into the file too (re-encoded to AAC on :meth:`close`, cut at the video's
    length), so an annotated video keeps its input's sound; a file with no audio (or none that
    decodes) gives a silent video, as before.
    """

    def __init__(self, path: str | Path, fps: float, width: int, height: int, crf: int = 23,
                 audio_from: str | Path | None = None) -> None:
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
            self._fps = float(fps)
            self._audio_from, self._audio = None, None
            if audio_from is not None:
                self._audio_from, self._audio = _audio_track(self._container, audio_from)
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
            if self._audio is not None:
                _copy_audio(self._audio_from, self._audio, self._container, self.frames_written / self._fps)
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


def _audio_track(container, source: str | Path):
    """The output AAC stream for ``source``'s first audio track (same rate, mono or stereo), or
    ``(None, None)`` when it has none."""
    try:
        with av.open(str(source)) as src:
            if not src.streams.audio:
                return None, None
            a = src.streams.audio[0].codec_context
            rate, channels = int(a.sample_rate or 48000), int(a.channels or 2)
    except (av.FFmpegError, OSError):
        return None, None
    return Path(source), container.add_stream("aac", rate=rate, layout="mono" if channels == 1 else "stereo")


def _copy_audio(source: Path, stream, container, seconds: float) -> None:
    """Decode ``source``'s first audio track up to ``seconds``, encode it into ``stream``."""
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=stream.codec_context.layout.name,
                                  rate=stream.codec_context.sample_rate)
    rate = stream.codec_context.sample_rate
    written = 0
    with av.open(str(source)) as src:
        for frame in src.decode(src.streams.audio[0]):
            if written >= seconds * rate:
                break
            for out in resampler.resample(frame):
                out.pts = written
                written += out.samples
                for packet in stream.encode(out):
                    container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


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
