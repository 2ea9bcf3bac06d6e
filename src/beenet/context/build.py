"""The one way to get a context source, and the context vectors of a set of clips.

:func:`make_context_source` turns a :class:`~beenet.context.config.ContextConfig` into its
source; training, evaluation, ``beenet predict`` (and anything that prepares the cache) call it,
so one config always means the same experts with the same settings and the same fingerprint.

Sources: ``sidecar`` (the ``synthetic_context.json`` of ``beenet synth``, exact and free, needs
the dataset root), ``places365`` (scene CNN; objects half zero), ``coco`` (object detector;
places half zero) and ``experts`` (both, joined into one 445 vector). :func:`load_context` caches
experts on disk per expert, so ``experts`` reuses what an earlier ``places365`` or ``coco`` run
computed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from beenet.choices import choices, not_one_of
from beenet.context.base import CombinedContext, ContextSource, join_context, split_context
from beenet.context.cache import ContextCache
from beenet.context.config import ContextConfig
from beenet.context.sidecar import SidecarContext
from beenet.errors import BeenetError, ConfigError
from beenet.labels import CONTEXT_DIM
from beenet.paths import cache_dir

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from beenet.context.coco import CocoDetectorExpert
    from beenet.context.places365 import Places365Expert


def default_cache_dir() -> Path:
    """``context/`` under beenet's cache root (:func:`beenet.paths.cache_dir`)."""
    return cache_dir("context")


def _expert_device(cfg: ContextConfig, device: "str | torch.device") -> str:
    """``context.device``, or the run's ``device`` when it says ``auto``."""
    return str(device) if cfg.device == "auto" else cfg.device


def _places(cfg: ContextConfig, device: str) -> "Places365Expert":
    from beenet.context.places365 import Places365Expert  # lazy: imports torch and torchvision

    return Places365Expert(arch=cfg.places_arch, weights=cfg.places_weights_arg, cache_dir=cfg.weights_dir or None,
                           device=device, frames_per_clip=cfg.frames_per_clip, image_size=cfg.places_image_size)


def _coco(cfg: ContextConfig, device: str) -> "CocoDetectorExpert":
    from beenet.context.coco import CocoDetectorExpert  # lazy: imports torch and torchvision

    return CocoDetectorExpert(model=cfg.coco_model, weights=cfg.coco_weights_arg,
                              score_threshold=cfg.coco_score_threshold, device=device,
                              frames_per_clip=cfg.frames_per_clip, min_size=cfg.coco_min_size,
                              max_size=cfg.coco_max_size, cache_dir=cfg.weights_dir or None)


def make_context_source(
    cfg: ContextConfig, device: "str | torch.device" = "auto", root: str | Path | None = None
) -> ContextSource:
    """The context source ``cfg`` describes.

    ``device`` is where the experts run when ``cfg.device`` is ``auto`` (the run's device);
    ``root`` is the dataset directory, needed by ``sidecar`` only. Expert weights are fetched on
    first use, not here, so building a source whose clips are all cached costs nothing.
    """
    valid = choices(ContextConfig, "source")
    if cfg.source not in valid:
        raise not_one_of("context.source", cfg.source, valid)
    if cfg.source == "none":
        raise ConfigError("context.source is 'none': there is no context source to build; set it to one of "
                          f"{', '.join(repr(s) for s in valid if s != 'none')}")
    if cfg.source == "sidecar":
        if root is None:
            raise ConfigError("context source 'sidecar' needs the dataset root (the folder holding "
                              "synthetic_context.json)")
        return SidecarContext(root)
    dev = _expert_device(cfg, device)
    if cfg.source == "places365":
        return _places(cfg, dev)
    if cfg.source == "coco":
        return _coco(cfg, dev)
    return CombinedContext(_places(cfg, dev), _coco(cfg, dev))


#: What ``Predictor(context=...)`` / ``beenet predict --context`` accept for a model that reads
#: context as input: ``auto`` = the checkpoint's own context config, ``experts`` = Places365 + COCO
#: (with the checkpoint's expert settings) whatever source it was trained with.
PREDICT_CONTEXTS: tuple[str, ...] = ("auto", "experts")


def prediction_context(trained: ContextConfig, choice: str, where: str) -> ContextConfig:
    """The context config to predict on new videos with, from the one a model was trained with
    (``where`` names the checkpoint in errors). The experts run where the model runs, so the
    result's ``device`` is ``auto``: ``context.device`` named the training machine's device."""
    if choice not in PREDICT_CONTEXTS:
        raise ConfigError(f"context {choice!r}: choose one of {', '.join(PREDICT_CONTEXTS)}")
    source = "experts" if choice == "experts" else trained.source
    if source in ("none", "sidecar"):
        raise ConfigError(
            f"{where}: the model fuses context given as input (model.fusion_context=input) and "
            f"was trained with context source {source!r}, which does not exist for a new video. "
            "Pass --context experts (Places365 + COCO experts) to use real expert context instead, "
            "or predict with a model whose context comes from its own streams (fusion_context=streams)."
        )
    return dataclasses.replace(trained, source=source, device="auto")


def load_context(
    clips: Mapping[str, str | Path],
    cfg: ContextConfig,
    device: "str | torch.device" = "auto",
    *,
    root: str | Path | None = None,
    save_every: int = 50,
) -> dict[str, np.ndarray]:
    """``{video: float32[445]}`` for every clip of ``clips`` from the source ``cfg`` describes.

    ``clips`` is ``{clip key (the BoLD-relative video name): path to its mp4}``
    (``BoLD.video_paths``); ``root`` is the dataset folder holding ``synthetic_context.json``,
    needed by the ``sidecar`` source only. The sidecar is read directly; experts go through
    :class:`ContextCache` in ``cfg.cache_dir`` (default :func:`default_cache_dir`), one cache
    file per expert.
    """
    paths = {str(v): p for v, p in clips.items()}
    source = make_context_source(cfg, device, root)
    if cfg.source == "sidecar":
        out = {v: np.asarray(source.label_clip(v, p), dtype=np.float32) for v, p in paths.items()}
        for v, vec in out.items():
            if vec.shape != (CONTEXT_DIM,):
                raise BeenetError(f"sidecar context of clip {v} has shape {vec.shape}, expected ({CONTEXT_DIM},)")
        return out
    cache = ContextCache(cfg.cache_dir or default_cache_dir(), save_every=save_every)
    if isinstance(source, CombinedContext):
        places = cache.get_or_compute(source.places, paths)
        objects = cache.get_or_compute(source.objects, paths)
        return {v: join_context(split_context(places[v])[0], split_context(objects[v])[1]) for v in paths}
    return cache.get_or_compute(source, paths)
