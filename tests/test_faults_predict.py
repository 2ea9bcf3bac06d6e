"""Faults on the predict, eval and file-writing side (issue 12): every case ends in a clear message
naming the file, row or value, the documented exit code, and nothing already written lost.

Groups: output names (collisions, repeats, links, escapes), per-video failures (full disk,
unwritable --out), outlier joints frames, non-finite models and bad checkpoint configs,
predictions out of range, ``synth --overwrite`` with user files, file modes under a umask, Ctrl-C.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from _predict_helpers import beenet_subprocess, make_checkpoint, scaled_checkpoint, write_joints_clip
from held_pipe import HANG_S, reaped, signal_held
from beenet.cli import main
from beenet.errors import BoLDFormatError, CheckpointError, PredictionsError
from beenet.inference.inputs import resolve_inputs

ENDINGS = [".csv", ".meta.json", "_timeline.png"]
PREDICT = ["--window", "1", "--stride", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "still.pt", fusion_form="odds")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A video with its joints: ``clip.mp4`` + ``clip.npy`` (two people, 24 frames)."""
    return write_joints_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def _copy_clip(clip: Path, folder: Path, name: str = "clip") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(clip.with_suffix(".mp4"), folder / f"{name}.mp4")
    shutil.copy(clip, folder / f"{name}.npy")
    return folder / f"{name}.npy"


def _leftovers(out: Path) -> list[str]:
    """Temp files, partial files and staging folders under ``out``."""
    return sorted(p.name for p in out.rglob("*") if p.name.startswith(".") or p.name.endswith((".part", ".tmp")))


# ----------------------------------------------------------------------------- 1. output names


def test_stems_come_from_the_path_below_the_input_root(tmp_path):
    (tmp_path / "clips" / "a").mkdir(parents=True)
    (tmp_path / "clips" / "a" / "x.mp4").write_bytes(b"1")
    (tmp_path / "clips" / "y.mp4").write_bytes(b"2")
    jobs = resolve_inputs([str(tmp_path / "clips"), str(tmp_path / "clips" / "a" / "x.mp4")], ENDINGS)
    # the folder keeps its subfolders; the file given alone is named from its own folder; the
    # second x.mp4 is the same file as the first: a repeat, done once
    assert [j.stem for j in jobs] == ["a/x", "y", "a/x"]
    assert jobs[2].duplicate_of is jobs[0]
    for j in jobs:
        assert not j.stem.startswith("/") and ".." not in j.stem.split("/")
        assert str(tmp_path).strip("/") not in j.stem


def test_collisions_get_numbered_suffixes(tmp_path):
    for d in ("a", "b", "c"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "clip.mp4").write_bytes(d.encode())
    (tmp_path / "a" / "clip.mov").write_bytes(b"mov")
    (tmp_path / "a" / "CLIP.avi").write_bytes(b"avi")
    (tmp_path / "predict_summary.mp4").write_bytes(b"s")
    names = [tmp_path / "a" / "clip.mp4", tmp_path / "a" / "clip.mov", tmp_path / "b" / "clip.mp4",
             tmp_path / "c" / "clip.mp4", tmp_path / "a" / "CLIP.avi", tmp_path / "predict_summary.mp4"]
    jobs = resolve_inputs([str(p) for p in names], [".json", "_timeline.png"], reserved=["predict_summary.json"])
    assert [j.stem for j in jobs] == ["clip", "clip_2", "clip_3", "clip_4", "CLIP_5", "predict_summary_2"]


def test_repeated_inputs_are_found_by_file_identity(tmp_path):
    v = tmp_path / "v.mp4"
    v.write_bytes(b"video")
    os.link(v, tmp_path / "hard.mp4")
    os.symlink(v, tmp_path / "soft.mp4")
    (tmp_path / "other.mp4").write_bytes(b"video")  # same bytes, another file: not a repeat
    jobs = resolve_inputs([str(v), str(tmp_path / "hard.mp4"), str(tmp_path / "soft.mp4"),
                           str(tmp_path / "." / "v.mp4"), str(tmp_path / "other.mp4")])
    assert [j.duplicate_of is jobs[0] for j in jobs] == [False, True, True, True, False]


@pytest.mark.slow
def test_cli_collisions_and_repeats_never_overwrite(tmp_path, ckpt, clip):
    a = _copy_clip(clip, tmp_path / "in" / "a")
    b = _copy_clip(clip, tmp_path / "in" / "b")
    os.symlink(a, tmp_path / "in" / "b" / "link.npy")
    os.symlink(a.with_suffix(".mp4"), tmp_path / "in" / "b" / "link.mp4")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    (out / ".beenet-predict-999999999-x.tmp").mkdir()  # left by a killed predict (no such process)
    code = main(["predict", str(a), str(b), str(tmp_path / "in" / "b" / "link.npy"), str(a),
                 "--checkpoint", str(ckpt), "--out", str(out), *PREDICT])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["mine.txt", "predict_summary.json", "clip.csv", "clip.meta.json", "clip_timeline.png",
         "clip_2.csv", "clip_2.meta.json", "clip_2_timeline.png"])
    assert (out / "mine.txt").read_text() == "keep me"
    summary = json.loads((out / "predict_summary.json").read_text())
    assert summary["status"] == "done" and len(summary["videos"]) == 2
    assert [d["same_as"] for d in summary["duplicates"]] == [str(a), str(a)]
    assert summary["videos"][1]["outputs"] == ["clip_2.csv", "clip_2.meta.json", "clip_2_timeline.png"]


@pytest.mark.slow
def test_outputs_never_escape_out_through_a_link(tmp_path, ckpt, clip, capsys):
    _copy_clip(clip, tmp_path / "in" / "sub")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "sub")  # out/sub/clip.csv would land in elsewhere/
    code = main(["predict", str(tmp_path / "in"), "--checkpoint", str(ckpt), "--out", str(out), *PREDICT])
    err = capsys.readouterr().err
    assert code == 1
    assert f"FAILED {tmp_path / 'in' / 'sub' / 'clip.mp4'}" in err and "outside --out" in err
    assert list(outside.iterdir()) == []


# ----------------------------------------------------------------------------- 5. failures per video


def test_unwritable_out_is_found_once_before_any_work(tmp_path, ckpt, clip, capsys):
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        code = main(["predict", str(clip), "--checkpoint", str(ckpt), "--out", str(out), *PREDICT])
        err = capsys.readouterr().err
        assert code == 2
        assert err.count("\n") == 1 and f"--out {out}: cannot create or write" in err
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_exits_2(tmp_path, ckpt, clip, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert main(["predict", str(clip), "--checkpoint", str(ckpt), "--out", str(out), *PREDICT]) == 2
    finally:
        out.chmod(0o755)
    assert "cannot create or write" in capsys.readouterr().err


@pytest.mark.slow
def test_full_disk_fails_per_video_removes_partial_files_and_keeps_earlier_results(tmp_path, ckpt, clip):
    a = _copy_clip(clip, tmp_path / "in" / "a")
    b = _copy_clip(clip, tmp_path / "in" / "b")
    out = tmp_path / "out"
    out.mkdir()
    earlier = b"an earlier result\n"
    (out / "clip.csv").write_bytes(earlier)
    # A file may grow to 20 kB: tables fit, the ~90 kB timeline PNG does not (EFBIG, as on a full disk).
    proc = beenet_subprocess(["predict", str(a), str(b), "--checkpoint", str(ckpt), "--out", str(out), *PREDICT],
                             fsize=20_000)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert stderr.count("FAILED") == 2 and "File too large" in stderr
    assert "0 of 2 inputs done, 2 failed" in stdout
    assert (out / "clip.csv").read_bytes() == earlier  # the failed video replaced nothing
    assert sorted(p.name for p in out.iterdir()) == ["clip.csv", "predict_summary.json"]
    assert _leftovers(out) == []
    summary = json.loads((out / "predict_summary.json").read_text())
    assert summary["status"] == "done" and [f["input"] for f in summary["failures"]] == [str(a), str(b)]


# ----------------------------------------------------------------------------- 6. outlier frames


def _outlier_joints(clip: Path, dst: Path, frame: float, row: int = 5) -> Path:
    arr = np.load(clip)
    arr[row, 0] = frame
    _copy_clip(clip, dst.parent, dst.stem)
    np.save(dst.with_suffix(".npy"), arr)
    return dst.with_suffix(".npy")


@pytest.mark.parametrize("frame", [4e12, -4e12])
def test_outlier_frame_number_is_refused_with_its_row(tmp_path, ckpt, clip, capsys, frame):
    npy = _outlier_joints(clip, tmp_path / "in" / "odd", frame)
    code = main(["predict", str(npy), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), *PREDICT])
    err = capsys.readouterr().err
    assert code == 1
    assert f"FAILED {npy}: {npy}: row " in err and "the video has 24 frames" in err
    assert f"{frame:.0f}" in err  # the corrupt number is shown (as the row, or as the first frame)


def test_training_reader_bounds_the_span_of_a_joints_file(tmp_path, clip):
    from beenet.data.joints import load_clip_joints, load_person_joints

    npy = _outlier_joints(clip, tmp_path / "odd", 4e12, row=7)
    with pytest.raises(BoLDFormatError, match=r"odd.npy: row 7: frame 4000000000000"):
        load_person_joints(npy, 0)
    # with the clip's frame count (what the dataset passes) the outlier row is dropped
    assert load_clip_joints(npy, num_frames=24)[0].keypoints.shape == (24, 18, 3)


# ----------------------------------------------------------------------------- 7. models


def test_nan_checkpoint_is_refused_by_predict_and_export(tmp_path, ckpt, clip, capsys):
    bad = scaled_checkpoint(ckpt, tmp_path / "nan.pt", float("nan"))
    out = tmp_path / "out"
    assert main(["predict", str(clip), "--checkpoint", str(bad), "--out", str(out), *PREDICT]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: " in err and "NaN/inf" in err and "Traceback" not in err
    assert not (out / "clip.csv").exists()
    pytest.importorskip("onnx", reason="the export half needs the onnx extra")
    assert main(["export", "onnx", "--checkpoint", str(bad), "--out", str(tmp_path / "m.onnx"), "--check"]) == 1
    assert "NaN/inf" in capsys.readouterr().err and not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
def test_model_outputs_are_checked_finite(tmp_path, ckpt, clip, capsys):
    """Finite weights whose outputs overflow: each video fails naming the checkpoint, none is 'ok'."""
    big = scaled_checkpoint(ckpt, tmp_path / "big.pt", 1e20)
    out = tmp_path / "out"
    assert main(["predict", str(clip), "--checkpoint", str(big), "--out", str(out), *PREDICT]) == 1
    cap = capsys.readouterr()
    assert f"FAILED {clip}: {big}: the model produced NaN/inf" in cap.err and "ok " not in cap.out
    assert not (out / "clip.csv").exists()
    pytest.importorskip("onnxruntime")
    from beenet.inference.onnx import export_onnx, onnx_parity

    onnx = export_onnx(big, tmp_path / "big.onnx")
    with pytest.raises(CheckpointError, match="NaN/inf"):
        onnx_parity(big, onnx)


@pytest.mark.parametrize("section", ["data", "model"])
def test_bad_config_value_in_checkpoint_is_located(tmp_path, ckpt, clip, capsys, section):
    import torch

    from beenet.artifacts.checkpoint import load_checkpoint

    c = load_checkpoint(ckpt)
    config = dict(c["config"], **{section: dict(c["config"][section], image_size="abc")})
    bad = tmp_path / "abc.pt"
    torch.save(dict(c, config=config), bad)
    assert main(["predict", str(clip), "--checkpoint", str(bad), "--out", str(tmp_path / "o"), *PREDICT]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: " in err and "image_size must be a positive integer, got 'abc'" in err
    pytest.importorskip("onnx", reason="the export half needs the onnx extra")
    assert main(["export", "onnx", "--checkpoint", str(bad), "--out", str(tmp_path / "m.onnx")]) == 1
    assert "image_size" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 7. predictions


def _predictions_csv(path: Path, rows: list[list[object]]) -> Path:
    from beenet.evaluation.predictions import PREDICTION_COLUMNS

    path.write_text(",".join(PREDICTION_COLUMNS) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_predictions_refuse_non_finite_values(tmp_path, value):
    from beenet.evaluation.predictions import read_predictions

    rows = [["v.mp4", 0, *[0.5] * 26, 5, 5, 5], ["v.mp4", 1, *[0.5] * 26, 5, value, 5]]
    path = _predictions_csv(tmp_path / "p.csv", rows)
    with pytest.raises(PredictionsError, match=rf"p.csv, line 3, column 'arousal': '{value}' is not a finite"):
        read_predictions(path)


def test_eval_warns_when_scores_leave_their_range(tmp_path, capsys, caplog):
    from test_eval_cli import _write_bold

    rows = _write_bold(tmp_path / "bold")["val"]
    preds = [[r[0], r[1], *[0.5] * 26, 5, 5, 5] for r in rows]
    preds[0][2 + 3] = 7.5  # Anticipation
    preds[1][2 + 0] = -0.1  # Peace
    preds[2][2 + 26] = -400  # valence
    path = _predictions_csv(tmp_path / "p.csv", preds)
    with caplog.at_level("WARNING", logger="beenet.evaluation.predictions"):
        assert main(["eval", "--data", str(tmp_path / "bold"), "--predictions", str(path)]) == 0
    text = caplog.text
    assert "2 row(s) have category scores outside [0, 1] (columns Peace, Anticipation)" in text
    assert "1 row(s) have VAD values outside [0, 10] (columns valence)" in text
    caplog.clear()
    preds[0][2 + 3], preds[1][2], preds[2][2 + 26] = 1.0, 0.0, 10
    with caplog.at_level("WARNING", logger="beenet.evaluation.predictions"):
        assert main(["eval", "--data", str(tmp_path / "bold"), "--predictions",
                     str(_predictions_csv(tmp_path / "p.csv", preds))]) == 0
    assert "outside" not in caplog.text


# ----------------------------------------------------------------------------- 8. synth --overwrite


@pytest.mark.slow
def test_synth_overwrite_keeps_files_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "syn"
    args = ["synth", str(out), "--clips", "2", "--size", "48x32", "--frames", "10-12", "--workers", "1",
            "--no-progress"]
    assert main(args) == 0
    (out / "splits").mkdir()
    (out / "splits" / "paper-seed0.json").write_text("{}")  # derived by train: replaced with the data
    for mine in (out / "notes.txt", out / "videos" / "003" / "mine.txt", out / "annotations" / "extra.csv"):
        mine.write_text("mine")
        capsys.readouterr()
        assert main(args + ["--overwrite", "--seed", "2"]) == 1
        err = capsys.readouterr().err
        assert mine.relative_to(out).as_posix() in err and "did not write" in err
        assert mine.read_text() == "mine"
        mine.unlink()
    first = (out / "annotations" / "train.csv").read_bytes()
    assert main(args + ["--overwrite", "--seed", "2"]) == 0
    assert (out / "annotations" / "train.csv").read_bytes() != first and not (out / "splits").exists()


# ----------------------------------------------------------------------------- 7/9. file modes


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    script = textwrap.dedent(f"""
        import os, sys, torch
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        os.umask({umask})
        from pathlib import Path
        from beenet import atomic
        from beenet.evaluation.predictions import write_predictions
        from beenet.inference.table import empty_table
        from beenet.artifacts.checkpoint import save_checkpoint
        d = Path({str(tmp_path)!r})
        atomic.write_text(d / "config.yaml", "a: 1\\n")
        save_checkpoint(d / "last.pt", model={{"w": torch.zeros(2)}}, config={{"model": {{}}}}, epoch=0)
        write_predictions(d / "pred.csv", [("v", 0)], torch.zeros(1, 26), torch.zeros(1, 3))
        empty_table(video="v", fps=1.0).write(d / "table.csv")
        (d / "kept.json").write_text("{{}}"); os.chmod(d / "kept.json", 0o640)
        atomic.write_json(d / "kept.json", {{"a": 1}})  # replacing a file keeps its mode
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=120)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"config.yaml": mode, "last.pt": mode, "pred.csv": mode, "table.csv": mode,
                     "table.meta.json": mode, "kept.json": 0o640}


# ----------------------------------------------------------------------------- 8. Ctrl-C


@pytest.mark.slow
def test_ctrl_c_in_predict_exits_130_with_the_summary(tmp_path, ckpt, clip):
    """Ctrl-C while predict reads its third input: the two videos done before it are kept.

    The third input is an OpenPose keypoints folder whose one JSON file is a named pipe this test
    holds (held_pipe.signal_held): predict, having printed that the first two videos are done, is
    provably stopped reading it when the signal comes (no race with the clock, whatever the load)."""
    inputs = [str(_copy_clip(clip, tmp_path / "in" / f"d{i}")) for i in range(5)]
    held = tmp_path / "in" / "held"
    held.mkdir()
    shutil.copy(clip.with_suffix(".mp4"), held / "clip.mp4")
    pipe = held / "clip_000000000000_keypoints.json"
    os.mkfifo(pipe)
    inputs.insert(2, str(held))
    out = tmp_path / "out"
    proc = beenet_subprocess(["predict", *inputs, "--checkpoint", str(ckpt), "--out", str(out), *PREDICT])
    with reaped(proc):
        done = []
        for line in proc.stdout:
            if line.startswith("ok "):
                done.append(line)
                if len(done) == 2:
                    break
        assert len(done) == 2, f"predict ended after {len(done)} video(s): {proc.communicate()[1][-3000:]}"
        signal_held(pipe, proc, signal.SIGINT)  # once predict has opened the pipe and waits for its bytes
        _, stderr = proc.communicate(timeout=HANG_S)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted: 2 of 6 inputs done, 0 failed" in stderr
    summary = json.loads((out / "predict_summary.json").read_text())
    assert summary["status"] == "interrupted" and len(summary["videos"]) == 2 and summary["failures"] == []
    for v in summary["videos"]:
        assert all((out / o).is_file() for o in v["outputs"])
    assert _leftovers(out) == []


def test_ctrl_c_inside_a_checkpoint_write_keeps_the_old_file(tmp_path):
    """A Ctrl-C while torch.save writes (torch may turn it into a RuntimeError, or finish the file
    first): it stays an interrupt (exit 130), the checkpoint on disk is whole, no temp file left."""
    script = textwrap.dedent(f"""
        import os, signal, sys, threading, time, torch
        from beenet.artifacts.checkpoint import save_checkpoint
        p = {str(tmp_path / "last.pt")!r}
        save_checkpoint(p, model={{"w": torch.zeros(3)}}, config={{"model": {{}}}}, epoch=0)
        big = {{f"w{{i}}": torch.randn(50_000) for i in range(20)}}
        real_save = torch.save

        class Tripwire:  # Ctrl-C arrives while torch.save is writing (deterministic, not timed)
            def __init__(self, f):
                self.f, self.n = f, 0
            def write(self, b):
                self.n += 1
                if self.n == 3:
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.5)
                return self.f.write(b)
            def __getattr__(self, name):
                return getattr(self.f, name)

        torch.save = lambda obj, fh, *a, **k: real_save(obj, Tripwire(fh), *a, **k)
        try:
            save_checkpoint(p, model=big, config={{"model": {{}}}}, epoch=1)
            time.sleep(5)
        except KeyboardInterrupt:
            sys.exit(130)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 130, res.stderr
    from beenet.artifacts.checkpoint import load_checkpoint

    # Either the old checkpoint or the whole new one (torch's writer may finish the file before the
    # interrupt surfaces), never a partial file; no temp file left.
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] in (0, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_an_interrupt_a_library_wrapped_is_still_an_interrupt():
    from beenet.errors import caused_by_interrupt

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("unexpected pos 20010048 vs 20010000")  # what torch.save raises
    except RuntimeError as exc:
        assert caused_by_interrupt(exc)
    assert not caused_by_interrupt(RuntimeError("plain"))
