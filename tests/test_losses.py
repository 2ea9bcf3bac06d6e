"""Training losses: the paper's MSE, BCE + standardised VAD, distillation, labelled-only rows."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from beenet.errors import BeenetError, ConfigError
from beenet.labels import NUM_CATEGORIES, NUM_COCO, NUM_PLACES
from beenet.training.losses import LossConfig, compute_loss

B = 4


def _out_and_batch(seed: int = 0, with_context: bool = True) -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(seed)
    cats = torch.rand(B, NUM_CATEGORIES, generator=g)
    vad = 1 + 9 * torch.rand(B, 3, generator=g)
    logits = torch.randn(B, NUM_CATEGORIES, generator=g, requires_grad=True)
    vad_pred = (1 + 9 * torch.rand(B, 3, generator=g)).requires_grad_()
    std = torch.tensor([2.0, 1.0, 0.5])
    categories = torch.sigmoid(logits)
    out = {
        "categories": categories,
        "category_logits": logits,
        "vad": vad_pred,
        "vad_std": std,
        "fused": torch.cat([categories, vad_pred / 10.0], dim=1),
        "place_logits": torch.randn(B, NUM_PLACES, generator=g, requires_grad=True),
        "object_logits": torch.randn(B, NUM_COCO, generator=g, requires_grad=True),
    }
    batch = {"categories": cats, "vad": vad, "labelled": torch.ones(B, dtype=torch.bool)}
    if with_context:
        ctx = torch.rand(B, NUM_PLACES + NUM_COCO, generator=g)
        ctx[:, :NUM_PLACES] /= ctx[:, :NUM_PLACES].sum(1, keepdim=True)
        ctx[:, NUM_PLACES:] /= ctx[:, NUM_PLACES:].sum(1, keepdim=True)
        batch["context"] = ctx
    return out, batch


def test_mse_tenth_is_the_older_mean_over_29_outputs_with_vad_over_10() -> None:
    out, batch = _out_and_batch(with_context=False)
    total, parts = compute_loss(out, batch, LossConfig(kind="mse", vad_scale="tenth"))
    target = torch.cat([batch["categories"], batch["vad"] / 10.0], dim=1)
    assert total.item() == pytest.approx(F.mse_loss(out["fused"], target).item(), rel=1e-6)
    assert set(parts) == {"categories", "vad"}
    assert parts["vad"].item() == pytest.approx(F.mse_loss(out["fused"][:, 26:], target[:, 26:]).item(), rel=1e-6)
    total.backward()
    assert out["category_logits"].grad is not None
    weighted, _ = compute_loss(out, batch, LossConfig(kind="mse", vad_weight=3.0, vad_scale="tenth"))
    sq = (out["fused"] - target) ** 2
    expected = (sq[:, :26].sum(1) + 3.0 * sq[:, 26:].sum(1)).mean() / 29
    assert weighted.item() == pytest.approx(expected.item(), rel=1e-6)


def test_mse_raw_is_the_authors_mean_over_29_outputs_with_vad_on_the_1_to_10_scale() -> None:
    out, batch = _out_and_batch(with_context=False)
    total, parts = compute_loss(out, batch, LossConfig(kind="mse"))  # vad_scale="raw", the default
    pred = torch.cat([out["categories"], out["vad"]], dim=1)
    target = torch.cat([batch["categories"], batch["vad"]], dim=1)
    assert total.item() == pytest.approx(F.mse_loss(pred, target).item(), rel=1e-6)
    assert parts["vad"].item() == pytest.approx(F.mse_loss(out["vad"], batch["vad"]).item(), rel=1e-6)
    tenth, parts_tenth = compute_loss(out, batch, LossConfig(kind="mse", vad_scale="tenth"))
    assert parts["vad"].item() == pytest.approx(100 * parts_tenth["vad"].item(), rel=1e-5)
    assert total.item() > tenth.item()


def test_a_stored_loss_config_without_vad_scale_keeps_vad_over_10() -> None:
    from beenet.run_config import RunConfig

    d = RunConfig().to_dict()
    assert d["loss"]["vad_scale"] == "raw"
    del d["loss"]["vad_scale"]
    assert RunConfig.from_dict(d).loss.vad_scale == "tenth"


def test_bce_with_soft_or_binarised_targets_and_standardised_vad() -> None:
    out, batch = _out_and_batch(with_context=False)
    total, parts = compute_loss(out, batch, LossConfig(kind="bce"))
    bce = F.binary_cross_entropy_with_logits(out["category_logits"], batch["categories"])
    vad = (((out["vad"] - batch["vad"]) / out["vad_std"]) ** 2).mean()
    assert parts["categories"].item() == pytest.approx(bce.item(), rel=1e-6)
    assert parts["vad"].item() == pytest.approx(vad.item(), rel=1e-6)
    assert total.item() == pytest.approx((bce + vad).item(), rel=1e-6)
    batch["categories"][0, 0] = 0.5  # exactly at the threshold: positive (>=)
    batch["categories"][0, 1] = 0.4999
    _, parts_bin = compute_loss(out, batch, LossConfig(kind="bce", binarize_targets=True))
    hard = (batch["categories"] >= 0.5).float()
    assert hard[0, 0] == 1 and hard[0, 1] == 0
    expected = F.binary_cross_entropy_with_logits(out["category_logits"], hard)
    assert parts_bin["categories"].item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("kind", ["mse", "bce"])
def test_only_labelled_samples_count(kind: str) -> None:
    out, batch = _out_and_batch(with_context=False)
    batch["labelled"] = torch.tensor([True, False, True, False])
    cfg = LossConfig(kind=kind)
    total, _ = compute_loss(out, batch, cfg)
    changed = dict(batch, categories=batch["categories"].clone(), vad=batch["vad"].clone())
    changed["categories"][1] = 1.0 - changed["categories"][1]
    changed["vad"][3] = 0.0
    total2, _ = compute_loss(out, changed, cfg)
    assert total.item() == pytest.approx(total2.item(), rel=1e-6)
    only = {k: (v[[0, 2]] if isinstance(v, torch.Tensor) and v.ndim and k != "vad_std" else v) for k, v in out.items()}
    sub = {k: v[[0, 2]] for k, v in batch.items()}
    total3, _ = compute_loss(only, sub, cfg)
    assert total.item() == pytest.approx(total3.item(), rel=1e-6)
    none = dict(batch, labelled=torch.zeros(B, dtype=torch.bool))
    total4, _ = compute_loss(out, none, cfg)
    assert total4.item() == 0.0 and math.isfinite(total4.item())


@pytest.mark.parametrize("distill", ["kl", "bce"])
def test_distillation_of_the_context_streams(distill: str) -> None:
    out, batch = _out_and_batch()
    base, _ = compute_loss(out, {k: v for k, v in batch.items() if k != "context"}, LossConfig())
    total, parts = compute_loss(out, batch, LossConfig(distill=distill, distill_weight=0.5, distill_norm="none"))
    assert {"distill_place", "distill_object"} <= set(parts)
    t = batch["context"][:, :NUM_PLACES]
    logp = torch.log_softmax(out["place_logits"], 1)
    if distill == "kl":
        expected = (t * (t.log() - logp)).sum(1).mean()
    else:
        p = logp.exp()
        expected = -(t * logp + (1 - t) * torch.log(1 - p)).sum(1).mean()
    assert parts["distill_place"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert total.item() == pytest.approx(
        base.item() + 0.5 * (parts["distill_place"] + parts["distill_object"]).item(), rel=1e-5
    )
    total.backward()
    assert out["place_logits"].grad.abs().sum() > 0


def test_rows_without_objects_contribute_nothing() -> None:
    out, batch = _out_and_batch()
    batch["context"][1, NUM_PLACES:] = 0.0
    _, parts = compute_loss(out, batch, LossConfig(distill_norm="none"))
    rows = [0, 2, 3]
    t = batch["context"][rows, NUM_PLACES:]
    expected = (t * (t.log() - torch.log_softmax(out["object_logits"][rows], 1))).sum(1).mean()
    assert parts["distill_object"].item() == pytest.approx(expected.item(), rel=1e-5)
    batch["context"][:, NUM_PLACES:] = 0.0
    total, parts = compute_loss(out, batch, LossConfig())
    assert parts["distill_object"].item() == 0.0 and math.isfinite(total.item())


def test_no_distillation_without_streams_or_weight() -> None:
    out, batch = _out_and_batch()
    del out["place_logits"], out["object_logits"]
    _, parts = compute_loss(out, batch, LossConfig())
    assert set(parts) == {"categories", "vad"}
    out, batch = _out_and_batch()
    _, parts = compute_loss(out, batch, LossConfig(distill_weight=0.0))
    assert set(parts) == {"categories", "vad"}


def test_bad_config_and_batch_raise() -> None:
    out, batch = _out_and_batch()
    with pytest.raises(ConfigError, match="loss.kind"):
        compute_loss(out, batch, LossConfig(kind="l1"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="loss.distill"):
        compute_loss(out, batch, LossConfig(distill="mse"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="vad_weight"):
        compute_loss(out, batch, LossConfig(vad_weight=-1.0))
    with pytest.raises(BeenetError, match="'vad'"):
        compute_loss(out, {k: v for k, v in batch.items() if k != "vad"}, LossConfig())
    with pytest.raises(BeenetError, match="445"):
        compute_loss(out, dict(batch, context=batch["context"][:, :10]), LossConfig())


def test_loss_on_a_real_model_output_trains_every_head() -> None:
    from beenet.models import ModelConfig, build_model

    cfg = ModelConfig(pretrained=False, image_size=32, stream_channels=8, stream_layers=1, kappa=4)
    model = build_model(cfg, seed=0)
    _, batch = _out_and_batch(seed=1)
    batch["frames"] = torch.randn(B, 1, 3, 32, 32)
    for kind in ("mse", "bce"):
        model.zero_grad()
        total, parts = compute_loss(model(batch), batch, LossConfig(kind=kind))
        total.backward()
        assert torch.isfinite(total)
        assert model.place_stream.head.classifier.weight.grad.abs().sum() > 0
        assert model.fusion.classifier.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("norm", ["none", "log_classes", "classes"])
def test_distillation_scale_is_normalised_per_stream(norm: str) -> None:
    """Section 4: each stream's term divided by log K (log_classes) or K (classes), K its classes."""
    out, batch = _out_and_batch()
    _, raw = compute_loss(out, batch, LossConfig(distill_norm="none"))
    _, parts = compute_loss(out, batch, LossConfig(distill_norm=norm))
    for name, k in (("place", NUM_PLACES), ("object", NUM_COCO)):
        scale = {"none": 1.0, "log_classes": math.log(k), "classes": float(k)}[norm]
        assert parts[f"distill_{name}"].item() == pytest.approx(raw[f"distill_{name}"].item() / scale, rel=1e-5)
    # At init the per-class mean sits on the MSE's scale (a mean over 29 outputs), nats do not.
    if norm == "classes":
        assert parts["distill_place"].item() < 0.1 < raw["distill_place"].item()
