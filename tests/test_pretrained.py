"""Weights others can load: ``beenet export pretrained`` folders, loading them by path or Hub id,
and the refusals (pickle, damaged files, other format versions)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from _predict_helpers import ScriptedPose, make_checkpoint, write_people_video
from beenet.cli import main
from beenet.errors import BeenetError, CheckpointError
from beenet.inference.predictor import Predictor
from beenet.metrics import bold_scores, format_headline, headline
from beenet.artifacts.pretrained import CARD_FILE, CONFIG_FILE, FORMAT, WEIGHTS_FILE
from beenet.artifacts.share import export_pretrained
from beenet.artifacts.checkpoint import load_checkpoint, save_checkpoint
from beenet.artifacts.loader import load_model
from beenet.weights import file_sha256

FPS = 12.0


def _val_scores(seed: int = 0) -> dict:
    """Real bold_scores output (with its chance levels) on random predictions."""
    rng = np.random.default_rng(seed)
    return bold_scores(rng.random((40, 26)), rng.random((40, 26)), 1 + 9 * rng.random((40, 3)),
                       1 + 9 * rng.random((40, 3)))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A tiny still-frame checkpoint with validation metrics, as 'beenet train' writes best.pt."""
    d = tmp_path_factory.mktemp("ckpt")
    path = make_checkpoint(d / "raw.pt", fusion_form="odds")
    c = load_checkpoint(path)
    metrics = {"val": headline(_val_scores()), "train": {"loss": 0.5}}
    return save_checkpoint(d / "best.pt", model=c["model"], config=c["config"], epoch=3, metrics=metrics,
                           started_from={"trunk": {"file": "googlenet-1378be20.pth", "url": "https://x/g.pth",
                                                   "sha256": "ab" * 32}})


@pytest.fixture(scope="module")
def folder(ckpt, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "model"
    assert main(["export", "pretrained", "--checkpoint", str(ckpt), "--out", str(out),
                 "--training-data", "beenet synth, 24 clips"]) == 0
    return out


@pytest.fixture(scope="module")
def people_video(tmp_path_factory):
    d = tmp_path_factory.mktemp("video")
    scene = write_people_video(d / "two.mp4", num_frames=24, width=96, height=64, people=2, fps=FPS)
    return d / "two.mp4", scene


def _copy(folder: Path, dst: Path) -> Path:
    shutil.copytree(folder, dst)
    return dst


def _set_config(folder: Path, **changes) -> None:
    meta = json.loads((folder / CONFIG_FILE).read_text())
    meta.update(changes)
    (folder / CONFIG_FILE).write_text(json.dumps(meta))


# ----------------------------------------------------------------------------- export


def test_export_writes_the_folder_and_it_loads_back_identically(ckpt, folder):
    assert sorted(p.name for p in folder.iterdir()) == sorted([WEIGHTS_FILE, CONFIG_FILE, CARD_FILE])
    meta = json.loads((folder / CONFIG_FILE).read_text())
    pt = load_checkpoint(ckpt)
    assert meta["format"] == FORMAT and meta["format_version"] == 1
    assert meta["config"] == pt["config"] and meta["labels"] == pt["labels"]
    assert meta["checkpoint_sha256"] == file_sha256(ckpt)
    assert meta["weights_sha256"] == file_sha256(folder / WEIGHTS_FILE)
    assert meta["pretrained_weights"] == pt["pretrained_weights"]
    assert meta["training_data"]["description"] == "beenet synth, 24 clips"
    loaded = load_checkpoint(folder)
    assert loaded["format"] == FORMAT and loaded["epoch"] == 3
    assert loaded["model"].keys() == pt["model"].keys()
    for k, v in pt["model"].items():
        assert loaded["model"][k].dtype == v.dtype and torch.equal(loaded["model"][k], v), k
    m_pt, _ = load_model(ckpt)
    m_dir, _ = load_model(folder)
    for (ka, a), (kb, b) in zip(m_pt.state_dict().items(), m_dir.state_dict().items()):
        assert ka == kb and torch.equal(a, b), ka


def test_model_card_has_the_metrics_with_chance_and_how_to_load(folder):
    card = (folder / CARD_FILE).read_text()
    val = headline(_val_scores())
    assert format_headline(val) in card
    assert format_headline(val["chance"]) in card
    assert f"n = {val['n']}" in card and "after epoch 4" in card
    assert "beenet synth, 24 clips" in card and "Protocol: official" in card
    assert "Predictor.from_pretrained" in card and "googlenet-1378be20.pth" in card
    assert card.startswith("---\nlibrary_name: beenet\n")


def test_export_refuses_a_non_empty_folder_without_overwrite(ckpt, tmp_path, capsys):
    out = tmp_path / "m"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["export", "pretrained", "--checkpoint", str(ckpt), "--out", str(out)]) == 1
    assert "not empty" in capsys.readouterr().err and not (out / WEIGHTS_FILE).exists()
    assert main(["export", "pretrained", "--checkpoint", str(ckpt), "--out", str(out), "--overwrite"]) == 0
    assert (out / WEIGHTS_FILE).is_file() and (out / "notes.txt").read_text() == "mine"


def test_export_of_an_unvalidated_checkpoint_says_so(tmp_path):
    ckpt = make_checkpoint(tmp_path / "x.pt")
    out = export_pretrained(ckpt, tmp_path / "m")
    card = (out / CARD_FILE).read_text()
    assert "Not validated" in card and "random initialisation" in card and "not recorded" in card


# ----------------------------------------------------------------------------- predict


def test_folder_predicts_exactly_like_the_checkpoint(ckpt, folder, people_video):
    video, scene = people_video
    kw = dict(device="cpu", window=1.0, stride=1.0, batch_size=4)
    a = Predictor(ckpt, pose=ScriptedPose(scene), **kw).predict(video)
    b = Predictor.from_pretrained(folder, pose=ScriptedPose(scene), **kw).predict(video)
    c = Predictor(folder, pose=ScriptedPose(scene), **kw).predict(video)
    assert len(a) > 0
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b))
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(c))
    assert b.metadata["checkpoint_sha256"] == file_sha256(folder / WEIGHTS_FILE)


# ----------------------------------------------------------------------------- Hub ids


def _hub_cache(root: Path, folder: Path, repo: str = "user/name", rev: str = "0" * 40) -> Path:
    """The layout huggingface_hub's cache has after a download: blobs, refs/main, snapshots/<rev>/."""
    base = root / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / rev
    (base / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(rev)
    for f in folder.iterdir():
        blob = base / "blobs" / file_sha256(f)
        shutil.copyfile(f, blob)
        os.symlink(os.path.relpath(blob, snap), snap / f.name)
    return snap


@pytest.mark.parametrize("offline", [True, False], ids=["HF_HUB_OFFLINE", "no-network"])
def test_hub_id_loads_from_the_local_cache(folder, ckpt, tmp_path, monkeypatch, offline):
    pytest.importorskip("huggingface_hub")
    cache = tmp_path / "hf"
    _hub_cache(cache, folder)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:  # conftest blocks the network: the Hub cannot be reached, the cache answers
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    model, c = load_model("user/name")
    pt = load_checkpoint(ckpt)
    assert Path(c["weights_file"]).parent.parent.parent == cache / "models--user--name"
    for k, v in pt["model"].items():
        assert torch.equal(model.state_dict()[k], v), k
    pred = Predictor.from_pretrained("user/name", device="cpu")
    assert pred.spec.checkpoint_sha256 == file_sha256(folder / WEIGHTS_FILE)
    assert Predictor("user/name@main", device="cpu").spec.config == pt["config"]
    with pytest.raises(CheckpointError, match=r"user/other.*not in the local Hugging Face cache"):
        Predictor.from_pretrained("user/other", device="cpu")


def test_hub_id_without_the_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if not installed
    with pytest.raises(CheckpointError, match=r"beenet\[hub\]"):
        load_checkpoint("someone/some-model")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint("nowhere/at/all.pt")


# ----------------------------------------------------------------------------- refusals


class _Trap:
    """Unpickling this runs ``os.mkdir(marker)``: proof that a loader ran pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_pickle_in_place_of_the_weights_is_refused_unread(folder, tmp_path):
    bad = _copy(folder, tmp_path / "m")
    marker = tmp_path / "pickle-ran"
    torch.save({"model": _Trap(marker)}, bad / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match=rf"{WEIGHTS_FILE}: not a readable safetensors file"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match=WEIGHTS_FILE):
        Predictor(bad, device="cpu")
    assert not marker.exists()
    # Only a pickle beside the config: named, and never read.
    (bad / WEIGHTS_FILE).rename(bad / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"missing \(pytorch_model.bin is there, but beenet never loads a pickle"):
        load_checkpoint(bad)
    assert not marker.exists()


def test_damaged_weights_give_a_located_error(folder, tmp_path):
    bad = _copy(folder, tmp_path / "trunc")
    data = (bad / WEIGHTS_FILE).read_bytes()
    (bad / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"{bad / WEIGHTS_FILE}: not a readable safetensors"):
        load_checkpoint(bad)
    flipped = _copy(folder, tmp_path / "flip")
    raw = bytearray((flipped / WEIGHTS_FILE).read_bytes())
    raw[-5] ^= 0xFF  # still parses: only the sha256 tells
    (flipped / WEIGHTS_FILE).write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=rf"{WEIGHTS_FILE}: its sha256 .* differs"):
        load_checkpoint(flipped)


def test_missing_and_extra_tensors_are_named(folder, tmp_path):
    from safetensors.torch import load_file, save_file

    bad = _copy(folder, tmp_path / "m")
    state = load_file(str(bad / WEIGHTS_FILE))
    gone = sorted(state)[0]
    del state[gone]
    state["stray.weight"] = torch.zeros(2)
    save_file(state, str(bad / WEIGHTS_FILE))
    _set_config(bad, weights_sha256=file_sha256(bad / WEIGHTS_FILE))
    with pytest.raises(CheckpointError) as err:
        load_model(bad)
    msg = str(err.value)
    assert str(bad / WEIGHTS_FILE) in msg and gone in msg and "stray.weight" in msg


@pytest.mark.parametrize("change, pattern", [
    ({"format_version": 2}, r"format_version 2, this beenet .* reads version 1; upgrade beenet"),
    ({"format_version": 0}, r"format_version 0, .*re-export"),
    ({"format": "other"}, "not a beenet pretrained config"),
    ({"labels": {"categories": ["a"], "vad": []}}, "label order differs"),
])
def test_config_of_another_format_is_refused(folder, tmp_path, change, pattern):
    bad = _copy(folder, tmp_path / "m")
    _set_config(bad, **change)
    with pytest.raises(CheckpointError, match=pattern) as err:
        load_checkpoint(bad)
    assert CONFIG_FILE in str(err.value)


def test_a_folder_that_is_not_an_export(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(CheckpointError, match="not a beenet pretrained folder"):
        Predictor(tmp_path / "x", device="cpu")
    (tmp_path / "x" / CONFIG_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match=rf"{CONFIG_FILE}: not valid JSON"):
        load_checkpoint(tmp_path / "x")
    with pytest.raises(BeenetError, match="already a folder"):
        export_pretrained(tmp_path / "x", tmp_path / "y")


# ----------------------------------------------------------------------------- eval / export onnx


@pytest.mark.slow
def test_eval_and_onnx_export_take_a_folder(tmp_path):
    from beenet.evaluation.evaluate import evaluate_checkpoint
    from beenet.training.loop import train
    from train_helpers import tiny_config, write_tiny_synth

    data = write_tiny_synth(tmp_path / "synth")
    train(tiny_config("demo", ["optim.epochs=1"]), data, tmp_path / "run")
    best = tmp_path / "run" / "best.pt"
    out = export_pretrained(best, tmp_path / "model", training_data="tiny synth")
    card = (out / CARD_FILE).read_text()
    val = load_checkpoint(best)["metrics"]["val"]
    assert format_headline(val) in card and format_headline(val["chance"]) in card
    a = evaluate_checkpoint(data, best, split="val", device="cpu", plots=False)
    b = evaluate_checkpoint(data, out, split="val", device="cpu", plots=False)
    for k in ("mAP", "mRA", "mR2", "ERS"):
        assert a[k] == pytest.approx(b[k], abs=1e-7) and a[k] == pytest.approx(val[k], abs=1e-6)
    assert main(["eval", "--data", str(data), "--split", "val", "--checkpoint", str(out)]) == 0
    pytest.importorskip("onnx")
    assert main(["export", "onnx", "--checkpoint", str(out), "--out", str(tmp_path / "m.onnx"), "--check"]) == 0
