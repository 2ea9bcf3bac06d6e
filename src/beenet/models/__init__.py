"""Models: the BEE-NET trunk, stream heads, probabilistic fusion, pooling family and ST-GCN."""

from beenet.models.beenet import BEENet, build_model
from beenet.models.config import ModelConfig
from beenet.models.fusion import (
    BEENetFusion,
    CAMoDEFusion,
    ConcatFusion,
    ContextPriors,
    NoFusion,
    build_fusion,
)

__all__ = [
    "BEENet", "BEENetFusion", "CAMoDEFusion", "ConcatFusion", "ContextPriors", "ModelConfig",
    "NoFusion", "build_fusion", "build_model",
]
