"""Fault injection on the training side (issue 12): kills, Ctrl-C, corrupt clips and joints,
concurrent writers, bad configs. Every case ends in a clear message with the documented exit code,
and nothing already written is lost.

Runs that are killed or interrupted go through the real command (``python -m beenet train`` in a
subprocess); the others call ``beenet.cli.main`` in this process.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from beenet.cli import main
from beenet.data.bold import BoLD
from beenet.errors import VideoDecodeError
from beenet.training.loop import train
from beenet.training.rundir import LOCK_FILE, RunLock, RunLockedError
from held_pipe import HANG_S, gated_train, reaped, signal_held
from train_helpers import TINY, csv_rows, restore_root_logging, tiny_config, write_tiny_synth

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(autouse=True)
def _root_logging():
    yield from restore_root_logging()


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return write_tiny_synth(tmp_path_factory.mktemp("faults") / "synth")


@pytest.fixture
def data(synth, tmp_path) -> Path:
    """A private copy of the synthetic dataset, free to damage."""
    root = tmp_path / "data"
    shutil.copytree(synth, root, ignore=shutil.ignore_patterns("splits"))
    return root


def _args(data: Path, out: Path, *extra: str, epochs: int = 1) -> list[str]:
    sets = [a for t in TINY for a in ("--set", t)]
    return ["train", "--data", str(data), "--out", str(out), "--config", "demo", *sets,
            "--epochs", str(epochs), *extra]


def _popen(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "beenet", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(cond, proc: subprocess.Popen, timeout: float = HANG_S) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process ended (rc {proc.returncode}) before the condition: {err[-2000:]}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def _epochs(out: Path) -> list[int]:
    return [int(r["epoch"]) for r in csv_rows(out / "metrics.csv")] if (out / "metrics.csv").exists() else []


def _metrics_without_time(out: Path) -> list[dict[str, str]]:
    rows = csv_rows(out / "metrics.csv")
    for r in rows:
        r.pop("time_s")
    return rows


def _first_train_clip(root: Path, split: str = "train") -> str:
    return BoLD(root).instances(split)[0].clip


# ----------------------------------------------------------------------------------- configs


@pytest.mark.parametrize("override, key", [
    ("optim.lr=nan", "optim.lr"), ("optim.lr=inf", "optim.lr"), ("optim.lr=-inf", "optim.lr"),
    ("loss.vad_weight=nan", "loss.vad_weight"), ("optim.weight_decay=inf", "optim.weight_decay"),
    ("run.split_seed=-1", "run.split_seed"), ("run.seed=-5", "run.seed"),
])
def test_bad_config_values_are_refused_naming_the_key(synth, tmp_path, capsys, override, key):
    out = tmp_path / "run"
    assert main(_args(synth, out, "--set", override)) == 1
    err = capsys.readouterr().err
    assert key in err and "Traceback" not in err
    assert not out.exists()  # nothing written for a refused config


def test_nan_in_a_config_file_is_refused(synth, tmp_path, capsys):
    cfg = tmp_path / "my.yaml"
    cfg.write_text("optim:\n  lr: .nan\n")
    assert main(["train", "--data", str(synth), "--out", str(tmp_path / "run"), "--config", str(cfg)]) == 1
    assert "optim.lr" in capsys.readouterr().err


@pytest.mark.parametrize("content, says", [
    (b"", "holds no settings"),
    (b"# only a comment\n\n", "holds no settings"),
    (b"\x00\xff\xfe\x89PNG\r\n", "not a UTF-8 text file"),
    (b"optim: [1, 2\n", "not valid YAML"),
])
def test_empty_or_binary_config_file_is_a_located_error(synth, tmp_path, capsys, content, says):
    cfg = tmp_path / "my.yaml"
    cfg.write_bytes(content)
    assert main(["train", "--data", str(synth), "--out", str(tmp_path / "run"), "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert says in err and str(cfg) in err and "Traceback" not in err


def test_empty_train_csv_is_refused_under_the_paper_protocol(data, tmp_path, capsys):
    (data / "annotations" / "train.csv").write_text("")
    assert main(_args(data, tmp_path / "run", "--protocol", "paper")) == 1
    err = capsys.readouterr().err
    assert "train.csv" in err and "holds no instance" in err


# ----------------------------------------------------------------------------------- the lock


def test_a_locked_run_directory_is_refused_naming_the_holder(synth, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):
        holder = (out / LOCK_FILE).read_text()
        assert f"pid {os.getpid()}" in holder and "host" in holder and "started" in holder
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
            train(tiny_config("demo", ["optim.epochs=1"]), synth, out)
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # the refused run wrote nothing


def test_kill_9_leaves_no_stale_lock(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    # The child holds the lock until this test kills it (it waits for its stdin, which stays open).
    code = ("import sys; sys.path.insert(0, %r); from pathlib import Path; "
            "from beenet.training.rundir import RunLock; RunLock(Path(%r)).acquire(); print('held', flush=True); "
            "sys.stdin.read()") % (str(SRC), str(out))
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(RunLockedError, match=f"pid {proc.pid}"):
        RunLock(out).acquire()
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    RunLock(out).acquire().release()  # the OS released it with the process


# ------------------------------------------------------------------------- restart / resume rules


@pytest.mark.slow
def test_run_without_checkpoint_restarts_and_resume_explains(synth, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    # What a run killed before its first checkpoint leaves, plus an orphan temp file.
    (out / "config.yaml").write_text("# beenet run config (resolved)\n")
    (out / "train.log").write_text("earlier attempt\n")
    (out / "metrics.csv").write_text("epoch,lr\n1,0.01\n")
    (out / ".last.pt.x1y2z3.tmp").write_bytes(b"half a checkpoint")
    args = _args(synth, out)
    assert main([*args, "--resume"]) == 1
    err = capsys.readouterr().err
    assert "no checkpoint yet" in err and "without --resume" in err
    assert main(args) == 0
    log = (out / "train.log").read_text()
    assert log.startswith("earlier attempt\n")  # kept, appended to
    assert "restarting from scratch" in log and ".last.pt.x1y2z3.tmp" in log
    assert not (out / ".last.pt.x1y2z3.tmp").exists()
    assert _epochs(out) == [1] and (out / "last.pt").is_file()


def test_a_directory_with_user_files_is_never_written(synth, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("mine\n")
    (out / "notes.txt").write_text("mine\n")
    assert main(_args(synth, out)) == 1
    assert "notes.txt" in capsys.readouterr().err
    assert main([*_args(synth, out), "--resume"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "notes.txt"]
    assert (out / "config.yaml").read_text() == "mine\n"


def test_out_that_is_a_file_is_refused(synth, tmp_path, capsys):
    out = tmp_path / "run"
    out.write_text("mine\n")
    assert main(_args(synth, out)) == 1
    assert "is a file" in capsys.readouterr().err and out.read_text() == "mine\n"


@pytest.mark.slow
def test_a_run_with_a_checkpoint_still_needs_resume(synth, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_args(synth, out)) == 0
    before = (out / "last.pt").read_bytes()
    assert main(_args(synth, out, epochs=2)) == 1
    assert "--resume" in capsys.readouterr().err
    assert (out / "last.pt").read_bytes() == before


# ------------------------------------------------------------------------------ corrupt files


def _damage(root: Path, clip: str, kind: str) -> Path:
    bold = BoLD(root)
    if kind == "empty mp4":
        path = bold.video_path(clip)
        path.write_bytes(b"")
    elif kind == "truncated mp4":
        path = bold.video_path(clip)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:  # garbage joints
        path = bold.joints_path(clip)
        path.write_bytes(b"\x93NUMPY garbage" + os.urandom(64))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "val"])
@pytest.mark.parametrize("kind", ["empty mp4", "truncated mp4", "garbage npy"])
def test_unreadable_clip_is_left_out_logged_and_counted(data, tmp_path, capsys, split, kind):
    clip = _first_train_clip(data, split)
    bad = _damage(data, clip, kind)
    out = tmp_path / "run"
    # data check gives the verdict training acts on
    assert main(["data", "check", str(data), "--json", "-"]) in (0, 1)
    report = json.loads(capsys.readouterr().out)
    r = report["splits"][split]
    n_bad = sum(1 for i in BoLD(data).instances(split) if i.clip == clip)
    assert r["usable_instances"] == r["instances"] - n_bad
    assert main(_args(data, out, "--protocol", "official")) == 0
    log = (out / "train.log").read_text()
    assert f"left out {clip}: {bad}" in log
    assert f"{n_bad} of {r['instances']} {split} instances left out" in log
    assert f"{r_usable(report, 'train')} train and {r_usable(report, 'val')} val instances" in log
    assert _epochs(out) == [1]


def r_usable(report: dict, split: str) -> int:
    return report["splits"][split]["usable_instances"]


def test_a_sample_that_fails_to_decode_is_skipped_in_training_only(data, caplog):
    from beenet.data.dataset import BoLDDataset, DataConfig

    bold = BoLD(data)
    insts = bold.instances("train")
    cfg = DataConfig(image_size=32)
    train_ds = BoLDDataset(bold, insts, cfg, train=True)
    eval_ds = BoLDDataset(bold, insts, cfg, train=False)
    _damage(data, insts[0].clip, "truncated mp4")  # after setup: it opened then, it fails now
    sample = train_ds[0]
    assert sample["index"] != 0 and insts[sample["index"]].clip != insts[0].clip
    assert "skipped a sample of epoch 1" in caplog.text and str(bold.video_path(insts[0].clip)) in caplog.text
    assert int(sample["replaced"]) == 1  # one instance could not be read before this one
    with pytest.raises(VideoDecodeError, match=insts[0].clip):
        eval_ds[0]


@pytest.mark.slow
def test_each_epoch_says_how_many_training_samples_were_replaced(data, tmp_path, caplog, monkeypatch):
    """A clip that stops decoding after setup: each epoch's log says how many samples stood in."""
    from beenet.data import dataset as ds

    bad = BoLD(data).instances("train")[0].clip
    sample = ds.BoLDDataset._sample

    def failing(self, index):
        if self.train and self.instances[index].clip == bad:
            raise VideoDecodeError(f"{bad}: stream ended at frame 3 of 40 (truncated video?)")
        return sample(self, index)

    monkeypatch.setattr(ds.BoLDDataset, "_sample", failing)
    n_bad = sum(i.clip == bad for i in BoLD(data).instances("train"))
    assert main(_args(data, tmp_path / "run", "--set", "run.num_workers=0", epochs=2)) == 0
    said = [r.getMessage() for r in caplog.records if "could not be read and were replaced" in r.getMessage()]
    # each epoch that drew the clip says so (training batches are full: an epoch's short tail,
    # which may hold the clip, is not drawn)
    assert said and {m.split(":")[0] for m in said} <= {"epoch 1", "epoch 2"}, said
    assert all(1 <= int(m.split(": ")[1].split()[0]) <= n_bad for m in said), (n_bad, said)


# ------------------------------------------------------------------------------ Ctrl-C


class _RaisesSigint:
    """Pickled inside a checkpoint: sends this process SIGINT in the middle of torch.save."""

    def __reduce__(self):
        signal.raise_signal(signal.SIGINT)
        return (collections.OrderedDict, ())  # something weights_only loading accepts


def test_ctrl_c_inside_a_checkpoint_write_keeps_the_file_and_raises_keyboardinterrupt(tmp_path):
    from beenet.artifacts.checkpoint import save_checkpoint

    model = torch.nn.Linear(2, 2)
    path = tmp_path / "last.pt"
    save_checkpoint(path, model=model, config={}, epoch=0)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model=model, config={}, epoch=1, extra={"boom": _RaisesSigint()})
    ckpt = torch.load(path, weights_only=True)  # written whole (the interrupt waited for the write)
    assert ckpt["epoch"] == 1 and ckpt["boom"] == {}
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_interrupt_names_the_epoch_last_pt_holds_even_before_the_bookkeeping(tmp_path):
    """A Ctrl-C just after last.pt's rename (in the directory fsync, or before the loop counted the
    epoch as saved) must name the epoch the file holds, not the one before (a CI run saw that)."""
    from types import SimpleNamespace

    from beenet.artifacts.checkpoint import save_checkpoint, saved_epochs
    from beenet.training.loop import _interrupted_message

    out = tmp_path / "run"
    out.mkdir()
    assert saved_epochs(out / "last.pt") is None
    save_checkpoint(out / "last.pt", model=torch.nn.Linear(2, 2), config={}, epoch=3)
    stale = {"epoch": 4, "run": SimpleNamespace(saved_epochs=3)}  # the loop had not counted epoch 4
    msg = _interrupted_message(out, "DATA", stale)
    assert "during epoch 5" in msg and "holds epoch 4 intact" in msg and "--resume" in msg
    (out / "last.pt").write_bytes(b"not a checkpoint")  # unreadable: the loop's count is the fallback
    assert "holds epoch 3 intact" in _interrupted_message(out, "DATA", stale)


def _stopped_at(args: list[str], tmp_path: Path, epoch: int, sig: int) -> tuple[int, str]:
    """``beenet train ARGS`` in a child process, sent ``sig`` while it provably waits at the start
    of ``epoch`` (0-based, so with ``epoch`` epochs saved) on a named pipe this test holds
    (:mod:`held_pipe`): where the signal lands does not depend on the clock or the load.
    Returns the child's exit code and its stderr."""
    proc = gated_train(args, tmp_path / "gate", epoch)
    with reaped(proc):
        signal_held(tmp_path / "gate", proc, sig)
        _, err = proc.communicate(timeout=HANG_S)
    return proc.returncode, err


@pytest.mark.slow
def test_ctrl_c_after_an_epoch_exits_130_with_where_the_run_stands(synth, tmp_path):
    out = tmp_path / "run"
    code, err = _stopped_at(_args(synth, out, epochs=2), tmp_path, 1, signal.SIGINT)  # epoch 1 saved
    assert code == 130, err
    assert "Traceback" not in err and "interrupted during epoch 2;" in err and "--resume" in err
    assert f"{out / 'last.pt'} holds epoch 1 intact" in err
    assert main(_args(synth, out, "--resume", epochs=2)) == 0
    assert _epochs(out) == [1, 2]


@pytest.mark.slow
def test_ctrl_c_before_the_first_epoch_says_restart(synth, tmp_path):
    out = tmp_path / "run"
    code, err = _stopped_at(_args(synth, out), tmp_path, 0, signal.SIGINT)  # set up, nothing trained
    assert code == 130 and "Traceback" not in err, (code, err[-2000:])
    assert "interrupted during epoch 1; no epoch finished, so nothing was saved" in err


# ------------------------------------------------------------------------------ kill -9


def _run(args: list[str]) -> None:
    """The command in a subprocess, as the interrupted runs (float results can differ in the last
    digits between this test process and a fresh one, so runs that are compared all use one)."""
    proc = _popen(args)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]


@pytest.fixture(scope="module")
def reference(synth, tmp_path_factory) -> Path:
    """An uninterrupted 3-epoch run."""
    out = tmp_path_factory.mktemp("ref") / "run"
    _run(_args(synth, out, epochs=3))
    return out


@pytest.mark.slow
def test_kill_9_before_the_first_checkpoint_then_restart_equals_uninterrupted(synth, tmp_path, reference):
    out = tmp_path / "run"
    code, _ = _stopped_at(_args(synth, out, epochs=3), tmp_path, 0, signal.SIGKILL)  # set up, nothing saved
    assert code == -signal.SIGKILL
    assert (out / "config.yaml").exists() and not (out / "last.pt").exists()
    _run(_args(synth, out, epochs=3))  # the plain command restarts it
    assert "restarting from scratch" in (out / "train.log").read_text()
    assert _metrics_without_time(out) == _metrics_without_time(reference)
    a = torch.load(out / "last.pt", weights_only=True)["model"]
    b = torch.load(reference / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in b)


@pytest.mark.slow
def test_kill_9_after_epoch_1_then_resume_equals_uninterrupted(synth, tmp_path, reference):
    out = tmp_path / "run"
    code, _ = _stopped_at(_args(synth, out, epochs=3), tmp_path, 1, signal.SIGKILL)  # epoch 1 saved
    assert code == -signal.SIGKILL and _epochs(out) == [1]
    _run(_args(synth, out, "--resume", epochs=3))
    assert _epochs(out) == [1, 2, 3]
    assert _metrics_without_time(out) == _metrics_without_time(reference)
    a = torch.load(out / "last.pt", weights_only=True)["model"]
    b = torch.load(reference / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in b)


# ------------------------------------------------------------------------------ two writers


@pytest.mark.slow
@pytest.mark.parametrize("second_resumes", [False, True])
def test_a_second_writer_is_refused_and_the_first_unaffected(synth, tmp_path, second_resumes):
    out = tmp_path / "run"
    resume = ["--resume"] if second_resumes else []
    if second_resumes:
        assert main(_args(synth, out)) == 0  # a run to resume twice
    # The first writer cannot end: after two epochs of its own it waits on a pipe this test holds
    # (held_pipe), so it is still running when the second one starts up.
    first = gated_train(_args(synth, out, *resume, epochs=500), tmp_path / "gate", 2)
    saved = 2 + bool(second_resumes)
    with reaped(first):
        _wait_for(lambda: f"pid {first.pid}" in ((out / LOCK_FILE).read_text() if (out / LOCK_FILE).exists()
                                                 else ""), first)
        second = _popen(_args(synth, out, *resume, epochs=500))
        _, err2 = second.communicate(timeout=HANG_S)
        assert first.poll() is None, "the first run ended before the second was refused"
        assert second.returncode == 1 and f"pid {first.pid}" in err2 and "another beenet process" in err2, err2
        # The first writer goes on; stopped with Ctrl-C, its records are whole and have no duplicate.
        signal_held(tmp_path / "gate", first, signal.SIGINT)
        _, err1 = first.communicate(timeout=HANG_S)
    assert first.returncode == 130, err1
    from beenet.artifacts.checkpoint import load_checkpoint

    assert int(load_checkpoint(out / "last.pt")["epoch"]) + 1 == saved
    assert _epochs(out) == list(range(1, saved + 1))
    assert f"holds epoch {saved} intact" in err1


def test_tensorboard_files_and_the_view_page_do_not_block_a_resume(synth, tmp_path, capsys):
    """A run folder holding the TensorBoard events and 'beenet view RUN''s page is still a run."""
    out = tmp_path / "run"
    assert main(_args(synth, out)) == 0
    (out / "tensorboard").mkdir(exist_ok=True)
    (out / "report.html").write_text("<html></html>")
    assert main(_args(synth, out, epochs=2)) == 1
    assert "--resume" in capsys.readouterr().err
