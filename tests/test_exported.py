"""The default engine on the CPU: a .pt runs as its ONNX export, made once into the cache, and a
later prediction loads no torch; a damaged cached export is made again; an export that fails falls
back to torch under ``auto`` (never for a damaged checkpoint) and is an error under ``onnx``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

#: Every test here exports a model.
pytestmark = pytest.mark.slow

from _predict_helpers import ScriptedPose, make_checkpoint, write_joints_clip, write_people_video  # noqa: E402
from beenet.errors import CheckpointError  # noqa: E402
from beenet.inference import exported  # noqa: E402
from beenet.inference.predictor import Predictor  # noqa: E402
from beenet.inference.scoring import onnx_suits  # noqa: E402

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_the_export_is_made_once_and_named_by_checkpoint_and_code(tmp_path, monkeypatch):
    ckpt = make_checkpoint(tmp_path / "m.pt")
    path, tmpdir = exported.cached_export(ckpt)
    assert tmpdir is None and path.is_file() and path == exported.export_path(ckpt)
    assert path.parent == Path(os.environ["BEENET_CACHE"]) / "exports"
    assert path.name.endswith(f"-{exported.model_code_digest()}.onnx")

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr("beenet.inference.onnx.export_onnx", no_export)
    assert exported.cached_export(ckpt) == (path, None)  # found, not made
    other = make_checkpoint(tmp_path / "n.pt", seed=1)
    assert exported.export_path(other) != path  # another checkpoint, another file


def test_auto_on_the_cpu_equals_torch_with_crops_and_skeleton(tmp_path):
    """The default engine (ONNX Runtime, numpy inputs) against the torch engine (training's
    transforms): the same table within 1e-4, body crops and skeleton included."""
    ckpt = make_checkpoint(tmp_path / "m.pt", body_crop="shared", skeleton=True, data_sampling="uniform",
                           data_num_frames=3)
    scene = write_people_video(tmp_path / "v.mp4", num_frames=24, width=96, height=64, people=2, fps=12.0)
    kw = dict(device="cpu", window=1.0, stride=1.0, streams=True)
    a = Predictor(ckpt, engine="torch", pose=ScriptedPose(scene), **kw).predict(tmp_path / "v.mp4")
    with Predictor(ckpt, pose=ScriptedPose(scene), **kw) as p:
        assert p.engine.name == "onnx" and p.device == "cpu"
        b = p.predict(tmp_path / "v.mp4")
    assert len(a) and b.metadata["settings"]["engine"] == "onnx"
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b), atol=1e-4, rtol=0)


def test_a_cached_export_predicts_without_importing_torch(tmp_path):
    """``beenet predict`` in a process where importing torch fails: it runs, from the cache."""
    ckpt = make_checkpoint(tmp_path / "m.pt")
    joints = write_joints_clip(tmp_path / "clip.mp4")
    exported.cached_export(ckpt)
    probe = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'torchvision'):\n"
        "            raise ImportError('torch is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from beenet.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = tmp_path / "out"
    args = ["predict", str(joints), "--checkpoint", str(ckpt), "--out", str(out), "--window", "1", "--stride", "1"]
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", probe, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(out / "clip.csv")
    assert len(table) > 0 and set(table.person_id) == {0, 1}
    meta = json.loads((out / "clip.meta.json").read_text())
    assert meta["settings"]["engine"] == "onnx"


def test_a_damaged_cached_export_is_made_again(tmp_path, caplog):
    ckpt = make_checkpoint(tmp_path / "m.pt")
    path, _ = exported.cached_export(ckpt)
    path.write_bytes(b"not an onnx file")
    with caplog.at_level(logging.WARNING, logger="beenet.inference.scoring"):
        p = Predictor(ckpt, device="cpu", pose=ScriptedPose([]))
    assert p.engine.name == "onnx" and "exporting it again" in caplog.text
    assert path.stat().st_size > 1000


def test_a_failed_export_falls_back_to_torch_under_auto_only(tmp_path, monkeypatch, caplog):
    ckpt = make_checkpoint(tmp_path / "m.pt", seed=11)  # a checkpoint of its own: no export of it in the cache

    def broken(*a, **k):
        raise RuntimeError("the exporter broke")

    monkeypatch.setattr("beenet.inference.onnx.export_onnx", broken)
    with caplog.at_level(logging.WARNING, logger="beenet.inference.scoring"):
        p = Predictor(ckpt, device="cpu", pose=ScriptedPose([]))
    assert p.engine.name == "torch" and "the exporter broke" in caplog.text and "running the model on torch" in caplog.text
    with pytest.raises(RuntimeError, match="the exporter broke"):
        Predictor(ckpt, device="cpu", engine="onnx", pose=ScriptedPose([]))


def test_a_damaged_checkpoint_is_an_error_under_auto_too(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="bad.pt"):
        Predictor(bad, device="cpu", pose=ScriptedPose([]))


def test_auto_keeps_torch_where_a_gpu_is_asked_for(monkeypatch):
    assert onnx_suits("cpu") and not onnx_suits("cuda") and not onnx_suits("cuda:1")
    monkeypatch.setattr("beenet.inference.scoring.gpu_visible", lambda: True)
    assert not onnx_suits("auto")
    monkeypatch.setattr("beenet.inference.scoring.gpu_visible", lambda: False)
    assert onnx_suits("auto")


def test_folders_with_the_same_weights_but_other_records_get_their_own_export(tmp_path):
    """The cache key covers a pretrained folder's config.json, not only its weights: two folders
    that differ only in their ``trained_on`` record each predict with their own record."""
    from beenet.artifacts.share import export_pretrained

    first = export_pretrained(make_checkpoint(tmp_path / "m.pt"), tmp_path / "a")
    second = tmp_path / "b"
    second.mkdir()
    for f in first.iterdir():
        (second / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((second / "config.json").read_text())
    cfg["trained_on"] = {**cfg.get("trained_on", {}), "kind": "bold", "data": "another record"}
    (second / "config.json").write_text(json.dumps(cfg))
    assert exported.export_path(first) != exported.export_path(second)
    with Predictor(first, device="cpu") as a, Predictor(second, device="cpu") as b:
        assert a.engine.name == b.engine.name == "onnx"
        assert b.trained_on["kind"] == "bold" and a.trained_on["kind"] != "bold"
