"""What a model is, read from where it was saved: :class:`ModelSpec` (its config, the inputs it
reads, a short name, the checkpoint hash) from a checkpoint dict or a beenet ONNX file's metadata.
Export writes these descriptions (:mod:`beenet.inference.onnx`) and predict reads them."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beenet.data.sampling import DataConfig
from beenet.errors import CheckpointError, ConfigError
from beenet.models import ModelConfig

#: The largest frame or crop side a checkpoint may name (BoLD's clips are at most 1280 px wide;
#: the paper's models read 224 px).
MAX_IMAGE_SIZE = 4096
#: The most frames (or skeleton frames) per sample a checkpoint may name.
MAX_FRAMES = 4096


@dataclass
class ModelSpec:
    """What predict needs to know about a model, from a checkpoint or an ONNX file's metadata."""

    model: Any  # beenet.models.ModelConfig
    data: dict[str, Any]
    context: dict[str, Any]
    name: str
    checkpoint_sha256: str
    beenet_version: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def input_names(self) -> list[str]:
        return model_input_names(self.model)

    @property
    def image_size(self) -> int:
        return int(self.model.image_size)

    @property
    def crop_size(self) -> int:
        return int(self.data.get("crop_size", self.model.image_size))

    @property
    def num_frames(self) -> int:
        return 1 if self.data.get("sampling", "still") == "still" else int(self.data.get("num_frames", 8))

    @property
    def skeleton_frames(self) -> int:
        return int(self.data.get("skeleton_frames", 32))


def model_input_names(cfg: Any) -> list[str]:
    """The tensors a model built from ``cfg`` reads, in the positional order of the ONNX graph."""
    names = ["frames", "frame_mask"]
    if cfg.body_crop != "none":
        names.append("crops")
    if cfg.skeleton:
        names += ["skeleton", "skeleton_mask"]
    if cfg.fusion_context == "input":
        names.append("context")
    return names


def describe_model(cfg: Any) -> str:
    """A short human name of an architecture, e.g. ``googlenet/beenet/emotion+crop+skeleton``."""
    return f"{cfg.backbone}/{cfg.fusion}/{'+'.join(cfg.emotion_streams)}"


def spec_from_checkpoint(ckpt: Mapping[str, Any], sha256: str, path: str | Path = "checkpoint") -> ModelSpec:
    """The :class:`ModelSpec` of a loaded checkpoint dict."""
    from beenet.artifacts.checkpoint import model_config_from_checkpoint  # lazy: loads torch, which a .pt needs and an ONNX export does not

    cfg = model_config_from_checkpoint(dict(ckpt), path)
    config = dict(ckpt.get("config") or {})
    data = check_data_config(config.get("data"), path)
    check_sizes(cfg, data, path)
    if "image_size" in data and int(data["image_size"]) != int(cfg.image_size):
        raise CheckpointError(f"{path}: data.image_size {data['image_size']} differs from model.image_size "
                              f"{cfg.image_size}; the checkpoint's config is inconsistent")
    return ModelSpec(cfg, data, dict(config.get("context") or {}), describe_model(cfg), sha256,
                     str(ckpt.get("beenet_version", "?")), config)


def check_sizes(model: Any, data: Mapping[str, Any] | None, path: str | os.PathLike[str]) -> None:
    """Refuse a frame size beyond :data:`MAX_IMAGE_SIZE` or a frame count beyond :data:`MAX_FRAMES`
    in a stored config (``model`` a ModelConfig, ``data`` its ``config["data"]``), naming the field."""
    sizes = [("model.image_size", model.image_size, MAX_IMAGE_SIZE)]
    for name, top in (("image_size", MAX_IMAGE_SIZE), ("crop_size", MAX_IMAGE_SIZE),
                      ("num_frames", MAX_FRAMES), ("skeleton_frames", MAX_FRAMES)):
        if isinstance(data, Mapping) and isinstance(data.get(name), int) and not isinstance(data.get(name), bool):
            sizes.append((f"data.{name}", data[name], top))
    for field, value, top in sizes:
        if value > top:
            raise CheckpointError(f"{path}: {field} is {value}, beyond the {top} beenet reads; the checkpoint's "
                                  "config is damaged or was edited: use the file 'beenet train' wrote")


def check_data_config(data: Any, path: str | Path) -> dict[str, Any]:
    """The checkpoint's ``config["data"]`` as a dict, each value checked by :class:`DataConfig`
    (a value such as ``image_size: 'abc'`` is a located :class:`CheckpointError`, not a traceback)."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path}: the checkpoint's config 'data' is a {type(data).__name__}, not a "
                              "mapping; the file is damaged")
    known = {f.name for f in dataclasses.fields(DataConfig)}
    try:
        DataConfig(**{k: v for k, v in data.items() if k in known})
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{path}: the checkpoint's data config is not valid ({exc}); the file is "
                              "damaged or was written by another beenet version") from None
    return dict(data)


def spec_from_onnx(path: str | Path, metadata: Mapping[str, str]) -> ModelSpec:
    """The :class:`ModelSpec` stored in a beenet ONNX file's metadata."""
    if "beenet.config" not in metadata:
        raise CheckpointError(f"{path}: not an ONNX file written by 'beenet export onnx' (no beenet metadata)")
    try:
        config = json.loads(metadata["beenet.config"])
        cfg = ModelConfig.from_dict(config["model"])
    except (ValueError, KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{path}: the beenet config in this ONNX file is not valid ({exc}); "
                              "export the checkpoint again") from None
    data = check_data_config(config.get("data"), path)
    check_sizes(cfg, data, path)
    return ModelSpec(cfg, data, dict(config.get("context") or {}),
                     metadata.get("beenet.model", describe_model(cfg)),
                     metadata.get("beenet.checkpoint_sha256", ""), metadata.get("beenet.beenet_version", "?"), config)
