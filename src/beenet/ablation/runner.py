"""Running a study: every variant x seed x split seed trained on the same budget, selected on val
and scored on the held-out split (:mod:`~beenet.ablation.scoring`).

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
from beenet.ablation.scoring import held_out_split, negative_share, recalibrated_copy
from beenet.ablation.stress import Stress, applied
from beenet.ablation.studies import make_study, variant_config
from beenet.ablation.timing import latency_ms
from beenet.artifacts.loader import load_model
from beenet.data.bold import BoLD
from beenet.data.dataset import frame_level
from beenet.device import resolve_device
from beenet.errors import ConfigError
from beenet.evaluation.evaluate import load_split_context, predict_split, write_json
from beenet.metrics import bold_scores, headline
from beenet.progress import progress
from beenet.run_config import RunConfig, apply_overrides, load_config, model_needs_input_context
from beenet.training.loop import train

log = logging.getLogger(__name__)


def evaluate_run(run_dir: Path, data_dir: Path, stresses: Iterable[str], seed: int, device: torch.device,
                 batch_size: int, num_workers: int = 0, split: str | None = None) -> dict[str, Any]:
    """Score ``run_dir/best.pt`` (selected on val) on ``split`` (default: the protocol's held-out
    split, :func:`~beenet.ablation.scoring.held_out_split`) under each stress setting (names
    :meth:`Stress.parse` reads); parameters, latency, the share of negative category scores and,
    for a run that kept its training BatchNorm statistics, the scores with recalibrated ones."""
    model, ckpt = load_model(run_dir / "best.pt", device)
    cfg = RunConfig.from_dict(ckpt["config"])
    bold = BoLD(data_dir)
    split = split or held_out_split(cfg.run.protocol)
    insts = bold.instances(split, protocol=cfg.run.protocol, seed=cfg.run.split_seed)
    context = load_split_context(cfg, bold, insts, device) if model_needs_input_context(cfg.model) else None
    cat_t = np.stack([i.categories for i in insts])
    vad_t = np.stack([i.vad for i in insts])

    def score(m: torch.nn.Module, stress: Stress) -> tuple[dict[str, Any], np.ndarray]:
        with applied(stress, m, cfg.model.fusion_context, seed) as hook:
            cat, vad = predict_split(m, bold, insts, cfg.data, context, batch_size, device,
                                     num_workers=num_workers, batch_hook=hook, desc=f"{split} {stress}")
        return headline(bold_scores(cat, frame_level(cat_t, len(cat)), vad, frame_level(vad_t, len(vad)))), cat

    scores: dict[str, dict[str, Any]] = {}
    extra: dict[str, Any] = {}
    for stress in [Stress.parse(name) for name in stresses]:
        scores[str(stress)], cat = score(model, stress)
        if stress == Stress():
            extra["neg_share"] = negative_share(cat)
    if cfg.run.bn_recalibrate == 0:
        extra["bn_recal"] = _recalibrated_scores(model, cfg, bold, device, score)
    return {
        "scores": scores, "split": split, **extra,
        "params": int(sum(p.numel() for p in model.parameters())),
        "latency_ms": latency_ms(model, cfg, device),
        "epoch": ckpt.get("epoch"),
    }


def _recalibrated_scores(model: torch.nn.Module, cfg: RunConfig, bold: BoLD, device: torch.device,
                         score: Any) -> dict[str, Any]:
    """The plain scores of ``model`` with precise-BN statistics (reported beside the headline)."""
    train_inst = bold.instances("train", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
    ctx = load_split_context(cfg, bold, train_inst, device) if model_needs_input_context(cfg.model) else None
    return score(recalibrated_copy(model, cfg, bold, train_inst, ctx, device), Stress())[0]


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
    split_seeds: int = 1,
) -> list[dict[str, Any]]:
    """Train every variant x seed x split seed of ``study``, select each run on val and score it on
    the held-out split; write results.csv, summary.csv, summary.md.

    ``seeds`` vary the initialisation (``run.seed``, +1, ...), ``split_seeds`` the split of the
    ``paper`` protocols (``run.split_seed``, +1, ...). Returns the summary rows (one per variant and
    stress setting, mean ± std over every seed and split seed).
    """
    data_dir, out = Path(data_dir), Path(out_dir)
    extra = list(overrides) + ([f"optim.epochs={epochs}"] if epochs is not None else [])
    base = load_config(config, extra)
    st = make_study(study, base)
    variants = _chosen_variants(st, study, only)
    if seeds < 1 or split_seeds < 1:
        raise ConfigError(f"--seeds and --split-seeds must be >= 1, got {seeds} and {split_seeds}")
    seed_list = [base.run.seed + i for i in range(seeds)]
    split_list = [base.run.split_seed + i for i in range(split_seeds)]
    check_ablation_out(out)  # never into a user's folder; its own folder resumes
    out.mkdir(parents=True, exist_ok=True)
    _check_same_study(out, study, config, extra)
    device = resolve_device(base.run.device)
    split = held_out_split(base.run.protocol)

    jobs = [(v, ss, s) for v in variants for ss in split_list for s in seed_list]
    rows: list[dict[str, Any]] = []
    for v, split_seed, seed in progress(jobs, desc=f"ablate {study}", unit="run"):
        cfg = variant_config(st, v, seed)
        apply_overrides(cfg, [f"run.split_seed={split_seed}"])
        name = f"seed{seed}" if split_seed == base.run.split_seed else f"split{split_seed}-seed{seed}"
        run_dir = out / "runs" / v.name / name
        result = _run_once(cfg, v.stresses, data_dir, run_dir, seed, device, eval_batch_size, split)
        rows += _result_rows(study, v, cfg, seed, split_seed, run_dir, result)
    base_params = {r["params"] for r in rows if r["variant"] == st.baseline}
    bp = next(iter(base_params)) if base_params else None
    for r in rows:
        r["added_params"] = (r["params"] - bp) if bp is not None else None
    write_csv(out / "results.csv", rows, RESULT_FIELDS)
    summary = summarise(rows)
    write_csv(out / "summary.csv", summary, tuple(summary[0]) if summary else ())
    md = summary_markdown(summary, study, base, seeds=len(seed_list), split=split, split_seeds=len(split_list))
    atomic.write_text(out / "summary.md", md)
    return summary


def _chosen_variants(st: Any, study: str, only: Iterable[str] | None) -> list[Any]:
    """The study's variants, or those ``only`` names (an unknown name is refused, listing them)."""
    if not only:
        return list(st.variants)
    wanted = list(only)
    names = [v.name for v in st.variants]
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise ConfigError(f"unknown variant(s) {', '.join(unknown)} for study {study!r}; variants: {', '.join(names)}")
    return [v for v in st.variants if v.name in wanted]


def _run_once(cfg: RunConfig, stresses: Iterable[str], data_dir: Path, run_dir: Path, seed: int,
              device: torch.device, eval_batch_size: int, split: str) -> dict[str, Any]:
    """Train (or resume) one run and score it on ``split``; a finished run is not trained again,
    and one scored on another split (an older study) is only re-scored."""
    result_path = run_dir / "result.json"
    if result_path.is_file():
        result = json.loads(result_path.read_text())
        if result.get("split", "val") == split:  # result.json of older studies: scored on val
            log.info("%s: done before, skipped", run_dir)
            return result
        train_s = result.get("train_s")
    else:
        t0 = time.perf_counter()
        if (run_dir / "last.pt").is_file():
            train(cfg, data_dir, run_dir, resume=True)
        else:
            if run_dir.exists():
                shutil.rmtree(run_dir)  # a run that died before its first checkpoint
            train(cfg, data_dir, run_dir)
        train_s = time.perf_counter() - t0
    result = evaluate_run(run_dir, data_dir, stresses, seed, device, eval_batch_size,
                          num_workers=cfg.run.num_workers, split=split)
    result["train_s"] = train_s
    write_json(result_path, result)
    return result


def _result_rows(study: str, v: Any, cfg: RunConfig, seed: int, split_seed: int, run_dir: Path,
                 result: dict[str, Any]) -> list[dict[str, Any]]:
    """One results.csv row per stress setting of one run (the plain row carries the extra numbers)."""
    rows = []
    recal = result.get("bn_recal") or {}
    for stress, sc in result["scores"].items():
        plain = stress == "none"
        rows.append({
            "study": study, "variant": v.name, "description": v.description, "stress": stress,
            "seed": seed, "split_seed": split_seed, "split": result.get("split", "val"),
            "epochs": cfg.optim.epochs, **{k: sc.get(k) for k in TABLE_KEYS},
            **{f"{k}_bn_recal": recal.get(k) if plain else None for k in TABLE_KEYS},
            "neg_share": result.get("neg_share") if plain else None,
            "params": result["params"], "latency_ms": result["latency_ms"], "train_s": result.get("train_s"),
            "run_dir": str(run_dir), "chance": sc.get("chance"),
        })
    return rows


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
