"""`beenet predict` finds setup errors once, before any video is opened: exit 2, one message that
names what is missing and the command that fixes it (a checkpoint that does not exist, pyarrow for
--format parquet, a pose backend that is not installed or cannot start, an --out that cannot be
written)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _predict_helpers import beenet_subprocess, make_checkpoint, write_joints_clip
from beenet.cli import main
from beenet.inference.pose import INSTALL_HINT
from beenet.inference.pose.runtime import litert_available
from footage import footage
from train_helpers import restore_root_logging

_restore_logging = pytest.fixture(autouse=True)(restore_root_logging)

PREDICT = ["--window", "1", "--stride", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "still.pt")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A video with its joints: ``clip.mp4`` + ``clip.npy`` (two people, 24 frames)."""
    return write_joints_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def _error_lines(err: str) -> list[str]:
    """The lines of stderr that beenet wrote (not a C library's log lines)."""
    return [line for line in err.splitlines() if line.startswith("beenet predict")]


def test_missing_checkpoint_exits_2_before_anything_is_made(tmp_path, clip, capsys):
    out = tmp_path / "out"
    code = main(["predict", str(clip), "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(out), *PREDICT])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert "nope.pt" in err and "no such checkpoint" in err and "beenet demo --out" in err
    assert not out.exists()  # found before --out was even created


def test_parquet_without_pyarrow_exits_2_once(tmp_path, ckpt, clip, capsys, monkeypatch):
    # pyarrow really missing for this process: importing it raises ImportError.
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    out = tmp_path / "out"
    videos = [str(clip), str(clip.with_suffix(".npy"))]
    code = main(["predict", *videos, "--checkpoint", str(ckpt), "--out", str(out), "--format", "csv,parquet",
                 *PREDICT])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert "--format parquet needs the pyarrow package" in err and "pip install 'beenet[parquet]'" in err
    assert not (out / "predict_summary.json").exists() and not (out / "clip.csv").exists()


def test_out_that_is_a_file_exits_2(tmp_path, ckpt, clip, capsys):
    out = tmp_path / "a-file"
    out.write_text("x")
    code = main(["predict", str(clip), "--checkpoint", str(ckpt), "--out", str(out), *PREDICT])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"--out {out}: cannot create or write" in err


def _shim(tmp_path: Path, body: str, monkeypatch, package: str = "ai_edge_litert") -> None:
    """Child processes find a ``package`` whose ``__init__`` is ``body`` before the installed one
    (``beenet_subprocess`` puts src/ in front of PYTHONPATH, then this)."""
    pkg = tmp_path / "shim" / package
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(body)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "shim"))


@pytest.mark.parametrize("case", ["missing", pytest.param("wrong model file", marks=pytest.mark.slow)])
def test_pose_backend_that_cannot_start_exits_2_once_before_any_video(tmp_path, ckpt, case, monkeypatch):
    """ai-edge-litert not importable (or a model file in the cache with the wrong bytes): one
    message, exit 2, before any video is opened, even with several videos to do."""
    video = footage("carphone.mp4")
    monkeypatch.setenv("BEENET_CACHE", str(tmp_path / "cache"))  # the child's cache
    if case == "missing":
        _shim(tmp_path, "raise ModuleNotFoundError(\"No module named 'ai_edge_litert'\", name='ai_edge_litert')\n",
              monkeypatch)
    else:
        if not litert_available():
            pytest.skip("ai-edge-litert is not installed")
        bad = tmp_path / "cache" / "models" / "pose_detection.tflite"
        bad.parent.mkdir(parents=True)
        bad.write_bytes(b"not the detector")
    # mediapipe itself is not needed: hidden in the child either way
    _shim(tmp_path, "raise ModuleNotFoundError(\"No module named 'mediapipe'\", name='mediapipe')\n", monkeypatch,
          "mediapipe")
    out = tmp_path / "out"
    second = tmp_path / "second.mp4"
    second.write_bytes(video.read_bytes())
    proc = beenet_subprocess(["predict", str(video), str(second), "--checkpoint", str(ckpt), "--out", str(out),
                              "--pose", "mediapipe", *PREDICT])
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 2, stderr
    lines = _error_lines(stderr)
    assert len(lines) == 1, stderr
    msg = lines[0]
    assert "the pose backend 'mediapipe' cannot be used" in msg
    if case == "missing":
        assert "No module named 'ai_edge_litert'" in msg and INSTALL_HINT in msg
    else:
        assert f"{bad}: is not the BlazePose person detector" in msg and "beenet models fetch" in msg
    assert "install-pose" not in msg and "rcnn" in msg.split("--pose")[-1]
    assert "FAILED" not in stderr and "ok " not in stdout
    assert not (out / "predict_summary.json").exists()


@pytest.mark.slow
def test_precomputed_joints_need_no_pose_backend(tmp_path, ckpt, clip, monkeypatch):
    """With only joints inputs the pose backend is never built: ai-edge-litert missing is no error."""
    _shim(tmp_path, "raise ModuleNotFoundError('hidden', name='ai_edge_litert')\n", monkeypatch)
    proc = beenet_subprocess(["predict", str(clip.with_suffix(".npy")), "--checkpoint", str(ckpt),
                              "--out", str(tmp_path / "out"), "--pose", "mediapipe", *PREDICT])
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert (tmp_path / "out" / "clip.csv").is_file()


def test_unknown_pose_option_exits_2_once_before_any_video(tmp_path, ckpt, capsys):
    """A --pose-option the backend does not take (a typo): one message naming it, exit 2."""
    out = tmp_path / "out"
    code = main(["predict", str(footage("carphone.mp4")), "--checkpoint", str(ckpt), "--out", str(out),
                 "--pose", "mediapipe", "--pose-option", "hog_evry=2", *PREDICT])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = _error_lines(err)
    assert len(lines) == 1 and "does not take the option 'hog_evry'" in lines[0], err
    assert "install" not in lines[0] and "--pose rcnn" not in lines[0]  # not the advice for a missing backend
    assert not (out / "predict_summary.json").exists() and not (out / "carphone.csv").exists()


#: What ``beenet predict`` does not import before pass 1 takes its first frame: the prediction
#: table (pandas), the synthetic-data generator and its drawing (PIL), plots, scipy
#: (docs/predict.md, "Start-up"), and torch, once the checkpoint's ONNX export is in the cache
#: (the default engine on the CPU). PyAV and the LiteRT runtime are needed by then.
NOT_BEFORE_FIRST_FRAME = ("pandas", "beenet.data.synth", "PIL", "matplotlib", "scipy", "torch")
NEEDED_BY_FIRST_FRAME = ("av", "ai_edge_litert", "onnxruntime")


def test_predict_reaches_its_first_frame_without_the_table_or_plot_libraries(tmp_path, ckpt, blazepose_models):
    """A fresh ``beenet predict`` of a real video with the default pose backend: the modules
    loaded when pass 1 takes its first frame from the decoder (``beenet.inference.people``'s
    ``prefetch``, seen from outside; the process ends there). The checkpoint's ONNX export is
    made first, as the first ``beenet predict`` of a checkpoint makes it."""
    from beenet.inference.exported import cached_export

    cached_export(ckpt)  # in the session's cache, which the command below reads ($BEENET_CACHE)
    probe = (
        "import os, sys, json\n"
        "import beenet.inference.people as people\n"
        "from beenet.cli import main\n"
        "inner = people.prefetch\n"
        "def prefetch(items, *a, **k):\n"
        "    for item in inner(items, *a, **k):\n"
        "        tops = {m.split('.')[0] for m in sys.modules} | ({'beenet.data.synth'} & set(sys.modules))\n"
        "        print('FIRST', json.dumps(sorted(tops)))\n"
        "        sys.stdout.flush()\n"
        "        os._exit(0)\n"
        "people.prefetch = prefetch\n"
        "main(sys.argv[1:])\n"
    )
    args = ["predict", str(footage("carphone.mp4")), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), *PREDICT]
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", probe, *args], env=env, capture_output=True, text=True, timeout=300)
    first = [line for line in done.stdout.splitlines() if line.startswith("FIRST ")]
    assert first, f"pass 1 never took a frame (exit {done.returncode}): {done.stderr[-2000:]}"
    loaded = set(json.loads(first[0][len("FIRST "):]))
    assert set(NEEDED_BY_FIRST_FRAME) <= loaded  # the probe sees the modules of that moment
    assert sorted(set(NOT_BEFORE_FIRST_FRAME) & loaded) == []


def test_predict_help_loads_no_pandas() -> None:
    """``beenet predict --help`` lists the table formats without loading the tables (pandas)."""
    probe = ("import sys\n"
             "from beenet.cli.predict import build_parser\n"
             "text = build_parser('beenet predict').format_help()\n"
             "print('csv, json, parquet' in text, 'pandas' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"], out.stdout
