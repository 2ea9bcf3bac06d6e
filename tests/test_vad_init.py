"""VAD at init and BatchNorm statistics after a short run (docs/ablations.md, "VAD after a short run")."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from beenet.labels import NUM_CATEGORIES, NUM_COCO, NUM_PLACES
from beenet.metrics import r2
from beenet.models import ModelConfig, build_model
from beenet.models.batchnorm import batchnorm_layers, recalibrate_batchnorm

S = 32
SMALL = dict(pretrained=False, image_size=S, stream_channels=16, stream_layers=1, kappa=8, skeleton_channels=(8,))


def _batch(B: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ctx = torch.rand(B, NUM_PLACES + NUM_COCO, generator=g)
    ctx[:, :NUM_PLACES] /= ctx[:, :NUM_PLACES].sum(1, keepdim=True)
    ctx[:, NUM_PLACES:] /= ctx[:, NUM_PLACES:].sum(1, keepdim=True)
    return {"frames": 3 * torch.randn(B, 1, 3, S, S, generator=g) + 1, "context": ctx}


def _fit(model: nn.Module, n: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ctx = rng.random((n, NUM_PLACES + NUM_COCO))
    ctx[:, :NUM_PLACES] /= ctx[:, :NUM_PLACES].sum(1, keepdims=True)
    ctx[:, NUM_PLACES:] /= ctx[:, NUM_PLACES:].sum(1, keepdims=True)
    vad = np.clip(rng.normal([4.8, 6.2, 5.0], [2.0, 1.5, 1.5], size=(n, 3)), 1, 10)
    model.fit_priors(ctx, rng.random((n, NUM_CATEGORIES)), vad)
    return vad


def test_vad_prediction_starts_at_the_fitted_training_mean() -> None:
    """Before any step, the emotion stream's VAD is the fitted training mean (within 1e-4), so the
    R2 on held-out clips is ~0 (minus the mean shift between splits), not hugely negative."""
    model = build_model(ModelConfig(**SMALL, fusion="none", place_stream=False, object_stream=False), seed=0)
    train_vad = _fit(model)
    val_vad = _fit(build_model(ModelConfig(**SMALL, fusion="none", place_stream=False, object_stream=False)), seed=1)
    model.eval()
    with torch.no_grad():
        pred = model(_batch(len(val_vad), seed=2))["vad"].numpy()
    assert np.abs(pred - train_vad.mean(0)).max() < 1e-4
    shift = ((val_vad.mean(0) - train_vad.mean(0)) ** 2 / val_vad.var(0)).max()
    for j in range(3):
        assert -shift - 1e-6 <= r2(pred[:, j], val_vad[:, j]) <= 1e-9

    # The beenet fusion mixes in the context VAD (pooled conditional means): still near the mean.
    full = build_model(ModelConfig(**SMALL), seed=0)
    _fit(full)
    full.eval()
    with torch.no_grad():
        out = full(_batch(8, seed=3))
    assert out["vad_z"].abs().max() < 0.5
    assert torch.equal(full.fusion.classifier.weight[NUM_CATEGORIES:], torch.zeros_like(full.fusion.classifier.weight[NUM_CATEGORIES:]))


def test_vad_head_init_default_is_the_older_reading_and_old_state_dicts_load_the_same() -> None:
    old = ModelConfig(**SMALL).to_dict()
    del old["vad_head_init"]  # a config stored before the switch existed
    cfg = ModelConfig.from_dict(old)
    assert cfg.vad_head_init == "default" and ModelConfig().vad_head_init == "zero"
    legacy = build_model(cfg, seed=0)
    assert legacy.fusion.classifier.bias[NUM_CATEGORIES:].abs().sum() > 0  # PyTorch's uniform init
    _fit(legacy)
    new = build_model(ModelConfig(**SMALL), seed=1)
    new.load_state_dict(legacy.state_dict())
    legacy.eval(), new.eval()
    batch = _batch(4, seed=0)
    with torch.no_grad():
        a, b = legacy(batch), new(batch)
    for key in ("categories", "vad", "fused"):
        assert torch.equal(a[key], b[key]), key


def test_recalibrate_batchnorm_gives_the_plain_average_over_batches() -> None:
    bn = nn.BatchNorm1d(3)
    model = nn.Sequential(nn.Linear(2, 3), bn).eval()
    batches = [torch.randn(16, 2) * (i + 1) + i for i in range(4)]
    with torch.no_grad():
        hidden = [model[0](x) for x in batches]
    assert recalibrate_batchnorm(model, batches, max_batches=3) == 3
    assert not model.training and bn.momentum == 0.1
    torch.testing.assert_close(bn.running_mean, torch.stack([h.mean(0) for h in hidden[:3]]).mean(0))
    torch.testing.assert_close(bn.running_var, torch.stack([h.var(0) for h in hidden[:3]]).mean(0))
    before = bn.running_mean.clone()
    assert recalibrate_batchnorm(model, [], max_batches=3) == 0
    assert torch.equal(bn.running_mean, before)
    with pytest.raises(ValueError):
        recalibrate_batchnorm(model, batches, max_batches=0)


def test_recalibration_brings_eval_vad_back_to_the_train_mode_scale() -> None:
    """The measured failure: running statistics that lag the weights put eval-mode VAD many stds
    off; recomputed with the current weights, eval-mode VAD is on the train-mode scale again."""
    model = build_model(ModelConfig(**SMALL, fusion="none", place_stream=False, object_stream=False,
                                    vad_head_init="default"), seed=0)
    _fit(model)
    with torch.no_grad():  # stand-in for a short epoch: stale statistics and moved VAD weights
        model.fusion.classifier.weight.normal_(0, 1)
        for m in batchnorm_layers(model):
            m.running_var.fill_(0.01)
            m.running_mean.fill_(-1.0)
    train_batches = [_batch(16, seed=s) for s in range(4)]
    val = _batch(16, seed=10)
    model.train()
    with torch.no_grad():
        reference = model(val)["vad_z"].abs().mean()
    model.eval()
    with torch.no_grad():
        stale = model(val)["vad_z"].abs().mean()
    recalibrate_batchnorm(model, train_batches)
    with torch.no_grad():
        fixed = model(val)["vad_z"].abs().mean()
    assert stale > 10 * reference
    assert fixed < 2 * reference
