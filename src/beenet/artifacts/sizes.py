"""A checkpoint's sizes checked before its model is built: a config whose ``stream_channels``,
``kappa``, ``stream_layers`` or ``skeleton_channels`` disagree with the shapes its weights hold, or
whose frame size or frame counts are beyond any that beenet reads, would otherwise make
``build_model`` (or the first batch) ask for tens or hundreds of GB. Every check here allocates
nothing: the shapes are read off the weights, and the model is built on the ``meta`` device (no
memory) to compare its state dict with the weights before the real build.

Used by every loader of a checkpoint's model (:func:`beenet.artifacts.loader.load_model`, predict's
engines) and by ``beenet export pretrained`` (which writes the weights without building a model).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import torch

from beenet.artifacts.checkpoint import check_state, model_config_from_checkpoint
# Kept importable from here (their home, the model description, reads an ONNX export without torch):
from beenet.artifacts.spec import MAX_FRAMES, MAX_IMAGE_SIZE, check_sizes  # noqa: F401
from beenet.errors import CheckpointError
from beenet.models import build_model

#: ``(model field, weight key, dim)``: the weight whose ``shape[dim]`` is the field's value.
_SIZE_KEYS = (
    ("stream_channels", "emotion_stream.convs.0.weight", 0),
    ("kappa", "place_stream.head.projector.weight", 0),
    ("kappa", "object_stream.head.projector.weight", 0),
)
_STREAM_CONV = re.compile(r"^emotion_stream\.convs\.(\d+)\.weight$")
_SKELETON_BLOCK = re.compile(r"^skeleton_stream\.blocks\.(\d+)\.tcn\.2\.weight$")


def _refuse(path: Any, field: str, value: Any, held: Any, where: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: model.{field} is {value!r} but the weights hold {held!r} ({where}); the checkpoint's "
        "config does not describe its weights: the file is damaged or was edited"
    )


def check_config_fits_weights(model: Any, state: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """The model config's sizes read off the weights' shapes (no model built), naming the field
    whose value the weights contradict: ``stream_channels``, ``kappa``, ``stream_layers``,
    ``skeleton_channels`` (their number and widths)."""
    shapes = {str(k): tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    for field, key, dim in _SIZE_KEYS:
        if key in shapes and len(shapes[key]) > dim and shapes[key][dim] != getattr(model, field):
            raise _refuse(path, field, getattr(model, field), shapes[key][dim], f"{key} is {list(shapes[key])}")
    convs = [k for k in shapes if _STREAM_CONV.match(k) and len(shapes[k]) == 4]
    if convs and len(convs) != model.stream_layers:
        raise _refuse(path, "stream_layers", model.stream_layers, len(convs), "emotion_stream conv layers")
    if model.skeleton:
        blocks = sorted((int(m[1]), shapes[k][0]) for k in shapes if (m := _SKELETON_BLOCK.match(k)))
        widths = [w for _, w in blocks]
        if widths and widths != list(model.skeleton_channels):
            raise _refuse(path, "skeleton_channels", list(model.skeleton_channels), widths, "skeleton_stream blocks")


def checked_model_config(ckpt: Mapping[str, Any], path: str | os.PathLike[str],
                         weights: str | os.PathLike[str] | None = None) -> Any:
    """The ModelConfig of a loaded checkpoint (``pretrained`` off: the weights come from the file),
    after every check that needs no real model: sizes within reach (:func:`check_sizes`), the
    config's sizes against the weights' shapes (:func:`check_config_fits_weights`), the whole state
    dict against a model built on the ``meta`` device, and no NaN / inf in the weights. ``weights``
    is the file errors about the tensors name (a folder's ``model.safetensors``; default ``path``)."""
    cfg = model_config_from_checkpoint(dict(ckpt), path)
    cfg.pretrained = False
    config = ckpt.get("config") if isinstance(ckpt.get("config"), Mapping) else {}
    check_sizes(cfg, config.get("data"), path)
    state = ckpt.get("model")
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: the checkpoint's 'model' entry is a {type(state).__name__}, not a "
                              "state dict; the file is damaged")
    where = weights or path
    check_config_fits_weights(cfg, state, where)
    with torch.device("meta"):  # the model's shapes, no memory
        own = build_model(cfg).state_dict()
    check_state(dict(state), own, where)
    return cfg
