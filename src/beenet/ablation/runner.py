"""Running a study: every variant x seed trained on the same budget, then scored on val.

A run with a ``result.json`` is skipped, an unfinished one resumes from its ``last.pt``:
interrupting and re-running the same command continues the study. Which runs exist is
:mod:`~beenet.ablation.studies`' business, how they are scored under stress
:mod:`~beenet.ablation.stress`'s, and the tables :mod:`~beenet.ablation.report`'s.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from beenet import atomic
from beenet.ablation.outdir import STUDY_FILE, check_ablation_out
from beenet.ablation.report import RESULT_FIELDS, TABLE_KEYS, summarise, summary_markdown, write_csv
from beenet.ablation.stress import Stress, applied
from beenet.ablation.studies import make_study, variant_config
from beenet.ablation.timing import latency_ms
from beenet.artifacts.loader import load_model
from beenet.data.bold import BoLD
from beenet.device import resolve_device
from beenet.errors import ConfigError
from beenet.evaluation.evaluate import load_split_context, predict_split, write_json
from beenet.metrics import bold_scores, headline
from beenet.progress import progress
from beenet.run_config import RunConfig, load_config, model_needs_input_context
from beenet.training.loop import train

log = logging.getLogger(__name__)


def evaluate_run(run_dir: Path, data_dir: Path, stresses: Iterable[str], seed: int, device: torch.device,
                 batch_size: int, num_workers: int = 0) -> dict[str, Any]:
    """Score ``run_dir/best.pt`` on val under each stress setting (names :meth:`Stress.parse` reads);
    parameters and latency."""
    model, ckpt = load_model(run_dir / "best.pt", device)
    cfg = RunConfig.from_dict(ckpt["config"])
    bold = BoLD(data_dir)
    val = bold.instances("val", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
    context = load_split_context(cfg, bold, val, device) if model_needs_input_context(cfg.model) else None
    cat_t = np.stack([i.categories for i in val])
    vad_t = np.stack([i.vad for i in val])
    scores: dict[str, dict[str, Any]] = {}
    for stress in [Stress.parse(name) for name in stresses]:
        with applied(stress, model, cfg.model.fusion_context, seed) as hook:
            cat, vad = predict_split(model, bold, val, cfg.data, context, batch_size, device,
                                     num_workers=num_workers, batch_hook=hook, desc=f"val {stress}")
        scores[str(stress)] = headline(bold_scores(cat, cat_t, vad, vad_t))
    return {
        "scores": scores,
        "params": int(sum(p.numel() for p in model.parameters())),
        "latency_ms": latency_ms(model, cfg, device),
        "epoch": ckpt.get("epoch"),
    }


def run_ablation(
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: str = "demo",
    study: str = "paper",
    seeds: int = 3,
    epochs: int | None = None,
    overrides: Iterable[str] = (),
    only: Iterable[str] | None = None,
    eval_batch_size: int = 16,
) -> list[dict[str, Any]]:
    """Train and score every variant x seed of ``study``; write results.csv, summary.csv, summary.md.

    Returns the summary rows (one per variant and stress setting).
    """
    data_dir, out = Path(data_dir), Path(out_dir)
    extra = list(overrides) + ([f"optim.epochs={epochs}"] if epochs is not None else [])
    base = load_config(config, extra)
    st = make_study(study, base)
    variants = st.variants
    if only:
        wanted = list(only)
        names = [v.name for v in variants]
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise ConfigError(f"unknown variant(s) {', '.join(unknown)} for study {study!r}; variants: {', '.join(names)}")
        variants = [v for v in variants if v.name in wanted]
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    seed_list = [base.run.seed + i for i in range(seeds)]
    check_ablation_out(out)  # never into a user's folder; its own folder resumes
    out.mkdir(parents=True, exist_ok=True)
    _check_same_study(out, study, config, extra)
    device = resolve_device(base.run.device)

    jobs = [(v, s) for v in variants for s in seed_list]
    rows: list[dict[str, Any]] = []
    for v, seed in progress(jobs, desc=f"ablate {study}", unit="run"):
        cfg = variant_config(st, v, seed)
        run_dir = out / "runs" / v.name / f"seed{seed}"
        result_path = run_dir / "result.json"
        if result_path.is_file():
            result = json.loads(result_path.read_text())
            log.info("%s seed %d: done before, skipped", v.name, seed)
        else:
            t0 = time.perf_counter()
            if (run_dir / "last.pt").is_file():
                train(cfg, data_dir, run_dir, resume=True)
            else:
                if run_dir.exists():
                    shutil.rmtree(run_dir)  # a run that died before its first checkpoint
                train(cfg, data_dir, run_dir)
            train_s = time.perf_counter() - t0
            result = evaluate_run(run_dir, data_dir, v.stresses, seed, device, eval_batch_size,
                                  num_workers=cfg.run.num_workers)
            result["train_s"] = train_s

            write_json(result_path, result)
        for stress, sc in result["scores"].items():
            rows.append({
                "study": study, "variant": v.name, "description": v.description, "stress": stress,
                "seed": seed, "epochs": cfg.optim.epochs, **{k: sc.get(k) for k in TABLE_KEYS},
                "params": result["params"], "latency_ms": result["latency_ms"], "train_s": result.get("train_s"),
                "run_dir": str(run_dir), "chance": sc.get("chance"),
            })
    base_params = {r["params"] for r in rows if r["variant"] == st.baseline}
    bp = next(iter(base_params)) if base_params else None
    for r in rows:
        r["added_params"] = (r["params"] - bp) if bp is not None else None
    write_csv(out / "results.csv", rows, RESULT_FIELDS)
    summary = summarise(rows)
    write_csv(out / "summary.csv", summary, tuple(summary[0]) if summary else ())
    md = summary_markdown(summary, study, base, seeds=len(seed_list))
    atomic.write_text(out / "summary.md", md)
    return summary


def _check_same_study(out: Path, study: str, config: str, overrides: list[str]) -> None:
    """Refuse to mix two different studies in one output directory."""
    meta = {"study": study, "config": config, "overrides": overrides}
    path = out / STUDY_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        if old != meta:
            raise ConfigError(
                f"{out} holds another ablation ({old}); re-run with the same --study/--config/--set to "
                "continue it, or choose another --out"
            )
    else:
        path.write_text(json.dumps(meta, indent=2) + "\n")
