"""Evaluation figures: per-category AP/AUC bars and per-category precision-recall curves.

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas, never through
``pyplot``: nothing opens a window, and nothing depends on the global backend or figure state.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from beenet.labels import CATEGORIES, NUM_CATEGORIES
from beenet.metrics import average_precision, binarize_categories, format_headline, precision_recall_curve

_AP_COLOR = "#1f77b4"
_AUC_COLOR = "#ff7f0e"
_EXCLUDED_COLOR = "#bbbbbb"


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=fig.dpi)
    return path


def plot_category_bars(result: Mapping[str, Any], path: str | Path, title: str | None = None) -> Path:
    """Per-category AP and AUC as grouped horizontal bars, with chance levels; excluded ones marked.

    The AP chance level of a category is its positive rate (a tick on its AP bar row); the AUC chance
    level is 0.5 for all (a dashed line). Categories without a defined AP/AUC get a grey bar that
    says "excluded" instead of a misleading 0.
    """
    per_category = result["per_category"]
    names = list(CATEGORIES)
    y = np.arange(len(names))[::-1].astype(float)
    h = 0.38
    fig = Figure(figsize=(8.0, 9.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for yi, name in zip(y, names):
        row = per_category[name]
        if row.get("AP") is None:
            ax.barh(yi, 1.0, height=2 * h, color=_EXCLUDED_COLOR, alpha=0.35, hatch="//", edgecolor="#888888")
            ax.text(0.5, yi, "excluded: no positive or no negative", ha="center", va="center", fontsize=7)
            continue
        ax.barh(yi + h / 2, row["AP"], height=h, color=_AP_COLOR)
        ax.barh(yi - h / 2, row["AUC"], height=h, color=_AUC_COLOR)
        support = row.get("support") or 0
        if support:
            rate = row["positives"] / support
            ax.plot([rate, rate], [yi, yi + h], color="black", linewidth=1.5)
    ax.axvline(0.5, color=_AUC_COLOR, linestyle="--", linewidth=1)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.set_xlabel("score")
    ax.grid(axis="x", alpha=0.3)
    handles = [
        Patch(color=_AP_COLOR, label="AP"),
        Patch(color=_AUC_COLOR, label="ROC AUC"),
        ax.plot([], [], color="black", linewidth=1.5, label="AP chance (positive rate)")[0],
        ax.plot([], [], color=_AUC_COLOR, linestyle="--", linewidth=1, label="AUC chance (0.5)")[0],
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=4, fontsize=7, frameon=False)
    headline = format_headline(result, digits=3, sep=", ")
    ax.set_title(title or f"Per-category scores (n={result.get('n')})\n{headline}", fontsize=10)
    return _save(fig, path)


def plot_pr_curves(
    cat_scores: np.ndarray | torch.Tensor,
    cat_targets: np.ndarray | torch.Tensor,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Precision-recall curves of the 26 categories, one small panel each, AP in each title.

    Each panel also shows the category's chance precision (its positive rate) as a dotted line.
    """
    scores = np.asarray(torch.as_tensor(cat_scores).detach().cpu().double().numpy())
    if scores.ndim != 2 or scores.shape[1] != NUM_CATEGORIES:
        raise ValueError(f"cat_scores must have shape [N, {NUM_CATEGORIES}], got {list(scores.shape)}")
    positives = binarize_categories(cat_targets)
    if positives.shape != scores.shape:
        raise ValueError(f"cat_targets shape {list(positives.shape)} differs from cat_scores {list(scores.shape)}")
    cols = 6
    rows = -(-NUM_CATEGORIES // cols)
    fig = Figure(figsize=(2.1 * cols, 2.0 * rows), dpi=100, layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i >= NUM_CATEGORIES:
            ax.set_axis_off()
            continue
        y = positives[:, i]
        name = CATEGORIES[i]
        n_pos = int(y.sum())
        if n_pos == 0 or n_pos == y.size:
            ax.text(0.5, 0.5, "excluded\n(no positive)" if n_pos == 0 else "excluded\n(no negative)",
                    ha="center", va="center", fontsize=8, color="#666666", transform=ax.transAxes)
            ax.set_title(f"{name}\nAP n/a", fontsize=8)
        else:
            precision, recall, _ = precision_recall_curve(scores[:, i], y)
            ax.step(recall, precision, where="post", color=_AP_COLOR, linewidth=1.2)
            ax.axhline(n_pos / y.size, color="black", linestyle=":", linewidth=0.8)
            ap = average_precision(scores[:, i], y)
            ax.set_title(f"{name}\nAP {ap:.3f} (pos {n_pos})", fontsize=8)
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.02)
        ax.tick_params(labelsize=6)
        if i % cols == 0:
            ax.set_ylabel("precision", fontsize=7)
        if i >= NUM_CATEGORIES - cols:
            ax.set_xlabel("recall", fontsize=7)
            ax.tick_params(labelbottom=True)
    fig.suptitle(title or f"Precision-recall per category (n={scores.shape[0]}; dotted: chance)", fontsize=10)
    return _save(fig, path)
