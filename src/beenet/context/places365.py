"""Scene context: a frozen Places365 CNN (softmax over the 365 scene classes) as a context expert.

The weights are the public ones of the Places365 project (Zhou et al., TPAMI 2017), published as
``https://places2.csail.mit.edu/models_places365/<arch>_places365.pth.tar``: the training
checkpoint of their ``train_placesCNN.py``, a dict ``{"epoch", "arch", "state_dict", "best_prec1"}``
whose ``state_dict`` was saved from ``nn.DataParallel`` (every key starts with ``module.``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from beenet.choices import choices
from beenet.context.base import FrameExpertSource, file_digest
from beenet.context.config import ContextConfig
from beenet.device import resolve_device
from beenet.media.transforms import frames_to_tensor
from beenet.errors import CheckpointError, ConfigError, DataNotFoundError
from beenet.labels import NUM_PLACES
from beenet.weights import WeightsFile, WeightsFileError, check_fits, fetch, locate, read_weights

#: Architectures for which the Places365 project publishes PyTorch weights (owned by
#: ``ContextConfig.places_arch``).
PLACES365_ARCHS: tuple[str, ...] = choices(ContextConfig, "places_arch")
PLACES365_URL = "https://places2.csail.mit.edu/models_places365/{arch}_places365.pth.tar"

# Old (2017) DenseNet checkpoints name layers 'norm.1' where torchvision now says 'norm1'.
_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def places365_file_name(arch: str) -> str:
    return f"{arch}_places365.pth.tar"


def build_places365_net(arch: str) -> nn.Module:
    """An untrained torchvision ``arch`` with a 365-way classifier, as the Places365 project trains it."""
    import torchvision.models as tvm  # lazy: torchvision's model zoo loads only when the expert is built

    if arch not in PLACES365_ARCHS:
        raise ConfigError(f"unknown Places365 architecture {arch!r}; choose one of {', '.join(PLACES365_ARCHS)}")
    return getattr(tvm, arch)(weights=None, num_classes=NUM_PLACES)


def clean_places365_state_dict(checkpoint: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The checkpoint's ``state_dict`` (or the checkpoint itself) without ``module.`` prefixes and
    with old DenseNet key names renamed, ready for ``load_state_dict``."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{source}: not a Places365 checkpoint (expected a dict with a 'state_dict' "
                              f"of tensors, got {type(checkpoint).__name__})")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: entry {key!r} of the state dict is a {type(value).__name__}, "
                                  f"not a tensor")
        k = key[len("module."):] if key.startswith("module.") else key
        k = k.replace(".module.", ".")  # DataParallel around a sub-module (alexnet/vgg 'features')
        m = _DENSENET_KEY.match(k)
        if m:
            k = m.group(1) + m.group(2)
        out[k] = value
    return out


class Places365Expert(FrameExpertSource):
    """Frozen Places365 scene classifier: frames -> the softmax over the 365 scenes.

    ``weights="places365"`` downloads (once, into ``cache_dir``, default torch hub's checkpoint dir)
    the project's public weights; a path loads a checkpoint file in the same format;
    ``weights=None`` keeps a random initialisation drawn from ``seed`` (tests, offline smoke runs;
    its scene labels are meaningless). Frames are resized whole to ``image_size`` squared and
    ImageNet-normalised, as the Places365 demo does. The fingerprint holds the SHA-256 of the
    weights file (so other bytes never reuse cached labels); the network itself is built on first
    use (see :attr:`net`), so fully cached clips need the file but never run the network.
    """

    name = "places365"
    part = "places"

    def __init__(
        self,
        arch: str = "resnet18",
        weights: str | Path | None = "places365",
        cache_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
        frames_per_clip: int = 3,
        image_size: int = 224,
        seed: int = 0,
    ) -> None:
        super().__init__(frames_per_clip)
        if arch not in PLACES365_ARCHS:
            raise ConfigError(f"unknown Places365 architecture {arch!r}; choose one of {', '.join(PLACES365_ARCHS)}")
        self.arch = arch
        self.image_size = int(image_size)
        self.device = resolve_device(device)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.seed = int(seed)
        self.weights = None if weights is None else str(weights)
        self._weights_id: str | None = None
        if self.weights is not None and self.weights != "places365":
            path = Path(self.weights).expanduser()
            if not path.is_file():
                raise DataNotFoundError(f"Places365 weights file {path} does not exist; pass weights='places365' "
                                        f"to download the public {self.arch} weights, or the path of such a file")
        self._net: nn.Module | None = None

    @property
    def weights_id(self) -> str:
        """What the fingerprint says about the weights: the seed of a random init, else the weights
        file's name and SHA-256 (the published file is fetched first when it is not cached)."""
        if self._weights_id is None:
            if self.weights is None:
                self._weights_id = f"random-init-seed{self.seed}"
            else:
                path = self._weights_path()
                self._weights_id = f"{path.name}:sha256={file_digest(path)}"
        return self._weights_id

    def _published_file(self) -> WeightsFile:
        return locate(PLACES365_URL.format(arch=self.arch), f"Places365 {self.arch} weights", self.cache_dir,
                      places365_file_name(self.arch))

    def _weights_path(self) -> Path:
        """The weights file: the published one (fetched once into the cache folder) or the user's."""
        assert self.weights is not None
        if self.weights == "places365":
            return fetch(self._published_file(), offline_hint=(
                f"or pass cache_dir=<folder holding {places365_file_name(self.arch)}>, or use weights=None "
                "(random init, meaningless scene labels) offline"))
        return Path(self.weights).expanduser()

    @property
    def net(self) -> nn.Module:
        """The frozen network, built (and its weights fetched) on first use: a run whose clips are
        all cached never loads it."""
        if self._net is None:
            # Init through a private RNG stream: same seed, same net, global RNG untouched.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                net = build_places365_net(self.arch)
            if self.weights is not None:
                net.load_state_dict(self._load_weights(net), strict=False)  # every key checked in _load_weights
            net.eval().requires_grad_(False)
            self._net = net.to(self.device, memory_format=torch.channels_last)
        return self._net

    def _load_weights(self, net: nn.Module) -> dict[str, torch.Tensor]:
        """The weights file read (``weights_only=True``), cleaned of ``module.`` prefixes and checked
        key by key and shape by shape against ``net``."""
        path = self._weights_path()
        what = f"Places365 {self.arch} weights"
        if self.weights == "places365":
            hint = self._published_file().delete_hint()
        else:
            hint = f"pass the arch the file was trained with (one of {', '.join(PLACES365_ARCHS)})"
        ckpt = read_weights(path, what, hint)
        try:
            state = clean_places365_state_dict(ckpt, str(path))
        except CheckpointError as exc:
            raise WeightsFileError(f"{exc}; {hint}") from None
        return check_fits(state, net, str(path), what, hint)

    def describe(self) -> dict[str, Any]:
        return {"arch": self.arch, "weights": self.weights_id, "image_size": self.image_size,
                "frames_per_clip": self.frames_per_clip}

    @torch.inference_mode()
    def score_frames(self, frames: np.ndarray) -> np.ndarray:
        x = frames_to_tensor(frames, self.image_size)
        x = x.to(self.device, memory_format=torch.channels_last)
        probs = torch.softmax(self.net(x).float(), dim=1)
        return probs.cpu().numpy()
