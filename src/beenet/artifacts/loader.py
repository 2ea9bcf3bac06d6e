"""The one loader of a model: a ``beenet train`` checkpoint, a pretrained folder or a Hub id.

Training (resume, the ablation), evaluation, export and inference all build their model here.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from beenet.artifacts.checkpoint import load_checkpoint, weights_source
from beenet.artifacts.sizes import checked_model_config
from beenet.models import build_model


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Build the model that a checkpoint, a pretrained folder or a Hub id (``user/name[@rev]``)
    describes, load its weights (never pickle beyond ``weights_only``), eval mode, on ``device``.
    Returns ``(model, checkpoint dict)``."""
    ckpt = load_checkpoint(path)
    # Sizes, shapes and NaN checked before anything is allocated; pretrained off: the weights come
    # from the checkpoint, never downloaded ones.
    mcfg = checked_model_config(ckpt, path, weights_source(ckpt, path))
    model = build_model(mcfg)
    model.load_state_dict(ckpt["model"])  # keys, shapes and values checked above
    model.to(device).eval()
    return model, ckpt
