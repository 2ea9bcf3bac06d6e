"""What a model was trained on travels with it: ``beenet synth`` marks its datasets, training
records ``trained_on`` in every checkpoint, export carries it, predict warns once when a
synthetic-trained model meets real video and stamps it (with the settings that made the table)
in the table's metadata; old checkpoints and tables still read."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch

from _predict_helpers import make_checkpoint
from beenet.cli import main
from beenet.data.synth.write import MANIFEST_NAME, synth_manifest
from beenet.inference.predictor import Predictor
from beenet.inference.table import META_KEYS, read_table
from beenet.artifacts.share import export_pretrained
from beenet.artifacts.checkpoint import (
    SYNTHETIC_WARNING,
    UNKNOWN_DATA,
    load_checkpoint,
    save_checkpoint,
    trained_on,
    training_data_record,
)
from bold_fixture import write_bold_fixture
from footage import footage
from train_helpers import restore_root_logging, tiny_config, write_tiny_synth

_restore_logging = pytest.fixture(autouse=True)(restore_root_logging)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return write_tiny_synth(tmp_path_factory.mktemp("data") / "synth", clips=16)


@pytest.fixture(scope="module")
def synth_ckpt(synth, tmp_path_factory):
    """A tiny checkpoint that records (truthfully) that it learned from ``synth``."""
    path = make_checkpoint(tmp_path_factory.mktemp("ckpt") / "synth.pt")
    ckpt = load_checkpoint(path)
    record = training_data_record(synth, "paper", 42)
    return save_checkpoint(path, model=ckpt["model"], config=ckpt["config"], epoch=0, trained_on=record)


def test_synth_writes_a_manifest_that_marks_it(synth, tmp_path):
    doc = json.loads((synth / MANIFEST_NAME).read_text())
    assert doc["format"] == "beenet-synth" and doc["synthetic"] is True and doc["config"]["num_clips"] == 16
    assert synth_manifest(synth) == doc
    # A dataset written before the manifest existed is still known by its sidecar.
    old = tmp_path / "old"
    shutil.copytree(synth, old)
    (old / MANIFEST_NAME).unlink()
    assert synth_manifest(old)["synthetic"] is True
    # A BoLD-layout folder without either is not synthetic.
    bold = write_bold_fixture(tmp_path / "bold").root
    assert synth_manifest(bold) is None


@pytest.mark.slow
def test_training_records_what_it_learned_from(synth, tmp_path):
    cfg = tiny_config("demo", ["optim.epochs=1"])
    train_out = tmp_path / "run"
    from beenet.training.loop import train

    train(cfg, synth, train_out)
    best, last = load_checkpoint(train_out / "best.pt"), load_checkpoint(train_out / "last.pt")
    rec = trained_on(best)
    assert rec["kind"] == "synthetic" and rec["data"] == "synth" and rec["protocol"] == cfg.run.protocol
    assert len(rec["fingerprint"]) == 64 and last["trained_on"] == best["trained_on"]
    # The fingerprint is a function of the annotations and the split used: same data, same print ...
    from beenet.data.bold import BoLD

    bold = BoLD(synth)
    insts = {s: bold.instances(s, protocol=cfg.run.protocol, seed=cfg.run.split_seed) for s in ("train", "val")}
    again = training_data_record(synth, cfg.run.protocol, cfg.run.split_seed, insts)
    assert again["fingerprint"] == rec["fingerprint"]
    # ... another protocol or one changed annotation byte, another print.
    assert training_data_record(synth, "official", cfg.run.split_seed, insts)["fingerprint"] != rec["fingerprint"]
    copy = tmp_path / "copy"
    shutil.copytree(synth / "annotations", copy / "annotations")
    assert training_data_record(copy, cfg.run.protocol, cfg.run.split_seed, insts)["fingerprint"] == rec["fingerprint"]
    csv = copy / "annotations" / "train.csv"
    csv.write_text(csv.read_text().replace(",0.", ",1.", 1))
    changed = training_data_record(copy, cfg.run.protocol, cfg.run.split_seed, insts)
    assert changed["fingerprint"] != rec["fingerprint"] and changed["kind"] == "bold"


def test_real_layout_folder_records_bold(tmp_path):
    root = write_bold_fixture(tmp_path / "BOLD_public").root
    rec = training_data_record(root, "official", 42)
    assert rec["kind"] == "bold" and rec["data"] == "BOLD_public" and rec["protocol"] == "official"


def test_a_folder_beenet_import_built_records_imported_and_its_card_says_so(tmp_path):
    """A BoLD-layout folder made by ``beenet import`` (its manifest at the top) holds the user's own
    videos: its record and the model card say so, not "BoLD"."""
    from beenet.artifacts.share import _trained_on_line
    from beenet.data.bold import IMPORT_MANIFEST

    root = write_bold_fixture(tmp_path / "mine").root
    (root / IMPORT_MANIFEST).write_text('{"format": "beenet-import", "version": 1}')
    rec = training_data_record(root, "official", 42)
    assert rec["kind"] == "imported" and rec["data"] == "mine"
    assert trained_on({"trained_on": rec})["kind"] == "imported"
    assert "own labelled videos" in _trained_on_line(rec) and "BoLD" not in _trained_on_line(rec)


def test_old_checkpoint_reads_unknown(tmp_path):
    path = make_checkpoint(tmp_path / "old.pt")  # saved without a record, as before it existed
    ckpt = load_checkpoint(path)
    assert "trained_on" not in ckpt and trained_on(ckpt) == UNKNOWN_DATA
    with Predictor(path, device="cpu") as pred:
        assert pred.trained_on["kind"] == "unknown"
        assert pred.synthetic_warning(footage("carphone.mp4")) is None


def test_export_pretrained_carries_the_record(synth_ckpt, tmp_path):
    folder = export_pretrained(synth_ckpt, tmp_path / "model")
    meta = json.loads((folder / "config.json").read_text())
    assert meta["trained_on"]["kind"] == "synthetic" and meta["trained_on"]["data"] == "synth"
    assert meta["training_data"]["fingerprint"] == meta["trained_on"]["fingerprint"]
    card = (folder / "README.md").read_text()
    assert "synthetic stick figures" in card and "not meaningful" in card
    assert trained_on(load_checkpoint(folder)) == trained_on(load_checkpoint(synth_ckpt))
    with Predictor(folder, device="cpu") as pred:
        assert pred.trained_on["kind"] == "synthetic"
    # A folder exported before the record existed reads as unknown.
    del meta["trained_on"]
    (folder / "config.json").write_text(json.dumps(meta))
    assert trained_on(load_checkpoint(folder))["kind"] == "unknown"


def test_no_warning_for_videos_of_a_synth_dataset(synth_ckpt, synth):
    with Predictor(synth_ckpt, device="cpu") as pred:
        video = next((synth / "videos").rglob("*.mp4"))
        assert pred.synthetic_warning(video) is None
        assert pred.synthetic_warning(footage("carphone.mp4")) == SYNTHETIC_WARNING


@pytest.mark.usefixtures("blazepose_models")
def test_predict_on_real_footage_warns_once_and_stamps_the_tables(synth_ckpt, tmp_path, capsys, caplog):
    """Two real videos, one synthetic-trained model: one warning, and every table says what the
    model learned from and how the table was made."""
    video = footage("carphone.mp4")
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(video, videos / name)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="beenet"):
        code = main(["predict", str(videos), "--checkpoint", str(synth_ckpt), "--out", str(out), "--pose",
                     "mediapipe", "--window", "2", "--stride", "2", "--device", "cpu", "--format", "csv,json"])
    cap = capsys.readouterr()
    stdout = cap.out
    assert code == 0, stdout
    assert stdout.count(SYNTHETIC_WARNING) == 1, stdout  # said once, up front, and not again in the log
    assert cap.err.count(SYNTHETIC_WARNING) + sum(SYNTHETIC_WARNING in r.getMessage() for r in caplog.records) == 0
    for fmt in ("csv", "json"):
        t = read_table(out / f"a.{fmt}")
        assert len(t) > 0
        assert t.trained_on["kind"] == "synthetic" and t.trained_on["data"] == "synth"
        s = t.settings
        assert s["pose"]["name"] == "mediapipe" and s["pose"]["options"]["min_detection_confidence"] == 0.7
        assert s["window_s"] == 2.0 and s["stride_s"] == 2.0 and s["min_presence"] == 0.25
        assert s["engine"] == "onnx" and s["sampling"]["mode"] == "still" and s["tracker"]["max_gap_s"] == 0.5
        assert s["tracker"]["pose_every"] == "auto"  # and what it came to at this video's frame rate:
        assert round(t.fps, 2) == 29.97 and s["tracker"]["pose_every_frames"] == 6  # 29.97 / 5 Hz
        assert t[t.person_id == t.person_id.iloc[0]].trained_on == t.trained_on  # kept by slicing
    summary = json.loads((out / "predict_summary.json").read_text())
    assert summary["trained_on"]["kind"] == "synthetic"


def test_tables_written_before_the_new_keys_still_read(tmp_path):
    from beenet.inference.table import empty_table

    path = empty_table(model="m", video="v.mp4", fps=25.0).write(tmp_path / "t.csv")
    side = tmp_path / "t.meta.json"
    meta = json.loads(side.read_text())
    assert {"trained_on", "settings"} <= set(meta) <= set(META_KEYS)
    side.write_text(json.dumps({k: meta[k] for k in ("model", "checkpoint_sha256", "beenet_version", "video", "fps")}))
    t = read_table(path)
    assert t.model == "m" and t.trained_on is None and t.settings is None
    if pytest.importorskip("pyarrow"):  # parquet keeps the new keys in its schema metadata
        t.set_metadata(trained_on={"kind": "bold"}, settings={"window_s": 4.0})
        back = read_table(t.write(tmp_path / "t.parquet"))
        assert back.trained_on == {"kind": "bold"} and back.settings == {"window_s": 4.0}


def test_onnx_export_carries_the_record(synth_ckpt, tmp_path):
    pytest.importorskip("onnxruntime")
    from beenet.inference.onnx import export_onnx

    onnx = export_onnx(synth_ckpt, tmp_path / "m.onnx")
    with Predictor(onnx, engine="onnx", device="cpu") as pred:
        assert pred.trained_on["kind"] == "synthetic" and pred.metadata["trained_on"]["data"] == "synth"


def test_record_holds_only_what_weights_only_loads(synth_ckpt):
    raw = torch.load(synth_ckpt, weights_only=True)
    assert isinstance(raw["trained_on"], dict) and raw["trained_on"]["kind"] == "synthetic"
