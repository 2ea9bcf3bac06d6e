"""``context.targets=frame``: per-frame expert labels stored by ``beenet prepare`` and read as the
distillation target of the frame(s) each training sample sees."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from beenet.context.base import normalise_parts
from beenet.context.build import make_context_source
from beenet.data.bold import BoLD
from beenet.data.dataset import BoLDDataset, candidate_frames
from beenet.data.prepared import (
    clip_path,
    context_targets,
    find_prepared,
    fingerprint,
    nearest_rows,
    prepare,
    read_header,
)
from beenet.data.prepared.format import _CachedClip
from beenet.media.video import VideoReader
from beenet.errors import ConfigError
from beenet.labels import CONTEXT_DIM
from beenet.run_config import prepare_settings
from beenet.training.loop import train
from train_helpers import restore_root_logging, tiny_config, write_tiny_synth

# Random-weight experts at small input sizes: meaningless labels, but real networks, offline. The
# threshold 0 lets the random detector's weak boxes count, so the object half varies per frame too.
EXPERTS = ["context.source=experts", "context.places_image_size=32", "context.coco_min_size=32",
           "context.coco_max_size=48", "context.coco_score_threshold=0.0", "context.targets=frame"]


@pytest.fixture(autouse=True)
def _logging():
    yield from restore_root_logging()


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return write_tiny_synth(tmp_path_factory.mktemp("ctxt") / "synth", clips=10)


@pytest.fixture(scope="module")
def prepared(synth, tmp_path_factory) -> tuple[Path, list[str]]:
    """A raw-storage cache of the tiny synth with per-frame expert labels."""
    prep = tmp_path_factory.mktemp("ctxt-prep")
    extra = EXPERTS + [f"context.cache_dir={prep / 'ctx'}"]
    prepare(prepare_settings(tiny_config("demo", extra)), synth, prep, storage="raw", show_progress=False)
    return prep, extra


def _stored(prep: Path, cfg, bold: BoLD, video: str) -> tuple[dict, np.ndarray]:
    cache = find_prepared(prepare_settings(cfg), bold, [video], root=prep)
    assert cache is not None and video in cache.served
    path = clip_path(cache.path, video)
    header, base = read_header(path)
    table = header["frame_context"]
    off, length = table["blob"]
    raw = path.read_bytes()[base + off: base + off + length]
    return table, np.frombuffer(raw, dtype="<f2").reshape(-1, CONTEXT_DIM).astype(np.float32)


def test_prepare_stores_each_experts_label_of_each_frame(synth, prepared):
    """Row k of a clip's table is Places365 and COCO applied to that very decoded frame alone."""
    prep, extra = prepared
    cfg = tiny_config("demo", extra)
    bold = BoLD(synth)
    video = sorted({i.video for i in bold.instances("train", protocol=cfg.run.protocol)})[0]
    table, rows = _stored(prep, cfg, bold, video)
    with VideoReader(bold.video_path(video)) as reader:
        n = reader.num_frames
        inst = [i for i in bold.instances("train", protocol=cfg.run.protocol) if i.video == video][0]
        from beenet.data.joints import load_person_joints
        cand = candidate_frames(load_person_joints(bold.joints_path(video), inst.person_id, num_frames=n), n)
        assert set(cand.tolist()) <= set(table["frames"])  # every frame the sampler can pick is labelled
        frames = reader.read(table["frames"])
    source = make_context_source(cfg.context, "cpu", synth)
    assert len(rows) == len(table["frames"]) > 1
    alone = [source.objects.label_part(frames[k:k + 1]) for k in range(len(rows))]
    for k, objects in enumerate(alone):
        places = source.places.label_part(frames[k:k + 1])
        # float16 storage: 2^-11 relative; neighbouring frames' labels differ by ~3 % (random init).
        np.testing.assert_allclose(rows[k, :365], places, rtol=1e-3, atol=0)
        # Objects come from thresholded, suppressed detections: with random weights the scores sit
        # near the cut, and prepare's batched run can keep a box the one-frame run drops (seen: 2
        # of 80 classes of one frame, on a CPU with AMX). Most classes agree; which frame a row
        # belongs to is the Places half's test (the objects of these frames are almost alike).
        same = np.isclose(rows[k, 365:], objects, rtol=1e-3, atol=1e-7)
        assert same.mean() >= 0.95, (k, np.flatnonzero(~same))
        assert np.abs(rows[k, 365:] - objects).sum() < 0.05, k  # one box's share at most (seen: 0.024)
        assert objects.sum() == pytest.approx(1.0, abs=1e-5)
    for half in (slice(0, 365), slice(365, None)):  # per frame, not one clip vector repeated
        assert not all(np.allclose(rows[0, half], r[half], rtol=1e-2, atol=0) for r in rows[1:])


def test_a_still_gets_the_row_of_its_sampled_frame_and_t_frames_their_mean(synth, prepared):
    prep, extra = prepared
    cfg = tiny_config("demo", extra)
    bold = BoLD(synth)
    inst = bold.instances("train", protocol=cfg.run.protocol)
    videos = sorted({i.video for i in inst})
    cache = find_prepared(prepare_settings(cfg), bold, videos, root=prep)
    assert context_targets(prepare_settings(cfg), cache, videos) == "frame"
    ds = BoLDDataset(bold, inst, cfg.data, train=True, context={}, seed=3, frames=cache.frames(),
                     context_targets="frame")
    ds.set_epoch(1)
    seen = set()
    for index in range(len(ds)):
        sample = ds[index]
        video = inst[index].video
        table, rows = _stored(prep, cfg, bold, video)
        n = len(table["frames"])
        joints = ds._joints(inst[index], max(table["frames"]) + 1)
        t = ds._frame_indices(candidate_frames(joints, max(table["frames"]) + 1), ds.generator(index))
        assert len(t) == 1
        seen.add(int(t[0]))
        row = rows[table["frames"].index(int(t[0]))]
        np.testing.assert_array_equal(sample["context"].numpy(), normalise_parts(row))
        np.testing.assert_allclose(sample["context"].numpy(), row, atol=1e-3)
        assert n >= 1
    assert len(seen) > 1
    # T frames: the mean of their rows, each half scaled to sum 1.
    with _CachedClip(clip_path(cache.path, videos[0]), "raw") as clip:
        table, rows = _stored(prep, cfg, bold, videos[0])
        got = clip.frame_context(np.asarray(table["frames"][:3]))
    np.testing.assert_allclose(got, normalise_parts(rows[:3].mean(axis=0)), rtol=1e-6)
    assert got[:365].sum() == pytest.approx(1.0, abs=1e-5)


def test_label_every_labels_every_kth_frame_and_serves_the_nearest(synth, tmp_path):
    extra = ["context.source=places365", "context.places_image_size=32", "context.targets=frame",
             "context.label_every=3", f"context.cache_dir={tmp_path / 'ctx'}"]
    cfg = tiny_config("demo", extra)
    prepare(prepare_settings(cfg), synth, tmp_path, storage="raw", show_progress=False)
    bold = BoLD(synth)
    video = sorted({i.video for i in bold.instances("train", protocol=cfg.run.protocol)})[0]
    cache = find_prepared(prepare_settings(cfg), bold, [video], root=tmp_path)
    path = clip_path(cache.path, video)
    header, _ = read_header(path)
    stored = sorted(int(t) for t in header["frames"])
    table, rows = _stored(tmp_path, cfg, bold, video)
    assert table["frames"] == stored[::3]
    with _CachedClip(path, "raw") as clip:
        for t in stored:
            nearest = min(table["frames"], key=lambda f: (abs(f - t), f))
            np.testing.assert_array_equal(clip.frame_context(np.asarray([t])),
                                          normalise_parts(rows[table["frames"].index(nearest)]))
    assert nearest_rows(np.array([2, 5, 8]), np.array([0, 3, 4, 6, 7, 9])).tolist() == [0, 0, 1, 1, 2, 2]


def test_frame_targets_need_a_frame_cache_and_never_read_a_clip_cache(synth, tmp_path, caplog):
    """A cache made with clip targets has another fingerprint: a frame run does not use it, and
    refuses to start without per-frame labels (no labelling on the fly)."""
    prep = tmp_path / "prep"
    # sidecar, clip targets
    prepare(prepare_settings(tiny_config("demo")), synth, prep, storage="raw", show_progress=False)
    frame = tiny_config("demo", ["context.targets=frame", f"run.prepared_dir={prep}"])
    bold = BoLD(synth)
    with caplog.at_level(logging.INFO, logger="beenet.data.prepared"):
        assert find_prepared(prepare_settings(frame), bold, ["x"], root=prep) is None
    assert "differs in: context_targets" in caplog.text
    with pytest.raises(ConfigError, match="run 'beenet prepare"):
        train(frame, synth, tmp_path / "run")
    # The sidecar knows one vector per clip: with frame targets every frame gets it.
    prepare(prepare_settings(frame), synth, prep, storage="raw", show_progress=False)
    result = train(frame, synth, tmp_path / "run2")
    assert result["epochs_done"] == 2
    video = sorted({i.video for i in bold.instances("train", protocol=frame.run.protocol)})[0]
    table, rows = _stored(prep, frame, bold, video)
    clip_vec = make_context_source(frame.context, "cpu", synth).label_clip(video, bold.video_path(video))
    np.testing.assert_allclose(rows, np.repeat(clip_vec[None], len(rows), axis=0), atol=1e-3)


def test_frame_targets_change_nothing_for_a_model_without_context_streams(synth, tmp_path, caplog):
    """fusion_context=input distils nothing: it reads the clip vectors, in the same cache as clip."""
    base = ["model.fusion_context=input"]
    clip, frame = tiny_config("demo", base), tiny_config("demo", base + ["context.targets=frame"])
    assert fingerprint(prepare_settings(clip), synth) == fingerprint(prepare_settings(frame), synth)
    prepare(prepare_settings(frame), synth, tmp_path, storage="raw", show_progress=False)
    bold = BoLD(synth)
    videos = sorted({i.video for i in bold.instances("train", protocol=frame.run.protocol)})
    cache = find_prepared(prepare_settings(clip), bold, videos, root=tmp_path)
    with caplog.at_level(logging.INFO, logger="beenet.data.prepared"):
        assert context_targets(prepare_settings(frame), cache, videos) == "clip"
    assert "has no effect" in caplog.text
    assert all("frame_context" not in read_header(clip_path(cache.path, v))[0] for v in videos)


def test_clip_targets_leave_the_cache_files_without_frame_labels(synth, tmp_path):
    cfg = tiny_config("demo")
    assert cfg.context.targets == "clip"
    prepare(prepare_settings(cfg), synth, tmp_path, storage="raw", show_progress=False)
    bold = BoLD(synth)
    videos = sorted({i.video for i in bold.instances("train", protocol=cfg.run.protocol)})
    cache = find_prepared(prepare_settings(cfg), bold, videos, root=tmp_path)
    assert "context_targets" not in cache.manifest["fingerprint"]
    assert all("frame_context" not in read_header(clip_path(cache.path, v))[0] for v in videos)
    assert context_targets(prepare_settings(cfg), cache, videos) == "clip"
    ds = BoLDDataset(bold, bold.instances("train", protocol=cfg.run.protocol), cfg.data, train=True,
                     context=cache.context(videos), frames=cache.frames())
    assert isinstance(ds[0]["context"], torch.Tensor) and ds.context_targets == "clip"
