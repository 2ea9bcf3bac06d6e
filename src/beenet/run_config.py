"""The run configuration: one dataclass tree, YAML presets, and ``--set a.b=value`` overrides.

``RunConfig`` gathers the config of every part (data, model, loss) with the optimiser, the context
source and the run settings. It is the single source of a run's hyper-parameters: saved as
``config.yaml`` next to every run and inside every checkpoint, so a run describes itself.

Presets are flat YAML files in ``beenet/presets/`` (no inheritance: each file states the whole
run, so what a reader sees is what runs). Values given on the command line are parsed by the type
of the field they set; unknown keys and bad values raise :class:`~beenet.errors.ConfigError` that
names the key and lists what is valid.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from beenet import atomic, config_types
from beenet.choices import check_at_least, check_choices, check_finite, not_one_of, upgrade_choice
from beenet.config_types import coerce
from beenet.context.config import ContextConfig
from beenet.data.dataset import DataConfig
from beenet.data.prepared import PrepareSettings
from beenet.errors import ConfigError
from beenet.models import ModelConfig, fusion_class

log = logging.getLogger(__name__)


@dataclass
class LossConfig:
    """What the model is trained to minimise."""

    #: ``mse``: the paper's MSE on the 29 fused outputs (26 categories + VAD / 10).
    #: ``bce``: BCE on the fused category logits + MSE on VAD in units of the training std.
    kind: Literal["mse", "bce"] = "mse"
    #: Binarise the category targets at >= 0.5 (the metric's rule) instead of the soft crowd scores.
    binarize_targets: bool = False
    #: Weight of the VAD terms against the category terms (1 = the paper's plain mean over 29).
    vad_weight: float = 1.0
    #: Weight of the distillation of the place / object streams (0 = no distillation); an ablation
    #: axis (``beenet ablate --study distill``).
    distill_weight: float = 1.0
    #: Distillation loss on the context streams' softmax: ``kl`` (KL(expert || stream)) or ``bce``
    #: (binary cross-entropy per class between the stream's and the expert's probabilities).
    distill: Literal["kl", "bce"] = "kl"
    #: Scale of each stream's distillation term (``docs/method.md`` section 4): ``log_classes``
    #: divides it by log K (K = 365 places, 80 objects: the KL of a uniform guess on a one-hot label
    #: becomes 1; the measured best, ``docs/ablations.md`` 1d), ``classes`` by K (a per-class mean,
    #: the scale of the MSE's mean over 29 outputs; too weak for the streams to learn), ``none``
    #: leaves it in nats (older reading: the context terms dominate the trunk's gradient).
    distill_norm: Literal["log_classes", "classes", "none"] = "log_classes"
    #: Train ``kind=bce`` with ``model.fusion_form`` linear or scale anyway. BCE then trains the
    #: odds-form logits while the metric ranks the linear / scale scores (section 4); refused unless
    #: this is true.
    allow_bce_with_scale: bool = False

    #: Values of fields that a stored config (an older run or checkpoint) lacks: the old behaviour.
    LEGACY_VALUES: ClassVar[dict[str, Any]] = {"distill_norm": "none"}

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`~beenet.errors.ConfigError` naming the field whose value is not valid."""
        check_choices(self, "loss")
        check_at_least(self, "loss", 0, "vad_weight", "distill_weight")


@dataclass
class OptimConfig:
    """Optimiser, learning-rate schedule and batch: the paper's SGD recipe by default."""

    #: ``sgd`` (momentum, the paper) or ``adamw``.
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 1e-2
    #: SGD momentum (ignored by AdamW).
    momentum: float = 0.9
    weight_decay: float = 5e-3
    #: ``step``: lr x ``gamma`` every ``step_epochs``; ``cosine``: to 0 over ``epochs``; ``constant``.
    schedule: Literal["step", "cosine", "constant"] = "step"
    step_epochs: int = 45
    gamma: float = 0.1
    #: Linear warm-up epochs before the schedule (0 = none).
    warmup_epochs: int = 0
    #: Samples per step on each process (under DDP the global batch is this x world size).
    batch_size: int = 8
    epochs: int = 90
    #: Clip the global gradient norm to this value (0 = no clipping).
    grad_clip: float = 0.0
    #: The pretrained trunk's learning rate is ``lr`` x this (e.g. 0.1 to fine-tune it gently).
    trunk_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the field whose value is not valid."""
        check_choices(self, "optim")
        check_at_least(self, "optim", 0, "lr", "trunk_lr_scale", "batch_size", "epochs", strict=True)
        check_at_least(self, "optim", 1, "step_epochs")
        check_at_least(self, "optim", 0, "weight_decay", "grad_clip", "warmup_epochs")


@dataclass
class RunSettings:
    """Seeds, protocol, hardware and logging of a run."""

    #: Seeds the model init, dropout, the sampling of frames and the order of batches.
    seed: int = 42
    #: ``official`` (train.csv / val.csv / test_meta.csv; best.pt is selected on val, the split
    #: it is then reported on), ``paper`` (the paper's clip-disjoint 60/10/30) or ``paper-video``
    #: (60/10/30 keeping every clip of a source video in one part; stricter).
    protocol: Literal["official", "paper", "paper-video"] = "official"
    #: Seed of the ``paper`` / ``paper-video`` split.
    split_seed: int = 42
    #: DataLoader worker processes per process (0 = load in the main process; -1 = auto: the
    #: CPU cores of this machine shared among the processes of the run, minus one, at most 16).
    num_workers: int = 2
    #: Root of prepared caches (``beenet prepare``): empty = ``prepared/`` next to the context
    #: cache (``$BEENET_CACHE/../prepared``, default ``~/.cache/beenet/prepared``); ``off`` =
    #: always decode the videos on the fly. A cache is used only when its fingerprint matches.
    prepared_dir: str = ""
    #: ``auto`` (cuda when available), ``cpu``, ``cuda`` or ``cuda:N``.
    device: str = "auto"
    #: Mixed precision on CUDA: ``off``, ``bf16``, ``fp16`` (with a gradient scaler) or ``auto``
    #: (bf16 where the GPU supports it, else fp16); always off on CPU.
    amp: Literal["off", "auto", "bf16", "fp16"] = "off"
    #: ``torch.compile`` the model for training (the first steps are slow while it compiles).
    compile: bool = False
    #: Log the running loss every this many steps.
    log_every: int = 50
    #: Validate every this many epochs (the last epoch is always validated).
    eval_every: int = 1
    #: Stop when val ERS has not improved for this many validations (0 = never).
    early_stop: int = 0
    #: Before each validation, recompute every BatchNorm's running statistics with the current
    #: weights as the plain average over this many training batches ("precise BN"; 0 = off: the
    #: running averages of training are kept, as the authors' code does). Measured cause of the
    #: unstable val mR2 of short runs (docs/ablations.md, section 5).
    bn_recalibrate: int = 50
    #: ``auto``: also write metrics.csv's numbers as TensorBoard event files in ``<run>/tensorboard``
    #: when the ``tensorboard`` package is installed (``pip install 'beenet[tensorboard]'``); ``off``.
    tensorboard: Literal["auto", "off"] = "auto"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the field whose value is not valid."""
        check_choices(self, "run")
        check_at_least(self, "run", 0, "eval_every", "log_every", strict=True)
        check_at_least(self, "run", 0, "early_stop", "seed", "split_seed", "bn_recalibrate")
        check_at_least(self, "run", -1, "num_workers")  # -1 = auto
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise not_one_of("run.device", self.device, ("auto", "cpu", "cuda", "cuda:N"))


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
        _follow_owners(cfg)
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
    _follow_owners(cfg)


def get_value(cfg: RunConfig, key: str) -> Any:
    obj, name, _ = _resolve_key(cfg, key)
    return getattr(obj, name)


def _follow_owners(cfg: RunConfig) -> None:
    """Give each old field of ``cfg`` (:data:`OLD_KEYS`) its owner's value."""
    for old, owner in OLD_KEYS.items():
        obj, name, _ = _resolve_key(cfg, old)
        setattr(obj, name, get_value(cfg, owner))


def _check_agree(old: str, old_value: Any, owner: str, value: Any, where: str | None = None) -> None:
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
            _check_agree(old, value, owner, sections[owner_section][owner_name], where)
        else:
            stand_in[old] = value
    return stand_in


def _set_located(cfg: RunConfig, key: str, value: Any, where: str) -> None:
    try:
        set_value(cfg, key, value)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _apply_dict(cfg: RunConfig, d: Any, where: str) -> None:
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
        _check_agree(old, get_value(cfg, old), owner, get_value(cfg, owner))
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
    if needs_context(cfg) and cfg.context.source == "none":
        raise ConfigError(
            "this model needs context labels (for its priors, its context streams or its fusion input) "
            "but context.source is 'none'; set context.source to sidecar (synthetic data), places365, "
            "coco or experts"
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


# --------------------------------------------------------------------------- loading


def preset_names() -> list[str]:
    """Names of the presets shipped in ``beenet/presets``."""
    files = resources.files("beenet").joinpath("presets")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(path: Path | Any, where: str) -> Any:
    """The YAML mapping in ``path``; a file that is unreadable, not UTF-8 text, not YAML, or holds
    no setting at all (empty, or only comments: almost surely the wrong file) is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the config file ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not a UTF-8 text file (byte {exc.start}: {exc.reason}); "
                          "a config is a YAML text file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({exc})") from None
    if data is None:
        raise ConfigError(f"{where}: the config file holds no settings (empty, or only comments); give a "
                          f"YAML file with sections ({', '.join(SECTIONS)}) or a preset name")
    return data


def parse_override(item: str) -> tuple[str, str]:
    """``"optim.lr=0.1"`` -> ``("optim.lr", "0.1")``."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} is not of the form SECTION.KEY=VALUE (e.g. optim.lr=0.001)")
    return key.strip(), value.strip()


def apply_overrides(cfg: RunConfig, overrides: list[str] | tuple[str, ...]) -> RunConfig:
    """Apply ``a.b=value`` overrides in order (an old key sets its owner: both given must agree)."""
    given: dict[str, str] = {}
    for item in overrides:
        key, value = parse_override(item)
        set_value(cfg, key, value)
        given[key] = value
    for old, owner in OLD_KEYS.items():
        if old in given and owner in given:
            _check_agree(old, given[old], owner, given[owner])
    if "model.body_crop" in given and "data.body_crop" not in given:
        cfg.data.body_crop = cfg.model.body_crop != "none"
    if "model.skeleton" in given and "data.skeleton" not in given:
        cfg.data.skeleton = bool(cfg.model.skeleton)
    return cfg


def load_config(name_or_path: str | os.PathLike[str] = "paper", overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """A preset name (``paper``, ``demo``, ``video``) or a YAML file, then ``--set`` overrides."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.is_file() or os.sep in text:
        if not path.is_file():
            raise ConfigError(f"config file {text} does not exist; give a preset ({', '.join(preset_names())}) or a YAML file")
        where = str(path)
        data = _read_yaml(path, where)
    else:
        names = preset_names()
        if text not in names:
            raise ConfigError(f"unknown preset {text!r}; presets: {', '.join(names)} (or give a YAML file)")
        where = f"preset {text}"
        data = _read_yaml(resources.files("beenet").joinpath("presets", f"{text}.yaml"), where)
    cfg = RunConfig()
    _apply_dict(cfg, data, where)
    apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg


def to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=False)


def save_yaml(cfg: RunConfig, path: str | os.PathLike[str]) -> None:
    """Write the resolved config atomically (temp file + ``os.replace``)."""
    atomic.write_text(path, "# beenet run config (resolved)\n" + to_yaml(cfg))


def config_diff(a: RunConfig, b: RunConfig) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two configs (for logs and ablation tables)."""
    da, db = a.to_dict(), b.to_dict()
    out: dict[str, tuple[Any, Any]] = {}
    for s in SECTIONS:
        for k in da[s]:
            if da[s][k] != db[s].get(k):
                out[f"{s}.{k}"] = (da[s][k], db[s].get(k))
    return out
