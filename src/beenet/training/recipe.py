"""The recipe under torchrun: the batch each process loads and the learning rate, from the world size.

``optim.batch_size`` is read by ``optim.batch_size_is``: ``per_gpu`` (each process loads that many
samples: the global batch grows with the world size; the default, and the reading of configs
written before the key existed) or ``global`` (the samples of one optimiser step over all
processes, split evenly among them: the recipe's batch whatever the number of GPUs).
``optim.scale_lr`` then scales ``optim.lr`` by the global batch over ``optim.batch_size`` (the batch
the recipe was written for): ``none`` (never), ``linear`` (Goyal et al. 2017) or ``sqrt``. With
``global`` the ratio is 1, so the LR is the recipe's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from beenet.errors import ConfigError


@dataclass(frozen=True)
class BatchPlan:
    """What one process of a run of ``world_size`` processes loads, and the LR it steps with."""

    per_process: int
    world_size: int
    global_batch: int
    recipe_batch: int  # optim.batch_size: the global batch the recipe's LR was set for
    lr: float  # optim.lr after optim.scale_lr
    lr_factor: float

    def describe(self) -> str:
        lr = f"lr {self.lr:g}" + (f" (optim.lr x {self.lr_factor:.4g})" if self.lr_factor != 1.0 else "")
        return (f"global batch {self.global_batch} = {self.per_process} per process x {self.world_size} "
                f"process(es); {lr}")


def batch_plan(optim: Any, world_size: int) -> BatchPlan:
    """The :class:`BatchPlan` of the ``optim`` config section (an ``OptimConfig``) at ``world_size``.

    Raises :class:`ConfigError` when a global batch does not split evenly over the processes or
    leaves a process fewer than 2 samples (BatchNorm needs 2 in training).
    """
    world_size = max(1, int(world_size))
    recipe = int(optim.batch_size)
    mode = getattr(optim, "batch_size_is", "per_gpu")
    if mode == "global":
        if recipe % world_size or recipe // world_size < 2:
            raise ConfigError(
                f"optim.batch_size={recipe} with optim.batch_size_is=global does not split into batches of at "
                f"least 2 over {world_size} processes; use a multiple of {2 * world_size}, or set "
                f"optim.batch_size_is=per_gpu with optim.scale_lr=linear or sqrt"
            )
        per_process = recipe // world_size
    elif mode == "per_gpu":
        per_process = recipe
    else:
        raise ConfigError(f"optim.batch_size_is={mode!r}: choose per_gpu or global")
    global_batch = per_process * world_size
    ratio = global_batch / recipe
    scale = getattr(optim, "scale_lr", "none")
    factors = {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}
    if scale not in factors:
        raise ConfigError(f"optim.scale_lr={scale!r}: choose none, linear or sqrt")
    return BatchPlan(per_process=per_process, world_size=world_size, global_batch=global_batch,
                     recipe_batch=recipe, lr=float(optim.lr) * factors[scale], lr_factor=factors[scale])


def recipe_warning(plan: BatchPlan, scale_lr: str) -> str | None:
    """A warning when the global batch is not the recipe's (``optim.batch_size``), else None."""
    if plan.global_batch == plan.recipe_batch:
        return None
    lr = ("the learning rate is not scaled (optim.scale_lr=none)" if scale_lr == "none"
          else f"the learning rate is scaled {scale_lr}ly (optim.scale_lr={scale_lr})")
    return (f"the global batch is {plan.global_batch} ({plan.per_process} per process x {plan.world_size} "
            f"processes), not the recipe's optim.batch_size={plan.recipe_batch}, and {lr}: results may differ "
            "from the recipe's; set optim.batch_size_is=global to keep its batch, or optim.scale_lr=linear")
