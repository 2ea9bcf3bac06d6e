"""``RunConfig``: every section of a run in one dataclass tree, its keys, its validation, and what
lower parts are fed from it (:func:`prepare_settings`)."""


from __future__ import annotations

import dataclasses
import logging
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from beenet import config_types
from beenet.choices import check_finite, upgrade_choice
from beenet.config_types import coerce
from beenet.context.config import ContextConfig
from beenet.data.dataset import DataConfig
from beenet.data.prepared import PrepareSettings
from beenet.errors import ConfigError
from beenet.models import ModelConfig, fusion_class

log = logging.getLogger(__name__)


from beenet.run_config.sections import LossConfig, OptimConfig, RunSettings


@dataclass
class RunConfig:
    """Everything a training run needs; ``to_dict()`` is what checkpoints store."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    run: RunSettings = field(default_factory=RunSettings)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples become lists), safe for YAML and ``torch.save``; a fact is written
        once, under its owner (no ``data.image_size``: ``model.image_size`` holds it)."""
        d = {s: _plain(dataclasses.asdict(getattr(self, s))) for s in SECTIONS}
        for old in OLD_KEYS:
            section, name = old.split(".")
            del d[section][name]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> RunConfig:
        """Build from a nested dict (a checkpoint's, a run's config.yaml); unknown keys raise.

        Each section is read by :func:`beenet.config_types.from_dict`: a key missing from a section
        predates its field and takes the section's ``LEGACY_VALUES`` value (the older behaviour,
        e.g. ``ModelConfig.LEGACY_VALUES``) when there is one, its default otherwise; a section
        missing altogether keeps the defaults. An old key (:data:`OLD_KEYS`, e.g. the
        ``data.image_size`` of older checkpoints) must agree with its owner, or stands for it.
        """
        sections = _sections(d, where)
        stand_in = _take_old_keys(sections, where)
        hints = typing.get_type_hints(cls)
        cfg = cls(**{
            s: config_types.from_dict(hints[s], sections.get(s, {}), s, where, legacy=s in sections)
            for s in SECTIONS
        })
        for key, value in stand_in.items():
            _set_located(cfg, key, value, where)
        follow_owners(cfg)
        validate(cfg)
        return cfg


SECTIONS: tuple[str, ...] = ("data", "model", "loss", "optim", "context", "run")

#: Old keys of a fact another section owns: ``data.image_size`` is the side of the frames the model
#: reads, owned by ``model.image_size`` (the model config travels alone to predict and ONNX export).
#: Setting an old key sets its owner; a file or command line that gives both with different values
#: is an error; ``to_dict`` writes the owner alone; the old field of a run follows its owner (the
#: dataset, which sees only ``cfg.data``, reads it there).
OLD_KEYS: dict[str, str] = {"data.image_size": "model.image_size"}


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _hints(obj: Any) -> dict[str, Any]:
    return typing.get_type_hints(type(obj))


def _field_names(obj: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(obj)]


def _resolve_key(cfg: RunConfig, key: str) -> tuple[Any, str, Any]:
    """(the dataclass holding ``key``, the field name, its type) for a dotted key, or ConfigError."""
    parts = key.split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(
            f"{key!r}: keys have the form SECTION.NAME, e.g. optim.lr; sections: {', '.join(SECTIONS)}"
        )
    section, name = parts
    if section not in SECTIONS:
        raise ConfigError(f"unknown config section {section!r} in {key!r}; valid sections: {', '.join(SECTIONS)}")
    obj = getattr(cfg, section)
    names = _field_names(obj)
    if name not in names:
        raise ConfigError(f"unknown config key {key!r}; valid keys of {section}: {', '.join(names)}")
    return obj, name, _hints(obj)[name]


def set_value(cfg: RunConfig, key: str, value: Any) -> None:
    """Set the dotted ``key`` to ``value`` parsed by the field's type (an old spelling of a
    choice becomes the current one, with a deprecation warning). An old key (:data:`OLD_KEYS`)
    sets its owner, and a fault is named by the key given."""
    obj, name, tp = _resolve_key(cfg, OLD_KEYS.get(key, key))
    value = upgrade_choice(type(obj), name, value, key)
    setattr(obj, name, coerce(value, tp, key))
    follow_owners(cfg)


def get_value(cfg: RunConfig, key: str) -> Any:
    obj, name, _ = _resolve_key(cfg, key)
    return getattr(obj, name)


def follow_owners(cfg: RunConfig) -> None:
    """Give each old field of ``cfg`` (:data:`OLD_KEYS`) its owner's value."""
    for old, owner in OLD_KEYS.items():
        obj, name, _ = _resolve_key(cfg, old)
        setattr(obj, name, get_value(cfg, owner))


def check_agree(old: str, old_value: Any, owner: str, value: Any, where: str | None = None) -> None:
    """An old key given beside its owner must read as the same value (each read by the owner's type)."""
    prefix = f"{where}: " if where else ""
    section, name = owner.split(".")
    tp = typing.get_type_hints(typing.get_type_hints(RunConfig)[section])[name]
    try:
        a = coerce(old_value, tp, old)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None
    try:
        b = coerce(value, tp, owner)
    except ConfigError:
        return  # the owner's own reading names its fault
    if a != b:
        raise ConfigError(f"{prefix}{old}={a!r} but {owner}={b!r}: they must agree ({owner} owns the value; "
                          f"{old} is its old key: give {owner} alone)")


def _sections(d: Any, where: str) -> dict[str, dict[str, Any]]:
    """The sections of a config mapping ``d`` (a section given as null is left out), or ConfigError."""
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where}: expected a mapping of sections ({', '.join(SECTIONS)}), got {type(d).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for section, values in d.items():
        if section not in SECTIONS:
            raise ConfigError(f"{where}: unknown config section {section!r}; valid sections: {', '.join(SECTIONS)}")
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise ConfigError(f"{where}: section {section!r} must be a mapping of keys to values")
        out[section] = dict(values)
    return out


def _take_old_keys(sections: dict[str, dict[str, Any]], where: str) -> dict[str, Any]:
    """Take each old key (:data:`OLD_KEYS`) out of ``sections``: beside its owner the two must agree;
    alone it stands for its owner (returned, ``{old key: value}``, for :func:`set_value`)."""
    stand_in: dict[str, Any] = {}
    for old, owner in OLD_KEYS.items():
        section, name = old.split(".")
        if name not in sections.get(section, {}):
            continue
        value = sections[section].pop(name)
        owner_section, owner_name = owner.split(".")
        if owner_name in sections.get(owner_section, {}):
            check_agree(old, value, owner, sections[owner_section][owner_name], where)
        else:
            stand_in[old] = value
    return stand_in


def _set_located(cfg: RunConfig, key: str, value: Any, where: str) -> None:
    try:
        set_value(cfg, key, value)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def apply_dict(cfg: RunConfig, d: Any, where: str) -> None:
    sections = _sections(d, where)
    stand_in = _take_old_keys(sections, where)
    for section, values in sections.items():
        for name, value in values.items():
            _set_located(cfg, f"{section}.{name}", value, where)
    for key, value in stand_in.items():
        _set_located(cfg, key, value, where)


# --------------------------------------------------------------------------- checks


def validate(cfg: RunConfig) -> None:
    """Each section's own checks (its ``validate()``, which attribute writes bypassed), then the
    cross-section checks: what the model reads must be what the data and context provide."""
    for old, owner in OLD_KEYS.items():  # an attribute write may have set the old field apart
        check_agree(old, get_value(cfg, old), owner, get_value(cfg, owner))
    for section in SECTIONS:
        obj = getattr(cfg, section)
        check_finite(obj, section)  # before the section's own checks: "must be finite" names the fault
        check = getattr(obj, "validate", None)
        if callable(check):
            check()
        else:  # a section without validate() checks itself in __post_init__
            dataclasses.replace(obj)
    m = cfg.model
    if m.body_crop != "none" and not cfg.data.body_crop:
        raise ConfigError(f"model.body_crop={m.body_crop!r} needs data.body_crop=true (the dataset makes the crops)")
    if m.skeleton and not cfg.data.skeleton:
        raise ConfigError("model.skeleton=true needs data.skeleton=true (the dataset makes the skeletons)")
    if cfg.loss.kind == "bce" and m.fusion_form != "odds" and fusion_class(m.fusion).reads_priors \
            and not cfg.loss.allow_bce_with_scale:
        raise ConfigError(
            f"loss.kind=bce with model.fusion_form={m.fusion_form!r}: BCE trains the odds-form logits "
            f"z + log(p^/lambda) while the metric ranks the {m.fusion_form} scores p^ {'z' if m.fusion_form == 'linear' else 'sigmoid(z)'} / lambda, "
            "so training and scoring disagree (docs/method.md section 4). Use model.fusion_form=odds with "
            "BCE, or loss.kind=mse with linear / scale; to train this pairing anyway set "
            "loss.allow_bce_with_scale=true"
        )
    if model_needs_input_context(m) and cfg.context.source == "none":
        raise ConfigError("model.fusion_context=input: the model reads context labels at every forward, but "
                          "context.source is 'none'; give a context source, or use model.fusion_context=streams")
    if needs_context(cfg) and cfg.context.source == "none" and cfg.context.priors != "init":
        raise ConfigError(
            "this model needs context labels (for its priors, its context streams or its fusion input) "
            "but context.source is 'none'; set context.source to sidecar (synthetic data), places365, "
            "coco or experts (or, fine-tuning with --init, context.priors=init: keep the init's priors)"
        )


def needs_context(cfg: RunConfig) -> bool:
    """True when the model reads context labels (priors, distillation targets or fusion input)."""
    m = cfg.model
    if fusion_class(m.fusion).uses_context:
        return True
    # No fusion: context streams (built only with fusion_context=streams) still need their targets.
    return m.fusion_context == "streams" and bool(m.place_stream or m.object_stream)


def model_needs_input_context(model_cfg: ModelConfig) -> bool:
    """True when the model's forward reads ``batch["context"]`` (so eval must supply it)."""
    return fusion_class(model_cfg.fusion).uses_context and model_cfg.fusion_context == "input"


def prepare_settings(cfg: RunConfig) -> PrepareSettings:
    """What the prepared cache (``beenet prepare``, :func:`beenet.data.prepared.find_prepared`)
    reads of ``cfg``: its data and context sections, the split, ``run.prepared_dir``, ``run.device``
    and what the model does with context."""
    m = cfg.model
    return PrepareSettings(
        data=cfg.data, context=cfg.context, protocol=cfg.run.protocol, split_seed=cfg.run.split_seed,
        prepared_dir=cfg.run.prepared_dir, device=cfg.run.device, model_reads_context=needs_context(cfg),
        context_streams=m.fusion_context == "streams" and bool(m.place_stream or m.object_stream),
    )


