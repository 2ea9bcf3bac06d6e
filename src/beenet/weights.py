"""Published weights files: where each is cached, fetching it once, reading it without running code.

Every pretrained network beenet uses (the ImageNet GoogLeNet trunk, the Places365 scene CNN, the
COCO detector, Keypoint R-CNN) is one file at a public URL, kept in torch hub's checkpoint folder
(``$TORCH_HOME/hub/checkpoints``, or a folder the caller names) under the file name of the URL.
This module owns what all those loaders share:

- :func:`fetch`: the cached file, downloaded first when it is missing. A file that is missing and
  cannot be downloaded raises :class:`WeightsNotCachedError`, which names the file, the folder and
  the URL (what to copy where on a machine without internet).
- :func:`read_weights` / :func:`check_fits`: ``torch.load(weights_only=True)``, then every key and
  shape against the network. A file that is there but is not what was expected (truncated, not a
  PyTorch file, another network's weights) raises :class:`WeightsFileError`, which names the file
  and what was expected and says to delete it so that it is downloaded again.
- :class:`WeightsRecord`: the file's name, URL and SHA-256, recorded in context fingerprints and
  checkpoints so that a result says which bytes it came from.

A cached file is used as it is: ``torch.hub`` checks the SHA-256 prefix in a torchvision file name
(``googlenet-1378be20.pth``) only while downloading, and so does :func:`fetch`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from beenet.errors import CheckpointError, DataNotFoundError


class WeightsNotCachedError(DataNotFoundError):
    """A published weights file is not in the cache folder and could not be downloaded."""


class WeightsFileError(CheckpointError):
    """A weights file is there but cannot be read, or does not fit the network it is meant for."""


@dataclass(frozen=True)
class WeightsFile:
    """One published weights file: ``what`` it is (for messages), its ``url`` and local ``path``."""

    what: str
    url: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def delete_hint(self) -> str:
        return f"delete {self.path} so that it is downloaded again from {self.url}, or copy a good copy there"


@dataclass(frozen=True)
class WeightsRecord:
    """Which bytes a network was loaded from: file name, URL and the file's SHA-256 (hex)."""

    file: str
    url: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "url": self.url, "sha256": self.sha256}


def weights_dir(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(cache_dir).expanduser() if cache_dir is not None else Path(torch.hub.get_dir()) / "checkpoints"


def url_file_name(url: str) -> str:
    """The file name a URL is cached under (torch hub's rule: the last path component)."""
    return os.path.basename(urlparse(url).path)


def locate(url: str, what: str, cache_dir: str | Path | None = None, file_name: str | None = None) -> WeightsFile:
    """Where the file of ``url`` is (or will be) cached."""
    return WeightsFile(what, url, weights_dir(cache_dir) / (file_name or url_file_name(url)))


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch(wf: WeightsFile, *, progress: bool = True, check_hash: bool = False, offline_hint: str = "") -> Path:
    """The cached file of ``wf``, downloaded first when it is missing (once; never re-checked after).

    ``check_hash``: the file name carries the first digits of its SHA-256 (torchvision's
    ``name-<sha256 prefix>.pth``); a download whose bytes differ is refused. ``offline_hint`` is
    appended to the not-cached message (e.g. how to run without these weights).
    """
    if wf.path.is_file():
        return wf.path
    prefix = None
    if check_hash:
        match = torch.hub.HASH_REGEX.search(wf.name)
        prefix = match.group(1) if match else None
    try:
        wf.path.parent.mkdir(parents=True, exist_ok=True)
        # Writes to a temp file and renames: an interrupted download leaves no partial file here.
        torch.hub.download_url_to_file(wf.url, str(wf.path), prefix, progress=progress)
    except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError; a bad hash a RuntimeError
        raise WeightsNotCachedError(
            f"the {wf.what} file {wf.name} is not in {wf.path.parent} and could not be downloaded from "
            f"{wf.url} ({type(exc).__name__}: {exc}). On a machine without internet, download that URL "
            f"elsewhere and copy the file, keeping its name, to {wf.path}"
            + (f"; {offline_hint}" if offline_hint else "")
        ) from exc
    return wf.path


def read_weights(path: str | Path, what: str, hint: str | None = None) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU; a file that cannot be read raises
    :class:`WeightsFileError` naming it (``hint``: what to do, e.g. delete and download again)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling arbitrary bytes can fail with any exception type
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise WeightsFileError(
            f"{path}: cannot be read as the {what} file ({first}); it is truncated, corrupt or not a "
            f"PyTorch weights file" + (f": {hint}" if hint else "")
        ) from None


def _few(items: list[str], n: int = 4) -> str:
    return ", ".join(items[:n]) + (f" ... and {len(items) - n} more" if len(items) > n else "")


def state_dict_mismatch(state: Mapping[str, Any], own: Mapping[str, torch.Tensor], side: str,
                        optional_suffix: str | None = None) -> list[str]:
    """What keeps ``state`` from loading into a module whose state dict is ``own``: entries that
    are not tensors, missing and unexpected keys, shape mismatches (a few of each, counted);
    empty when it fits. ``side`` names where ``state`` came from in the message ("file",
    "checkpoint"); keys ending in ``optional_suffix`` may be absent on either side."""
    def optional(k: Any) -> bool:
        return optional_suffix is not None and str(k).endswith(optional_suffix)

    bad_values = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    missing = [k for k in own if k not in state and not optional(k)]
    unexpected = [str(k) for k in state if k not in own and not optional(k)]
    shapes = [f"{k}: {side} {tuple(state[k].shape)} vs model {tuple(v.shape)}" for k, v in own.items()
              if isinstance(state.get(k), torch.Tensor) and tuple(state[k].shape) != tuple(v.shape)]
    parts = []
    if bad_values:
        parts.append(f"{len(bad_values)} entries that are not tensors ({_few(bad_values)})")
    if missing:
        parts.append(f"missing {len(missing)} keys ({_few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches ({_few(shapes)})")
    return parts


def check_fits(state: Any, model: nn.Module, source: str, what: str, hint: str | None = None) -> dict[str, torch.Tensor]:
    """``state`` checked key by key and shape by shape against ``model``; returns what to load.

    ``num_batches_tracked`` counters may be present or absent on either side (torchvision's
    detection weights are saved from ``FrozenBatchNorm2d`` layers, which have none).
    """
    if not isinstance(state, Mapping) or not state:
        raise WeightsFileError(f"{source}: expected the state dict of the {what} (a dict of tensors), "
                               f"got {type(state).__name__}" + (f"; {hint}" if hint else ""))
    own = model.state_dict()
    parts = state_dict_mismatch(state, own, "file", optional_suffix="num_batches_tracked")
    if parts:
        raise WeightsFileError(f"{source}: is not the {what} file that was expected: {'; '.join(parts)}"
                               + (f"; {hint}" if hint else ""))
    return {k: v for k, v in state.items() if k in own}


def load_published(
    model: nn.Module,
    url: str,
    what: str,
    *,
    cache_dir: str | Path | None = None,
    check_hash: bool = True,
    offline_hint: str = "",
    progress: bool = True,
) -> WeightsRecord:
    """Load the state dict published at ``url`` (a torchvision weights file) into ``model``.

    The file is fetched once into the cache folder, read with ``weights_only=True`` and checked
    against ``model`` (every key and shape) before loading. Returns the file's :class:`WeightsRecord`.
    """
    wf = locate(url, what, cache_dir)
    path = fetch(wf, progress=progress, check_hash=check_hash, offline_hint=offline_hint)
    state = read_weights(path, what, wf.delete_hint())
    state = check_fits(state, model, str(path), what, wf.delete_hint())
    model.load_state_dict(state, strict=False)  # check_fits compared every key except the BN counters
    return WeightsRecord(wf.name, url, file_sha256(path))


def pretrained_weights(model: nn.Module) -> dict[str, dict[str, str]]:
    """``{submodule name: record}`` of every part of ``model`` loaded from a published file
    (parts set ``weights_record``); what a checkpoint stores beside the weights."""
    out: dict[str, dict[str, str]] = {}
    for name, module in model.named_modules():
        record = getattr(module, "weights_record", None)
        if isinstance(record, WeightsRecord):
            out[name or "."] = record.to_dict()
    return out


#: torchvision detection weights whose builder puts ``FrozenBatchNorm2d`` in the backbone, and the
#: ``eps`` those layers end with (torchvision sets 0.0 after loading some older files: its
#: ``overwrite_eps``). Weights not listed keep the builder's plain ``BatchNorm2d`` (the ``_v2`` models).
FROZEN_BN_EPS: dict[str, float] = {
    "FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1": 1e-5,
    "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1": 1e-5,
    "FasterRCNN_ResNet50_FPN_Weights.COCO_V1": 0.0,
    "RetinaNet_ResNet50_FPN_Weights.COCO_V1": 0.0,
    "FCOS_ResNet50_FPN_Weights.COCO_V1": 1e-5,
    "KeypointRCNN_ResNet50_FPN_Weights.COCO_V1": 0.0,
    "KeypointRCNN_ResNet50_FPN_Weights.COCO_LEGACY": 1e-5,
}


def build_torchvision_detector(name: str, weights: Any, seed: int = 0, **kwargs: Any) -> nn.Module:
    """torchvision's detector ``name``, untrained, in the form its builder gives it for ``weights``.

    Built without any download (``weights=None``, ``weights_backbone=None``, the class count of
    ``weights``), from a private RNG stream seeded by ``seed``. When ``weights`` is given, the
    backbone's ``BatchNorm2d`` layers become the ``FrozenBatchNorm2d`` (with the ``eps``) that
    torchvision's builder uses for them (:data:`FROZEN_BN_EPS`): a MobileNetV3 backbone built
    untrained has ``eps=1e-3``, the trained one ``1e-5``. The caller loads the weights file.
    """
    import torchvision.models as tvm  # lazy: torchvision's model zoo loads only when a detector is built

    if weights is not None:
        kwargs.setdefault("num_classes", len(weights.meta["categories"]))
        if "keypoint_names" in weights.meta:
            kwargs.setdefault("num_keypoints", len(weights.meta["keypoint_names"]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = tvm.get_model(name, weights=None, weights_backbone=None, **kwargs)
    eps = FROZEN_BN_EPS.get(str(weights)) if weights is not None else None
    if eps is not None:
        _freeze_batchnorm(net.backbone, eps)
    return net


def _freeze_batchnorm(module: nn.Module, eps: float) -> None:
    """Replace every ``BatchNorm2d`` under ``module`` by a ``FrozenBatchNorm2d`` with ``eps``."""
    from torchvision.ops import FrozenBatchNorm2d  # lazy: with the detector above

    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            _freeze_batchnorm(child, eps)
