"""The optimiser and its learning-rate schedule: parameter groups made once, each with its own base LR.

:func:`build_optimizer` sorts the trainable parameters into at most four groups (nanoGPT's
``configure_optimizers``, timm's ``no_weight_decay``):

- **decay** or **no decay**: a parameter gets no weight decay when it has fewer than 2 dimensions
  (norm weights, biases, gates, pooling exponents and queries) and ``optim.decay_1d`` is false, or
  when the model lists its name in ``model.no_weight_decay()`` (the trainable context priors, which
  decay would pull toward 0);
- **trunk** or **head**: the parameters of the pretrained trunk(s) (``model.trunk``, and
  ``model.crop_trunk`` when the crop stream has its own) start at ``optim.lr * optim.trunk_lr_scale``,
  every other parameter at ``optim.lr``.

Frozen parameters (``requires_grad=False``) are in no group; empty groups are left out. Each group
carries its ``name`` and its base LR (``base_lr``); :class:`EpochSchedule` sets every group to its own
``base_lr x lr_factor(epoch)``, so a lower trunk LR stays lower through warm-up, steps and cosine.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from beenet.errors import BeenetError, CheckpointError, ConfigError
from beenet.run_config import RunConfig

log = logging.getLogger(__name__)


def _trunks(model: nn.Module) -> Iterator[nn.Module]:
    """The model's pretrained trunk modules (none for a model without ``trunk``)."""
    for attr in ("trunk", "crop_trunk"):
        m = getattr(model, attr, None)
        if isinstance(m, nn.Module):
            yield m


def param_groups(model: nn.Module, cfg: RunConfig) -> list[dict[str, Any]]:
    """The optimiser's parameter groups (see the module doc), each ``{"name", "params",
    "weight_decay", "lr", "base_lr"}``, in the order head/decay, head/no_decay, trunk/decay,
    trunk/no_decay, empty ones left out."""
    o = cfg.optim
    ask = getattr(model, "no_weight_decay", None)
    no_decay_names = set(ask()) if callable(ask) else set()
    named = dict(model.named_parameters())
    unknown = sorted(no_decay_names - set(named))
    if unknown:
        raise BeenetError(f"{type(model).__name__}.no_weight_decay() names no parameter of the model: {unknown}")
    trunk_ids = {id(p) for t in _trunks(model) for p in t.parameters()}
    buckets: dict[tuple[str, str], list[nn.Parameter]] = {
        (part, decay): [] for part in ("head", "trunk") for decay in ("decay", "no_decay")
    }
    for name, p in named.items():  # named_parameters() yields a shared parameter once
        if not p.requires_grad:
            continue
        part = "trunk" if id(p) in trunk_ids else "head"
        decay = "no_decay" if (p.ndim < 2 and not o.decay_1d) or name in no_decay_names else "decay"
        buckets[part, decay].append(p)
    groups = []
    for (part, decay), params in buckets.items():
        if not params:
            continue
        base = float(o.lr) * (float(o.trunk_lr_scale) if part == "trunk" else 1.0)
        groups.append({
            "name": f"{part}/{decay}", "params": params, "lr": base, "base_lr": base,
            "weight_decay": float(o.weight_decay) if decay == "decay" else 0.0,
        })
    return groups


def build_optimizer(model: nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
    """SGD with momentum (the paper) or AdamW over the groups of :func:`param_groups`."""
    o = cfg.optim
    groups = param_groups(model, cfg)
    if not groups:
        raise ConfigError(f"{type(model).__name__} has no trainable parameter: nothing to optimise")
    if o.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum)
    return torch.optim.AdamW(groups, lr=o.lr)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any], model: nn.Module) -> None:
    """Restore ``optimizer`` from a checkpoint's ``optimizer`` entry.

    A checkpoint written before parameter groups holds one group over the trainable parameters in
    ``model.parameters()`` order; its per-parameter state (momentum, Adam moments) is moved to the
    groups of :func:`build_optimizer` (the group settings, weight decay included, are the new ones).
    """
    saved_groups = state["param_groups"]
    if len(saved_groups) == len(optimizer.param_groups) or len(saved_groups) != 1:
        optimizer.load_state_dict(state)
        return
    old_order = [p for p in model.parameters() if p.requires_grad]
    if len(saved_groups[0]["params"]) != len(old_order):
        raise CheckpointError(
            f"the checkpoint's optimizer holds {len(saved_groups[0]['params'])} parameters, the model "
            f"{len(old_order)} trainable ones; resume with the run's own config"
        )
    new_index = {id(p): i for i, p in enumerate(p for g in optimizer.param_groups for p in g["params"])}
    old_ids = saved_groups[0]["params"]
    moved = {new_index[id(old_order[k])]: s for k, s in
             ((old_ids.index(pid), s) for pid, s in state["state"].items())}
    current = optimizer.state_dict()["param_groups"]
    optimizer.load_state_dict({"state": moved, "param_groups": current})
    log.warning("the checkpoint's optimizer has one parameter group (written before parameter groups); "
                "its state was moved to %d groups: no weight decay on norms, biases and priors from now on",
                len(current))


def lr_factor(epoch: int, cfg: RunConfig) -> float:
    """Learning-rate multiplier of ``epoch`` (0-based): warm-up, then step / cosine / constant."""
    o = cfg.optim
    if o.warmup_epochs and epoch < o.warmup_epochs:
        return (epoch + 1) / (o.warmup_epochs + 1)
    e = epoch - o.warmup_epochs
    if o.schedule == "step":
        return o.gamma ** (e // o.step_epochs)
    if o.schedule == "cosine":
        span = max(o.epochs - o.warmup_epochs, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(e, span) / span))
    return 1.0


class EpochSchedule:
    """Per-epoch learning rate: each group at its own base LR x :func:`lr_factor`; its state is the
    epoch and the base LRs (resumable)."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: RunConfig) -> None:
        self.optimizer = optimizer
        self.cfg = cfg
        self.base_lrs = [float(g.get("base_lr", g["lr"])) for g in optimizer.param_groups]
        self.epoch = 0
        self.apply()

    def apply(self) -> None:
        f = lr_factor(self.epoch, self.cfg)
        for g, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            g["lr"] = base * f

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.apply()

    @property
    def lr(self) -> float:
        """The run's learning rate this epoch (``optim.lr`` x the factor; a trunk group with a
        ``trunk_lr_scale`` runs at that multiple of it)."""
        return float(self.cfg.optim.lr) * lr_factor(self.epoch, self.cfg)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = [float(x) for x in state["base_lrs"]]
        if len(saved) == len(self.base_lrs):
            self.base_lrs = saved
        elif len(saved) != 1:  # one value: a checkpoint from before parameter groups, all at optim.lr
            raise CheckpointError(
                f"the checkpoint's schedule has {len(saved)} learning rates, the optimizer "
                f"{len(self.base_lrs)} parameter groups; resume with the run's own config"
            )
        self.epoch = int(state["epoch"])
        self.apply()
