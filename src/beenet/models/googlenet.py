"""GoogLeNet (Inception v1, Szegedy et al. 2015) as beenet's own layers, without torchvision.

Importing torchvision's model zoo costs seconds at every start (it pulls in ``torchvision.ops`` and
``torch._dynamo``), and beenet needs only this one architecture from it. The network here is laid out
as torchvision's ``GoogLeNet`` (0.13 and later) so that its parameter and buffer names, shapes and
outputs are the same (``tests/test_googlenet.py`` compares all three against torchvision): every
beenet checkpoint and torchvision's published ImageNet file load into it unchanged.

Conventions that the published weights fix, kept here on purpose:

- a conv block is conv (no bias) -> BatchNorm (``eps=1e-3``) -> ReLU, its parts named ``conv``, ``bn``;
- an inception block has four branches, ``branch1`` (1x1), ``branch2`` (1x1 -> 3x3), ``branch3``
  (1x1 -> 3x3: the paper's 5x5 branch, which torchvision's weights carry as a 3x3 kernel) and
  ``branch4`` (3x3 max pool, stride 1 -> 1x1), concatenated in that order;
- every max pool rounds its output size up (``ceil_mode=True``);
- the auxiliary heads ``aux1`` (after ``inception4a``) and ``aux2`` (after ``inception4d``) exist only
  with ``aux_logits``; ``fc`` is the 1024 -> ``num_classes`` classifier.

Modules are created in torchvision's order, so a seeded build draws the same random numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: ``(in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5" (a 3x3 kernel), pool proj)`` of each inception block.
INCEPTION_WIDTHS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


class ConvBlock(nn.Module):
    """Conv without bias -> BatchNorm (eps 1e-3) -> ReLU; parameters under ``conv.`` and ``bn.``."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class InceptionBlock(nn.Module):
    """Four parallel branches concatenated on channels (see the module docstring for their shapes)."""

    def __init__(self, cin: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = ConvBlock(cin, c1, 1)
        self.branch2 = nn.Sequential(ConvBlock(cin, c3_reduce, 1), ConvBlock(c3_reduce, c3, 3, padding=1))
        self.branch3 = nn.Sequential(ConvBlock(cin, c5_reduce, 1), ConvBlock(c5_reduce, c5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), ConvBlock(cin, pool_proj, 1))
        self.out_channels = c1 + c3 + c5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class AuxHead(nn.Module):
    """An auxiliary classifier: 4x4 average pool -> 1x1 conv to 128 -> fc 2048 -> 1024 -> fc to classes."""

    def __init__(self, cin: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.conv = ConvBlock(cin, 128, 1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4)))
        x = F.relu(self.fc1(torch.flatten(x, 1)), inplace=True)
        return self.fc2(self.dropout(x))


def _pool(kernel: int = 3) -> nn.MaxPool2d:
    return nn.MaxPool2d(kernel, stride=2, ceil_mode=True)


class GoogLeNet(nn.Module):
    """The whole network: ``[N, 3, S, S]`` -> ``[N, num_classes]`` logits (the main classifier).

    No input re-scaling here (torchvision's ``transform_input=False``): the trunk does its own. The
    modules keep PyTorch's default init; callers that want GoogLeNet's init apply it themselves.
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = False, dropout: float = 0.2,
                 dropout_aux: float = 0.7) -> None:
        super().__init__()
        w = INCEPTION_WIDTHS
        self.conv1 = ConvBlock(3, 64, 7, stride=2, padding=3)
        self.maxpool1 = _pool()
        self.conv2 = ConvBlock(64, 64, 1)
        self.conv3 = ConvBlock(64, 192, 3, padding=1)
        self.maxpool2 = _pool()
        self.inception3a = InceptionBlock(*w["inception3a"])
        self.inception3b = InceptionBlock(*w["inception3b"])
        self.maxpool3 = _pool()
        self.inception4a = InceptionBlock(*w["inception4a"])
        self.inception4b = InceptionBlock(*w["inception4b"])
        self.inception4c = InceptionBlock(*w["inception4c"])
        self.inception4d = InceptionBlock(*w["inception4d"])
        self.inception4e = InceptionBlock(*w["inception4e"])
        self.maxpool4 = _pool(2)
        self.inception5a = InceptionBlock(*w["inception5a"])
        self.inception5b = InceptionBlock(*w["inception5b"])
        self.aux1 = AuxHead(512, num_classes, dropout_aux) if aux_logits else None
        self.aux2 = AuxHead(528, num_classes, dropout_aux) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

    #: The children from the input up to the global pool, in order (the aux heads branch off).
    FEATURE_LAYERS: tuple[str, ...] = (
        "conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
        "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
        "inception5a", "inception5b",
    )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.FEATURE_LAYERS:
            x = getattr(self, name)(x)
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
