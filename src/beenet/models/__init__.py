"""Models: the BEE-NET trunk, stream heads, probabilistic fusion, pooling family and ST-GCN.

:class:`ModelConfig` (and the fusion names) load without torch, so a model's config is read, and
an exported ONNX model is run, without importing it; the modules (``build_model``, ``BEENet``,
the fusions, the priors) load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from beenet.models.config import FUSIONS, ModelConfig, fusion_class, fusion_reads_priors

if TYPE_CHECKING:  # pragma: no cover
    from beenet.models.beenet import BEENet, build_model
    from beenet.models.fusion import (
        BEENetFusion,
        CAMoDEFusion,
        ConcatFusion,
        Fusion,
        NoFusion,
        build_fusion,
    )
    from beenet.models.priors import ContextPriors, build_priors

#: The names that load torch, and the module of each.
_LAZY = {
    "BEENet": "beenet", "build_model": "beenet",
    "BEENetFusion": "fusion", "CAMoDEFusion": "fusion", "ConcatFusion": "fusion", "Fusion": "fusion",
    "NoFusion": "fusion", "build_fusion": "fusion",
    "ContextPriors": "priors", "build_priors": "priors",
}

__all__ = [
    "BEENet", "BEENetFusion", "CAMoDEFusion", "ConcatFusion", "ContextPriors", "FUSIONS", "Fusion", "ModelConfig",
    "NoFusion", "build_fusion", "build_model", "build_priors", "fusion_class", "fusion_reads_priors",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"beenet.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'beenet.models' has no attribute {name!r}")
