"""Plain-text report of a :func:`beenet.metrics.bold_scores` result, for terminals and logs.

The split and protocol are always printed beside the numbers: BEE-NET's paper protocol and BoLD's
official split give numbers that are not comparable, and a number without its protocol misleads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from beenet.labels import CATEGORIES, VAD_NAMES
from beenet.metrics import HEADLINE_KEYS

_HEADLINE_NAMES = {
    "mAP": "mean average precision (26 categories)",
    "mRA": "mean ROC AUC (26 categories)",
    "mR2": "mean R2 (valence, arousal, dominance)",
    "ERS": "ERS = (mR2 + (mAP + mRA) / 2) / 2",
}


def _num(value: float | None, width: int = 7, digits: int = 4) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def format_scores(result: Mapping[str, Any], split: str, protocol: str) -> str:
    """A readable table: headline metrics with chance level, per-category and per-dimension detail."""
    n = result.get("n")
    chance = result.get("chance", {})
    # A split partly trained on (beenet eval --allow-overlap): said beside every number.
    overlap = (f"  [OVERLAP: {result['overlap']}/{n} instances from clips this checkpoint trained on, "
               "--allow-overlap]") if result.get("overlap") else ""
    lines = [
        f"BoLD scores: split={split}  protocol={protocol}  instances={n}{overlap}",
        "",
        f"  {'metric':<6} {'score':>7} {'chance':>7}",
    ]
    for key in HEADLINE_KEYS:
        lines.append(f"  {key:<6} {_num(result.get(key))} {_num(chance.get(key))}   {_HEADLINE_NAMES[key]}{overlap}")
    if protocol == "paper":
        lines.append("  (paper protocol: BEE-NET's clip-disjoint 60/10/30 split; not comparable with official-split numbers)")
    elif protocol == "paper-video":
        lines.append("  (paper-video protocol: 60/10/30 split keeping each source video in one part; stricter than "
                     "the paper's clip-disjoint split, not comparable with official-split numbers)")
    if result.get("selected_on_this_split"):
        lines.append("  (selected on this split: the checkpoint's best epoch was chosen by its ERS on this very split, "
                     "so the number is optimistic; report a held-out split"
                     + (")" if protocol == "official" else ", e.g. --split test)"))

    per_category = result.get("per_category", {})
    width = max(len(name) for name in CATEGORIES)
    lines += ["", f"  {'category':<{width}} {'AP':>7} {'AUC':>7} {'pos':>6} {'rate':>6}"]
    for name in CATEGORIES:
        row = per_category.get(name)
        if row is None:
            continue
        support = row.get("support") or 0
        rate = row["positives"] / support if support else None
        note = "  excluded (no positive or no negative)" if row.get("AP") is None else ""
        lines.append(
            f"  {name:<{width}} {_num(row.get('AP'))} {_num(row.get('AUC'))} "
            f"{row.get('positives', 0):>6d} {_num(rate, 6, 3)}{note}"
        )

    per_dimension = result.get("per_dimension", {})
    lines += ["", f"  {'dimension':<{width}} {'R2':>7} {'CCC':>7} {'MAE':>7}"]
    for name in VAD_NAMES:
        row = per_dimension.get(name)
        if row is None:
            continue
        note = "  excluded (constant ground truth)" if row.get("R2") is None else ""
        lines.append(f"  {name:<{width}} {_num(row.get('R2'))} {_num(row.get('CCC'))} {_num(row.get('MAE'))}{note}")

    excluded = list(result.get("excluded_categories", []))
    lines.append("")
    if excluded:
        lines.append(
            f"  {len(excluded)} categor{'y' if len(excluded) == 1 else 'ies'} excluded from mAP/mRA "
            f"(no positive or no negative in this set): {', '.join(excluded)}"
        )
    else:
        lines.append("  no category excluded: all 26 have positives and negatives in this set")
    dims = list(result.get("excluded_dimensions", []))
    if dims:
        lines.append(f"  excluded from mR2 (constant ground truth): {', '.join(dims)}")
    return "\n".join(lines)
