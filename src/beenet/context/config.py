"""``ContextConfig``: where a run's 445-d context labels come from, and every expert setting.

One config builds one context source (:func:`beenet.context.build.make_context_source`) for
training, evaluation and ``beenet predict`` alike, so the experts a model was trained with are
the experts it predicts with. Checkpoints store it under ``config["context"]``; fields added
since keep their defaults when an older checkpoint is read, and the defaults are what older
beenet versions used.

The choice lists (sources, Places365 architectures, COCO detectors) are the ``Literal`` hints
below; the experts read them from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from beenet import config_types
from beenet.choices import check_at_least, check_choices, check_positive_ints
from beenet.errors import ConfigError


@dataclass
class ContextConfig:
    """Where the 445-d context labels (365 places + 80 COCO objects) of each clip come from."""

    #: ``none``; ``sidecar`` (``synthetic_context.json`` of ``beenet synth``); ``places365``;
    #: ``coco``; ``experts`` (places365 + coco). Experts run once per clip and are cached on disk.
    source: Literal["none", "sidecar", "places365", "coco", "experts"] = "experts"
    #: Where the fusion's context-emotion priors and the VAD mean/std come from: ``fit`` (fitted
    #: on the training split's context labels; with ``beenet train --init`` refitted after the
    #: init's weights are loaded) or ``init`` (kept as the ``--init`` weights hold them: fine-tuning
    #: on data without context labels, ``source: none``, where the context streams are then not
    #: distilled and learn from the emotion loss alone; the ``finetune`` preset).
    priors: Literal["fit", "init"] = "fit"
    #: Cache of expert labels; empty = ``$BEENET_CACHE`` or ``~/.cache/beenet/context``.
    cache_dir: str = ""
    #: Frames per clip an expert labels (averaged) for the clip's context vector (priors, fusion
    #: input, and the distillation targets when ``targets=clip``).
    frames_per_clip: int = 3
    #: Distillation targets of the place / object streams (``docs/method.md`` section 4):
    #: ``clip`` = the clip's context vector (the mean over ``frames_per_clip`` frames; the authors'
    #: reading) for whatever frame the stream sees; ``frame`` = the experts' labels of the very
    #: frame(s) the stream sees (a still: that frame; T frames: their mean), computed by
    #: ``beenet prepare`` for every frame a sampler can pick (training refuses to start without it).
    targets: Literal["clip", "frame"] = "clip"
    #: With ``targets=frame``: label every k-th frame a sampler can pick and give the others the
    #: label of the nearest labelled frame (1 = every frame; larger is k times cheaper to prepare).
    label_every: int = 1
    #: Load the experts' published weights (false = random init, for offline tests and benchmarks).
    pretrained: bool = True
    #: Device the experts run on (``auto`` = the run's device).
    device: str = "auto"
    #: Folder of downloaded expert weights; empty = torch hub's checkpoint folder.
    weights_dir: str = ""
    #: Places365 scene CNN: one of the architectures the Places365 project publishes weights for.
    places_arch: Literal["resnet18", "resnet50", "densenet161"] = "resnet18"
    #: Places365 weights: empty = the project's published weights of ``places_arch``; or the path
    #: of a checkpoint file in that format.
    places_weights: str = ""
    #: Side of the square frames the scene CNN sees.
    places_image_size: int = 224
    #: COCO object detector (torchvision).
    coco_model: Literal[
        "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn",
        "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "retinanet_resnet50_fpn",
        "retinanet_resnet50_fpn_v2", "fcos_resnet50_fpn",
    ] = "fasterrcnn_mobilenet_v3_large_fpn"
    #: Detector weights: empty = torchvision's default COCO weights; or one of the model's
    #: torchvision weight names (e.g. ``COCO_V1``).
    coco_weights: str = ""
    #: Detections below this confidence are not counted.
    coco_score_threshold: float = 0.3
    #: Detector input resize (none = the model's default); small values are faster, less accurate.
    coco_min_size: int | None = None
    coco_max_size: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the field whose value is not valid."""
        check_choices(self, "context")
        check_at_least(self, "context", 1, "frames_per_clip", "places_image_size")
        check_positive_ints(self, "context", "label_every")
        for name in ("coco_min_size", "coco_max_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"context.{name} must be none or >= 1, got {value!r}")
        if not 0.0 <= self.coco_score_threshold <= 1.0:
            raise ConfigError(f"context.coco_score_threshold must be in [0, 1], got {self.coco_score_threshold!r}")
        if not self.pretrained:
            for name in ("places_weights", "coco_weights"):
                if getattr(self, name):
                    raise ConfigError(f"context.pretrained=false conflicts with context.{name}="
                                      f"{getattr(self, name)!r}; give one of them")

    @property
    def places_weights_arg(self) -> str | None:
        """``weights`` of :class:`~beenet.context.places365.Places365Expert` (None = random init)."""
        if not self.pretrained:
            return None
        return self.places_weights or "places365"

    @property
    def coco_weights_arg(self) -> str | None:
        """``weights`` of :class:`~beenet.context.coco.CocoDetectorExpert` (None = random init)."""
        if not self.pretrained:
            return None
        return self.coco_weights or "DEFAULT"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "context config") -> ContextConfig:
        """Build from a dict such as a checkpoint's ``config["context"]``; missing keys keep their
        defaults (older checkpoints), unknown keys raise :class:`ConfigError` naming ``where``
        (:func:`beenet.config_types.from_dict`)."""
        return config_types.from_dict(cls, d, "context", where)
