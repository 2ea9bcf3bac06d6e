"""Object context: a frozen torchvision COCO detector as a context expert.

Per frame, the confidences of the detections at or above ``score_threshold`` are summed per
object class; the clip's 80-d object vector is the mean over its frames, normalised to sum 1
(all zeros when nothing was detected). torchvision detectors speak COCO's 91 category ids (with
gaps, 0 = background); :func:`coco_label_map` maps them onto the 80 contiguous classes of
:data:`beenet.labels.COCO_CLASSES`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from beenet.choices import choices
from beenet.context.base import FrameExpertSource, file_digest
from beenet.context.config import ContextConfig
from beenet.device import resolve_device
from beenet.errors import ConfigError
from beenet.labels import COCO_CLASSES, NUM_COCO
from beenet.weights import WeightsFile, WeightsRecord, build_torchvision_detector, fetch, load_published, locate

log = logging.getLogger(__name__)

#: torchvision detectors beenet can use (owned by ``ContextConfig.coco_model``).
DETECTORS: tuple[str, ...] = choices(ContextConfig, "coco_model")


def score_keyword(model: str) -> str:
    """The keyword of a torchvision detector's internal score cut (Faster R-CNN names it apart)."""
    return "box_score_thresh" if model.startswith("fasterrcnn") else "score_thresh"


#: Size of torchvision's COCO label space: ids 0..90, 0 = background.
NUM_COCO_IDS = 91
#: COCO category ids (1..90) that no annotation uses; torchvision lists them as 'N/A'.
COCO_UNUSED_IDS: frozenset[int] = frozenset({12, 26, 29, 30, 45, 66, 68, 69, 71, 83})


def _fixed_label_map() -> np.ndarray:
    out = np.full(NUM_COCO_IDS, -1, dtype=np.int64)
    used = [i for i in range(1, NUM_COCO_IDS) if i not in COCO_UNUSED_IDS]
    out[used] = np.arange(len(used))
    return out


def coco_label_map(categories: Sequence[str] | None = None) -> np.ndarray:
    """int64 ``[91]``: torchvision COCO id -> index into ``COCO_CLASSES`` (-1 for background, 'N/A').

    Built from a detector's ``weights.meta["categories"]`` names when given and consistent (every
    one of the 80 classes exactly once), else from COCO's fixed table of unused ids.
    """
    if categories is not None:
        index = {name: i for i, name in enumerate(COCO_CLASSES)}
        out = np.full(len(categories), -1, dtype=np.int64)
        for cid, name in enumerate(categories):
            out[cid] = index.get(name, -1)
        mapped = out[out >= 0]
        if len(categories) == NUM_COCO_IDS and sorted(mapped.tolist()) == list(range(NUM_COCO)):
            return out
        log.warning("detector category list (%d names) does not match the 80 COCO classes one to one; "
                    "using COCO's fixed id table", len(categories))
    return _fixed_label_map()


def objects_from_detections(
    labels: np.ndarray, scores: np.ndarray, label_map: np.ndarray, score_threshold: float
) -> np.ndarray:
    """Summed confidence per COCO class (float64 ``[80]``, not normalised) of one frame's detections."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    ok = (scores >= score_threshold) & (labels >= 0) & (labels < len(label_map))
    cls = label_map[labels[ok]]
    keep = cls >= 0
    return np.bincount(cls[keep], weights=scores[ok][keep], minlength=NUM_COCO).astype(np.float64)


def _weights_enum(model: str) -> Any | None:
    from torchvision.models import get_model_weights  # lazy: torchvision's model zoo loads only when an expert is built

    try:
        return get_model_weights(model)
    except (ValueError, KeyError):  # pragma: no cover - every DETECTORS entry has weights
        return None


class CocoDetectorExpert(FrameExpertSource):
    """Frozen torchvision COCO detector: frames -> per-class summed detection confidence.

    ``weights="DEFAULT"`` (or the name of one of the model's torchvision weights, e.g. ``"COCO_V1"``)
    downloads torchvision's COCO weights once into ``cache_dir`` (default torch hub's checkpoint
    dir) and loads them with ``weights_only=True`` into the network torchvision builds for them
    (frozen batch norms included); ``weights=None`` is a random initialisation from ``seed``
    without any download (backbone included), for tests and offline smoke runs.
    ``min_size`` / ``max_size`` set the detector's input resize (None = the model's default);
    small values make it fast and less accurate. The fingerprint holds the SHA-256 of the weights
    file; the detector itself is built on first use (see :attr:`net`), so fully cached clips need
    the file but never run the detector.
    """

    name = "coco"
    part = "objects"

    def __init__(
        self,
        model: str = "fasterrcnn_mobilenet_v3_large_fpn",
        weights: str | None = "DEFAULT",
        score_threshold: float = 0.3,
        device: str | torch.device = "cpu",
        frames_per_clip: int = 3,
        min_size: int | None = None,
        max_size: int | None = None,
        cache_dir: str | Path | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(frames_per_clip)
        if model not in DETECTORS:
            raise ConfigError(f"unknown COCO detector {model!r}; choose one of {', '.join(DETECTORS)}")
        if not 0.0 <= score_threshold <= 1.0:
            raise ConfigError(f"score_threshold must be in [0, 1], got {score_threshold}")
        self.model_name = model
        self.score_threshold = float(score_threshold)
        self.min_size = None if min_size is None else int(min_size)
        self.max_size = None if max_size is None else int(max_size)
        self.device = resolve_device(device)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.seed = int(seed)

        enum = _weights_enum(model)
        chosen = None
        if weights is not None:
            if enum is None:  # pragma: no cover
                raise ConfigError(f"torchvision publishes no weights for {model}; use weights=None")
            try:
                chosen = enum.DEFAULT if weights == "DEFAULT" else enum[str(weights)]
            except KeyError as exc:
                raise ConfigError(f"unknown weights {weights!r} for {model}; choose 'DEFAULT' or one of "
                                  f"{', '.join(w.name for w in enum)}") from exc
        meta_weights = chosen if chosen is not None else (enum.DEFAULT if enum is not None else None)
        categories = meta_weights.meta.get("categories") if meta_weights is not None else None
        self.label_map = coco_label_map(categories)

        self._chosen = chosen
        self._num_classes = len(categories) if categories is not None else NUM_COCO_IDS
        self.weights = None if weights is None else str(weights)
        self._weights_id: str | None = None
        #: The weights file the detector was loaded from (set on first use of :attr:`net`).
        self.weights_record: WeightsRecord | None = None
        self._net: nn.Module | None = None

    @property
    def weights_id(self) -> str:
        """What the fingerprint says about the weights: the seed of a random init, else torchvision's
        weights name, file name and the file's SHA-256 (the file is fetched first when not cached)."""
        if self._weights_id is None:
            if self._chosen is None:
                self._weights_id = f"random-init-seed{self.seed}"
            else:
                path = fetch(self._published_file(), check_hash=True, offline_hint=self._offline_hint())
                self._weights_id = f"{self._chosen}:{path.name}:sha256={file_digest(path)}"
        return self._weights_id

    def _published_file(self) -> WeightsFile:
        return locate(self._chosen.url, f"{self.model_name} COCO weights", self.cache_dir)

    def _offline_hint(self) -> str:
        return "or pass cache_dir=<folder holding it>, or use weights=None (random init) offline"

    @property
    def net(self) -> nn.Module:
        """The frozen detector, built (and its weights fetched) on first use: a run whose clips are
        all cached never loads it."""
        if self._net is None:
            kwargs: dict[str, Any] = {score_keyword(self.model_name): min(self.score_threshold, 0.05)}
            if self.min_size is not None:
                kwargs["min_size"] = self.min_size
            if self.max_size is not None:
                kwargs["max_size"] = self.max_size
            # Built untrained (torchvision's own loader would unpickle without weights_only), in the
            # form torchvision gives it for these weights; the published state dict is loaded here.
            net = build_torchvision_detector(self.model_name, self._chosen, seed=self.seed,
                                             num_classes=self._num_classes, **kwargs)
            if self._chosen is not None:
                self.weights_record = load_published(net, self._chosen.url, f"{self.model_name} COCO weights",
                                                     cache_dir=self.cache_dir, offline_hint=self._offline_hint())
            net.eval().requires_grad_(False)
            self._net = net.to(self.device)
        return self._net

    def describe(self) -> dict[str, Any]:
        return {"model": self.model_name, "weights": self.weights_id, "score_threshold": self.score_threshold,
                "min_size": self.min_size, "max_size": self.max_size, "frames_per_clip": self.frames_per_clip}

    @torch.inference_mode()
    def detect(self, frames: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Raw detections per frame: ``{"boxes": [N, 4], "labels": [N] (91-id), "scores": [N]}``."""
        x = torch.as_tensor(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
        outputs = self.net([img.to(self.device) for img in x])
        return [{k: v.detach().cpu().numpy() for k, v in out.items()} for out in outputs]

    def score_frames(self, frames: np.ndarray) -> np.ndarray:
        dets = self.detect(frames)
        return np.stack([objects_from_detections(d["labels"], d["scores"], self.label_map, self.score_threshold)
                         for d in dets])
