"""VideoReader: exactly the requested frames, via seeks or forward decoding, on any container."""

from __future__ import annotations

import gc
import weakref
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from bold_fixture import frame_for_index, index_of_frame
from beenet.media.video import VideoReader, prefetch
from beenet.media.video_writer import write_video
from beenet.errors import DataNotFoundError, VideoDecodeError

H, W = 32, 48


def encode(path: Path, n: int, *, gop: int | None = None, pts_ms: list[int] | None = None, fps: int = 25) -> Path:
    """Encode frames 0..n-1 with PyAV directly (a short GOP, or explicit timestamps)."""
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    opts = {"preset": "veryfast"}
    if gop:
        opts.update(g=str(gop), keyint_min=str(gop), sc_threshold="0")
    stream.options = opts
    if pts_ms is not None:
        stream.time_base = Fraction(1, 1000)
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(frame_for_index(i, H, W), format="rgb24")
        if pts_ms is not None:
            frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    plain = d / "plain.mp4"
    write_video(plain, (frame_for_index(i, H, W) for i in range(30)), fps=29.97)
    gop = encode(d / "gop.mp4", 60, gop=5)
    times, t = [], 0
    for i in range(24):
        times.append(t)
        t += 40 if i % 3 else 110  # variable frame rate
    vfr = encode(d / "vfr.mkv", 24, gop=6, pts_ms=times)
    return {"plain": plain, "gop": gop, "vfr": vfr}


def indices_of(frames: np.ndarray) -> list[int]:
    return [index_of_frame(f) for f in frames]


def test_metadata(clips):
    with VideoReader(clips["plain"]) as r:
        assert (r.num_frames, r.width, r.height) == (30, W, H)
        assert r.fps == pytest.approx(29.97, abs=1e-3)
        assert r.duration == pytest.approx(30 / 29.97, rel=1e-3)
        assert r.keyframes[0] == 0


def test_read_returns_exact_frames_in_requested_order(clips):
    with VideoReader(clips["plain"]) as r:
        out = r.read([7, 0, 29, 7, 13])
        assert out.dtype == np.uint8 and out.shape == (5, H, W, 3)
        assert indices_of(out) == [7, 0, 29, 7, 13]
        assert indices_of(r.read(range(30))) == list(range(30))
        assert r.read([]).shape == (0, H, W, 3)


def test_forward_path_decodes_only_up_to_the_last_target(clips):
    with VideoReader(clips["gop"]) as r:
        assert r.keyframes == list(range(0, 60, 5))
        assert indices_of(r.read([1, 2, 3])) == [1, 2, 3]
        assert r.seeks == 1 and r.frames_decoded == 4
        # Next targets close ahead: keep decoding forward, no new seek.
        assert indices_of(r.read([4, 6, 8])) == [4, 6, 8]
        assert r.seeks == 1 and r.frames_decoded == 9


def test_seek_path_skips_to_the_keyframe_before_the_target(clips):
    with VideoReader(clips["gop"]) as r:
        assert indices_of(r.read([47])) == [47]
        assert r.seeks == 1 and r.frames_decoded == 3  # 45, 46, 47
        assert indices_of(r.read([12, 58, 30])) == [12, 58, 30]
        assert r.seeks == 4  # backwards to 10, then 30's keyframe, then 55's
        assert r.frames_decoded == 3 + 3 + 1 + 4
        assert indices_of(r.read([59, 0])) == [59, 0]


def test_variable_frame_rate_without_frame_count(clips):
    container = av.open(str(clips["vfr"]))
    assert container.streams.video[0].frames == 0  # mkv stores no frame count
    container.close()
    with VideoReader(clips["vfr"]) as r:
        assert r.num_frames == 24
        assert indices_of(r.read([23, 5, 17, 0, 11])) == [23, 5, 17, 0, 11]
    with VideoReader(clips["vfr"]) as r:  # seeks land by timestamp, indices stay exact
        assert indices_of(r.read([21])) == [21]
        assert r.frames_decoded <= 6
        assert indices_of(r.read([2, 14])) == [2, 14]
        assert r.seeks == 3
        assert [i for i, _ in r.iter_frames(3, 20, 4)] == [3, 7, 11, 15, 19]


def test_iter_frames_streams(clips):
    with VideoReader(clips["gop"]) as r:
        it = r.iter_frames(10, 31, 7)
        assert not isinstance(it, (list, tuple))
        got = [(i, index_of_frame(f)) for i, f in it]
        assert got == [(10, 10), (17, 17), (24, 24)]
        assert r.seeks == 1 and r.frames_decoded == 24 - 10 + 1
        assert [i for i, _ in r.iter_frames(55)] == list(range(55, 60))
        assert [i for i, _ in r.iter_frames(58, 100)] == [58, 59]
        assert list(r.iter_frames(59, 59)) == []
        # read() after streaming still gets the right frames.
        assert indices_of(r.read([3, 33])) == [3, 33]


def test_index_past_the_end_names_path_and_count(clips):
    with VideoReader(clips["plain"]) as r:
        with pytest.raises(VideoDecodeError, match=r"plain\.mp4: frame 30 requested.*has 30 frames"):
            r.read([0, 30])
        with pytest.raises(VideoDecodeError, match="frame -1"):
            r.read([-1])
        with pytest.raises(ValueError):
            list(r.iter_frames(0, 5, 0))


def test_broken_files(tmp_path, clips):
    with pytest.raises(DataNotFoundError, match="none.mp4"):
        VideoReader(tmp_path / "none.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01not a video" * 100)
    with pytest.raises(VideoDecodeError, match="junk.mp4"):
        VideoReader(junk)
    cut = tmp_path / "cut.mp4"
    data = clips["plain"].read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) sits at the end: unreadable
    with pytest.raises(VideoDecodeError, match="cut.mp4"):
        VideoReader(cut)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="empty.mp4"):
        VideoReader(empty)


def test_truncated_stream_reports_fewer_frames(tmp_path, clips):
    """A stream cut in the middle (mkv: index not needed) reads as the frames that remain."""
    cut = tmp_path / "cut.mkv"
    data = clips["vfr"].read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.8)])
    with VideoReader(cut) as r:
        n = r.num_frames
        assert 0 < n < 24
        assert indices_of(r.read([n - 1, 0])) == [n - 1, 0]
        with pytest.raises(VideoDecodeError, match=f"has {n} frames"):
            r.read([23])


def test_close_frees_the_decoder_at_once(clips):
    """No reference cycle may keep a threaded decoder alive after close(): a process forked
    meanwhile (a DataLoader worker) would inherit it and hang freeing it."""
    gc.disable()
    try:
        with VideoReader(clips["gop"]) as r:
            r.read([3, 40])  # leaves a paused decode generator behind
        ref = weakref.ref(r)
        del r
        assert ref() is None
    finally:
        gc.enable()


def test_prefetch_keeps_order_and_frames(clips):
    with VideoReader(clips["gop"]) as r:
        plain = [(i, f.copy()) for i, f in r.iter_frames(5, 40)]
        ahead = list(prefetch(r.iter_frames(5, 40), depth=2))
    assert [i for i, _ in ahead] == list(range(5, 40))
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(plain, ahead))


def test_prefetch_raises_the_producers_error_where_it_happened(tmp_path, clips):
    def frames():
        yield 0
        yield 1
        raise VideoDecodeError(f"{tmp_path / 'x.mp4'}: stream ended at frame 2 of 9 (truncated video?)")

    got = []
    with pytest.raises(VideoDecodeError, match="x.mp4: stream ended at frame 2"):
        for item in prefetch(frames(), depth=4):
            got.append(item)
    assert got == [0, 1]


def test_prefetch_stops_and_closes_the_source_when_the_consumer_stops(clips):
    closed = []

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(True)

    for i in prefetch(endless(), depth=3):
        if i == 5:
            break
    assert closed == [True]  # closed in the worker, before the loop ended
    it = prefetch(endless(), depth=3)
    assert next(it) == 0
    it.close()
    assert closed == [True, True]
    # A reader closed right after an early stop (nothing still decoding in the background).
    with VideoReader(clips["plain"]) as r:
        for i, _ in prefetch(r.iter_frames(), depth=2):
            if i == 3:
                break
    with pytest.raises(ValueError, match="depth"):
        list(prefetch([1], depth=0))
    with pytest.raises(TypeError):  # not iterable: raised here at once, not a hang
        next(prefetch(5, depth=2))


def test_prefetch_closed_by_closing_when_the_consumer_raises(clips):
    import threading
    from contextlib import closing

    with pytest.raises(RuntimeError, match="consumer"):
        with VideoReader(clips["plain"]) as r:
            with closing(prefetch(r.iter_frames(), depth=2)) as frames:
                for i, _ in frames:
                    if i == 3:
                        raise RuntimeError("the consumer failed")
    assert not [t for t in threading.enumerate() if t.name == "beenet-prefetch"]


def _clip_with_audio(path, seconds: float = 1.0, fps: int = 25):
    """An mp4 with an h264 video track and a mono AAC tone."""
    import av

    out = av.open(str(path), "w")
    v = out.add_stream("libx264", rate=fps)
    v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
    a = out.add_stream("aac", rate=44100, layout="mono")
    for i in range(int(seconds * fps)):
        for p in v.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 5, np.uint8), format="rgb24")):
            out.mux(p)
    for k in range(int(seconds * 44100 / 1024) + 1):
        tone = (0.3 * np.sin(np.arange(k * 1024, (k + 1) * 1024) / 10.0))[None].astype(np.float32)
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 44100, k * 1024
        for p in a.encode(frame):
            out.mux(p)
    for p in [*v.encode(), *a.encode()]:
        out.mux(p)
    out.close()


def test_writer_keeps_the_sources_audio_cut_at_the_video_length(tmp_path):
    import av

    from beenet.media.video_writer import VideoWriter

    src = tmp_path / "src.mp4"
    _clip_with_audio(src, seconds=2.0)
    with VideoWriter(tmp_path / "out.mp4", 25, 64, 48, audio_from=src) as w:
        for _ in range(25):  # 1 s of video
            w.write(np.zeros((48, 64, 3), np.uint8))
    with av.open(str(tmp_path / "out.mp4")) as c:
        audio = c.streams.audio
        assert len(audio) == 1 and audio[0].codec_context.name == "aac"
        samples = sum(f.samples for f in c.decode(audio=0))
    assert 44100 * 0.95 <= samples <= 44100 * 1.1  # the video's 1 s, not the source's 2 s
    # a source without audio gives a silent file, as before
    with VideoWriter(tmp_path / "silent.mp4", 25, 64, 48, audio_from=tmp_path / "out.mp4.none") as w:
        w.write(np.zeros((48, 64, 3), np.uint8))
    with av.open(str(tmp_path / "silent.mp4")) as c:
        assert not c.streams.audio


def encode_mpeg(path: Path, n: int, *, b_frames: int, container: str = "mpeg") -> Path:
    """MPEG-2 in an MPEG program stream (``container="mpeg"``: .mpg, as DVDs and old cameras write
    it) or transport stream (``"mpegts"``: .ts, as broadcast and TV recorders do), GOPs of 12;
    a noisy strip on the left makes each keyframe span many of the stream's 2 KiB packs, so a
    seek's byte search can land inside one. The rest of each frame encodes its index."""
    h, w = 120, 160
    noise = np.random.default_rng(0).integers(0, 256, size=(n, h, w // 4, 3), dtype=np.uint8)
    container = av.open(str(path), "w", format=container)
    stream = container.add_stream("mpeg2video", rate=25)
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    stream.bit_rate = 4_000_000
    stream.codec_context.gop_size = 12
    stream.codec_context.max_b_frames = b_frames
    for i in range(n):
        frame = frame_for_index(i, h, w)
        frame[:, : w // 4] = noise[i]
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


@pytest.mark.parametrize(("container", "b_frames"), [("mpeg", 0), ("mpeg", 2), ("mpegts", 0)])
def test_mpeg_program_and_transport_streams_read_every_frame_in_order(tmp_path, container, b_frames):
    """An .mpg's or .ts's seeks search the file by timestamp and land a keyframe late or
    mid-frame; the reader still gives frame 0 first and every frame under its own index, streamed
    or at random."""
    path = encode_mpeg(tmp_path / f"clip.{container}", 60, b_frames=b_frames, container=container)
    with VideoReader(path) as r:
        assert r.num_frames == 60 and r.keyframes[0] == 0
        streamed = [(i, index_of_frame(f[:, 40:])) for i, f in r.iter_frames()]
        assert streamed == [(i, i) for i in range(60)]
        order = np.random.default_rng(1).permutation(60).tolist()
        assert [index_of_frame(r.read([i])[0][:, 40:]) for i in order] == order
        assert [i for i, _ in r.iter_frames(30, 60, 7)] == [30, 37, 44, 51, 58]


def test_h264_with_b_frames_in_avi_comes_in_presentation_order(tmp_path):
    """AVI stores no presentation times: FFmpeg numbers its packets in decode order, so H.264
    with B-frames in an AVI decodes with scrambled timestamps (musicalgestures' pianist.avi:
    labels 0, 3, 2, 4, 1, ...). The reader numbers such frames as the decoder outputs them: every
    index is its own frame, in iter_frames, in read (any order, backwards too) and mid-file."""
    path = tmp_path / "bframes.avi"
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    stream.options = {"preset": "veryfast", "bf": "3", "g": "12"}
    for i in range(40):
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame_for_index(i, H, W), format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    with av.open(str(path)) as c:  # the file really has the scrambled timestamps
        stamps = [f.pts for f in c.decode(video=0)]
    assert stamps != sorted(stamps)
    with VideoReader(path) as r:
        assert r.num_frames == 40
        got = [(i, index_of_frame(f)) for i, f in r.iter_frames()]
        assert got == [(i, i) for i in range(40)]
        assert indices_of(r.read([30, 5, 17, 5, 39, 0])) == [30, 5, 17, 5, 39, 0]
        assert [index_of_frame(f) for _, f in r.iter_frames(20, 30, 3)] == [20, 23, 26, 29]
