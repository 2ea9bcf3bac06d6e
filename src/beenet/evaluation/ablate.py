"""Ablation studies: variants x seeds, each trained on the same budget and scored on val.

Studies (``docs/training.md``):

- ``paper``: the paper's ablation table. Emotion stream only; + place; + object; + both with
  concatenation; + both with probabilistic pooling (``camode`` gate and the ``beenet`` per-sample
  form).
- ``pooling``: ``pooling.md``'s protocol, one site at a time with everything else fixed: site a
  (over frames) over every pooling kind, site c (over contexts) over max/mean/gem/attention, site
  b (over joints and time) when the skeleton stream is on; every run is also scored under stress:
  distractor frames (25% and 50% of each clip's frames replaced at test time by frames of other
  instances) and one context source dropped at test time.
- ``streams``: whole frame; + body crop; + skeleton; all.

Layout of ``out``: ``runs/<variant>/seed<k>/`` (a normal run directory plus ``result.json``),
``results.csv`` (one row per run and stress setting), ``summary.csv`` and ``summary.md`` (mean and
std over seeds). A run with a ``result.json`` is skipped, an unfinished one resumes from its
``last.pt``: interrupting and re-running the same command continues the study.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from beenet import atomic
from beenet.errors import ConfigError
from beenet.progress import progress
from beenet.training.config import RunConfig, apply_overrides, load_config, validate

log = logging.getLogger(__name__)

STUDIES = ("paper", "pooling", "streams")
HEADLINE = ("ERS", "mAP", "mRA", "mR2")
CONTEXT_POOL_SITE_C = ("max", "mean", "gem", "attention")
RESULT_FIELDS = (
    "study", "variant", "description", "stress", "seed", "epochs", "ERS", "mAP", "mRA", "mR2",
    "params", "added_params", "latency_ms", "train_s", "run_dir",
)


@dataclass(frozen=True)
class Variant:
    """One model variant: a name, what it changes against the study's base config, and the stress
    settings it is also scored under (``"none"`` = plain val)."""

    name: str
    overrides: tuple[str, ...]
    description: str
    stresses: tuple[str, ...] = ("none",)


@dataclass
class Study:
    name: str
    base: RunConfig
    variants: list[Variant] = field(default_factory=list)
    baseline: str = ""


def _pool_kinds() -> tuple[str, ...]:
    from beenet.models.pooling import POOL_KINDS

    return tuple(POOL_KINDS)


def stresses_for(cfg: RunConfig) -> tuple[str, ...]:
    """Stress settings that mean something for ``cfg``: distractors always, context drops per part."""
    out = ["none", "distractors-25", "distractors-50"]
    m = cfg.model
    if m.fusion != "none":
        if m.place_stream:
            out.append("drop-places")
        if m.object_stream:
            out.append("drop-objects")
    return tuple(out)


def make_study(name: str, base: RunConfig) -> Study:
    """The variants of study ``name`` on top of ``base`` (one site / stream / context at a time)."""
    if name not in STUDIES:
        raise ConfigError(f"unknown study {name!r}; studies: {', '.join(STUDIES)}")
    st = Study(name=name, base=base)
    if name == "paper":
        st.variants = [
            Variant("emotion", ("model.fusion=none", "model.place_stream=false", "model.object_stream=false"),
                    "emotion stream only"),
            Variant("place", ("model.fusion=beenet", "model.place_stream=true", "model.object_stream=false"),
                    "+ place context (beenet fusion)"),
            Variant("object", ("model.fusion=beenet", "model.place_stream=false", "model.object_stream=true"),
                    "+ object context (beenet fusion)"),
            Variant("both-concat", ("model.fusion=concat", "model.place_stream=true", "model.object_stream=true"),
                    "+ both, concatenation"),
            Variant("both-camode", ("model.fusion=camode", "model.place_stream=true", "model.object_stream=true"),
                    "+ both, probabilistic pooling (CA-MoDE gate)"),
            Variant("both-beenet", ("model.fusion=beenet", "model.place_stream=true", "model.object_stream=true"),
                    "+ both, probabilistic pooling (BEE-NET per-sample)"),
        ]
        st.baseline = "emotion"
    elif name == "streams":
        st.variants = [
            Variant("frame", ("model.body_crop=none", "data.body_crop=false", "model.skeleton=false",
                              "data.skeleton=false"), "whole frame"),
            Variant("frame+crop", ("model.body_crop=shared", "data.body_crop=true", "model.skeleton=false",
                                   "data.skeleton=false"), "+ body crop"),
            Variant("frame+skeleton", ("model.body_crop=none", "data.body_crop=false", "model.skeleton=true",
                                       "data.skeleton=true"), "+ skeleton (ST-GCN)"),
            Variant("all", ("model.body_crop=shared", "data.body_crop=true", "model.skeleton=true",
                            "data.skeleton=true"), "frame + crop + skeleton"),
        ]
        st.baseline = "frame"
    else:  # pooling
        stress = stresses_for(base)
        m = base.model
        st.variants = [Variant("baseline", (), f"base config (a={m.temporal_pool}, c={m.context_pool}"
                               + (f", b={m.skeleton_pool})" if m.skeleton else ")"), stress)]
        for kind in _pool_kinds():
            if kind != m.temporal_pool:
                st.variants.append(Variant(f"a-{kind}", (f"model.temporal_pool={kind}",),
                                           f"site a (frames): {kind}", stress))
        if m.fusion == "beenet":
            for kind in CONTEXT_POOL_SITE_C:
                if kind != m.context_pool:
                    st.variants.append(Variant(f"c-{kind}", (f"model.context_pool={kind}",),
                                               f"site c (contexts): {kind}", stress))
        else:
            log.info("pooling study: site c skipped (model.fusion=%s has no pooling over contexts)", m.fusion)
        if m.skeleton:
            for kind in _pool_kinds():
                if kind != m.skeleton_pool:
                    st.variants.append(Variant(f"b-{kind}", (f"model.skeleton_pool={kind}",),
                                               f"site b (joints x time): {kind}", stress))
        st.baseline = "baseline"
        if base.data.frames_per_sample == 1:
            log.warning("pooling study on still frames (T=1): site a pools a single frame; use a config "
                        "with data.sampling=uniform (e.g. --config video) to compare temporal poolings")
    return st


def variant_config(study: Study, variant: Variant, seed: int) -> RunConfig:
    cfg = RunConfig.from_dict(study.base.to_dict())
    apply_overrides(cfg, list(variant.overrides) + [f"run.seed={seed}"])
    try:
        validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"ablation variant {variant.name!r} ({variant.description}): {exc}") from None
    return cfg


# --------------------------------------------------------------------------- stress at test time


def distractor_hook(fraction: float, seed: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Replace ``fraction`` of each instance's real frames (and crops) by frames of other instances.

    Donors are the batch rolled by one (another instance), or the previous batch for a batch of one.
    A still (one real frame) is replaced with probability ``fraction``. Seeded, so every variant sees
    the same corruption.
    """
    g = torch.Generator().manual_seed(seed)
    state: dict[str, dict[str, torch.Tensor]] = {}

    def hook(batch: dict[str, Any]) -> dict[str, Any]:
        batch = dict(batch)
        keys = [k for k in ("frames", "crops") if k in batch]
        B = batch["frames"].shape[0]
        donors = {k: (torch.roll(batch[k], 1, 0) if B > 1 else state.get("prev", {}).get(k)) for k in keys}
        state["prev"] = {k: batch[k].clone() for k in keys}
        if any(d is None or d.shape[1:] != batch[k].shape[1:] for k, d in donors.items()):
            return batch
        mask = batch["frame_mask"]
        new = {k: batch[k].clone() for k in keys}
        for b in range(B):
            real = torch.nonzero(mask[b]).flatten()
            n = int(real.numel())
            if n == 0:
                continue
            if n == 1:
                k = int(torch.rand((), generator=g).item() < fraction)
            else:
                k = int(math.floor(fraction * n + 0.5))
            if k == 0:
                continue
            pick = real[torch.randperm(n, generator=g)[:k]]
            for key in keys:
                dm = donors[key]
                new[key][b, pick] = dm[b % dm.shape[0], pick]
        batch.update(new)
        return batch

    return hook


def drop_context_input(part: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Zero the ``places`` or ``objects`` part of ``batch["context"]`` (a context source lost)."""
    from beenet.labels import CONTEXT_SLICES

    sl = CONTEXT_SLICES[part]

    def hook(batch: dict[str, Any]) -> dict[str, Any]:
        if "context" not in batch:
            return batch
        batch = dict(batch)
        ctx = batch["context"].clone()
        ctx[:, sl] = 0.0
        batch["context"] = ctx
        return batch

    return hook


class _DropStream:
    """Forward hook that makes a context stream uninformative (zero logits: a uniform softmax)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.handle = module.register_forward_hook(self._hook)

    @staticmethod
    def _hook(module: torch.nn.Module, args: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (torch.zeros_like(output[0]), *output[1:])
        return torch.zeros_like(output)

    def remove(self) -> None:
        self.handle.remove()


# --------------------------------------------------------------------------- measuring


def dummy_batch(cfg: RunConfig, batch_size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Random inputs of the shapes ``cfg``'s model reads (for latency measurements)."""
    from beenet.labels import CONTEXT_DIM, CONTEXT_SLICES, NUM_JOINTS

    g = torch.Generator().manual_seed(0)
    d = cfg.data
    T = d.frames_per_sample
    b: dict[str, torch.Tensor] = {
        "frames": torch.randn(batch_size, T, 3, d.image_size, d.image_size, generator=g),
        "frame_mask": torch.ones(batch_size, T, dtype=torch.bool),
    }
    if cfg.model.body_crop != "none":
        b["crops"] = torch.randn(batch_size, T, 3, d.crop_size, d.crop_size, generator=g)
    if cfg.model.skeleton:
        b["skeleton"] = torch.randn(batch_size, d.skeleton_frames, NUM_JOINTS, 3, generator=g)
        b["skeleton_mask"] = torch.ones(batch_size, d.skeleton_frames, NUM_JOINTS, dtype=torch.bool)
    ctx = torch.rand(batch_size, CONTEXT_DIM, generator=g)
    for sl in CONTEXT_SLICES.values():
        ctx[:, sl] /= ctx[:, sl].sum(1, keepdim=True)
    b["context"] = ctx
    return {k: v.to(device) for k, v in b.items()}


@torch.no_grad()
def latency_ms(model: torch.nn.Module, cfg: RunConfig, device: torch.device, batch_size: int = 8,
               repeats: int = 5) -> float:
    """Median forward time per sample (ms) on a batch of ``batch_size``, after a warm-up pass."""
    model.eval()
    batch = dummy_batch(cfg, batch_size, device)
    model(batch)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        model(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times)) / batch_size


def evaluate_run(run_dir: Path, data_dir: Path, stresses: Iterable[str], seed: int, device: torch.device,
                 batch_size: int, num_workers: int = 0) -> dict[str, Any]:
    """Score ``run_dir/best.pt`` on val under each stress setting; parameters and latency."""
    from beenet.data.bold import BoLD
    from beenet.evaluation.evaluate import load_split_context, predict_split
    from beenet.metrics import bold_scores
    from beenet.training.checkpoint import model_from_checkpoint
    from beenet.training.config import model_needs_input_context

    model, ckpt = model_from_checkpoint(run_dir / "best.pt", device)
    cfg = RunConfig.from_dict(ckpt["config"])
    bold = BoLD(data_dir)
    val = bold.instances("val", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
    context = load_split_context(cfg, bold, val, device) if model_needs_input_context(cfg.model) else None
    cat_t = np.stack([i.categories for i in val])
    vad_t = np.stack([i.vad for i in val])
    scores: dict[str, dict[str, Any]] = {}
    for stress in stresses:
        hook = None
        dropper = None
        if stress.startswith("distractors-"):
            hook = distractor_hook(int(stress.split("-")[1]) / 100.0, seed=seed)
        elif stress.startswith("drop-"):
            part = stress.split("-")[1]
            if cfg.model.fusion_context == "input":
                hook = drop_context_input(part)
            else:
                dropper = _DropStream(getattr(model, "place_stream" if part == "places" else "object_stream"))
        try:
            cat, vad = predict_split(model, bold, val, cfg.data, context, batch_size, device,
                                     num_workers=num_workers, batch_hook=hook, desc=f"val {stress}")
        finally:
            if dropper is not None:
                dropper.remove()
        s = bold_scores(cat, cat_t, vad, vad_t)
        scores[stress] = {k: s[k] for k in HEADLINE} | {"chance": s["chance"]}
    return {
        "scores": scores,
        "params": int(sum(p.numel() for p in model.parameters())),
        "latency_ms": latency_ms(model, cfg, device),
        "epoch": ckpt.get("epoch"),
    }


# --------------------------------------------------------------------------- the runner


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    xs = [v for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return None, None
    return float(np.mean(xs)), float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0


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
    from beenet.device import resolve_device
    from beenet.training.loop import train

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
            from beenet.evaluation.evaluate import write_json

            write_json(result_path, result)
        for stress, sc in result["scores"].items():
            rows.append({
                "study": study, "variant": v.name, "description": v.description, "stress": stress,
                "seed": seed, "epochs": cfg.optim.epochs, **{k: sc.get(k) for k in HEADLINE},
                "params": result["params"], "latency_ms": result["latency_ms"], "train_s": result.get("train_s"),
                "run_dir": str(run_dir), "chance": sc.get("chance"),
            })
    base_params = {r["params"] for r in rows if r["variant"] == st.baseline}
    bp = next(iter(base_params)) if base_params else None
    for r in rows:
        r["added_params"] = (r["params"] - bp) if bp is not None else None
    _write_csv(out / "results.csv", rows, RESULT_FIELDS)
    summary = summarise(rows)
    _write_csv(out / "summary.csv", summary, tuple(summary[0]) if summary else ())
    md = summary_markdown(summary, study, base, seeds=len(seed_list))
    atomic.write_text(out / "summary.md", md)
    return summary


def _check_same_study(out: Path, study: str, config: str, overrides: list[str]) -> None:
    """Refuse to mix two different studies in one output directory."""
    meta = {"study": study, "config": config, "overrides": overrides}
    path = out / "study.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old != meta:
            raise ConfigError(
                f"{out} holds another ablation ({old}); re-run with the same --study/--config/--set to "
                "continue it, or choose another --out"
            )
    else:
        path.write_text(json.dumps(meta, indent=2) + "\n")


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and std over seeds per (variant, stress), in the order variants first appear."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["stress"]), []).append(r)
    out = []
    for (variant, stress), rs in groups.items():
        row: dict[str, Any] = {"variant": variant, "description": rs[0]["description"], "stress": stress,
                               "seeds": len(rs)}
        for k in HEADLINE:
            m, s = _mean_std([r[k] for r in rs])
            row[f"{k}_mean"], row[f"{k}_std"] = m, s
        row["chance_ERS"] = (rs[0].get("chance") or {}).get("ERS")
        row["params"] = rs[0]["params"]
        row["added_params"] = rs[0]["added_params"]
        row["latency_ms"] = float(np.mean([r["latency_ms"] for r in rs]))
        out.append(row)
    return out


def summary_markdown(summary: list[dict[str, Any]], study: str, base: RunConfig, seeds: int) -> str:
    def pm(r: dict[str, Any], k: str) -> str:
        m, s = r[f"{k}_mean"], r[f"{k}_std"]
        return "n/a" if m is None else f"{m:.4f} ± {s:.4f}"

    def params(n: int | None) -> str:
        return "n/a" if n is None else f"{n:+,d}"

    chance = next((r["chance_ERS"] for r in summary if r.get("chance_ERS") is not None), None)
    lines = [
        f"## Ablation: {study} study ({base.run.protocol} protocol, val split, {seeds} seed(s), "
        f"{base.optim.epochs} epochs each)",
        "",
        "| variant | stress | ERS | mAP | mRA | mR2 | added params | latency ms/sample |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        lines.append(
            f"| {r['variant']} ({r['description']}) | {r['stress']} | {pm(r, 'ERS')} | {pm(r, 'mAP')} | "
            f"{pm(r, 'mRA')} | {pm(r, 'mR2')} | {params(r['added_params'])} | {r['latency_ms']:.2f} |"
        )
    lines.append("")
    lines.append("mean ± std over seeds (std 0 with one seed). Chance level: mRA 0.5, mR2 0"
                 + (f", ERS {chance:.4f}" if chance is not None else "") + ".")
    return "\n".join(lines) + "\n"


def _write_csv(path: Path, rows: list[dict[str, Any]], fields: tuple[str, ...]) -> None:
    with atomic.atomic_open(path, newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r[k]))
                        for k in fields})
