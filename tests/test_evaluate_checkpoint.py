"""evaluate_checkpoint / predict_split: metrics, files, unlabelled splits, stress hooks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from beenet.data.bold import BoLD
from beenet.errors import ConfigError
from beenet.ablation import distractor_hook, drop_context_input
from beenet.evaluation.evaluate import evaluate_checkpoint, predict_split
from beenet.evaluation.predictions import align_predictions, read_predictions
from beenet.metrics import bold_scores
from beenet.artifacts.loader import load_model
from beenet.training.loop import train
from train_helpers import tiny_config, write_tiny_synth


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = write_tiny_synth(root / "synth")
    cfg = tiny_config("demo", ["optim.epochs=1", "model.fusion_context=input"])  # reads batch["context"]
    train(cfg, data, root / "run")
    return data, root / "run" / "best.pt"


@pytest.mark.slow
def test_val_metrics_files_and_consistency(trained, tmp_path):
    data, ckpt = trained
    out = tmp_path / "eval"
    res = evaluate_checkpoint(data, ckpt, split="val", out_dir=out, batch_size=4, device="cpu")
    assert res["split"] == "val" and res["protocol"] == "paper" and res["n"] > 0
    for name in ("metrics.json", "category_bars.png", "pr_curves.png", "predictions_val.csv"):
        assert (out / name).is_file(), name
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["ERS"] == pytest.approx(res["ERS"]) and on_disk["protocol"] == "paper"
    # The predictions file scores to the same numbers (the CSV is the eval format).
    inst = BoLD(data).instances("val", protocol="paper", seed=42)
    cats, vad = align_predictions(read_predictions(out / "predictions_val.csv"), inst)
    again = bold_scores(cats, np.stack([i.categories for i in inst]), vad, np.stack([i.vad for i in inst]))
    assert again["ERS"] == pytest.approx(res["ERS"], abs=1e-6)
    # Same as the training run's own validation of this epoch.
    from beenet.artifacts.checkpoint import load_checkpoint

    assert load_checkpoint(ckpt)["metrics"]["val"]["ERS"] == pytest.approx(res["ERS"], abs=1e-6)


def test_auto_workers_score_as_none(trained):
    """``run.num_workers`` -1 (auto, the demo preset's) reaches evaluation as the number of workers
    it stands for, not as -1 (which the DataLoader refuses): ``beenet demo`` without ``--quick``
    passes its config's value here, and so do the ablation's scorings."""
    data, ckpt = trained
    auto = evaluate_checkpoint(data, ckpt, split="val", batch_size=4, device="cpu", plots=False, num_workers=-1)
    none = evaluate_checkpoint(data, ckpt, split="val", batch_size=4, device="cpu", plots=False, num_workers=0)
    assert auto["ERS"] == pytest.approx(none["ERS"], abs=1e-9) and auto["n"] == none["n"] > 0


@pytest.mark.slow
def test_unlabelled_official_test_split_writes_predictions_only(trained, tmp_path):
    data, ckpt = trained
    res = evaluate_checkpoint(data, ckpt, split="test", protocol="official", out_dir=tmp_path, device="cpu")
    assert res["labelled"] is False and "ERS" not in res
    inst = BoLD(data).instances("test", protocol="official")
    df = read_predictions(tmp_path / "predictions_test.csv")
    assert list(zip(df["video"], df["person_id"])) == [i.key for i in inst]  # test_meta order
    assert not (tmp_path / "metrics.json").exists()
    with pytest.raises(ConfigError, match="no labels"):
        evaluate_checkpoint(data, ckpt, split="test", protocol="official", out_dir=None, device="cpu")


@pytest.mark.slow
def test_predict_split_order_and_hooks(trained):
    data, ckpt = trained
    model, c = load_model(ckpt)
    from beenet.run_config import RunConfig
    from beenet.context.build import load_context
    from beenet.context.config import ContextConfig

    cfg = RunConfig.from_dict(c["config"])
    bold = BoLD(data)
    inst = bold.instances("val", protocol="paper", seed=42)
    ctx = load_context(bold.video_paths(i.video for i in inst), ContextConfig(source="sidecar"), root=bold.root)
    a_cat, a_vad = predict_split(model, bold, inst, cfg.data, ctx, 4, "cpu")
    b_cat, b_vad = predict_split(model, bold, inst[::-1], cfg.data, ctx, 3, "cpu")
    np.testing.assert_allclose(a_cat, b_cat[::-1], atol=1e-5)
    assert a_cat.shape == (len(inst), 26) and a_vad.shape == (len(inst), 3)
    # Dropping the context input changes the fused scores (the model reads it).
    d_cat, _ = predict_split(model, bold, inst, cfg.data, ctx, 4, "cpu", batch_hook=drop_context_input("places"))
    assert not np.allclose(a_cat, d_cat)


def test_distractor_hook_replaces_the_asked_share():
    B, T = 4, 8
    frames = torch.arange(B, dtype=torch.float32).view(B, 1, 1, 1, 1).expand(B, T, 3, 2, 2).clone()
    batch = {"frames": frames, "frame_mask": torch.ones(B, T, dtype=torch.bool)}
    out = distractor_hook(0.25, seed=0)(batch)
    changed = (out["frames"][:, :, 0, 0, 0] != frames[:, :, 0, 0, 0]).sum(1)
    assert changed.tolist() == [2, 2, 2, 2]
    out = distractor_hook(0.5, seed=0)(batch)
    changed = (out["frames"][:, :, 0, 0, 0] != frames[:, :, 0, 0, 0]).sum(1)
    assert changed.tolist() == [4, 4, 4, 4]
    assert torch.equal(batch["frames"], frames)  # the input batch is left as it was
    # Padded frames are never touched.
    mask = torch.zeros(B, T, dtype=torch.bool)
    mask[:, :2] = True
    out = distractor_hook(0.5, seed=0)({"frames": frames, "frame_mask": mask})
    assert torch.equal(out["frames"][:, 2:], frames[:, 2:])


@pytest.mark.slow
def test_a_checkpoint_scored_on_the_split_it_was_selected_on_says_so(trained):
    """docs/method.md 2.9: best.pt was chosen on val of its own protocol; the report must say so."""
    from beenet.evaluation.report import format_scores

    data, ckpt = trained
    val = evaluate_checkpoint(data, ckpt, split="val", batch_size=4, device="cpu")
    test = evaluate_checkpoint(data, ckpt, split="test", batch_size=4, device="cpu")
    assert val["selected_on_this_split"] is True and test["selected_on_this_split"] is False
    assert "selected on this split" in format_scores(val, "val", val["protocol"])
    assert "selected on this split" not in format_scores(test, "test", test["protocol"])
    # Another split seed is another split: not the one the checkpoint was selected on.
    other = evaluate_checkpoint(data, ckpt, split="val", seed=7, batch_size=4, device="cpu")
    assert other["selected_on_this_split"] is False


def test_paper_study_report_names_the_paper_video_protocol():
    from beenet.evaluation.report import format_scores

    result = {"n": 3, "ERS": 0.3, "mAP": 0.2, "mRA": 0.6, "mR2": 0.1, "selected_on_this_split": True}
    text = format_scores(result, "val", "paper-video")
    assert "source video in one part" in text and "selected on this split" in text and "--split test" in text
    official = format_scores(result, "val", "official")
    assert "selected on this split" in official and "--split test" not in official
