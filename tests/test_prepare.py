"""``beenet prepare``: one decode per clip, a cache train and eval find by fingerprint, resumable."""

from __future__ import annotations

import csv
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from beenet.cli import main
from beenet.data.bold import BoLD
from beenet.data.dataset import BoLDDataset
from beenet.data.prepared import cache_key, find_prepared, fingerprint, prepare
from beenet.errors import DataNotFoundError
from beenet.run_config import prepare_settings
from beenet.training.loader import resolve_num_workers
from beenet.training.loop import train
from held_pipe import HANG_S, gated_beenet, reaped, signal_held
from train_helpers import TINY, restore_root_logging, tiny_config, write_tiny_synth


@pytest.fixture(autouse=True)
def _logging():
    yield from restore_root_logging()


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return write_tiny_synth(tmp_path_factory.mktemp("prep") / "synth", clips=32)


def _sets(extra: list[str]) -> list[str]:
    return [x for t in TINY + extra for x in ("--set", t)]


def _metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(fh)]


def test_prepare_resumes_and_lists_a_corrupt_clip(synth, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(synth, data)
    bold = BoLD(data)
    run = tiny_config("demo").run
    clips = sorted({i.video for s in ("train", "val", "test")
                    for i in bold.instances(s, protocol=run.protocol, seed=run.split_seed)})
    bad = bold.video_path(clips[-1])
    bad.write_bytes(b"this is not an mp4")
    prep = tmp_path / "prep"
    args = ["prepare", "--data", str(data), "--config", "demo", "--out", str(prep), *_sets([])]
    assert main(args + ["--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert "0 reused, 3 decoded now" in out and "run the same command again" in out
    assert main(args) == 0
    out = capsys.readouterr().out
    n = len(clips)
    assert f"{n - 1} of {n} clips (3 reused, {n - 4} decoded now), 1 failed" in out
    assert f"failed: {bad}:" in out
    # Nothing left to do: every clip is reused, the corrupt one is tried again and listed again.
    assert main(args) == 0
    assert f"({n - 1} reused, 0 decoded now), 1 failed" in capsys.readouterr().out
    # The dataset reads the corrupt clip from the video (and fails there, as without a cache).
    cfg = tiny_config("demo")
    cache = find_prepared(prepare_settings(cfg), bold, clips, root=prep)
    assert cache is not None and bad.relative_to(data / "videos").as_posix() not in cache.served
    assert len(cache.served) == n - 1


def test_cache_serves_exactly_the_frames_it_stores(synth, tmp_path):
    cfg = tiny_config("demo")
    prepare(prepare_settings(cfg), synth, tmp_path, storage="raw", show_progress=False)
    bold = BoLD(synth)
    inst = bold.instances("train")
    cache = find_prepared(prepare_settings(cfg), bold, [i.video for i in inst], root=tmp_path)
    assert cache is not None and len(cache.served) == len({i.video for i in inst})
    ds_cache = BoLDDataset(bold, inst, cfg.data, train=True, frames=cache.frames(), seed=3)
    ds_video = BoLDDataset(bold, inst, cfg.data, train=True, seed=3)
    for epoch in (0, 1):
        ds_cache.set_epoch(epoch)
        ds_video.set_epoch(epoch)
        for i in range(len(inst)):
            a, b = ds_cache[i], ds_video[i]
            assert torch.equal(a["frames"], b["frames"]), (epoch, i)
            assert torch.equal(a["skeleton"], b["skeleton"])
    # A frame the sampler could never ask for (the person is not in it) is not stored.
    with cache.frames().open(bold, inst[0].video) as clip:
        stored = {int(t) for t in clip.index.frame_keys}
        missing = sorted(set(range(clip.num_frames)) - stored)
        if missing:
            with pytest.raises(DataNotFoundError, match="not in the prepared cache"):
                clip.frames(np.array([missing[0]]), cfg.data.image_size)


def test_body_crops_from_the_cache_match_within_rounding(synth, tmp_path):
    cfg = tiny_config("demo", ["data.body_crop=true"])
    prepare(prepare_settings(cfg), synth, tmp_path, storage="raw", show_progress=False)
    bold = BoLD(synth)
    inst = bold.instances("val")
    cache = find_prepared(prepare_settings(cfg), bold, [i.video for i in inst], root=tmp_path)
    a = BoLDDataset(bold, inst, cfg.data, train=False, frames=cache.frames())[0]
    b = BoLDDataset(bold, inst, cfg.data, train=False)[0]
    assert torch.equal(a["frames"], b["frames"])
    # Crops are stored as uint8: at most half a grey level off, in normalised units 0.5/255/0.225.
    assert (a["crops"] - b["crops"]).abs().max().item() <= 0.5 / 255 / 0.224 + 1e-5


def test_fingerprint_mismatch_is_not_used_and_says_why(synth, tmp_path, caplog):
    prepare(prepare_settings(tiny_config("demo")), synth, tmp_path, storage="raw", show_progress=False)
    bold = BoLD(synth)
    other = tiny_config("demo", ["data.image_size=48"])
    with caplog.at_level(logging.INFO, logger="beenet.data.prepared"):
        assert find_prepared(prepare_settings(other), bold, ["x"], root=tmp_path) is None
    assert "does not match this run (differs in: image_size)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="beenet.data.prepared"):
        assert find_prepared(prepare_settings(tiny_config("demo")), bold, ["x"], root=tmp_path / "none") is None
    assert "no prepared cache" in caplog.text


def test_a_changed_video_is_decoded_again_not_served_stale(synth, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synth, data)
    cfg = tiny_config("demo")
    prepare(prepare_settings(cfg), data, tmp_path / "prep", storage="raw", show_progress=False)
    bold = BoLD(data)
    videos = sorted({i.video for i in bold.instances("train")})
    path = bold.video_path(videos[0])
    # A new mtime alone (a copy, a touch) changes nothing: clips are matched by content.
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    cache = find_prepared(prepare_settings(cfg), bold, videos, root=tmp_path / "prep")
    assert len(cache.served) == len(videos)
    # Another video under the clip's name is decoded on the fly, and prepared again.
    shutil.copyfile(bold.video_path(videos[1]), path)
    cache = find_prepared(prepare_settings(cfg), bold, videos, root=tmp_path / "prep")
    assert videos[0] not in cache.served and len(cache.served) == len(videos) - 1
    assert prepare(prepare_settings(cfg), data, tmp_path / "prep", storage="raw", show_progress=False).prepared == 1


@pytest.mark.parametrize("storage", ["raw", "jpeg"])
def test_train_and_eval_from_the_cache_match_on_the_fly(synth, tmp_path, storage, caplog):
    """Same seed, same metrics: exactly with raw storage; JPEG q95 is lossy (difference printed)."""
    from beenet.evaluation.evaluate import evaluate_checkpoint

    prep = tmp_path / "prep"
    cfg = tiny_config("demo")
    prepare(prepare_settings(cfg), synth, prep, storage=storage, show_progress=False)
    with caplog.at_level(logging.INFO):
        cached = train(tiny_config("demo", [f"run.prepared_dir={prep}"]), synth, tmp_path / "cached")
    assert "using prepared cache" in caplog.text
    assert "context labels of" in caplog.text  # the sidecar's vectors came from the cache
    fly = train(tiny_config("demo", ["run.prepared_dir=off"]), synth, tmp_path / "fly")
    a, b = _metrics(tmp_path / "cached"), _metrics(tmp_path / "fly")
    # Scored on the train split: the tiny val split leaves most categories without a positive.
    ev_c = evaluate_checkpoint(synth, tmp_path / "cached" / "best.pt", split="train", prepared_dir=prep,
                               plots=False, device="cpu")
    ev_f = evaluate_checkpoint(synth, tmp_path / "cached" / "best.pt", split="train",
                               prepared_dir=tmp_path / "none", plots=False, device="cpu")
    keys = ("mAP", "mRA", "mR2", "ERS")
    assert all(ev_f[k] is not None for k in keys)
    if storage == "raw":
        assert a == b  # every epoch's train loss and val scores
        assert all(ev_c[k] == ev_f[k] for k in keys)
    else:
        train_diff = max(abs(float(x["train_loss"]) / float(y["train_loss"]) - 1) for x, y in zip(a, b))
        diff = {k: round(abs(ev_c[k] - ev_f[k]), 5) for k in keys}
        print(f"\njpeg q95 vs on the fly (same seed): train loss max relative diff {train_diff:.5f}; "
              f"eval on train split: {diff}")
        # Measured at 32 px: loss 0.7 % apart, eval scores within 0.006 (docs/training.md).
        assert train_diff < 0.03 and all(d < 0.02 for d in diff.values()), (train_diff, diff)


@pytest.mark.slow
def test_expert_labels_from_the_prepare_pass_equal_labelling_on_the_fly(synth, tmp_path):
    """Places365 + COCO (random init, offline) labelled in the prepare pass: the same vectors as
    the context cache computes by decoding the clips again, and that cache is filled by prepare."""
    from beenet.context.build import load_context
    from beenet.context.cache import ContextCache
    from beenet.context.build import make_context_source

    extra = ["context.source=experts", f"context.cache_dir={tmp_path / 'ctx'}", "context.coco_min_size=64",
             "context.coco_max_size=96", "context.frames_per_clip=2"]
    cfg = tiny_config("demo", extra)
    prepare(prepare_settings(cfg), synth, tmp_path / "prep", storage="raw", workers=2, show_progress=False)
    bold = BoLD(synth)
    videos = sorted({i.video for i in bold.instances("train", protocol=cfg.run.protocol)})
    cache = find_prepared(prepare_settings(cfg), bold, videos, root=tmp_path / "prep")
    from_prepare = cache.context(videos)
    assert from_prepare is not None
    source = make_context_source(cfg.context, "cpu")
    ctx_cache = ContextCache(tmp_path / "ctx")
    assert set(videos) <= set(ctx_cache.load(source.places)) and set(videos) <= set(ctx_cache.load(source.objects))
    fresh = load_context(bold.video_paths(videos), tiny_config(
        "demo", extra[:1] + [f"context.cache_dir={tmp_path / 'ctx2'}"] + extra[2:]).context, "cpu")
    for v in videos:
        np.testing.assert_allclose(from_prepare[v], fresh[v], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("extra,context,storage,key", [
    ([], None, "jpeg", "181bdc24e5e1c055"),
    (["data.body_crop=true", "run.protocol=official", "run.split_seed=7"], None, "png", "dd36ec1f25350ece"),
    (["context.source=experts", "context.targets=frame", "context.label_every=2"], "experts-0123456789abcdef", "raw",
     "46be4d63134cd0ad"),
])
def test_cache_keys_of_earlier_versions_still_match(monkeypatch, extra, context, storage, key):
    """The keys these settings have had since cache format 2 (the annotations' digest in place of
    the data folder's path): a change here would orphan every prepared cache on disk. Where the
    data lives does not enter."""
    monkeypatch.setattr("beenet.data.prepared.lookup.__version__", "0.0.0")
    fp = fingerprint(prepare_settings(tiny_config("demo", extra)), "/nonexistent/bold", storage, context)
    assert cache_key(fp) == key
    assert cache_key(fingerprint(prepare_settings(tiny_config("demo", extra)), "/elsewhere/bold", storage,
                                 context)) == key


def test_num_workers_auto():
    assert resolve_num_workers(3) == 3
    assert resolve_num_workers(-1, cpu_count=16, local_procs=1) == 15
    assert resolve_num_workers(-1, cpu_count=16, local_procs=4) == 3
    assert resolve_num_workers(-1, cpu_count=64, local_procs=1) == 16
    assert resolve_num_workers(-1, cpu_count=1, local_procs=2) == 0


@pytest.mark.slow
def test_torchrun_two_cpu_processes_on_prepared_data(synth, tmp_path):
    prep = tmp_path / "prep"
    assert main(["prepare", "--data", str(synth), "--config", "demo", "--out", str(prep), "--workers", "2",
                 *_sets([])]) == 0
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "beenet", "train", "--data", str(synth), "--out", str(out), "--config", "demo",
           "--epochs", "1", *_sets([f"run.prepared_dir={prep}"])]
    env = dict(os.environ, OMP_NUM_THREADS="1", BEENET_NO_PROGRESS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (out / "train.log").read_text()
    assert "world size 2" in log and "using prepared cache" in log
    assert "context labels of" in log and "labels the clips" not in log


@pytest.mark.slow
def test_prepare_killed_with_sigkill_reuses_its_finished_clips(synth, tmp_path, capsys):
    prep = tmp_path / "prep"

    def whole_clips() -> int:  # an atomic write's temporary file starts with a dot
        return sum(1 for p in prep.glob("*/clips/**/*.frames") if not p.name.startswith("."))

    args = ["prepare", "--data", str(synth), "--config", "demo", "--out", str(prep), *_sets([])]
    # Killed while it provably waits, before its third clip, on a pipe this test holds (held_pipe).
    proc = gated_beenet(args, tmp_path / "gate", "beenet.data.prepared.build:_prepare_clip", 2)
    with reaped(proc):
        signal_held(tmp_path / "gate", proc, signal.SIGKILL)
        proc.communicate(timeout=HANG_S)
    assert proc.returncode == -signal.SIGKILL
    finished = whole_clips()
    bold = BoLD(synth)
    run = tiny_config("demo").run
    n = len({i.video for s in ("train", "val", "test")
             for i in bold.instances(s, protocol=run.protocol, seed=run.split_seed)})
    assert finished == 2 < n
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"{n} of {n} clips ({finished} reused, {n - finished} decoded now), 0 failed" in out
    # The killed run's clips are whole: a third run decodes nothing.
    assert main(args) == 0
    assert f"({n} reused, 0 decoded now), 0 failed" in capsys.readouterr().out
