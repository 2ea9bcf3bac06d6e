"""The shared trunk H^base: GoogLeNet (Inception v1) up to and including ``inception4d``.

The layers are beenet's own (:mod:`beenet.models.googlenet`), named and shaped as torchvision's, so
torchvision's ImageNet weights load into them; building the trunk does not import torchvision.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from beenet.errors import ConfigError
from beenet.models.googlenet import GoogLeNet
from beenet.weights import WeightsRecord, load_published

log = logging.getLogger(__name__)

#: torchvision's ImageNet GoogLeNet file (``GoogLeNet_Weights.IMAGENET1K_V1.url`` in torchvision
#: 0.13 and later; written out so that the trunk needs no torchvision import; a test checks that
#: torchvision still names this file). Its name carries the first digits of its SHA-256.
IMAGENET_WEIGHTS_URL = "https://download.pytorch.org/models/googlenet-1378be20.pth"
#: Classes of that file's classifier (and of its aux heads): ImageNet-1k.
IMAGENET_CLASSES = 1000

#: The GoogLeNet children kept, in order (everything up to and including ``inception4d``).
GOOGLENET_LAYERS: tuple[str, ...] = (
    "conv1", "maxpool1", "conv2", "conv3", "maxpool2",
    "inception3a", "inception3b", "maxpool3",
    "inception4a", "inception4b", "inception4c", "inception4d",
)


class GoogLeNetTrunk(nn.Module):
    """GoogLeNet up to ``inception4d``: ``[N, 3, S, S]`` ImageNet-normalised -> ``[N, 528, S/16, S/16]``.

    torchvision's ImageNet GoogLeNet weights were ported from a model that expects inputs scaled to
    [-1, 1]; torchvision applies that re-scaling (``transform_input``) inside its model, so the trunk
    does too, always (a fixed per-channel affine map, harmless for a randomly initialised trunk), so
    that inputs stay ImageNet-normalised everywhere in beenet.
    """

    out_channels = 528
    stride = 16

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        net, record = _googlenet(pretrained)
        for name in GOOGLENET_LAYERS:
            self.add_module(name, getattr(net, name))
        #: The ImageNet weights file the trunk started from (None: random init); checkpoints record it.
        self.weights_record: WeightsRecord | None = record
        # Computed on the CPU in float32 even inside a ``torch.device`` block (a meta-device build: an
        # op on meta tensors imports torch._dynamo, ~1.5 s), then put where the block says.
        scale = torch.tensor([0.229, 0.224, 0.225], device="cpu") / 0.5
        shift = (torch.tensor([0.485, 0.456, 0.406], device="cpu") - 0.5) / 0.5
        here = torch.get_default_device()
        self.register_buffer("input_scale", scale.view(1, 3, 1, 1).to(here), persistent=False)
        self.register_buffer("input_shift", shift.view(1, 3, 1, 1).to(here), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.input_scale + self.input_shift
        for name in GOOGLENET_LAYERS:
            x = getattr(self, name)(x)
        return x


def _googlenet(pretrained: bool) -> tuple[nn.Module, WeightsRecord | None]:
    """GoogLeNet (:mod:`beenet.models.googlenet`), with its ImageNet weights when ``pretrained``,
    and their record.

    torchvision's ImageNet file holds the whole network, auxiliary heads and classifier included
    (1000 classes). The same network is built here and the file is loaded through
    :func:`beenet.weights.load_published` (``weights_only=True``, every key and shape checked,
    clear errors offline); the trunk then keeps the layers up to ``inception4d``. Untrained, the
    network is built as torchvision builds it without aux heads (the same modules in the same
    order, so a seeded build draws the same numbers as one through torchvision), then the kept
    layers get GoogLeNet's init.
    """
    if not pretrained:
        net = GoogLeNet(num_classes=IMAGENET_CLASSES, aux_logits=False)
        _init_like_torchvision(nn.ModuleList(getattr(net, name) for name in GOOGLENET_LAYERS))
        return net, None
    with torch.random.fork_rng(devices=[]):  # every value is overwritten: leave the global RNG as it is
        net = GoogLeNet(num_classes=IMAGENET_CLASSES, aux_logits=True)
    record = load_published(
        net, IMAGENET_WEIGHTS_URL, "ImageNet GoogLeNet weights",
        offline_hint="or set model.pretrained=false to start the trunk from a random init",
    )
    log.info("trunk: ImageNet GoogLeNet weights from %s (sha256 %s)", record.file, record.sha256[:16])
    return net, record


def _init_like_torchvision(module: nn.Module) -> None:
    """torchvision's GoogLeNet init on the kept layers only (the whole net's init takes ~1 s on CPU).

    torchvision draws conv weights from a normal(0, 0.01) truncated at +-2, i.e. at 200 std: the
    truncation never acts, so a plain normal draw is the same distribution and much faster.
    A build on the ``meta`` device (shapes only, as a checkpoint's check makes) has no values to
    draw: it is left as it is (``normal_`` on a meta tensor would import ``torch._dynamo``, ~1.5 s).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.is_meta:
            continue
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, mean=0.0, std=0.01)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_trunk(backbone: str, pretrained: bool) -> nn.Module:
    """The trunk named by ``ModelConfig.backbone``; it has ``out_channels`` and ``stride``."""
    constructors = {"googlenet": GoogLeNetTrunk}
    if backbone not in constructors:
        raise ConfigError(f"model.backbone: {backbone!r} is not one of {', '.join(map(repr, constructors))}")
    return constructors[backbone](pretrained=pretrained)
