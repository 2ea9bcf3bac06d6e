"""Training losses: the paper's MSE on the 29 fused outputs (VAD raw or / 10, ``loss.vad_scale``), or BCE + standardised VAD MSE, plus the
distillation of the context streams on the experts' soft labels (``docs/method.md`` section 4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from beenet.choices import choices, not_one_of
from beenet.errors import BeenetError
from beenet.labels import CONTEXT_DIM, CONTEXT_SLICES, NUM_CATEGORIES, NUM_VAD, VAD_SCALE
from beenet.metrics import binarize_categories
from beenet.run_config import LossConfig


def _weighted_mean(per_sample: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of ``per_sample`` [B] over the rows with weight 1 (0, not NaN, when there are none)."""
    return (per_sample * weight).sum() / weight.sum().clamp_min(1.0)


def _distill(logits: torch.Tensor, target: torch.Tensor, kind: str, norm: str = "none") -> torch.Tensor:
    """Distillation of one context stream on soft labels; rows whose target sums to 0 count for nothing.

    ``norm`` divides the per-row term by log K (``log_classes``) or K (``classes``), K the classes."""
    logits = logits.float()
    target = target.float()
    valid = (target.sum(dim=1) > 0).float()
    log_p = torch.log_softmax(logits, dim=1)
    if kind == "kl":
        per_row = (torch.xlogy(target, target) - target * log_p).sum(dim=1)
    else:
        p = log_p.exp()
        log_not_p = torch.log1p(-p.clamp(max=1.0 - 1e-7))
        per_row = -(target * log_p + (1.0 - target) * log_not_p).sum(dim=1)
    k = logits.shape[1]
    if norm == "log_classes":
        per_row = per_row / math.log(k)
    elif norm == "classes":
        per_row = per_row / k
    return _weighted_mean(per_row, valid)


def compute_loss(
    out: Mapping[str, Any], batch: Mapping[str, Any], cfg: LossConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(total, parts)`` for one batch: ``out`` from ``BEENet.forward``, ``batch`` the sample dict.

    Only labelled samples (``batch["labelled"]``, all when absent) enter the emotion terms; the
    distillation uses every sample whose context label is not all zero (experts label any clip).
    ``parts`` holds detached scalars for logging: ``categories``, ``vad``, and ``distill_place`` /
    ``distill_object`` when those streams are distilled.
    """
    cfg.validate()
    for key in ("categories", "vad"):
        if key not in batch:
            raise BeenetError(f"compute_loss: the batch has no {key!r} targets")
    cats_t = batch["categories"].float()
    vad_t = batch["vad"].float()
    if cats_t.ndim != 2 or cats_t.shape[1] != NUM_CATEGORIES or vad_t.shape != (cats_t.shape[0], NUM_VAD):
        raise BeenetError(
            f"compute_loss: targets must be categories [B, {NUM_CATEGORIES}] and vad [B, {NUM_VAD}], "
            f"got {tuple(cats_t.shape)} and {tuple(vad_t.shape)}"
        )
    if cfg.binarize_targets:
        cats_t = torch.as_tensor(binarize_categories(cats_t), device=cats_t.device).float()
    labelled = batch.get("labelled")
    weight = (
        torch.ones(cats_t.shape[0], device=cats_t.device)
        if labelled is None
        else torch.as_tensor(labelled, device=cats_t.device).reshape(-1).float()
    )

    if cfg.kind == "mse":
        # VAD on BoLD's raw scale (the authors' scaffold) or / 10 (older reading; then the
        # prediction is ``out["fused"]``'s VAD part, which is the raw VAD / 10).
        div = VAD_SCALE if cfg.vad_scale == "tenth" else 1.0
        target = torch.cat([cats_t, vad_t / div], dim=1)
        fused = torch.cat([out["fused"][:, :NUM_CATEGORIES].float(), out["vad"].float() / div], dim=1)
        sq = (fused - target) ** 2
        cat_sum = sq[:, :NUM_CATEGORIES].sum(dim=1)
        vad_sum = sq[:, NUM_CATEGORIES:].sum(dim=1)
        main = _weighted_mean((cat_sum + cfg.vad_weight * vad_sum) / (NUM_CATEGORIES + NUM_VAD), weight)
        cat_part = _weighted_mean(cat_sum / NUM_CATEGORIES, weight)
        vad_part = _weighted_mean(vad_sum / NUM_VAD, weight)
    elif cfg.kind == "bce":
        bce = F.binary_cross_entropy_with_logits(out["category_logits"].float(), cats_t, reduction="none")
        std = out["vad_std"].float()
        vad_sq = (((out["vad"].float() - vad_t) / std) ** 2).mean(dim=1)
        cat_part = _weighted_mean(bce.mean(dim=1), weight)
        vad_part = _weighted_mean(vad_sq, weight)
        main = cat_part + cfg.vad_weight * vad_part
    else:
        raise not_one_of("loss.kind", cfg.kind, choices(LossConfig, "kind"))

    parts: dict[str, torch.Tensor] = {"categories": cat_part.detach(), "vad": vad_part.detach()}
    total = main
    context = batch.get("context")
    if context is not None and cfg.distill_weight > 0:
        if context.ndim != 2 or context.shape[1] != CONTEXT_DIM:
            raise BeenetError(
                f"compute_loss: batch['context'] must have shape [B, {CONTEXT_DIM}], got {tuple(context.shape)}"
            )
        for name, cols in (("place", CONTEXT_SLICES["places"]), ("object", CONTEXT_SLICES["objects"])):
            logits = out.get(f"{name}_logits")
            if logits is None:
                continue
            term = _distill(logits, context[:, cols], cfg.distill, cfg.distill_norm)
            parts[f"distill_{name}"] = term.detach()
            total = total + cfg.distill_weight * term
    return total, parts
