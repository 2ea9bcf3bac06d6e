"""Models: the BEE-NET trunk, stream heads, probabilistic fusion, pooling family and ST-GCN."""

from beenet.models.beenet import BEENet, build_model
from beenet.models.config import ModelConfig
from beenet.models.fusion import (
    BEENetFusion,
    CAMoDEFusion,
    ConcatFusion,
    ContextPriors,
    Fusion,
    NoFusion,
    build_fusion,
    fusion_class,
    fusion_reads_priors,
)

__all__ = [
    "BEENet", "BEENetFusion", "CAMoDEFusion", "ConcatFusion", "ContextPriors", "Fusion", "ModelConfig",
    "NoFusion", "build_fusion", "build_model", "fusion_class", "fusion_reads_priors",
]
