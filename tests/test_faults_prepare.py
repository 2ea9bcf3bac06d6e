"""Faults of the prepared cache (issue 23 "prepare cache", issue 24 items 5 and 6): real damaged
files, real full disks, real killed processes; each case failed before the fix."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from beenet.cli import main
from beenet.data.bold import BoLD
from beenet.data.dataset import BoLDDataset
from beenet.data.prepared import find_prepared, prepare, verify_clip_file
from beenet.data.prepared.format import clip_path
from beenet.run_config import prepare_settings
from held_pipe import HANG_S, SRC, gated_beenet, reaped, signal_held
from train_helpers import TINY, restore_root_logging, tiny_config, write_tiny_synth


@pytest.fixture(autouse=True)
def _logging():
    yield from restore_root_logging()


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return write_tiny_synth(tmp_path_factory.mktemp("faults_prep") / "synth", clips=24)


@pytest.fixture(scope="module")
def cache(synth, tmp_path_factory) -> Path:
    """A raw-storage cache of ``synth`` (its root folder), made once; tests damage copies of it."""
    root = tmp_path_factory.mktemp("faults_prep_cache")
    prepare(prepare_settings(tiny_config("demo")), synth, root, storage="raw", show_progress=False)
    return root


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["prepare", "--data", str(data), "--config", "demo", "--out", str(out), "--storage", "raw",
            *[x for t in TINY for x in ("--set", t)], *extra]


def _copy(cache: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the cache root and its one cache folder."""
    root = tmp_path / "prep"
    shutil.copytree(cache, root)
    return root, next(p for p in root.iterdir() if p.is_dir())


def _val(synth: Path) -> tuple[BoLD, list]:
    bold = BoLD(synth)
    return bold, bold.instances("val", protocol="official")


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "half":
        data = data[: len(data) // 2]
    elif how == "random":
        data = bytearray(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes())
    elif how == "header_length_0":
        data[8:16] = struct.pack("<Q", 0)
    elif how == "bad_header_json":
        data[16:20] = b"{{{{"
    elif how == "header_length_2**62":
        data[8:16] = struct.pack("<Q", 2**62)
    path.write_bytes(bytes(data))


DAMAGES = ["half", "random", "header_length_0", "bad_header_json", "header_length_2**62"]


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_clip_file_is_named_decoded_from_the_video_and_made_again(synth, cache, tmp_path, caplog, how):
    root, folder = _copy(cache, tmp_path)
    cfg = tiny_config("demo")
    bold, inst = _val(synth)
    video = inst[0].video
    path = clip_path(folder, video)
    _damage(path, how)
    assert verify_clip_file(path) is not None
    # train / eval read it: the damaged file is named once, its clip decoded from the video
    # (raw storage: the very tensors of decoding on the fly).
    with caplog.at_level(logging.WARNING):
        found = find_prepared(prepare_settings(cfg), bold, sorted({i.video for i in inst}), root=root)
        assert found is not None
        cached = BoLDDataset(bold, inst, cfg.data, train=False, frames=found.frames())
        fly = BoLDDataset(bold, inst, cfg.data, train=False)
        for i in range(len(inst)):
            assert torch.equal(cached[i]["frames"], fly[i]["frames"])
    assert str(path) in caplog.text and "damaged prepared clip file" in caplog.text
    # The next prepare checks every reused file (size, CRC-32) and makes this one again.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        result = prepare(prepare_settings(cfg), synth, root, storage="raw", show_progress=False)
    assert result.prepared == 1 and result.reused == result.clips - 1
    assert str(path) in caplog.text
    assert verify_clip_file(path) is None


@pytest.mark.parametrize("text", ["{}", "[]", "{not json"])
def test_a_damaged_manifest_is_named_with_the_fix(synth, cache, tmp_path, caplog, capsys, text):
    root, folder = _copy(cache, tmp_path)
    (folder / "manifest.json").write_text(text)
    bold, inst = _val(synth)
    with caplog.at_level(logging.WARNING):
        assert find_prepared(prepare_settings(tiny_config("demo")), bold, [i.video for i in inst], root=root) is None
    assert f"{folder}: damaged manifest.json" in caplog.text
    assert f"delete {folder} or run 'beenet prepare --rebuild'" in caplog.text
    # prepare --rebuild makes the cache again; train and eval find it.
    assert main(_args(synth, root, "--rebuild")) == 0
    n = len(list(folder.glob("clips/**/*.frames")))
    assert f"(0 reused, {n} decoded now)" in capsys.readouterr().out
    assert find_prepared(prepare_settings(tiny_config("demo")), bold, [i.video for i in inst], root=root) is not None


def test_prepare_out_a_file_is_a_clear_error(synth, tmp_path, capsys):
    target = tmp_path / "not-a-folder"
    target.write_text("mine\n")
    assert main(_args(synth, target)) == 1
    err = capsys.readouterr().err
    assert f"--out {target}: that is a file, not a folder" in err and "Traceback" not in err
    assert target.read_text() == "mine\n"


def test_prepare_limit_below_zero_is_refused_at_parse_time(synth, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(_args(synth, tmp_path / "prep", "--limit", "-1"))
    assert exc.value.code == 2 and "--limit: expected a number >= 0, got -1" in capsys.readouterr().err
    assert not (tmp_path / "prep").exists()


def _tiny_tmpfs_works(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    try:
        proc = subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c",
                               f"mount -t tmpfs -o size=64k tmpfs {probe} && touch {probe}/x"],
                              capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def test_a_full_disk_stops_prepare_at_the_first_no_space_left(synth, tmp_path):
    """A real 160 KiB tmpfs (in a private mount namespace: nothing to unmount afterwards) holds a
    few clips: prepare stops at the first ENOSPC, says so once, exits 1."""
    if not _tiny_tmpfs_works(tmp_path):
        pytest.skip("cannot mount a tmpfs here (needs root or unprivileged user namespaces)")
    mnt = tmp_path / "small"
    mnt.mkdir()
    cmd = " ".join([f"mount -t tmpfs -o size=160k tmpfs {mnt} &&", sys.executable, "-m", "beenet",
                    *(f"'{a}'" for a in _args(synth, mnt / "prep"))])
    env = {**os.environ, "PYTHONPATH": str(SRC), "BEENET_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c", cmd], env=env,
                          capture_output=True, text=True, timeout=HANG_S)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "no space left on the device" in out and "prepare stopped" in out, out[-3000:]
    assert "failed (" not in out and "failed clip" not in out  # no clip blamed for the disk


@pytest.mark.slow
def test_temp_files_of_a_killed_prepare_are_removed_by_the_next(synth, tmp_path, capsys):
    prep = tmp_path / "prep"
    args = _args(synth, prep)
    # Killed inside its second clip's write: the clip's temp file is on disk, not yet renamed.
    proc = gated_beenet(args, tmp_path / "gate", "beenet.data.prepared.format:trailer", 2)
    with reaped(proc):
        signal_held(tmp_path / "gate", proc, signal.SIGKILL)
        proc.communicate(timeout=HANG_S)
    assert proc.returncode == -signal.SIGKILL
    temps = list(prep.glob("*/clips/**/.*.tmp"))
    assert len(temps) == 1
    assert main(args) == 0
    assert "1 reused" in capsys.readouterr().out
    assert not list(prep.glob("*/clips/**/.*.tmp")) and not list(prep.glob("*/.*.tmp"))


@pytest.mark.slow
def test_the_hidden_folder_of_a_killed_synth_is_removed_by_the_next(tmp_path):
    out = tmp_path / "data"
    args = ["synth", str(out), "--clips", "3", "--size", "64x48", "--frames", "8-9", "--workers", "1",
            "--no-progress"]
    proc = gated_beenet(args, tmp_path / "gate", "beenet.data.synth.render:write_clip", 1)
    with reaped(proc):
        signal_held(tmp_path / "gate", proc, signal.SIGKILL)
        proc.communicate(timeout=HANG_S)
    assert proc.returncode == -signal.SIGKILL
    assert len(list(tmp_path.glob(".data.partial-*"))) == 1 and not out.exists()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-m", "beenet", *args], env=env, capture_output=True, text=True,
                          timeout=HANG_S)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not list(tmp_path.glob(".data.partial-*")) and (out / "annotations" / "train.csv").is_file()


# --------------------------------------------------------------------------- a moved dataset (issue 24, 5)


def _moved(synth: Path, tmp_path: Path) -> Path:
    """A copy of ``synth`` at another path, every file with a fresh mtime (plain ``cp``)."""
    moved = tmp_path / "elsewhere" / "bold"
    shutil.copytree(synth, moved, copy_function=shutil.copyfile)
    return moved


def test_a_copy_of_the_dataset_elsewhere_is_served_by_its_cache(synth, cache, tmp_path, caplog):
    moved = _moved(synth, tmp_path)
    bold, inst = _val(moved)
    videos = sorted({i.video for i in inst})
    assert os.stat(BoLD(synth).video_path(videos[0])).st_mtime_ns != os.stat(bold.video_path(videos[0])).st_mtime_ns
    cfg = tiny_config("demo")
    with caplog.at_level(logging.INFO, logger="beenet.data.prepared"):
        found = find_prepared(prepare_settings(cfg), bold, videos, root=cache)
    assert found is not None and found.served == set(videos)
    assert f"{len(videos)} of {len(videos)} clips from the cache, 0 decoded on the fly" in caplog.text
    assert "WARNING" not in caplog.text
    a = BoLDDataset(bold, inst, cfg.data, train=False, frames=found.frames())[0]
    assert torch.equal(a["frames"], BoLDDataset(bold, inst, cfg.data, train=False)[0]["frames"])


def test_under_95_percent_served_a_warning_names_the_first_clip(synth, cache, tmp_path, caplog):
    moved = _moved(synth, tmp_path)
    bold, inst = _val(moved)
    videos = sorted({i.video for i in bold.instances("train", protocol="official")})
    for v, other in ((videos[1], videos[2]), (videos[3], videos[4])):  # other content, same names
        shutil.copyfile(bold.video_path(other), bold.video_path(v))
    with caplog.at_level(logging.WARNING, logger="beenet.data.prepared"):
        found = find_prepared(prepare_settings(tiny_config("demo")), bold, videos, root=cache)
    assert found is not None and len(found.served) == len(videos) - 2 < 0.95 * len(videos)
    assert f"serves only {len(videos) - 2} of {len(videos)} clips" in caplog.text
    assert f"the first it does not serve: {videos[1]}: its video file differs" in caplog.text


def test_a_cache_of_the_earlier_format_is_reported_as_needing_prepare(synth, tmp_path, caplog):
    old = tmp_path / "prep" / "f17494f706f9d275"
    old.mkdir(parents=True)
    (old / "manifest.json").write_text(
        '{"fingerprint": {"format": 1, "data": "%s", "storage": "jpeg"}, "clips": {}, "failed": []}'
        % synth.resolve())
    bold, inst = _val(synth)
    with caplog.at_level(logging.WARNING, logger="beenet.data.prepared"):
        assert find_prepared(prepare_settings(tiny_config("demo")), bold, [i.video for i in inst],
                             root=tmp_path / "prep") is None
    assert f"prepared cache {old} was made by an earlier beenet (cache format 1" in caplog.text
    assert "run 'beenet prepare' with this config again" in caplog.text


# --------------------------------------------------------------------------- launch cost (issue 24, 6)


class _CountingReader:
    """Counts the videos opened (a spy around the real reader, which still does the work)."""

    opened: list[str] = []

    def __new__(cls, path, *args, **kwargs):
        from beenet.media.video import VideoReader  # lazy: the real class, looked up at call time

        cls.opened.append(str(path))
        return VideoReader(path, *args, **kwargs)


def test_launch_check_trusts_the_cache_for_the_clips_it_serves(synth, cache, tmp_path, monkeypatch):
    from beenet.distributed import DistInfo
    from beenet.training.setup import _instances

    moved = _moved(synth, tmp_path)  # served through the content stamps, not the mtimes
    monkeypatch.setattr("beenet.data.usable.VideoReader", _CountingReader)
    _CountingReader.opened = []
    cfg = tiny_config("demo", [f"run.prepared_dir={cache}"])
    _, train_inst, val_inst, prepared = _instances(cfg, moved, DistInfo())
    assert prepared is not None and {i.video for i in train_inst + val_inst} <= prepared.served
    assert _CountingReader.opened == []
    # Without the cache every clip is opened, and the verdict is the same.
    off = tiny_config("demo", ["run.prepared_dir=off"])
    _, train_off, val_off, none = _instances(off, moved, DistInfo())
    assert none is None and len(_CountingReader.opened) == len({i.video for i in train_off + val_off})
    assert [i.key for i in train_off] == [i.key for i in train_inst]
    assert [i.key for i in val_off] == [i.key for i in val_inst]


def _rank_main(rank: int, data: str, cache: str, init: str, out: str) -> None:
    """One of two gloo processes: the launch check, and what this rank opened and decided."""
    import json

    import torch.distributed as dist

    from beenet.distributed import DistInfo
    from beenet.training.setup import _instances

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        import beenet.data.prepared.lookup as lookup

        calls = []
        real = lookup.clip_seen
        lookup.clip_seen = lambda bold, v: calls.append(v) or real(bold, v)
        _CountingReader.opened = []
        import beenet.data.usable as usable

        usable.VideoReader = _CountingReader
        cfg = tiny_config("demo", [f"run.prepared_dir={cache}"])
        _, train_inst, val_inst, prepared = _instances(cfg, Path(data), DistInfo(rank=rank, world_size=2))
        Path(out).write_text(json.dumps({"stat": len(calls), "opened": len(_CountingReader.opened),
                                         "train": [list(i.key) for i in train_inst],
                                         "served": sorted(prepared.served) if prepared else None}))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_under_ddp_rank_0_checks_and_the_other_rank_takes_its_verdict(synth, cache, tmp_path):
    import json
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    init = f"file://{tmp_path / 'pg'}"
    procs = [ctx.Process(target=_rank_main, args=(r, str(synth), str(cache), init, str(tmp_path / f"r{r}.json")))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(HANG_S)
    assert [p.exitcode for p in procs] == [0, 0]
    r0, r1 = (json.loads((tmp_path / f"r{r}.json").read_text()) for r in range(2))
    assert r0["stat"] > 0 and r1["stat"] == 0 and r1["opened"] == 0
    assert r0["train"] == r1["train"] and r0["served"] == r1["served"] is not None
