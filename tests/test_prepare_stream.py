"""``beenet prepare`` on a GPU node: workers spread over the GPUs, clips decoded as a stream (the
same bytes as decoding the whole clip, a flat memory per worker at 720p)."""

from __future__ import annotations

import multiprocessing as mp
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from beenet.context.base import evenly_spaced, join_context
from beenet.context.build import make_context_source
from beenet.data.bold import BoLD
from beenet.data.dataset import DataConfig, crop_boxes, crops_of
from beenet.data.joints import load_person_joints
from beenet.data.prepared import clip_path, prepare, read_header
from beenet.data.prepared.build import _WORKER, _worker_init, worker_device
from beenet.data.prepared.format import crop_pixels
from beenet.data.prepared.stream import LABEL_BATCH
from beenet.data.synth import SynthConfig, generate
from beenet.media.transforms import resize_uint8
from beenet.media.video import VideoReader
from beenet.run_config import prepare_settings
from train_helpers import restore_root_logging, tiny_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _logging():
    yield from restore_root_logging()


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """4 clips of 36-44 frames: more frames than one label batch."""
    data = tmp_path_factory.mktemp("stream") / "synth"
    generate(data, SynthConfig(num_clips=4, seed=1, width=96, height=72, min_frames=36, max_frames=44),
             workers=1, show_progress=False)
    return data


@pytest.mark.parametrize("gpus", [1, 2, 3, 8])
def test_worker_i_runs_on_gpu_i_mod_n(gpus):
    assert [worker_device("cuda", i, gpus) for i in range(10)] == [f"cuda:{i % gpus}" for i in range(10)]


def test_an_explicit_device_is_kept():
    assert worker_device("cpu", 5, 4) == "cpu"
    assert worker_device("cuda:1", 2, 4) == "cuda:1"
    assert worker_device("cuda", 3, 0) == "cuda"  # no GPU counted: left to resolve_device's error


def test_pool_workers_are_numbered_and_placed_by_their_init(synth):
    """The pool's initializer draws each worker's number from a shared counter: worker i of a
    2-GPU node gets cuda:(i % 2), for ``run.device`` (auto -> cuda) and an explicit context.device=cuda."""
    counter = mp.get_context("spawn").Value("i", 0)
    task = {"root": str(synth), "device": "cuda", "gpus": 2,
            "context": {"source": "experts", "device": "cuda"}}
    got = []
    for _ in range(3):
        _worker_init(task, counter)
        got.append((_WORKER["index"], _WORKER["device"], _WORKER["context"]["device"]))
    assert got == [(0, "cuda:0", "cuda:0"), (1, "cuda:1", "cuda:1"), (2, "cuda:0", "cuda:0")]
    assert task["context"]["device"] == "cuda"  # the task shared by the workers is not changed
    _worker_init({**task, "context": {"source": "experts", "device": "auto"}}, None)
    assert (_WORKER["index"], _WORKER["device"], _WORKER["context"]["device"]) == (0, "cuda:0", "auto")
    _WORKER.clear()


def _blob(path: Path, base: int, entry: list[int]) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(base + int(entry[0]))
        return fh.read(int(entry[1]))


@pytest.mark.slow  # ~15-20 s of CPU: two random-weight experts label every stored frame
def test_streamed_clips_hold_the_bytes_of_the_whole_clip_decode(synth, tmp_path):
    """Frames, crops, clip and per-frame expert labels of a streamed prepare equal what decoding
    each clip's frames at once (the path before streaming) gives, bit for bit, over clips with
    more than one label batch of frames."""
    data = synth
    cfg = tiny_config("paper", ["data.body_crop=true", "context.source=experts", "context.targets=frame",
                                f"context.cache_dir={tmp_path / 'ctx'}", "context.places_image_size=32",
                                "context.coco_min_size=64", "context.coco_max_size=96", "context.frames_per_clip=2"])
    res = prepare(prepare_settings(cfg), data, tmp_path / "prep", storage="raw", show_progress=False)
    assert res.prepared >= 2 and not res.failed
    bold, dcfg = BoLD(data), DataConfig(**{f: getattr(cfg.data, f) for f in cfg.data.__dataclass_fields__})
    source = make_context_source(cfg.context, "cpu")
    longest = 0
    for video in sorted({i.video for s in ("train", "val", "test") for i in bold.instances(s, protocol="paper")}):
        path = clip_path(res.path, video)
        header, base = read_header(path)
        stored = sorted(int(t) for t in header["frames"])
        with VideoReader(bold.video_path(video)) as reader:
            whole = resize_uint8(reader.read(stored), dcfg.image_size).numpy()
            for k, t in enumerate(stored):
                assert _blob(path, base, header["frames"][str(t)]) == whole[k].tobytes(), (video, t)
            for person in sorted({int(key.split(":")[0]) for key in header["crops"]}):
                idx = np.asarray(sorted(int(k.split(":")[1]) for k in header["crops"] if k.startswith(f"{person}:")))
                joints = load_person_joints(bold.joints_path(video), person, num_frames=reader.num_frames)
                boxes = crop_boxes(dcfg, idx, joints, reader.width, reader.height)
                crops = crop_pixels(crops_of(reader.read(idx), boxes, dcfg.crop_size))
                for k, t in enumerate(idx.tolist()):
                    assert _blob(path, base, header["crops"][f"{person}:{t}"]) == crops[k].tobytes(), (video, t)
            labelled = header["frame_context"]["frames"]
            longest = max(longest, len(labelled))
            pix = reader.read(labelled)
            table = join_context(source.places.label_rows(pix), source.objects.label_rows(pix))
            assert _blob(path, base, header["frame_context"]["blob"]) == table.astype("<f2").tobytes(), video
            for expert in source.parts:
                frames = reader.read(evenly_spaced(reader.num_frames, 2))
                np.testing.assert_array_equal(np.asarray(header["context_parts"][expert.name], np.float32),
                                              expert.label_frames(frames))
    assert longest > LABEL_BATCH  # the labels crossed a batch boundary


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the benchmark reads /proc")
def test_a_720p_prepare_worker_grows_by_a_few_frames_not_a_clip():
    """bench_prepare.py at 1280x720, clips of 160-175 frames, body crops and per-frame targets:
    each worker's peak RSS (VmHWM) stays within 100 MB of what it holds before its first clip
    (torch and beenet imported: ~545 MB here), where the whole-clip decode grew it by ~1 GB."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_prepare.py"), "--clips", "4",
                          "--workers", "2"], capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    peaks = re.search(r"peak RSS per worker \(MB\): ([\d, ]+)", out.stdout)
    base = re.search(r"before its first clip .*?: (\d+) MB; growth while preparing: (-?\d+) MB", out.stdout)
    assert peaks and base, out.stdout
    rss = [float(x) for x in peaks.group(1).split(",")]
    assert rss and max(rss) - float(base.group(1)) <= 100, out.stdout
    assert "projected BoLD prepare" in out.stdout
