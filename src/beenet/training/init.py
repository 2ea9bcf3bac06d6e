"""``beenet train --init``: a new run that starts from a trained model's weights.

:func:`start_from` loads the weights of a ``beenet train`` checkpoint, a ``beenet export
pretrained`` folder or a Hub id (through :func:`beenet.artifacts.pretrained.resolve_checkpoint`
and :func:`beenet.artifacts.checkpoint.load_checkpoint`, ``torch.load(weights_only=True)``) into the
run's model, the whole state dict (priors and BatchNorm statistics included); the optimizer and
schedule start afresh. The run's model config must be the one the weights were trained with (a
mismatch is refused, naming the keys). What the run started from, with the file's sha256, is
recorded under ``pretrained_weights["init"]`` of every checkpoint it writes (and so in the model
card of ``beenet export pretrained``).
"""

from __future__ import annotations

import logging
from typing import Any

from beenet.artifacts.checkpoint import checkpoint_sha256, load_checkpoint, load_model_state, weights_source
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
