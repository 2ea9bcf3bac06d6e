"""BEE-NET model family: config, every fusion / pooling site on tiny input, priors, ONNX export."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from beenet.errors import BeenetError, ConfigError
from beenet.labels import NUM_CATEGORIES, NUM_COCO, NUM_PLACES, VAD_SCALE
from beenet.models import BEENet, ModelConfig, build_model
from beenet.models.pooling import POOL_KINDS
from beenet.models.trunk import GoogLeNetTrunk

S = 32  # image side: the trunk has stride 16, so the stream heads see 2 x 2 maps
SMALL = dict(pretrained=False, image_size=S, stream_channels=16, stream_layers=1, kappa=8)


_TRUNK: list[GoogLeNetTrunk] = []


@pytest.fixture
def shared_trunk(monkeypatch):
    """Give every model a copy of one randomly initialised trunk: building a GoogLeNet costs
    ~0.3 s per model on 2 busy cores, copying one ~10 ms; the tests that use this fixture are about
    the heads, fusions and poolings, not the trunk's init (tested on its own below)."""
    import copy

    import beenet.models.beenet as beenet_module

    if not _TRUNK:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            _TRUNK.append(GoogLeNetTrunk(pretrained=False))
    monkeypatch.setattr(beenet_module, "build_trunk", lambda backbone, pretrained: copy.deepcopy(_TRUNK[0]))


def _cfg(**kw: object) -> ModelConfig:
    return ModelConfig(**{**SMALL, **kw})


def _batch(cfg: ModelConfig, B: int = 2, T: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(B, T, dtype=torch.bool)
    if T > 1:
        mask[0, -1] = False  # a padded frame
    ctx = torch.rand(B, NUM_PLACES + NUM_COCO, generator=g)
    ctx[:, :NUM_PLACES] /= ctx[:, :NUM_PLACES].sum(1, keepdim=True)
    ctx[:, NUM_PLACES:] /= ctx[:, NUM_PLACES:].sum(1, keepdim=True)
    batch = {
        "frames": torch.randn(B, T, 3, S, S, generator=g),
        "frame_mask": mask,
        "context": ctx,
        "categories": torch.rand(B, NUM_CATEGORIES, generator=g),
        "vad": 1 + 9 * torch.rand(B, 3, generator=g),
        "labelled": torch.ones(B, dtype=torch.bool),
    }
    if cfg.body_crop != "none":
        batch["crops"] = torch.randn(B, T, 3, S, S, generator=g)
    if cfg.skeleton:
        batch["skeleton"] = torch.randn(B, 8, 18, 3, generator=g)
        smask = torch.rand(B, 8, 18, generator=g) > 0.2
        batch["skeleton_mask"] = smask
    return batch


def _fit(model: BEENet, n: int = 40, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    ctx = rng.random((n, NUM_PLACES + NUM_COCO))
    ctx[:, :NUM_PLACES] /= ctx[:, :NUM_PLACES].sum(1, keepdims=True)
    ctx[:, NUM_PLACES:] /= ctx[:, NUM_PLACES:].sum(1, keepdims=True)
    model.fit_priors(ctx, rng.random((n, NUM_CATEGORIES)), 1 + 9 * rng.random((n, 3)))


def _check_forward_backward(cfg: ModelConfig, T: int) -> dict:
    model = build_model(cfg, seed=0)
    _fit(model)
    model.train()
    batch = _batch(cfg, B=2, T=T)
    out = model(batch)
    B = 2
    assert out["categories"].shape == (B, NUM_CATEGORIES)
    assert out["category_logits"].shape == (B, NUM_CATEGORIES)
    assert out["vad"].shape == (B, 3)
    assert out["fused"].shape == (B, NUM_CATEGORIES + 3)
    assert set(out["streams"]) == set(cfg.emotion_streams)
    for name, s in out["streams"].items():
        assert s.shape == (B, NUM_CATEGORIES + 3), name
        assert torch.isfinite(s).all(), name
    if cfg.fusion_context == "streams" and cfg.place_stream:
        assert out["place_logits"].shape == (B, NUM_PLACES)
    else:
        assert "place_logits" not in out
    if cfg.fusion_context == "streams" and cfg.object_stream:
        assert out["object_logits"].shape == (B, NUM_COCO)
    for key in ("categories", "vad", "fused", "category_logits"):
        assert torch.isfinite(out[key]).all(), key
    assert torch.allclose(out["fused"][:, NUM_CATEGORIES:] * VAD_SCALE, out["vad"], atol=1e-5)
    assert torch.equal(out["fused"][:, :NUM_CATEGORIES], out["categories"])
    loss = out["fused"].pow(2).mean() + out["category_logits"].mean()
    for s in out["streams"].values():
        loss = loss + s.mean()
    for key in ("place_logits", "object_logits"):
        if key in out:
            loss = loss + out[key].logsumexp(1).mean()
    loss.backward()
    trunk_grad = model.trunk.conv1.conv.weight.grad
    assert trunk_grad is not None and torch.isfinite(trunk_grad).all() and trunk_grad.abs().sum() > 0
    # Every parameter takes part (DDP rejects parameters that get no gradient).
    unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused
    for name, p in model.named_parameters():
        if p.requires_grad:  # the side kappa projector (section 2.3) is frozen: no loss reads it
            assert torch.isfinite(p.grad).all(), name
    return out


# ------------------------------------------------------------------------------------ config


def test_config_round_trip_and_unknown_keys() -> None:
    cfg = _cfg(fusion="camode", skeleton=True, skeleton_channels=(8, 16), temporal_pool="gem")
    d = cfg.to_dict()
    assert d["skeleton_channels"] == [8, 16]
    assert ModelConfig.from_dict(d) == cfg
    with pytest.raises(ConfigError, match="'fuson'"):
        ModelConfig.from_dict({**d, "fuson": "beenet"})
    with pytest.raises(ConfigError, match="model.fusion"):
        ModelConfig(fusion="sum")
    with pytest.raises(ConfigError, match="model.temporal_pool"):
        ModelConfig(temporal_pool="median")
    with pytest.raises(ConfigError, match="place_stream"):
        ModelConfig(fusion="beenet", place_stream=False, object_stream=False)
    with pytest.raises(ConfigError, match="dropout"):
        ModelConfig(dropout=1.0)
    assert ModelConfig(fusion="none", place_stream=False, object_stream=False).context_parts == ()


def test_config_pool_kinds_match_pooling_module() -> None:
    from beenet.choices import choices

    assert set(choices(ModelConfig, "temporal_pool")) == set(POOL_KINDS)


def test_build_model_from_dict_and_seeded_init_leaves_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a = build_model(_cfg().to_dict(), seed=3)
    b = build_model(_cfg(), seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    with pytest.raises(ConfigError):
        build_model(42)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ forward/back

FUSION_CASES = [
    dict(fusion="none"),
    dict(fusion="none", place_stream=False, object_stream=False),
    dict(fusion="concat"),
    dict(fusion="camode"),
    dict(fusion="camode", fusion_form="odds", trainable_priors=True),
    *[dict(fusion="beenet", context_pool=p) for p in ("max", "mean", "gem", "attention")],
    dict(fusion="beenet", fusion_form="odds", trainable_priors=True),
    dict(fusion="beenet", object_stream=False),
    dict(fusion="beenet", place_stream=False, context_pool="gem"),
    dict(fusion="concat", fusion_context="input"),
    dict(fusion="beenet", fusion_context="input", context_pool="attention"),
]


@pytest.mark.slow
@pytest.mark.parametrize("T", [1, 3])
@pytest.mark.parametrize("case", FUSION_CASES, ids=lambda c: "-".join(f"{v}" for v in c.values()))
def test_every_fusion_and_context_pool_runs(shared_trunk: None, case: dict, T: int) -> None:
    _check_forward_backward(_cfg(**case), T)


@pytest.mark.slow
@pytest.mark.parametrize("kind", POOL_KINDS)
def test_every_temporal_pool_runs(shared_trunk: None, kind: str) -> None:
    _check_forward_backward(_cfg(temporal_pool=kind), T=3)


@pytest.mark.slow
@pytest.mark.parametrize("kind", POOL_KINDS)
def test_every_skeleton_pool_runs(shared_trunk: None, kind: str) -> None:
    _check_forward_backward(_cfg(skeleton=True, skeleton_channels=(8, 16), skeleton_pool=kind), T=1)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mean", "max", "gem", "attention"])
@pytest.mark.parametrize("crop", ["shared", "separate"])
def test_every_stream_pool_with_crop_and_skeleton_runs(shared_trunk: None, kind: str, crop: str) -> None:
    cfg = _cfg(body_crop=crop, skeleton=True, skeleton_channels=(8,), stream_pool=kind)
    _check_forward_backward(cfg, T=3)


def test_separate_crop_trunk_is_its_own_copy() -> None:
    shared = build_model(_cfg(body_crop="shared"), seed=0)
    separate = build_model(_cfg(body_crop="separate"), seed=0)
    assert shared.crop_trunk is None
    assert isinstance(separate.crop_trunk, GoogLeNetTrunk) and separate.crop_trunk is not separate.trunk
    assert separate.num_parameters() - shared.num_parameters() == sum(p.numel() for p in separate.crop_trunk.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gem", "attention"])
def test_learnable_stream_pools_start_at_the_mean(shared_trunk: None, kind: str) -> None:
    mean = build_model(_cfg(body_crop="shared", stream_pool="mean"), seed=0).eval()
    other = build_model(_cfg(body_crop="shared", stream_pool=kind), seed=0).eval()
    missing, unexpected = other.load_state_dict(mean.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("stream_pool.") for k in missing)
    batch = _batch(mean.cfg, T=2)
    with torch.no_grad():
        a, b = mean(batch), other(batch)
    assert torch.allclose(a["fused"], b["fused"], atol=1e-5)


def test_default_widths_paper_form_runs(shared_trunk: None) -> None:
    cfg = ModelConfig(pretrained=False, image_size=64)
    out = _check_forward_backward(cfg, T=1)
    assert out["place_embedding"].shape == (2, cfg.kappa)


# ----------------------------------------------------------------------- context and priors


def test_fusion_none_ignores_the_context(shared_trunk: None) -> None:
    cfg = _cfg(fusion="none", fusion_context="input")
    model = build_model(cfg, seed=0).eval()
    _fit(model)
    batch = _batch(cfg)
    with torch.no_grad():
        with_ctx = model(batch)
        batch2 = dict(batch, context=torch.rand_like(batch["context"]))
        other_ctx = model(batch2)
        del batch2["context"]
        no_ctx = model(batch2)
    assert torch.equal(with_ctx["fused"], other_ctx["fused"])
    assert torch.equal(with_ctx["fused"], no_ctx["fused"])
    assert "context_probs" not in with_ctx


def test_changed_context_changes_the_beenet_output(shared_trunk: None) -> None:
    cfg = _cfg(fusion="beenet", fusion_context="input", context_pool="mean")
    model = build_model(cfg, seed=0).eval()
    _fit(model)
    batch = _batch(cfg)
    with torch.no_grad():
        a = model(batch)
        ctx = torch.zeros_like(batch["context"])
        ctx[:, 0] = 1.0
        ctx[:, NUM_PLACES] = 1.0
        b = model(dict(batch, context=ctx))
    assert not torch.allclose(a["categories"], b["categories"])
    assert not torch.allclose(a["vad"], b["vad"])
    with pytest.raises(BeenetError, match="fusion_context=input"):
        model({k: v for k, v in batch.items() if k != "context"})


def test_fit_priors_picks_the_context_parts_of_the_streams(shared_trunk: None) -> None:
    rng = np.random.default_rng(2)
    ctx = rng.random((30, NUM_PLACES + NUM_COCO)).astype(np.float32)
    cats = rng.random((30, NUM_CATEGORIES)).astype(np.float32)
    vad = (1 + 9 * rng.random((30, 3))).astype(np.float32)
    both = build_model(_cfg(), seed=0)
    objects = build_model(_cfg(place_stream=False), seed=0)
    both.fit_priors(ctx, cats, vad)
    objects.fit_priors(torch.from_numpy(ctx), torch.from_numpy(cats), torch.from_numpy(vad))
    assert both.priors.p_pos.shape == (NUM_CATEGORIES, NUM_PLACES + NUM_COCO)
    assert objects.priors.p_pos.shape == (NUM_CATEGORIES, NUM_COCO)
    assert torch.allclose(objects.priors.p_pos, both.priors.p_pos[:, NUM_PLACES:])
    assert torch.allclose(objects.priors.p_a, both.priors.p_a[NUM_PLACES:])
    none = build_model(_cfg(fusion="none", place_stream=False, object_stream=False), seed=0)
    none.fit_priors(None, cats, vad)  # VAD statistics only
    assert torch.allclose(none.priors.vad_mean, torch.from_numpy(vad.mean(0)))
    with pytest.raises(BeenetError, match="445"):
        both.fit_priors(ctx[:, :NUM_PLACES], cats, vad)
    with pytest.raises(BeenetError, match="no context"):
        both.fit_priors(None, cats, vad)


def test_vad_starts_at_the_training_mean_and_priors_survive_save_load(tmp_path) -> None:
    cfg = _cfg(fusion="none", place_stream=False, object_stream=False)
    model = build_model(cfg, seed=0).eval()
    with torch.no_grad():
        model.fusion.classifier.weight.zero_()
        model.fusion.classifier.bias.zero_()
    vad = torch.tensor([[2.0, 3.0, 4.0], [4.0, 7.0, 6.0]])
    model.fit_priors(None, torch.rand(2, NUM_CATEGORIES), vad)
    with torch.no_grad():
        out = model(_batch(cfg))
    assert torch.allclose(out["vad"], vad.mean(0).expand(2, 3))
    full = build_model(_cfg(), seed=0).eval()
    _fit(full)
    assert full.priors.is_fitted and "priors.p_pos" in full.state_dict() and "priors.fitted" in full.state_dict()
    path = tmp_path / "model.pt"
    torch.save(full.state_dict(), path)
    fresh = build_model(_cfg(), seed=1).eval()
    assert not fresh.priors.is_fitted
    fresh.load_state_dict(torch.load(path, weights_only=True))
    assert fresh.priors.is_fitted
    batch = _batch(full.cfg)
    with torch.no_grad():
        assert torch.equal(full(batch)["fused"], fresh(batch)["fused"])


def test_checkpoint_from_before_the_mean_rename_loads_and_predicts_the_same(
    shared_trunk: None, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    """Checkpoints saved before ``avg`` became ``mean`` hold ``temporal_pool: avg`` (and
    ``skeleton_pool: avg``): they still load, into the same model, and predict the same."""
    from beenet.artifacts.checkpoint import save_checkpoint
    from beenet.artifacts.loader import load_model
    from beenet.run_config import RunConfig

    cfg = _cfg(fusion="beenet", body_crop="shared", skeleton=True, skeleton_channels=(8,),
               temporal_pool="mean", skeleton_pool="mean")
    model = build_model(cfg, seed=0).eval()
    _fit(model)
    run = RunConfig()
    run.model = cfg
    run.data.sampling, run.data.num_frames = "uniform", 2
    run.data.image_size, run.data.body_crop, run.data.skeleton = S, True, True
    old = run.to_dict()
    old["model"] = {**old["model"], "temporal_pool": "avg", "skeleton_pool": "avg"}  # as saved then
    path = tmp_path / "old.pt"
    save_checkpoint(path, model=model, config=old, epoch=1, metrics={})

    with caplog.at_level("WARNING", logger="beenet"):
        loaded, ckpt = load_model(path)
        back = RunConfig.from_dict(ckpt["config"])  # evaluate / resume read the whole run config
    assert "model.temporal_pool: 'avg' is deprecated, write 'mean'" in caplog.text
    assert "model.skeleton_pool: 'avg' is deprecated" in caplog.text
    assert (loaded.cfg.temporal_pool, loaded.cfg.skeleton_pool) == ("mean", "mean") == (
        back.model.temporal_pool, back.model.skeleton_pool)
    assert loaded.cfg == cfg and back.model == cfg
    assert loaded.state_dict().keys() == model.state_dict().keys()
    batch = _batch(cfg, T=2)
    with torch.no_grad():
        a, b = model(batch), loaded(batch)
    for key in ("categories", "vad", "fused"):
        assert torch.equal(a[key], b[key]), key


def test_missing_body_inputs_raise_clear_errors(shared_trunk: None) -> None:
    model = build_model(_cfg(body_crop="shared"), seed=0)
    batch = _batch(_cfg())
    with pytest.raises(BeenetError, match="crops"):
        model(batch)
    with pytest.raises(BeenetError, match=r"\[B, T, 3, S, S\]"):
        model(dict(batch, frames=batch["frames"][:, 0]))


def test_trunk_output_and_channels_last() -> None:
    trunk = GoogLeNetTrunk(pretrained=False).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        y = trunk(x)
        y_cl = trunk(x.contiguous(memory_format=torch.channels_last))
    assert y.shape == (1, GoogLeNetTrunk.out_channels, 4, 4)
    assert torch.allclose(y, y_cl, atol=1e-5)
    model = build_model(_cfg(channels_last=True), seed=0)
    assert model.trunk.conv1.conv.weight.is_contiguous(memory_format=torch.channels_last)


# --------------------------------------------------------------------------------------- ONNX


class _Exported(torch.nn.Module):
    """What the predictor does: a module taking tensors instead of the batch dict."""

    def __init__(self, model: BEENet) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model({"frames": frames, "frame_mask": frame_mask})
        return out["categories"], out["vad"], out["fused"]


@pytest.mark.slow
@pytest.mark.parametrize("T", [1, 3])
def test_onnx_export_with_dynamic_batch_matches_pytorch(tmp_path, T: int) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    cfg = _cfg(fusion="beenet", context_pool="max", temporal_pool="attention" if T > 1 else "mean")
    model = build_model(cfg, seed=0).eval()
    _fit(model)
    wrapper = _Exported(model).eval()
    frames = torch.randn(2, T, 3, S, S)
    mask = torch.ones(2, T, dtype=torch.bool)
    path = tmp_path / "beenet.onnx"
    start = time.process_time()  # CPU time, not wall time: a loaded machine does not fail it
    torch.onnx.export(
        wrapper, (frames, mask), str(path), dynamo=False, opset_version=17,
        input_names=["frames", "frame_mask"], output_names=["categories", "vad", "fused"],
        dynamic_axes={"frames": {0: "batch"}, "frame_mask": {0: "batch"},
                      "categories": {0: "batch"}, "vad": {0: "batch"}, "fused": {0: "batch"}},
    )
    assert time.process_time() - start < 60
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for B in (1, 3):
        x = torch.randn(B, T, 3, S, S, generator=torch.Generator().manual_seed(B))
        m = torch.ones(B, T, dtype=torch.bool)
        if T > 1:
            m[0, -1] = False  # a padded last frame
        with torch.no_grad():
            expected = wrapper(x, m)
        got = session.run(None, {"frames": x.numpy(), "frame_mask": m.numpy()})
        for e, g in zip(expected, got):
            assert g.shape == tuple(e.shape)
            np.testing.assert_allclose(g, e.numpy(), atol=1e-4, rtol=1e-4)


def test_uint8_frames_are_normalised_inside_the_model(shared_trunk: None) -> None:
    """The dataset's uint8 frames give the model's output bit for bit the same as the float
    frames the worker used to ship (normalised, padding zero): train, eval and predict_split all
    go through the model's forward."""
    from beenet.media.transforms import normalize

    cfg = _cfg()
    model = build_model(cfg, seed=0)
    _fit(model)
    model.eval()
    batch = _batch(cfg, B=2, T=3)
    u8 = torch.randint(0, 256, (2, 3, 3, S, S), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    old = normalize(u8.float() / 255.0)
    old[~batch["frame_mask"]] = 0.0
    with torch.no_grad():
        a = model(dict(batch, frames=u8))
        b = model(dict(batch, frames=old))
    for key in ("categories", "vad"):
        assert torch.equal(a[key], b[key]), key
