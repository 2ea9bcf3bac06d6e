"""``ModelConfig``: the single source of a BEE-NET model's hyper-parameters.

Every checkpoint stores ``ModelConfig.to_dict()`` beside the weights, so a checkpoint describes the
model it holds. The defaults are the paper's form (``docs/method.md`` section 2); every choice that
is our reading of the paper, and every extension past it, is a field here so it can be ablated.

A stored config that lacks a field predates it: :meth:`ModelConfig.from_dict` gives such a field
its value in :data:`LEGACY_VALUES`, the one that reproduces what the code did before the field
existed, so an old checkpoint still loads and gives the same outputs.

The defaults here are the one owner of every model setting's default, the fusions' included
(``beenet.models.fusion.FusionOptions`` and the fusion constructors read them). ``fusion`` declares
the fusion names; each fusion class registers under its name in :data:`FUSIONS`
(:func:`register_fusion`, in :mod:`beenet.models.fusion`, which imports this module and never the
other way), and callers ask the class what it reads (:func:`fusion_class`) instead of matching names.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from beenet import config_types
from beenet.choices import check_at_least, check_choices, check_positive_ints, choices, not_one_of, upgrade_choices
from beenet.errors import ConfigError

#: Every kind ``beenet.models.pooling.make_pool`` builds (sites a and b take any of them; a test
#: checks this hint against the pooling module's constructor table).
PoolKind = Literal["mean", "max", "mixed", "gated", "softpool", "gem", "simpool", "attention", "stats"]
#: Old pooling kind names ``beenet.models.pooling.make_pool`` still reads, with a deprecation
#: warning (kept here, not in the pooling module, so a config is read without loading torch).
RENAMED_KINDS: dict[str, str] = {"avg": "mean"}
#: ``avg``, the old word for the masked mean, is read as ``mean`` at every pooling field.
_OLD_MEAN = RENAMED_KINDS


@dataclass
class ModelConfig:
    """Architecture of a :class:`~beenet.models.beenet.BEENet` (see ``docs/method.md``)."""

    #: Shared trunk H^base. ``googlenet``: GoogLeNet (torchvision's layout) up to and including
    #: ``inception4d`` (528 channels at stride 16, 14x14 at 224 px).
    backbone: Literal["googlenet"] = "googlenet"
    #: Start the trunk from torchvision's ImageNet weights (downloaded once into the torch hub
    #: cache). ``false`` = random init (offline tests, benchmarks).
    pretrained: bool = True
    #: Side of the square whole frames the model is trained on, and reads at prediction. The one
    #: owner of the frame size: a run's dataset makes frames of this size (``data.image_size`` of a
    #: run config follows it; an older config's ``data.image_size`` is read as this key).
    image_size: int = 224
    #: Run the trunk in the channels-last memory layout (about 2x faster on CPU, faster on GPU).
    channels_last: bool = True

    #: Width of each stream head: ``stream_layers`` x (3x3 conv, BN, ReLU) with this many channels.
    stream_channels: int = 384
    #: Number of (3x3 conv, BN, ReLU) blocks in each stream head.
    stream_layers: int = 3
    #: Dropout before each stream's linear layer.
    dropout: float = 0.2
    #: Width of the linear projector of the context streams (kappa in the paper).
    kappa: int = 56
    #: Where the kappa projector sits in a context stream (``docs/method.md`` section 2.3):
    #: ``side`` (the authors' code: classifier D -> K, softmax, projector K -> kappa as a side
    #: output) or ``bottleneck`` (older reading: D -> kappa -> K, a rank-kappa classifier).
    kappa_projector: Literal["side", "bottleneck"] = "side"

    #: H^place: a stream that predicts the 365 Places365 scenes (trained by distillation).
    place_stream: bool = True
    #: H^object: a stream that predicts the 80 COCO object classes (trained by distillation).
    object_stream: bool = True
    #: Late fusion of context and emotion: ``none`` (emotion stream alone), ``concat`` (context
    #: probabilities concatenated with the emotion features, then a linear layer), ``camode``
    #: (the CA-MoDE gate, per sample: our reading of how the contexts' confidence enters),
    #: ``camode-scaffold`` (the authors' scaffold's gate exactly: one fused prior per category, the
    #: same for every sample, fitted on the scene and object confidences), ``beenet`` (per-sample
    #: total-probability prior).
    fusion: Literal["none", "concat", "camode", "beenet", "camode-scaffold"] = "beenet"
    #: Where the context probabilities c_j of the fusion come from: ``streams`` (softmax of the
    #: model's own place / object streams: one pass at inference) or ``input``
    #: (``batch["context"]``: frozen experts or the synthetic sidecar; no context streams are built).
    fusion_context: Literal["streams", "input"] = "streams"
    #: How prior and emotion score combine (camode / beenet; ``docs/method.md`` section 2.6.3):
    #: ``linear`` = the paper's Eq. 16, y~ = prior * z / lambda on the raw linear output z (the
    #: authors' form, for MSE; the plain fusions then output z too); ``scale`` = prior * sigmoid(z) /
    #: lambda (older reading); ``odds`` = sigmoid(z + log(prior / lambda)), the same update on the
    #: odds, a probability (pair it with the BCE loss).
    fusion_form: Literal["linear", "scale", "odds"] = "linear"
    #: Pooling over the contexts j in the ``beenet`` fusion (site c): ``max`` (as the gate),
    #: ``mean``, ``gem`` or ``attention``.
    context_pool: Literal["max", "mean", "gem", "attention"] = "max"
    #: Pooling of the VAD from context over the contexts (``beenet`` fusion, section 2.7):
    #: ``probability`` (weighted by the context probabilities c_j), ``mean``, or ``context_pool``
    #: (older reading: the same POOL as the categories; with max it biases VAD upward).
    vad_context_pool: Literal["probability", "mean", "context_pool"] = "probability"
    #: Contexts of the ``camode`` gate (section 2.6.1): ``parts`` (the authors' scaffold: scene and
    #: object, each with confidence c = its max softmax probability) or ``classes`` (older reading:
    #: global priors, max over the J per-class contexts).
    camode_contexts: Literal["parts", "classes"] = "parts"
    #: Pseudo-count m shrinking the conditional priors toward the marginal (section 2.5):
    #: P+ = (N P(B, A) + m P(B)) / (N P(A) + m). 0 = plain Bayes ratios (older reading).
    prior_pseudocount: float = 1.0
    #: Make the fitted priors trainable parameters, initialised from the fit: P+ and P- (camode,
    #: beenet) and the VAD conditional means (beenet). No effect with fusion none / concat.
    trainable_priors: bool = False
    #: lambda: y~ = prior * y / lambda.
    prior_lambda: float = 0.2
    #: alpha of the CA-MoDE gate Q = sigmoid(alpha (p+ - tau)).
    gate_alpha: float = 10.0
    #: tau of the CA-MoDE gate.
    gate_tau: float = 0.5

    #: Pooling of per-frame stream features over the T frames of a clip (site a): any pooling kind.
    temporal_pool: PoolKind = "mean"
    #: Body crop stream on ``batch["crops"]``: ``none``; ``shared`` (through the shared trunk);
    #: ``separate`` (through its own copy of the trunk).
    body_crop: Literal["none", "shared", "separate"] = "none"
    #: Skeleton stream: an ST-GCN over the 18 OpenPose joints of ``batch["skeleton"]``.
    skeleton: bool = False
    #: Channels of the ST-GCN blocks.
    skeleton_channels: tuple[int, ...] = (32, 64, 128)
    #: Pooling over joints and time inside the ST-GCN (site b): any pooling kind.
    skeleton_pool: PoolKind = "mean"
    #: Pooling over the emotion-bearing streams (whole frame, crop, skeleton; site c): ``mean``,
    #: ``max``, ``gem`` or ``attention`` (the crop stream is the query when there is one).
    stream_pool: Literal["mean", "max", "gem", "attention"] = "mean"
    #: Init of the VAD outputs of the fusion's linear layer: ``zero`` (weights and bias 0, so before
    #: any step VAD from the emotion stream is the fitted training mean) or ``default`` (PyTorch's
    #: uniform init; older reading).
    vad_head_init: Literal["zero", "default"] = "zero"

    #: Old spellings still read (with a deprecation warning): YAML files, ``--set`` values and
    #: checkpoints saved before ``avg`` became ``mean``.
    RENAMED_CHOICES: ClassVar[dict[str, dict[str, str]]] = {
        "temporal_pool": _OLD_MEAN, "skeleton_pool": _OLD_MEAN, "context_pool": _OLD_MEAN, "stream_pool": _OLD_MEAN,
    }

    #: The value a field takes when a stored config (an older checkpoint or config.yaml) lacks it:
    #: the behaviour of the code before the field existed.
    LEGACY_VALUES: ClassVar[dict[str, Any]] = {
        "kappa_projector": "bottleneck",
        "vad_context_pool": "context_pool",
        "camode_contexts": "classes",
        "prior_pseudocount": 0.0,
        "vad_head_init": "default",
    }

    def __post_init__(self) -> None:
        if isinstance(self.skeleton_channels, list):
            self.skeleton_channels = tuple(self.skeleton_channels)
        upgrade_choices(self, "model")
        self.validate()

    # ------------------------------------------------------------------ checks

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the field whose value is not valid."""
        check_choices(self, "model")
        check_positive_ints(self, "model", "image_size", "stream_channels", "stream_layers", "kappa")
        if self.image_size < 32:
            raise ConfigError(f"model.image_size must be >= 32 (the trunk has stride 16), got {self.image_size}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout!r}")
        check_at_least(self, "model", 0, "prior_lambda", strict=True)
        check_at_least(self, "model", 0, "prior_pseudocount")
        if not self.skeleton_channels or any(
            isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in self.skeleton_channels
        ):
            raise ConfigError(
                f"model.skeleton_channels must be a non-empty list of positive integers, got {self.skeleton_channels!r}"
            )
        if fusion_class(self.fusion).uses_context and not (self.place_stream or self.object_stream):
            raise ConfigError(
                f"model.fusion={self.fusion!r} fuses context, but model.place_stream and model.object_stream "
                "are both false; enable one of them (they also pick the context parts of fusion_context=input) "
                "or set model.fusion=none"
            )

    # ------------------------------------------------------------------ derived

    @property
    def context_parts(self) -> tuple[str, ...]:
        """The context parts the model uses, in the order of the 445-d vector."""
        return tuple(p for p, on in (("places", self.place_stream), ("objects", self.object_stream)) if on)

    @property
    def emotion_streams(self) -> tuple[str, ...]:
        """Names of the emotion-bearing streams, in the order they are pooled."""
        names = ["emotion"]
        if self.body_crop != "none":
            names.append("crop")
        if self.skeleton:
            names.append("skeleton")
        return tuple(names)

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples become lists), safe for YAML and ``torch.save``."""
        d = dataclasses.asdict(self)
        d["skeleton_channels"] = list(self.skeleton_channels)
        return d

    @classmethod
    def from_dict(cls, d: typing.Mapping[str, Any], where: str | None = None) -> ModelConfig:
        """Build from a dict such as ``to_dict()`` wrote (a checkpoint's, a run's config.yaml).

        A missing key means the dict predates that field: it takes its :data:`LEGACY_VALUES` value
        (the older behaviour) when it has one, its default otherwise. Unknown keys raise
        :class:`ConfigError` naming the key (a checkpoint of another version, or a typo in a config
        file) rather than being silently dropped (:func:`beenet.config_types.from_dict`).
        """
        return config_types.from_dict(cls, d, "model", where)


# ------------------------------------------------------------------------------------ fusions


_F = TypeVar("_F", bound=type)

#: ``ModelConfig.fusion`` name -> its class: the declaration (:class:`FusionKind`) below, replaced
#: by the module class when ``beenet.models.fusion`` is imported (:func:`register_fusion`); its keys
#: must be the names of the ``fusion`` hint, in its order (a test checks).
FUSIONS: dict[str, Any] = {}


def register_fusion(name: str) -> Callable[[_F], _F]:
    """Class decorator: the fusion class of the name ``name`` that ``ModelConfig.fusion`` declares."""
    if name not in choices(ModelConfig, "fusion"):
        raise ConfigError(f"fusion {name!r} is not declared in ModelConfig.fusion; add it to that hint first")

    def register(cls: _F) -> _F:
        FUSIONS[name] = cls
        return cls

    return register


class FusionKind:
    """What a fusion reads, declared here per name without torch: :data:`FUSIONS` holds a subclass
    for each name of the ``fusion`` hint. The module classes of ``beenet.models.fusion`` take their
    name's class as a base (declaring nothing again) and take its place in :data:`FUSIONS` when that
    module loads, so the model and the ablation ask the class, never the name, and a config is
    checked (and an ONNX export read) without loading torch."""

    #: Reads the per-sample context probabilities c_j (``context`` of ``forward``).
    reads_context: ClassVar[bool] = False
    #: Reads the fitted category priors P+ / P- (``model.trainable_priors`` makes them parameters).
    reads_priors: ClassVar[bool] = False
    #: Reads the fitted VAD conditional means E[v | A_j], E[v | not A_j] (trainable alike).
    reads_vad_priors: ClassVar[bool] = False
    #: Pools over the contexts j with ``model.context_pool`` (site c of the pooling study).
    pools_contexts: ClassVar[bool] = False
    #: Needs context labels: it reads the per-sample c_j or priors fitted on context labels
    #: (derived from ``reads_context`` and ``reads_priors`` for every subclass).
    uses_context: ClassVar[bool] = False
    #: Its priors are fitted over one context per part (scene, object) with the part's confidence
    #: c_k = max_j c_j over the part, not over the J per-class contexts (the model then holds
    #: P+ / P- of shape [26, parts]).
    priors_per_part: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.uses_context = cls.reads_context or cls.reads_priors


@register_fusion("none")
class NoFusionKind(FusionKind):
    """``none``: the emotion stream alone."""


@register_fusion("concat")
class ConcatKind(FusionKind):
    """``concat``: the context probabilities concatenated with the emotion features."""

    reads_context = True


@register_fusion("camode")
class CAMoDEKind(FusionKind):
    """``camode``: the CA-MoDE gate over fitted priors, per sample (``contexts="parts"``)."""

    reads_context = True
    reads_priors = True


@register_fusion("beenet")
class BEENetKind(FusionKind):
    """``beenet``: per-sample probabilistic pooling over contexts, VAD priors included."""

    reads_context = True
    reads_priors = True
    reads_vad_priors = True
    pools_contexts = True


@register_fusion("camode-scaffold")
class CAMoDEScaffoldKind(FusionKind):
    """``camode-scaffold``: the authors' scaffold's gate, one fused prior per category and part."""

    reads_priors = True
    priors_per_part = True


def fusion_class(kind: str) -> type[FusionKind]:
    """The class of fusion ``kind`` (ask it what it reads), or ConfigError listing the names."""
    try:
        return FUSIONS[kind]
    except (KeyError, TypeError):
        raise not_one_of("model.fusion", kind, tuple(FUSIONS)) from None


def fusion_reads_priors(kind: str) -> bool:
    """True when fusion ``kind`` reads the fitted priors (so ``model.trainable_priors`` matters)."""
    return fusion_class(kind).reads_priors


def fusion_uses_context(kind: str) -> bool:
    """True when fusion ``kind`` needs context: the per-sample c_j or priors fitted on context labels."""
    return fusion_class(kind).uses_context


def fusion_pools_contexts(kind: str) -> bool:
    """True when fusion ``kind`` pools over contexts with ``model.context_pool`` (pooling site c)."""
    return fusion_class(kind).pools_contexts
