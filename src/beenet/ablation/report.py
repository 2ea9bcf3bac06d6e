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
RESULT_FIELDS: tuple[str, ...] = (
    "study", "variant", "description", "stress", "seed", "epochs", *TABLE_KEYS,
    "params", "added_params", "latency_ms", "train_s", "run_dir",
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
        row["chance_ERS"] = (rs[0].get("chance") or {}).get("ERS")
        row["params"] = rs[0]["params"]
        row["added_params"] = rs[0]["added_params"]
        row["latency_ms"] = float(np.mean([r["latency_ms"] for r in rs]))
        out.append(row)
    return out


def summary_markdown(summary: list[dict[str, Any]], study: str, base: RunConfig, seeds: int) -> str:
    """The summary as a markdown table: mean ± std over seeds, added parameters, latency."""
    def pm(r: dict[str, Any], k: str) -> str:
        m, s = r[f"{k}_mean"], r[f"{k}_std"]
        return "n/a" if m is None else f"{m:.4f} ± {s:.4f}"

    def params(n: int | None) -> str:
        return "n/a" if n is None else f"{n:+,d}"

    chance = next((r["chance_ERS"] for r in summary if r.get("chance_ERS") is not None), None)
    columns = ["variant", "stress", *TABLE_KEYS, "added params", "latency ms/sample"]
    lines = [
        f"## Ablation: {study} study ({base.run.protocol} protocol, val split, {seeds} seed(s), "
        f"{base.optim.epochs} epochs each)",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for r in summary:
        cells = [f"{r['variant']} ({r['description']})", r["stress"], *(pm(r, k) for k in TABLE_KEYS),
                 params(r["added_params"]), f"{r['latency_ms']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("mean ± std over seeds (std 0 with one seed). Chance level: mRA 0.5, mR2 0"
                 + (f", ERS {chance:.4f}" if chance is not None else "") + ".")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: list[dict[str, Any]], fields: tuple[str, ...]) -> None:
    """``rows`` as a CSV with columns ``fields`` (None -> empty, floats to 6 digits), atomically."""
    with atomic.atomic_open(path, newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r[k]))
                        for k in fields})
