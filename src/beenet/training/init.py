"""``beenet train --init``: a new run that starts from a trained model's weights.

:func:`start_from` loads the weights of a ``beenet train`` checkpoint, a ``beenet export
pretrained`` folder or a Hub id (through :func:`beenet.artifacts.pretrained.resolve_checkpoint`
and :func:`beenet.artifacts.checkpoint.load_checkpoint`, ``torch.load(weights_only=True)``) into the
run's model, the whole state dict (priors and BatchNorm statistics included); the optimizer and
schedule start afresh. The run's model config must be the one the weights were trained with (a
mismatch is refused, naming the keys). What the run started from, with the file's sha256, is
recorded under ``pretrained_weights["init"]`` of every checkpoint it writes (and so in the model
card of ``beenet export pretrained``).

:func:`freeze` (``optim.freeze``) takes parts of the model out of training before the optimizer is
built: ``trunk`` the image trunks (``trunk``, ``crop_trunk``), ``all-but-heads`` everything but
the fusion and the layers named ``head``. A frozen BatchNorm layer keeps its running statistics
(momentum 0); precise BN (``run.bn_recalibrate`` > 0) still re-estimates every BatchNorm layer,
frozen ones included: set it to 0 to keep them as the init left them.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from beenet.artifacts.checkpoint import load_checkpoint, load_model_state, weights_source
from beenet.artifacts.pretrained import checkpoint_sha256
from beenet.artifacts.pretrained import resolve_checkpoint

log = logging.getLogger(__name__)


def start_from(run: Any, source: str) -> dict[str, Any]:
    """Load the weights of ``source`` into ``run.model`` and record them in ``run.started_from``;
    returns the record ``{"source", "file", "sha256", "epoch"}``."""
    path = resolve_checkpoint(source)
    ckpt = load_checkpoint(path)
    load_model_state(run.model, ckpt["model"], weights_source(ckpt, path))
    record = {"source": str(source), "url": str(source), "file": str(path), "sha256": checkpoint_sha256(path),
              "epoch": ckpt.get("epoch")}
    run.started_from = {**dict(run.started_from or {}), "init": record}
    log.info("starting from the weights of %s (sha256 %s, epoch %s)", path, record["sha256"][:12], record["epoch"])
    return record


def stored_config(source: str) -> dict[str, Any]:
    """The run config stored with the weights ``source`` names (a checkpoint, a ``beenet export
    pretrained`` folder or a Hub id): what the ``finetune`` preset's ``init`` sections take."""
    path = resolve_checkpoint(source)
    return dict(load_checkpoint(path).get("config") or {})


def _trainable(name: str, how: str) -> bool:
    parts = name.split(".")
    if how == "trunk":
        return parts[0] not in ("trunk", "crop_trunk")
    if how == "all-but-heads":
        return parts[0] == "fusion" or "head" in parts
    return True


def freeze(model: nn.Module, how: str) -> list[str]:
    """Stop training the parameters ``how`` (``none``, ``trunk``, ``all-but-heads``) names, and the
    running statistics of the BatchNorm layers among them; returns the frozen parameters' names."""
    if how == "none":
        return []
    frozen = [n for n, p in model.named_parameters() if not _trainable(n, how)]
    for name, p in model.named_parameters():
        if name in frozen:
            p.requires_grad_(False)
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and name and not _trainable(name + ".weight", how):
            m.momentum = 0.0
    log.info("optim.freeze=%s: %d parameter tensors frozen", how, len(frozen))
    return frozen
