"""Stream heads on the trunk's feature map: per-frame conv features, pooled over time.

Every stream (emotion, body crop, place, object) is, as in the authors' scaffold,
``layers`` x (3x3 conv, BN, ReLU) -> global average pool -> dropout -> linear. Here the part before
the dropout runs per frame and its features are pooled over the T frames of a clip (site a) before
any linear layer, so a still (T = 1) and a clip share one head.
"""

from __future__ import annotations

import torch
from torch import nn

from beenet.errors import ConfigError
from beenet.models.pooling import make_pool


class StreamFeatures(nn.Module):
    """``[B*T, C_in, H, W]`` trunk features + frame mask ``[B, T]`` -> clip features ``[B, channels]``."""

    def __init__(self, in_channels: int, channels: int = 384, layers: int = 3, temporal_pool: str = "mean") -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for i in range(layers):
            blocks += [
                nn.Conv2d(in_channels if i == 0 else channels, channels, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            ]
        self.convs = nn.Sequential(*blocks)
        self.temporal_pool = make_pool(temporal_pool, channels)
        self.out_dim = channels

    def forward(self, fmap: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        x = self.convs(fmap).mean(dim=(2, 3))  # global average pool: [B*T, C]
        x = x.reshape(-1, frame_mask.shape[1], x.shape[-1])  # [B, T, C]
        return self.temporal_pool(x, frame_mask)


class ContextClassifier(nn.Module):
    """Context stream top (``docs/method.md`` section 2.3): ``(logits [B, classes], embedding [B, kappa])``.

    ``projector="side"`` (the authors' code): dropout -> linear D -> classes (the classifier; its
    softmax is the stream's context distribution), and the projector classes -> kappa on that
    softmax is a side output (the embedding). No loss reads that side output, so the side projector
    is frozen at its random init (``requires_grad=False``: no parameter without a gradient reaches
    the optimiser or DDP). ``"bottleneck"`` (older reading): dropout -> linear
    D -> kappa (the embedding) -> linear kappa -> classes, so the classifier has rank kappa.
    """

    def __init__(self, in_dim: int, num_classes: int, kappa: int = 56, dropout: float = 0.2,
                 projector: str = "side") -> None:
        super().__init__()
        if projector not in ("side", "bottleneck"):
            raise ConfigError(f"model.kappa_projector: {projector!r} is not one of 'side', 'bottleneck'")
        self.dropout = nn.Dropout(dropout)
        self.placement = projector
        if projector == "side":
            self.classifier = nn.Linear(in_dim, num_classes)
            self.projector = nn.Linear(num_classes, kappa)
            self.projector.requires_grad_(False)
        else:
            self.projector = nn.Linear(in_dim, kappa)
            self.classifier = nn.Linear(kappa, num_classes)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.placement == "side":
            logits = self.classifier(self.dropout(features))
            return logits, self.projector(torch.softmax(logits, dim=-1))
        embedding = self.projector(self.dropout(features))
        return self.classifier(embedding), embedding


class ContextStream(nn.Module):
    """A whole context stream (H^place or H^object): trunk features -> ``(logits, embedding)``."""

    def __init__(
        self, in_channels: int, num_classes: int, channels: int = 384, layers: int = 3,
        kappa: int = 56, dropout: float = 0.2, temporal_pool: str = "mean", projector: str = "side",
    ) -> None:
        super().__init__()
        self.features = StreamFeatures(in_channels, channels, layers, temporal_pool)
        self.head = ContextClassifier(channels, num_classes, kappa, dropout, projector)

    def forward(self, fmap: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.features(fmap, frame_mask))
