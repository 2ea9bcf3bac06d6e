"""ONNX export: ONNX Runtime equals PyTorch within 1e-4 at any batch size; predict --engine onnx."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

#: Every test here exports a model and runs it under onnxruntime (the predict one on a video too).
pytestmark = pytest.mark.slow

from _predict_helpers import ScriptedPose, make_checkpoint, write_people_video  # noqa: E402
from beenet.cli import main  # noqa: E402
from beenet.inference.engines import OnnxEngine, TorchEngine  # noqa: E402
from beenet.inference.onnx import (  # noqa: E402
    dummy_batch,
    export_onnx,
)
from beenet.artifacts.spec import spec_from_checkpoint  # noqa: E402
from beenet.inference.predictor import Predictor  # noqa: E402

# The default still-frame model is covered by test_export_cli (--check compares at batch 1 and 3).
CONFIGS = {
    "uniform+crop+skeleton": dict(body_crop="shared", skeleton=True, temporal_pool="gem",
                                  data_sampling="uniform", data_num_frames=3),
    "context-input": dict(fusion_context="input", context_pool="mean", fusion_form="odds"),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_onnx_runtime_matches_pytorch(tmp_path, name):
    import torch

    from beenet.artifacts.checkpoint import checkpoint_sha256
    from beenet.artifacts.loader import load_model

    ckpt = make_checkpoint(tmp_path / "m.pt", **CONFIGS[name])
    path = export_onnx(ckpt, tmp_path / "m.onnx")
    model, raw = load_model(ckpt)
    spec = spec_from_checkpoint(raw, checkpoint_sha256(ckpt), ckpt)
    ort_engine, torch_engine = OnnxEngine(path), TorchEngine(model, torch.device("cpu"))
    assert ort_engine.input_names == spec.input_names
    g = torch.Generator().manual_seed(1)
    for batch_size in (1, 4):  # the batch axis is dynamic
        batch = dummy_batch(spec, batch_size, g, partial_masks=True)
        a, b = torch_engine(batch), ort_engine(batch)
        assert b["categories"].shape == (batch_size, 26) and b["vad"].shape == (batch_size, 3)
        np.testing.assert_allclose(b["categories"], a["categories"], atol=1e-4, rtol=0)
        np.testing.assert_allclose(b["vad"], a["vad"], atol=1e-4, rtol=0)
        assert set(b["streams"]) == set(a["streams"]) and a["streams"]
        for s in a["streams"]:
            np.testing.assert_allclose(b["streams"][s], a["streams"][s], atol=1e-4, rtol=0)
    meta = ort_engine.metadata
    assert meta["beenet.checkpoint_sha256"] == checkpoint_sha256(ckpt)
    assert meta["beenet.model"] == spec.name


def test_predict_with_the_onnx_engine_equals_torch(tmp_path):
    ckpt = make_checkpoint(tmp_path / "m.pt", skeleton=True, fusion_form="odds")
    scene = write_people_video(tmp_path / "v.mp4", num_frames=24, width=96, height=64, people=2, fps=12.0)
    kw = dict(device="cpu", window=1.0, stride=1.0, streams=True)
    a = Predictor(ckpt, engine="torch", pose=ScriptedPose(scene), **kw).predict(tmp_path / "v.mp4")
    with Predictor(ckpt, engine="onnx", pose=ScriptedPose(scene), **kw) as p:  # exports on the fly
        b = p.predict(tmp_path / "v.mp4")
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b), atol=1e-4, rtol=0)
    # The same metadata, but for the engine the settings record.
    sa, sb = dict(a.metadata["settings"]), dict(b.metadata["settings"])
    assert (sa.pop("engine"), sb.pop("engine")) == ("torch", "onnx") and sa == sb
    assert {k: v for k, v in a.metadata.items() if k != "settings"} == \
        {k: v for k, v in b.metadata.items() if k != "settings"}
    # and from an exported file: the file's metadata carries the checkpoint's identity
    onnx_path = export_onnx(ckpt, tmp_path / "m.onnx")
    c = Predictor(onnx_path, engine="onnx", pose=ScriptedPose(scene), **kw).predict(tmp_path / "v.mp4")
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(c), atol=1e-4, rtol=0)
    assert c.checkpoint_sha256 == a.checkpoint_sha256


def test_export_cli(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "m.pt")
    out = tmp_path / "sub" / "m.onnx"
    assert main(["export", "onnx", "--checkpoint", str(ckpt), "--out", str(out), "--check"]) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "max |difference|" in text and "ok" in text
    with pytest.raises(SystemExit) as exc:
        main(["export", "onnx", "--help"])
    assert exc.value.code == 0
    assert "beenet export onnx --checkpoint" in capsys.readouterr().out
    # a checkpoint that is not one: one clear line, exit 1
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    assert main(["export", "onnx", "--checkpoint", str(bad), "--out", str(tmp_path / "x.onnx")]) == 1
    assert "bad.pt" in capsys.readouterr().err
