"""Run configs: presets, YAML files, typed --set overrides, errors that name the key."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from beenet import config_types
from beenet.choices import literal_fields
from beenet.context.config import ContextConfig
from beenet.data.dataset import DataConfig
from beenet.errors import ConfigError
from beenet.models import ModelConfig
from beenet.run_config import (
    SECTIONS,
    RunConfig,
    load_config,
    preset_names,
    save_yaml,
    set_value,
    to_yaml,
    validate,
)


def test_presets_exist_and_load():
    assert {"paper", "demo", "video", "finetune"} <= set(preset_names())
    demo = load_config("demo").to_dict()
    for name in preset_names():
        # finetune takes its model, data and loss from the config of the weights it starts from
        cfg = load_config(name, init_config=lambda: demo)
        assert cfg.data.image_size == cfg.model.image_size


def test_paper_preset_is_the_published_recipe():
    c = load_config("paper")
    assert (c.data.sampling, c.data.image_size, c.model.backbone, c.model.pretrained) == ("still", 224, "googlenet", True)
    assert c.model.place_stream and c.model.object_stream
    assert (c.model.fusion, c.model.fusion_context, c.model.context_pool) == ("beenet", "streams", "max")
    assert c.context.source == "experts" and c.loss.kind == "mse" and c.loss.distill_weight > 0
    o = c.optim
    assert (o.optimizer, o.lr, o.momentum, o.weight_decay, o.schedule, o.step_epochs, o.gamma) == (
        "sgd", 0.01, 0.9, 0.005, "step", 45, 0.1)
    assert (o.epochs, o.batch_size, c.run.seed, c.run.protocol) == (90, 8, 42, "paper")


def test_video_preset_is_the_full_model():
    c = load_config("video")
    assert c.data.sampling == "uniform" and c.data.num_frames > 1
    assert c.model.body_crop != "none" and c.data.body_crop
    assert c.model.skeleton and c.data.skeleton
    assert c.model.fusion in ("beenet", "camode") and c.loss.kind == "bce"


def test_overrides_are_parsed_by_type():
    c = load_config("paper", [
        "optim.lr=1e-3", "optim.epochs=3", "model.pretrained=false", "run.protocol=official",
        "model.skeleton_channels=16,32", "context.cache_dir=/tmp/x", "run.amp=bf16",
    ])
    assert c.optim.lr == pytest.approx(1e-3) and isinstance(c.optim.lr, float)
    assert c.optim.epochs == 3 and isinstance(c.optim.epochs, int)
    assert c.model.pretrained is False
    assert c.run.protocol == "official"
    assert c.model.skeleton_channels == (16, 32)
    assert c.context.cache_dir == "/tmp/x"
    assert c.run.amp == "bf16"
    c2 = load_config("paper", ["model.skeleton_channels=[8, 16]", "optim.grad_clip=5"])
    assert c2.model.skeleton_channels == (8, 16) and c2.optim.grad_clip == 5.0


def test_linked_image_size_follows_one_override():
    c = load_config("paper", ["data.image_size=64"])
    assert c.model.image_size == 64
    c = load_config("paper", ["model.image_size=96"])
    assert c.data.image_size == 96
    with pytest.raises(ConfigError, match="must agree"):
        load_config("paper", ["data.image_size=64", "model.image_size=96"])


@pytest.mark.parametrize("item, match", [
    ("optim.lrr=0.1", r"unknown config key 'optim.lrr'.*valid keys of optim: optimizer, lr"),
    ("optimizer.lr=0.1", r"unknown config section 'optimizer'.*valid sections: data, model"),
    ("optim.lr=fast", r"optim.lr: 'fast' is not a valid float"),
    ("optim.epochs=2.5", r"optim.epochs: '2.5' is not a valid int"),
    ("model.pretrained=maybe", r"model.pretrained: 'maybe' is not a valid bool"),
    ("run.protocol=mine", r"run.protocol: 'mine' is not one of 'official', 'paper'"),
    ("model.fusion=sum", r"model.fusion: 'sum' is not one of 'none', 'concat'"),
    ("optim.lr", r"not of the form SECTION.KEY=VALUE"),
    ("lr=0.1", r"keys have the form SECTION.NAME"),
    ("optim.lr=-1", r"optim.lr must be > 0"),
    ("data.sampling=random", r"data.sampling"),
    ("loss.vad_weight=-1", r"loss.vad_weight must be >= 0"),
])
def test_bad_overrides_name_the_key(item, match):
    with pytest.raises(ConfigError, match=match):
        load_config("paper", [item])


def test_cross_checks():
    with pytest.raises(ConfigError, match="context.source"):
        load_config("paper", ["context.source=none"])
    with pytest.raises(ConfigError, match="data.body_crop=true"):
        load_config("paper", ["model.body_crop=shared", "data.body_crop=false"])
    # Setting only the model side turns the data side on.
    c = load_config("paper", ["model.body_crop=shared", "model.skeleton=true"])
    assert c.data.body_crop and c.data.skeleton


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'papr'; presets: .*paper"):
        load_config("papr")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "nope.yaml"))


def test_yaml_file_round_trip(tmp_path):
    c = load_config("demo", ["optim.lr=0.02", "model.skeleton_channels=8,8"])
    p = tmp_path / "run.yaml"
    save_yaml(c, p)
    back = load_config(str(p))
    assert back == c
    assert RunConfig.from_dict(c.to_dict()) == c
    assert yaml.safe_load(to_yaml(c)) == c.to_dict()


def test_yaml_file_errors_name_file_and_key(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("optim:\n  lr: 0.1\n  moment: 0.9\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'optim.moment'"):
        load_config(str(p))
    p.write_text("optim: [1, 2]\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(str(p))
    p.write_text("optim: {lr: 0.1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(p))
    # YAML 1.1 reads a bare `off` as false: still the 'off' choice.
    p.write_text("run:\n  amp: off\n")
    assert load_config(str(p)).run.amp == "off"


def test_from_dict_rejects_unknown_section():
    with pytest.raises(ConfigError, match="unknown config section 'extra'"):
        RunConfig.from_dict({"extra": {}})


# ------------------------------------------------------------------ one owner per choice list


def test_mean_is_the_one_word_for_the_mean_at_every_pooling_field():
    keys = ("model.temporal_pool", "model.skeleton_pool", "model.context_pool", "model.stream_pool")
    c = load_config("video", [f"{k}=mean" for k in keys])
    assert (c.model.temporal_pool, c.model.skeleton_pool, c.model.context_pool, c.model.stream_pool) == ("mean",) * 4
    assert "avg" not in to_yaml(load_config("video"))  # the presets use the current word


@pytest.mark.parametrize("key", ["model.temporal_pool", "model.skeleton_pool", "model.context_pool"])
def test_old_word_avg_still_works_with_a_deprecation_message(key, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="beenet"):
        c = load_config("video", [f"{key}=avg"])
    assert getattr(c.model, key.split(".")[1]) == "mean"
    assert f"{key}: 'avg' is deprecated, write 'mean'" in caplog.text
    caplog.clear()
    p = tmp_path / "old.yaml"
    p.write_text(to_yaml(c).replace(f"{key.split('.')[1]}: mean", f"{key.split('.')[1]}: avg"))
    with caplog.at_level("WARNING", logger="beenet"):
        assert load_config(str(p)) == c
    assert f"{key}: 'avg' is deprecated" in caplog.text


def test_every_section_owns_its_choices_and_checks_itself():
    """One style: each section's Literal hints are its choice lists, and validate() (run by
    __post_init__) names the field in the one message form."""
    cfg = RunConfig()
    for section in SECTIONS:
        obj = getattr(cfg, section)
        for name, valid in literal_fields(type(obj)).items():
            assert getattr(obj, name) in valid, f"{section}.{name}"
            with pytest.raises(ConfigError, match=rf"^{section}\.{name}: 'nope' is not one of "):
                dataclasses.replace(obj, **{name: "nope"})
    for section, name, bad, message in [
        ("data", "num_frames", 0, "must be a positive integer"),
        ("data", "box_margin", -1.0, "must be >= 0"),
        ("model", "kappa", 0, "must be a positive integer"),
        ("loss", "distill_weight", -1.0, "must be >= 0"),
        ("optim", "lr", 0.0, "must be > 0"),
        ("optim", "step_epochs", 0, "must be >= 1"),
        ("optim", "warmup_epochs", -1, "must be >= 0"),
        ("run", "eval_every", 0, "must be > 0"),
        ("context", "frames_per_clip", 0, "must be >= 1"),
        ("run", "num_workers", -2, "must be >= -1"),
    ]:
        with pytest.raises(ConfigError, match=rf"^{section}\.{name} {message}, got"):
            dataclasses.replace(getattr(cfg, section), **{name: bad})
    with pytest.raises(ConfigError, match=r"run.device: 'gpu' is not a device torch knows"):
        load_config("paper", ["run.device=gpu"])
    assert load_config("paper", ["run.device=cuda:1"]).run.device == "cuda:1"
    assert load_config("paper", ["run.device=mps"]).run.device == "mps"


def test_fusion_needs_context_is_asked_of_the_fusion_class():
    from beenet.models.fusion import FUSIONS
    from beenet.run_config import model_needs_input_context, needs_context

    for kind, cls in FUSIONS.items():
        cfg = load_config("paper", [f"model.fusion={kind}", "model.fusion_context=input"])
        fuses = cls.reads_context or cls.reads_priors
        assert model_needs_input_context(cfg.model) is fuses, kind
        assert needs_context(cfg) is fuses, kind  # no own streams with fusion_context=input


def test_paper_preset_uses_the_authors_forms():
    """docs/method.md section 5: the paper preset's equations are the authors' (issue 10)."""
    m, loss = load_config("paper").model, load_config("paper").loss
    assert (m.fusion_form, m.kappa_projector, m.camode_contexts, m.vad_context_pool) == (
        "linear", "side", "parts", "probability")
    assert m.prior_pseudocount == 1.0 and loss.distill_norm == "log_classes" and loss.kind == "mse"


@pytest.mark.parametrize("form", ["linear", "scale"])
def test_bce_with_a_non_odds_form_is_refused_unless_allowed(form):
    with pytest.raises(ConfigError, match="allow_bce_with_scale"):
        load_config("demo", [f"model.fusion_form={form}"])
    cfg = load_config("demo", [f"model.fusion_form={form}", "loss.allow_bce_with_scale=true"])
    assert cfg.loss.kind == "bce" and cfg.model.fusion_form == form
    # Plain fusions have no prior term: their scores rank as their logits, nothing to refuse.
    load_config("demo", [f"model.fusion_form={form}", "model.fusion=concat"])


def test_a_stored_run_config_without_the_new_keys_reads_the_older_readings():
    from beenet.models import ModelConfig
    from beenet.training.losses import LossConfig

    d = load_config("paper").to_dict()
    for key in ModelConfig.LEGACY_VALUES:
        del d["model"][key]
    del d["loss"]["distill_norm"]
    old = RunConfig.from_dict(d)
    for key, value in ModelConfig.LEGACY_VALUES.items():
        assert getattr(old.model, key) == value
    assert old.loss.distill_norm == LossConfig.LEGACY_VALUES["distill_norm"] == "none"
    assert RunConfig.from_dict(load_config("paper").to_dict()) == load_config("paper")


# ------------------------------------------------------------------ one reading of a config dict


@pytest.mark.parametrize("section", SECTIONS)
def test_the_one_from_dict_refuses_an_unknown_key_naming_it(section):
    """Every section class is read by ``config_types.from_dict``, which names the unknown key and
    lists the valid ones; the classes' own ``from_dict`` and ``RunConfig.from_dict`` go through it."""
    cls = type(getattr(RunConfig(), section))
    valid = [f.name for f in dataclasses.fields(cls)]
    with pytest.raises(ConfigError, match=rf"unknown {section} config key 'bogus'; valid keys: {valid[0]}, {valid[1]}"):
        config_types.from_dict(cls, {"bogus": 1}, section)
    with pytest.raises(ConfigError, match=rf"^old.pt: unknown {section} config key 'bogus'"):
        RunConfig.from_dict({section: {"bogus": 1}}, where="old.pt")
    if hasattr(cls, "from_dict"):
        with pytest.raises(ConfigError, match=rf"unknown {section} config key 'bogus'"):
            cls.from_dict({"bogus": 1})
    with pytest.raises(ConfigError, match=rf"^x: {section} config must be a mapping"):
        config_types.from_dict(cls, [1], section, "x")


def test_the_one_from_dict_reads_values_by_their_hints_and_keeps_each_class_s_messages():
    cfg = config_types.from_dict(ModelConfig, {"skeleton_channels": [8, 16], "prior_lambda": 1, "temporal_pool": "avg"},
                                 "model")
    assert cfg.skeleton_channels == (8, 16) and isinstance(cfg.prior_lambda, float) and cfg.temporal_pool == "mean"
    # A value its hint does not take: the class's own check names it, in the words it always used.
    with pytest.raises(ConfigError, match=r"model.image_size must be a positive integer, got 'abc'"):
        ModelConfig.from_dict({"image_size": "abc"})
    with pytest.raises(ConfigError, match=r"ctx: context.coco_min_size must be none or >= 1, got 'big'"):
        ContextConfig.from_dict({"coco_min_size": "big"}, "ctx")
    # ...and the coercion's message where the class does not check that field.
    with pytest.raises(ConfigError, match=r"context.cache_dir: \[1\] is not a valid str"):
        ContextConfig.from_dict({"cache_dir": [1]})
    # LEGACY_VALUES are the older readings of a stored dict; a file of the current version keeps defaults.
    assert config_types.from_dict(ModelConfig, {}, "model").vad_head_init == "default"
    assert config_types.from_dict(ModelConfig, {}, "model", legacy=False).vad_head_init == "zero"


# ------------------------------------------------------------------ one owner of the frame size


def _old_run_config(data_size, model_size) -> dict:
    """A run config as checkpoints stored it before model.image_size owned the frame size."""
    return {
        "data": {"sampling": "still", "num_frames": 1, "image_size": data_size, "body_crop": False,
                 "crop_size": 112, "skeleton": False, "skeleton_frames": 32, "box_margin": 0.15},
        "model": {"backbone": "googlenet", "pretrained": False, "image_size": model_size, "fusion": "beenet"},
        "context": {"source": "experts"},
    }


def test_a_checkpoint_config_with_both_image_sizes_still_loads():
    cfg = RunConfig.from_dict(_old_run_config(96, 96), where="old.pt")
    assert cfg.model.image_size == cfg.data.image_size == 96
    assert "image_size" not in cfg.to_dict()["data"] and cfg.to_dict()["model"]["image_size"] == 96
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match=r"old.pt: data.image_size=64 but model.image_size=96: they must agree"):
        RunConfig.from_dict(_old_run_config(64, 96), where="old.pt")
    # Alone, the old key stands for its owner.
    old = _old_run_config(64, 64)
    del old["model"]["image_size"]
    assert RunConfig.from_dict(old).model.image_size == 64


def test_an_old_config_file_with_both_image_sizes_still_loads(tmp_path):
    p = tmp_path / "old.yaml"
    p.write_text(yaml.safe_dump(_old_run_config(64, 64)))
    cfg = load_config(str(p))
    assert cfg.model.image_size == cfg.data.image_size == 64
    p.write_text(yaml.safe_dump(_old_run_config(64, 96)))
    with pytest.raises(ConfigError, match=r"old.yaml: data.image_size=64 but model.image_size=96: they must agree"):
        load_config(str(p))


def test_the_data_side_of_a_run_follows_the_model_s_image_size():
    cfg = RunConfig()
    set_value(cfg, "model.image_size", 96)
    assert cfg.data.image_size == 96
    set_value(cfg, "data.image_size", "128")  # the old key sets the owner
    assert cfg.model.image_size == cfg.data.image_size == 128
    with pytest.raises(ConfigError, match=r"data.image_size: 'x' is not a valid int"):
        set_value(cfg, "data.image_size", "x")
    cfg.data.image_size = 64  # an attribute write that sets the two apart
    with pytest.raises(ConfigError, match="must agree"):
        validate(cfg)
    assert DataConfig().image_size == ModelConfig().image_size
