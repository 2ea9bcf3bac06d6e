"""Checkpoints: the design.md format, atomic writes, weights-only loading and clear errors."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from beenet.errors import CheckpointError
from beenet.labels import CATEGORIES, VAD_NAMES
from beenet.models import ModelConfig, build_model
from beenet.artifacts.checkpoint import FORMAT, FORMAT_VERSION, checkpoint_sha256, load_checkpoint, save_checkpoint
from beenet.artifacts.loader import load_model


def tiny_model_cfg(**kw) -> ModelConfig:
    base = dict(pretrained=False, image_size=32, stream_channels=16, stream_layers=1, fusion="none",
                place_stream=False, object_stream=False)
    base.update(kw)
    return ModelConfig(**base)


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"frames": torch.randn(2, 1, 3, 32, 32, generator=g), "frame_mask": torch.ones(2, 1, dtype=torch.bool)}


def _save(path, model, mcfg, **kw):
    return save_checkpoint(path, model=model, config={"model": mcfg.to_dict()}, epoch=3,
                           metrics={"val": {"ERS": 0.5}}, **kw)


def test_round_trip_format_and_outputs(tmp_path):
    mcfg = tiny_model_cfg()
    model = build_model(mcfg, seed=1).eval()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = _save(tmp_path / "best.pt", model, mcfg, optimizer=opt.state_dict(), scheduler={"epoch": 3},
                 rng={"ranks": [{"torch": torch.get_rng_state()}]}, extra={"best": {"ers": 0.5}})
    assert not (tmp_path / "best.pt.tmp").exists()
    ckpt = load_checkpoint(path)
    assert ckpt["format"] == FORMAT and ckpt["format_version"] == FORMAT_VERSION
    assert ckpt["labels"] == {"categories": list(CATEGORIES), "vad": list(VAD_NAMES)}
    assert ckpt["epoch"] == 3 and ckpt["metrics"]["val"]["ERS"] == 0.5
    assert ckpt["best"] == {"ers": 0.5} and "optimizer" in ckpt and ckpt["scheduler"] == {"epoch": 3}
    loaded, ckpt2 = load_model(path, "cpu")
    assert not loaded.training
    with torch.no_grad():
        a, b = model(_batch()), loaded(_batch())
    torch.testing.assert_close(a["categories"], b["categories"], rtol=0, atol=0)
    torch.testing.assert_close(a["vad"], b["vad"], rtol=0, atol=0)
    h = checkpoint_sha256(path)
    assert len(h) == 64 and h == checkpoint_sha256(path)


def test_atomic_write_keeps_old_file_when_save_fails(tmp_path, monkeypatch):
    mcfg = tiny_model_cfg()
    model = build_model(mcfg, seed=1)
    path = _save(tmp_path / "last.pt", model, mcfg)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        _save(path, model, mcfg)
    assert path.read_bytes() == before
    load_checkpoint(path)


def test_not_a_beenet_file(tmp_path):
    p = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, p)
    with pytest.raises(CheckpointError, match="not a beenet checkpoint"):
        load_checkpoint(p)


def test_corrupt_and_truncated_files(tmp_path):
    mcfg = tiny_model_cfg()
    good = _save(tmp_path / "good.pt", build_model(mcfg, seed=0), mcfg)
    data = good.read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(trunc)
    garbage = tmp_path / "garbage.pt"
    rng = np.random.default_rng(0)
    # Random bytes make the unpickler fail in many ways (IndexError, KeyError, ...): all of them
    # must come out as one CheckpointError naming the file.
    for _ in range(200):
        garbage.write_bytes(rng.integers(0, 256, int(rng.integers(1, 512)), dtype=np.uint8).tobytes())
        with pytest.raises(CheckpointError, match=str(garbage.name)):
            load_checkpoint(garbage)
    garbage.write_bytes(b"\x80\x02]q\x00." + bytes(range(8)))  # a pickle protocol-2 list, then junk
    with pytest.raises(CheckpointError, match=str(garbage.name)):
        load_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_weights_only_refuses_pickled_code(tmp_path):
    p = tmp_path / "evil.pt"
    with open(p, "wb") as fh:
        pickle.dump({"format": FORMAT, "x": _Evil()}, fh, protocol=2)
    with pytest.raises(CheckpointError):
        load_checkpoint(p)


def test_model_config_mismatch_is_clear(tmp_path):
    small = tiny_model_cfg()
    model = build_model(small, seed=0)
    bigger = tiny_model_cfg(stream_channels=24)
    # Weights of one model under the config of another: names the field and the shape it contradicts.
    p = save_checkpoint(tmp_path / "mix.pt", model=model, config={"model": bigger.to_dict()}, epoch=0)
    with pytest.raises(CheckpointError, match=r"model\.stream_channels is 24 but the weights hold 16"):
        load_model(p)
    # A difference no size field names (a body-crop stream the weights lack): the mismatched keys.
    crop = tiny_model_cfg(body_crop="shared")
    p3 = save_checkpoint(tmp_path / "crop.pt", model=model, config={"model": crop.to_dict()}, epoch=0)
    with pytest.raises(CheckpointError, match="missing .* keys .*crop_stream"):
        load_model(p3)
    # A config key this beenet does not know.
    d = small.to_dict()
    d["no_such_key"] = 1
    p2 = save_checkpoint(tmp_path / "key.pt", model=model, config={"model": d}, epoch=0)
    with pytest.raises(CheckpointError, match="no_such_key"):
        load_model(p2)


def test_newer_format_version_refused(tmp_path):
    mcfg = tiny_model_cfg()
    p = _save(tmp_path / "x.pt", build_model(mcfg, seed=0), mcfg)
    ckpt = torch.load(p, weights_only=True)
    ckpt["format_version"] = FORMAT_VERSION + 1
    torch.save(ckpt, p)
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(p)


# A checkpoint saved before issue 10 has no kappa_projector / vad_context_pool / camode_contexts /
# prior_pseudocount in its model config; it must load as the older readings and give the same outputs.
_NEW_KEYS = ("kappa_projector", "vad_context_pool", "camode_contexts", "prior_pseudocount", "vad_head_init")


@pytest.mark.parametrize("fusion", ["beenet", "camode"])
def test_checkpoint_without_the_new_keys_loads_the_older_readings_with_the_same_outputs(tmp_path, fusion) -> None:
    legacy = dict(ModelConfig.LEGACY_VALUES)
    assert set(legacy) == set(_NEW_KEYS)
    mcfg = tiny_model_cfg(fusion=fusion, fusion_form="scale", place_stream=True, object_stream=True,
                          kappa=8, channels_last=False, **legacy)
    model = build_model(mcfg, seed=0)
    g = torch.Generator().manual_seed(1)
    model.fit_priors(torch.rand(40, 445, generator=g), torch.rand(40, 26, generator=g),
                     1 + 9 * torch.rand(40, 3, generator=g))
    model.eval()
    old_dict = {k: v for k, v in mcfg.to_dict().items() if k not in _NEW_KEYS}
    path = save_checkpoint(tmp_path / "old.pt", model=model, config={"model": old_dict}, epoch=1)
    loaded, _ = load_model(path)
    for key, value in legacy.items():
        assert getattr(loaded.cfg, key) == value, key
    with torch.no_grad():
        a, b = model(_batch()), loaded(_batch())
    for key in ("categories", "category_logits", "vad", "place_embedding"):
        assert torch.equal(a[key], b[key]), key
    # The same dict with the keys present takes them (a new checkpoint is read as written).
    assert ModelConfig.from_dict({**old_dict, "prior_pseudocount": 3.0}).prior_pseudocount == 3.0
    assert ModelConfig.from_dict(ModelConfig().to_dict()) == ModelConfig()
