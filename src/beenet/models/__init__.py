"""Models: the BEE-NET trunk, stream heads, probabilistic fusion, pooling family and ST-GCN."""

from beenet.models.beenet import BEENet, build_model
from beenet.models.config import FUSIONS, ModelConfig, fusion_class, fusion_reads_priors
from beenet.models.fusion import (
    BEENetFusion,
    CAMoDEFusion,
    ConcatFusion,
    Fusion,
    NoFusion,
    build_fusion,
)
from beenet.models.priors import ContextPriors, build_priors

__all__ = [
    "BEENet", "BEENetFusion", "CAMoDEFusion", "ConcatFusion", "ContextPriors", "FUSIONS", "Fusion", "ModelConfig",
    "NoFusion", "build_fusion", "build_model", "build_priors", "fusion_class", "fusion_reads_priors",
]
