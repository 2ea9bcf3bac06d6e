"""``beenet demo``: the whole pipeline offline in minutes: synthesise, check, train, evaluate, report."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from beenet.data.check import check_bold
from beenet.errors import BeenetError, ConfigError

log = logging.getLogger(__name__)

DESCRIPTION = """\
Run beenet end to end on the embedded synthetic BoLD, offline, on a CPU:

  1. synthesise a dataset in the exact BoLD layout      (beenet synth)     OUT/data
  2. check it as a real BoLD directory would be checked (beenet data check) OUT/data_check.json
  3. train the 'demo' config (paper protocol split)     (beenet train)     OUT/run
  4. evaluate the best checkpoint on val and test       (beenet eval)      OUT/eval-val, OUT/eval-test
  5. write OUT/report.md: metrics with chance levels, the generator's upper bounds, plots, files

The synthetic people express emotions with their posture and motion, and the scene decides which
emotion a posture means, so a model that sees the context can beat one that does not. The whole
demo takes a few minutes on 2 CPU cores (about 10 at most); --quick runs a tiny version in well
under a minute (a smoke test: its numbers mean little).
"""

EPILOG = """\
examples:
  beenet demo                          # writes ./beenet-demo
  beenet demo --out /tmp/demo --clips 600 --epochs 12
  beenet demo --quick --out /tmp/demo-smoke
  beenet demo --out demo --set model.context_pool=mean   # any training override

Then try:  beenet eval --data beenet-demo/data --checkpoint beenet-demo/run/best.pt --split val
           beenet predict beenet-demo/data/videos --checkpoint beenet-demo/run/best.pt --out preds

The demo checkpoint learned from synthetic stick figures only: on real video it runs (a way to
try the pipeline), but its emotion scores mean nothing, and 'beenet predict' says so.
"""

#: Dataset size and training budget of the full demo, chosen to finish within ~10 min on 2 cores.
DEMO_CLIPS = 600
#: The tiny smoke version (``--quick``).
QUICK_CLIPS = 24
QUICK_OVERRIDES = (
    "data.image_size=32", "data.skeleton_frames=8", "model.stream_channels=16",
    "model.skeleton_channels=8", "optim.epochs=1", "optim.batch_size=8", "run.num_workers=0",
)
MARKER = "demo.json"
#: What the report and the console say about the demo checkpoint on real video.
SYNTHETIC_NOTE = ("this checkpoint learned from synthetic stick figures (beenet synth), not from people: "
                  "its emotion scores on real video mean nothing. 'beenet predict' runs with it, which "
                  "shows the pipeline works (people found, tracked, windows scored), and says so; for "
                  "meaningful scores train on BoLD (docs/training.md).")


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="beenet-demo", metavar="DIR", help="output directory (default: beenet-demo)")
    p.add_argument("--clips", type=int, default=None, metavar="N",
                   help=f"synthetic clips to generate (default: {DEMO_CLIPS}; --quick: {QUICK_CLIPS})")
    p.add_argument("--quick", action="store_true", help="tiny data, tiny model, one epoch: a smoke test")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="training epochs (default: the demo config's)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the synthetic data (default: 0)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of the demo training config (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo in DIR")
    return p


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise ConfigError(f"{out} exists and is not an earlier demo; choose another --out")
        if not overwrite:
            raise ConfigError(f"{out} holds an earlier demo; pass --overwrite to replace it, or choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def run(args: argparse.Namespace) -> int:
    from beenet.data.synth import SynthConfig, generate, oracle_report  # lazy: 'beenet demo --help' without torch
    from beenet.evaluation.evaluate import evaluate_checkpoint, write_json  # lazy: the same
    from beenet.run_config import load_config, save_yaml  # lazy: keeps 'beenet demo --help' fast (loads torch)
    from beenet.training.loop import train  # lazy: keeps 'beenet demo --help' fast (loads torch)

    t_start = time.perf_counter()
    out = Path(args.out)
    _prepare_out(out, args.overwrite)
    (out / MARKER).write_text(json.dumps({"command": "beenet demo", "quick": args.quick}) + "\n")
    times: dict[str, float] = {}

    # 1. synthesise
    clips = args.clips if args.clips is not None else (QUICK_CLIPS if args.quick else DEMO_CLIPS)
    scfg = SynthConfig(num_clips=clips, seed=args.seed, **(
        {"width": 64, "height": 48, "min_frames": 8, "max_frames": 16} if args.quick else {}))
    print(f"[1/5] synthesising {clips} clips into {out / 'data'} ...", flush=True)
    t = time.perf_counter()
    synth = generate(out / "data", scfg, overwrite=False)
    oracle = oracle_report(synth.plan)
    times["synthesis"] = time.perf_counter() - t

    # 2. check
    print("[2/5] checking the dataset like a real BoLD directory ...", flush=True)
    t = time.perf_counter()
    check = check_bold(out / "data")
    write_json(out / "data_check.json", check)
    if not check.get("usable"):
        raise BeenetError(f"the synthetic dataset failed 'beenet data check' (see {out / 'data_check.json'})")
    times["check"] = time.perf_counter() - t

    # 3. train
    overrides = (list(QUICK_OVERRIDES) if args.quick else []) + list(args.overrides)
    if args.epochs is not None:
        overrides.append(f"optim.epochs={args.epochs}")
    cfg = load_config("demo", overrides)
    print(f"[3/5] training the demo config for {cfg.optim.epochs} epoch(s) ({cfg.run.protocol} protocol) "
          f"into {out / 'run'} ...", flush=True)
    t = time.perf_counter()
    result = train(cfg, out / "data", out / "run")
    times["training"] = time.perf_counter() - t

    # 4. evaluate
    print("[4/5] evaluating the best checkpoint on val and test ...", flush=True)
    t = time.perf_counter()
    evals: dict[str, dict[str, Any]] = {}
    for split in ("val", "test"):
        evals[split] = evaluate_checkpoint(out / "data", out / "run" / "best.pt", split=split,
                                           protocol=cfg.run.protocol, out_dir=out / f"eval-{split}",
                                           batch_size=cfg.optim.batch_size, device=cfg.run.device,
                                           num_workers=cfg.run.num_workers)
    times["evaluation"] = time.perf_counter() - t
    times["total"] = time.perf_counter() - t_start

    # 5. report
    save_yaml(cfg, out / "demo_config.yaml")
    text = demo_report(out, cfg, result, evals, oracle, check, times, args.quick)
    (out / "report.md").write_text(text, encoding="utf-8")
    from beenet.view.run import write_eval_view, write_run_view  # lazy: keeps 'beenet demo --help' fast (loads torch)

    for split in ("val", "test"):
        write_eval_view(out / f"eval-{split}", out / "data", split, cfg.run.protocol, cfg.run.split_seed)
    write_run_view(out)  # report.html beside report.md: curves, bars, PR curves, config
    print("[5/5] report written\n")
    _print_summary(out, cfg, evals, times)
    return 0


def _print_summary(out: Path, cfg: Any, evals: dict[str, dict[str, Any]], times: dict[str, float]) -> None:
    from beenet.evaluation.report import format_scores  # lazy: keeps 'beenet demo --help' fast (loads torch)

    for split in ("val", "test"):
        print("\n\n".join(format_scores(evals[split], split, cfg.run.protocol).split("\n\n")[:2]))
        print()
    print(f"done in {times['total'] / 60:.1f} min. Outputs in {out}:")
    print(f"  report      {out / 'report.md'}  (interactive: {out / 'report.html'})")
    print(f"  checkpoint  {out / 'run' / 'best.pt'}  (training log and metrics.csv beside it)")
    print(f"  plots       {out / 'eval-val'}/*.png, {out / 'eval-test'}/*.png")
    print(f"  data        {out / 'data'}  (BoLD layout; 'beenet data check {out / 'data'}')")
    print(f"\nNote: {SYNTHETIC_NOTE}")
    print(f"To try the pipeline anyway: beenet predict VIDEO --checkpoint {out / 'run' / 'best.pt'} --out preds")


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def demo_report(out: Path, cfg: Any, result: dict[str, Any], evals: dict[str, dict[str, Any]],
                oracle: dict[str, Any], check: dict[str, Any], times: dict[str, float], quick: bool) -> str:
    """``report.md``: what ran, the scores beside chance and the generator's upper bounds, the files."""
    from beenet.metrics import HEADLINE_KEYS  # lazy: keeps 'beenet demo --help' fast (loads torch)

    keys = HEADLINE_KEYS
    lines = ["# beenet demo report", ""]
    if quick:
        lines += ["**Quick smoke run** (tiny data and model, one epoch): the numbers below say that the "
                  "pipeline runs, not how well the model can learn. Run `beenet demo` without `--quick` for that.", ""]
    lines += [
        f"Synthetic BoLD ({check['splits']['train']['instances'] + check['splits']['val']['instances']} labelled "
        f"instances), `{cfg.run.protocol}` protocol (clip-disjoint 60/10/30 split, seed {cfg.run.split_seed}); "
        f"config `demo` ({cfg.optim.epochs} epoch(s), best epoch {result.get('best_epoch')} by val ERS).",
        "",
        "## Scores",
        "",
        "| split | n | " + " | ".join(keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    for split, r in evals.items():
        lines.append(f"| {split} | {r['n']} | " + " | ".join(_f(r.get(k)) for k in keys) + " |")
    for split, r in evals.items():
        ch = r.get("chance") or {}
        lines.append(f"| chance ({split}) | | " + " | ".join(_f(ch.get(k)) for k in keys) + " |")
    orc = oracle.get("oracle", {})
    for name, label in (("body_context", "generator oracle: body + context"), ("body_only", "generator oracle: body only")):
        if name in orc:
            lines.append(f"| {label} | {oracle.get('instances')} | " + " | ".join(_f(orc[name].get(k)) for k in keys) + " |")
    excluded = sorted(set(evals["val"].get("excluded_categories", [])) | set(evals["test"].get("excluded_categories", [])))
    lines += [
        "",
        "Chance: mAP = positive rate per category, mRA = 0.5, mR2 = 0. The oracle rows are the generator's "
        "own expected scores (all instances): what a perfect model knowing body + context, or the body "
        "only, would reach. ERS = (mR2 + (mAP + mRA) / 2) / 2.",
    ]
    if excluded:
        lines.append(f"Left out of mAP/mRA on some split (no positive or no negative there): {', '.join(excluded)}.")
    lines += [
        "",
        "## Plots",
        "",
        "![per-category AP and AUC on val](eval-val/category_bars.png)",
        "",
        "![precision-recall curves on test](eval-test/pr_curves.png)",
        "",
        "## Files",
        "",
        "| what | where |",
        "|---|---|",
        "| synthetic dataset (BoLD layout) | `data/` |",
        "| dataset check | `data_check.json` |",
        "| training run (config.yaml, metrics.csv, train.log) | `run/` |",
        "| best checkpoint (by val ERS) | `run/best.pt` |",
        "| metrics, plots and predictions per split | `eval-val/`, `eval-test/` |",
        "| training config used | `demo_config.yaml` |",
        "",
        "## Time",
        "",
        "| step | seconds |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.1f} |" for k, v in times.items()]
    lines += [
        "",
        "## On real video",
        "",
        f"**Read this before running it on your own videos:** {SYNTHETIC_NOTE}",
        "",
        "To try the pipeline anyway: `beenet predict VIDEO --checkpoint run/best.pt --out preds` (it prints "
        "a warning, and the tables record `trained_on: synthetic` in their metadata).",
        "",
        "Next: `beenet eval --data data --checkpoint run/best.pt`, "
        "`beenet ablate --data data --out ablation` (the paper's ablation table).",
        "",
    ]
    return "\n".join(lines)
