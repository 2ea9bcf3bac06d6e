"""The tables of an ablation: ``results.csv`` (one row per run and stress setting), the summary over
seeds (``summary.csv``) and its markdown (``summary.md``, also what ``beenet ablate`` prints).

Tables put the summary score first: :data:`TABLE_KEYS` is ``beenet.metrics.HEADLINE_KEYS`` with
ERS moved to the front.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from beenet import atomic
from beenet.metrics import HEADLINE_KEYS
from beenet.run_config import RunConfig

#: The headline metrics in table order: ERS, then the others as ``HEADLINE_KEYS`` orders them.
TABLE_KEYS: tuple[str, ...] = ("ERS", *(k for k in HEADLINE_KEYS if k != "ERS"))
#: Numbers reported beside the headline (``beenet.ablation.scoring``): the scores of a run that kept
#: its training BatchNorm statistics, with recalibrated ones, and the share of negative scores.
BESIDE_KEYS: tuple[str, ...] = (*(f"{k}_bn_recal" for k in TABLE_KEYS), "neg_share")
RESULT_FIELDS: tuple[str, ...] = (
    "study", "variant", "description", "stress", "seed", "split_seed", "split", "epochs", *TABLE_KEYS,
    *BESIDE_KEYS, "params", "added_params", "latency_ms", "train_s", "run_dir",
)


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    xs = [v for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return None, None
    return float(np.mean(xs)), float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and std over seeds per (variant, stress), in the order variants first appear."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["stress"]), []).append(r)
    out = []
    for (variant, stress), rs in groups.items():
        row: dict[str, Any] = {"variant": variant, "description": rs[0]["description"], "stress": stress,
                               "seeds": len(rs)}
        for k in TABLE_KEYS:
            m, s = _mean_std([r[k] for r in rs])
            row[f"{k}_mean"], row[f"{k}_std"] = m, s
        for k in BESIDE_KEYS:
            if any(r.get(k) is not None for r in rs):
                row[f"{k}_mean"], row[f"{k}_std"] = _mean_std([r.get(k) for r in rs])
        row["chance_ERS"] = (rs[0].get("chance") or {}).get("ERS")
        row["params"] = rs[0]["params"]
        row["added_params"] = rs[0]["added_params"]
        row["latency_ms"] = float(np.mean([r["latency_ms"] for r in rs]))
        out.append(row)
    return out


def summary_markdown(summary: list[dict[str, Any]], study: str, base: RunConfig, seeds: int,
                     split: str = "val", split_seeds: int = 1) -> str:
    """The summary as a markdown table: mean ± std over seeds and split seeds, added parameters,
    latency; then the numbers beside the headline when there are any (:func:`_beside_markdown`)."""
    chance = next((r["chance_ERS"] for r in summary if r.get("chance_ERS") is not None), None)
    columns = ["variant", "stress", *TABLE_KEYS, "added params", "latency ms/sample"]
    how = "selected on val, scored on test" if split == "test" else "selected and scored on val"
    lines = [
        f"## Ablation: {study} study ({base.run.protocol} protocol, {how}, {seeds} seed(s) x "
        f"{split_seeds} split seed(s), {base.optim.epochs} epochs each)",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for r in summary:
        cells = [f"{r['variant']} ({r['description']})", r["stress"], *(_pm(r, k) for k in TABLE_KEYS),
                 _params(r["added_params"]), f"{r['latency_ms']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("mean ± std over seeds and split seeds (std 0 with one run). Chance level: mRA 0.5, mR2 0"
                 + (f", ERS {chance:.4f}" if chance is not None else "") + ".")
    return "\n".join(lines + _beside_markdown(summary)) + "\n"


def _pm(r: dict[str, Any], k: str) -> str:
    m, s = r.get(f"{k}_mean"), r.get(f"{k}_std")
    return "n/a" if m is None else f"{m:.4f} ± {s:.4f}"


def _params(n: int | None) -> str:
    return "n/a" if n is None else f"{n:+,d}"


def _beside_markdown(summary: list[dict[str, Any]]) -> list[str]:
    """Lines of the second table: ERS and mR2 with recalibrated BatchNorm statistics (runs that kept
    their training statistics; the headline above is the checkpoint as saved) and the share of
    negative category scores (the linear Eq. 16); none when no run has either."""
    rows = [r for r in summary if any(f"{k}_mean" in r for k in BESIDE_KEYS)]
    if not rows:
        return []
    lines = ["", "Beside the headline (plain runs): the same checkpoints with BatchNorm statistics "
             "recalibrated over training batches (only for runs trained with run.bn_recalibrate=0; the "
             "headline above keeps the statistics the checkpoint was selected with), and the share "
             "of category scores below 0.", "",
             "| variant | ERS recalibrated BN | mR2 recalibrated BN | mAP recalibrated BN | negative scores |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {_pm(r, 'ERS_bn_recal')} | {_pm(r, 'mR2_bn_recal')} | "
                     f"{_pm(r, 'mAP_bn_recal')} | {_pm(r, 'neg_share')} |")
    return lines


def write_csv(path: Path, rows: list[dict[str, Any]], fields: tuple[str, ...]) -> None:
    """``rows`` as a CSV with columns ``fields`` (None -> empty, floats to 6 digits), atomically."""
    with atomic.atomic_open(path, newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r[k]))
                        for k in fields})
