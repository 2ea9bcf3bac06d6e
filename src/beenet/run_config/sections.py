"""The sections of a run config that belong to no lower part: the loss, the optimiser, the run's own settings."""


from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from beenet.choices import check_at_least, check_choices
from beenet.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class LossConfig:
    """What the model is trained to minimise."""

    #: ``mse``: the paper's MSE on the 29 fused outputs (26 categories + VAD, on the scale
    #: ``vad_scale`` says).
    #: ``bce``: BCE on the fused category logits + MSE on VAD in units of the training std.
    kind: Literal["mse", "bce"] = "mse"
    #: Binarise the category targets at >= 0.5 (the metric's rule) instead of the soft crowd scores.
    binarize_targets: bool = False
    #: Weight of the VAD terms against the category terms (1 = the paper's plain mean over 29).
    vad_weight: float = 1.0
    #: Scale of VAD in the ``mse`` loss (``docs/method.md`` section 4): ``raw`` (the authors'
    #: scaffold: BoLD's 1-10 scale, beside the 0-1 category scores in one MSE) or ``tenth``
    #: (VAD / 10, the older reading: the VAD terms weigh about 100x less). ``bce`` ignores it.
    vad_scale: Literal["raw", "tenth"] = "raw"
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
    LEGACY_VALUES: ClassVar[dict[str, Any]] = {"distill_norm": "none", "vad_scale": "tenth"}

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
    #: Samples per optimiser step: on each process (``batch_size_is: per_gpu``, under torchrun the
    #: global batch is this x world size) or over all processes (``global``, split among them).
    batch_size: int = 8
    #: ``per_gpu`` or ``global``: how ``batch_size`` is read under torchrun (docs/training.md).
    batch_size_is: Literal["per_gpu", "global"] = "per_gpu"
    #: Scale ``lr`` by the global batch / ``batch_size``: ``none``, ``linear`` or ``sqrt``.
    scale_lr: Literal["none", "linear", "sqrt"] = "none"
    epochs: int = 90
    #: Clip the global gradient norm to this value (0 = no clipping).
    grad_clip: float = 0.0
    #: The pretrained trunk's learning rate is ``lr`` x this (e.g. 0.1 to fine-tune it gently).
    trunk_lr_scale: float = 1.0
    #: What is not trained (fine-tuning, ``beenet.training.init.freeze``): ``none``; ``trunk``
    #: (the image trunks); ``all-but-heads`` (everything but the fusion and the ``head`` layers).
    #: Frozen BatchNorm layers keep their running statistics, except under ``run.bn_recalibrate``.
    freeze: Literal["none", "trunk", "all-but-heads"] = "none"

    #: Weight decay on the 1-D parameters too (biases, norm weights, gates): ``true`` as the
    #: authors' scaffold (one SGD group over every trainable parameter), ``false`` exempts them
    #: (the older behaviour; the ``demo`` and ``video`` presets). Trainable priors are never decayed.
    decay_1d: bool = True

    #: Values of fields that a stored config (an older run or checkpoint) lacks: the old behaviour.
    LEGACY_VALUES: ClassVar[dict[str, Any]] = {"decay_1d": False}

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
    #: CPU cores this process may use shared among the run's processes on this machine, minus one,
    #: at most 16; beenet.training.loader.resolve_num_workers).
    num_workers: int = -1
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
    #: Deterministic kernels: ``torch.use_deterministic_algorithms`` (warning on an op that has none),
    #: cuDNN deterministic and not benchmarking, ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless set.
    #: Slower on a GPU; a resumed run then matches an unbroken one there too (docs/training.md).
    deterministic: bool = False
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
        if self.device != "auto":
            try:
                torch.device(self.device)  # any device string torch knows; what the machine has is checked at use
            except (RuntimeError, TypeError):
                raise ConfigError(f"run.device: {self.device!r} is not a device torch knows; use auto, cpu, cuda, "
                                  "cuda:N, mps or another torch device string") from None


