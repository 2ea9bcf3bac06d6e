"""Browser-playable video: H.264 / VP8 / VP9 / AV1 in mp4 or webm plays in Chromium and Firefox;
anything else gets an H.264 proxy ``<stem>_proxy.mp4`` written once beside the results."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import av

from beenet.atomic import atomic_path

log = logging.getLogger(__name__)

#: Codecs (PyAV names) that browsers play, and the containers they play them in.
PLAYABLE_CODECS = ("h264", "vp8", "vp9", "av1", "libdav1d", "libvpx-vp9")
PLAYABLE_SUFFIXES = (".mp4", ".m4v", ".webm")
PLAYABLE_PIX_FMTS = ("yuv420p", "yuvj420p")


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    pix_fmt: str
    width: int
    height: int
    fps: float
    num_frames: int

    def playable(self, path: Path) -> bool:
        return (path.suffix.lower() in PLAYABLE_SUFFIXES and self.codec in PLAYABLE_CODECS
                and self.pix_fmt in PLAYABLE_PIX_FMTS)


def probe(path: Path) -> VideoInfo:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        cc = s.codec_context
        fps = float(s.average_rate or s.guessed_rate or 0.0)
        n = int(s.frames or 0)
        if n == 0 and s.duration and s.time_base and fps:
            n = int(round(float(s.duration * s.time_base) * fps))
        return VideoInfo(cc.name, str(cc.pix_fmt), int(cc.width), int(cc.height), fps, n)


def proxy_path(out: Path, stem: str) -> Path:
    return out / f"{stem}_proxy.mp4"


def make_proxy(src: Path, dest: Path) -> Path:
    """Transcode ``src`` to H.264 (yuv420p, even size, every frame kept at its time) in ``dest``;
    done once: an existing proxy newer than its source is kept."""
    if dest.exists() and dest.stat().st_mtime >= src.stat().st_mtime:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, atomic_path(dest) as tmp:
        s = inp.streams.video[0]
        rate = s.average_rate or s.guessed_rate or 25
        with av.open(str(tmp), "w", format="mp4") as outc:
            o = outc.add_stream("libx264", rate=rate)
            o.width = int(s.codec_context.width) // 2 * 2
            o.height = int(s.codec_context.height) // 2 * 2
            o.pix_fmt = "yuv420p"
            o.options = {"crf": "23", "preset": "veryfast", "movflags": "+faststart"}
            for frame in inp.decode(s):
                img = frame.reformat(width=o.width, height=o.height, format="yuv420p")
                img.pts = None
                for pkt in o.encode(img):
                    outc.mux(pkt)
            for pkt in o.encode():
                outc.mux(pkt)
    log.info("wrote a browser-playable proxy %s", dest)
    return dest
