"""The page of a training run, a demo folder or an eval output: ``report.html``.

Shows the curves of ``metrics.csv`` (losses; val mAP / mRA / mR2 / ERS with their chance levels),
per split the per-category AP / AUC bars and precision-recall curves (from ``metrics.json`` and
``pr_curves.json`` of an eval folder), and the resolved config.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from beenet.atomic import write_json, write_text
from beenet.data.bold import BoLD
from beenet.errors import BeenetError
from beenet.evaluation.predictions import align_predictions, instance_targets, read_predictions
from beenet.labels import CATEGORIES, POSITIVE_THRESHOLD
from beenet.metrics import HEADLINE_KEYS
from beenet.view.page import render_page
from beenet.view.reading import within

PAGE = "report.html"
PR_FILE = "pr_curves.json"
#: Points kept per precision-recall curve (enough for a 400 px wide plot).
PR_POINTS = 100


def find_run_parts(folder: Path) -> dict[str, Any]:
    """Where a run's files are: ``metrics.csv`` and config here or in ``run/``; eval folders
    (``metrics.json``) here or one level down."""
    folder = Path(folder)
    metrics = next((p for p in (folder / "metrics.csv", folder / "run" / "metrics.csv") if p.exists() and within(folder, p)), None)
    config = None
    for p in (folder / "config.yaml", folder / "run" / "config.yaml", folder / "demo_config.yaml"):
        if p.exists() and within(folder, p):  # a link out of the folder is not read into the page
            config = p
            break
    evals = []
    for p in [folder / "metrics.json", *sorted(folder.glob("*/metrics.json"))]:
        if p.exists() and within(folder, p) and within(folder, p.parent / PR_FILE):
            try:
                doc = json.loads(p.read_text(encoding="utf-8"))
            except ValueError:
                continue
            if isinstance(doc, dict) and "per_category" in doc:
                evals.append(p)
    return {"metrics_csv": metrics, "config": config, "evals": evals}


def read_metrics_csv(path: Path) -> dict[str, list[float | None]]:
    cols: dict[str, list[float | None]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for k, v in row.items():
                if k is None:
                    continue
                try:
                    x: float | None = float(v)
                    if not math.isfinite(x):
                        x = None
                except (TypeError, ValueError):
                    x = None
                cols.setdefault(k, []).append(x)
    return cols


def pr_curves(scores: np.ndarray, targets: np.ndarray, points: int = PR_POINTS) -> dict[str, list[list[float]]]:
    """Per category, ``[[recall...], [precision...]]`` thinned to about ``points`` points
    (targets binarised at the BoLD positive threshold)."""
    out: dict[str, list[list[float]]] = {}
    for k, name in enumerate(CATEGORIES):
        y = targets[:, k] >= POSITIVE_THRESHOLD
        if not y.any():
            continue
        order = np.argsort(-scores[:, k], kind="stable")
        tp = np.cumsum(y[order])
        prec = tp / np.arange(1, len(y) + 1)
        rec = tp / y.sum()
        idx = np.unique(np.linspace(0, len(y) - 1, min(points, len(y))).astype(int))
        out[name] = [np.round(rec[idx], 4).tolist(), np.round(prec[idx], 4).tolist()]
    return out


def write_pr_curves(folder: Path, scores: np.ndarray, targets: np.ndarray) -> Path:
    return write_json(Path(folder) / PR_FILE, pr_curves(np.asarray(scores), np.asarray(targets)))


def run_page_data(folder: Path) -> dict[str, Any]:
    parts = find_run_parts(folder)
    if not parts["metrics_csv"] and not parts["evals"]:
        raise BeenetError(f"{folder}: no metrics.csv (training run) and no metrics.json (eval output) here or in "
                          "its subfolders; give a 'beenet train' / 'beenet demo' / 'beenet eval --out' folder")
    data: dict[str, Any] = {"kind": "run", "title": f"beenet run: {Path(folder).resolve().name}",
                            "headline": list(HEADLINE_KEYS), "categories": list(CATEGORIES)}
    if parts["metrics_csv"]:
        data["metrics"] = read_metrics_csv(parts["metrics_csv"])
        data["metrics_file"] = str(parts["metrics_csv"].relative_to(folder))
    data["config"] = parts["config"].read_text(encoding="utf-8") if parts["config"] else None
    data["config_file"] = str(parts["config"].relative_to(folder)) if parts["config"] else None
    evals = []
    for p in parts["evals"]:
        doc = json.loads(p.read_text(encoding="utf-8"))
        pr = p.parent / PR_FILE
        evals.append({
            "folder": str(p.parent.relative_to(folder)) or ".", "split": doc.get("split"), "protocol": doc.get("protocol"),
            "n": doc.get("n"), "epoch": doc.get("epoch"),
            "scores": {k: doc.get(k) for k in HEADLINE_KEYS}, "chance": doc.get("chance", {}),
            "per_category": {k: {"AP": v.get("AP"), "AUC": v.get("AUC")} for k, v in (doc.get("per_category") or {}).items()},
            "pr": json.loads(pr.read_text(encoding="utf-8")) if pr.exists() else None,
        })
    data["evals"] = evals
    # chance levels for the val curves: from an eval of the val split when there is one
    val = next((e for e in evals if e["split"] == "val"), evals[0] if evals else None)
    data["chance"] = val["chance"] if val else {"mRA": 0.5, "mR2": 0.0}
    return data


def write_run_view(folder: str | Path, page: str = PAGE) -> Path:
    """Write ``folder/report.html`` for a training run, demo folder or eval output."""
    folder = Path(folder)
    data = run_page_data(folder)
    return write_text(folder / page, render_page(data["title"], "run.js", data))


def write_eval_view(folder: str | Path, data: str | Path, split: str, protocol: str, seed: int,
                    predictions: str | Path | None = None) -> Path | None:
    """After an eval into ``folder``: the PR curve data (from the predictions CSV and the split's
    labels) and ``folder/report.html``. None on an unlabelled split (nothing scored)."""
    folder = Path(folder)
    predictions = Path(predictions) if predictions is not None else folder / f"predictions_{split}.csv"
    instances = BoLD(data).instances(split, protocol=protocol, seed=seed)
    if any(i.categories is None for i in instances):
        return None
    if predictions.exists():
        scores, _ = align_predictions(read_predictions(predictions), instances)
        targets, _ = instance_targets(instances, f"the {protocol} {split} split")
        write_pr_curves(folder, scores, targets)
    if not find_run_parts(folder)["evals"] and not find_run_parts(folder)["metrics_csv"]:
        return None
    return write_run_view(folder)
