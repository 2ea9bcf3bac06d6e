"""BatchNorm statistics recomputed with the final weights ("precise BN").

Measured (``docs/ablations.md``, "VAD after a short run"): after a short epoch the eval-mode
running statistics of the ~60 BatchNorm layers (trunk, stream heads, ST-GCN) are an exponential
average over batches seen while the weights moved, still leaning on the init (mean 0, var 1). The
errors compound through the trunk: eval-mode features were 12x their train-mode size, the
standardised VAD 16 stds off (val mR2 -50 to -200000) while the ranked categories (mAP) barely
noticed. Recomputing the statistics with the final weights, as a plain average over training
batches, removes that: call :func:`recalibrate_batchnorm` before validating or saving a model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``model`` that track running statistics."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module,
    batches: Iterable[Any],
    max_batches: int = 50,
    forward: Callable[[nn.Module, Any], Any] | None = None,
) -> int:
    """Reset every BatchNorm's running statistics and recompute them as the plain average over up
    to ``max_batches`` of ``batches`` (training batches, training augmentation) with the model's
    current weights. Only BatchNorm buffers change: no gradient, no parameter update, and dropout
    draws do not matter (dropout sits after the normalised features). ``forward(model, batch)``
    runs one batch (default ``model(batch)``). Returns the number of batches used; with none, the
    statistics are left as they were.
    """
    if max_batches < 1:
        raise ValueError(f"max_batches must be >= 1, got {max_batches}")
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone(), m.momentum)
             for m in layers]
    was_training = model.training
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative (plain) average over the batches below
    model.train()
    used = 0
    try:
        for batch in batches:
            if forward is None:
                model(batch)
            else:
                forward(model, batch)
            used += 1
            if used >= max_batches:
                break
    finally:
        model.train(was_training)
        for m, (mean, var, count, momentum) in zip(layers, saved):
            m.momentum = momentum
            if used == 0:
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)
    return used


__all__ = ["batchnorm_layers", "recalibrate_batchnorm"]
