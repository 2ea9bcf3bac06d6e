"""``beenet train``: train a model on BoLD (or the synthetic data) into a run directory."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DESCRIPTION = """\
Train a BEE-NET model on a BoLD directory (the real release or 'beenet synth' output).

The run is described by a config: a preset (paper, demo, video, finetune) or a YAML file, changed with
--set SECTION.KEY=VALUE (repeatable; values are checked against the field's type). The resolved
config is written to RUN/config.yaml and stored in every checkpoint.

RUN receives config.yaml, metrics.csv (one row per epoch), best.pt (best val ERS), last.pt
(resumable), train.log. An existing RUN is never overwritten: use --resume to continue it
(the config then comes from RUN/config.yaml; --epochs may extend it).

Multi-GPU / multi-process: launch the module under torchrun, e.g.
  torchrun --nproc_per_node 4 -m beenet train --data BoLD --out runs/paper
Each process trains on its share of every epoch; only rank 0 writes; validation scores the whole split.
"""

EPILOG = """\
examples:
  beenet train --data BOLD_public --out runs/paper --config paper
      BEE-NET as published (paper protocol: clip-disjoint 60/10/30 split, seed 42).
  beenet train --data BOLD_public --out runs/official --config paper --protocol official
      the same model on BoLD's official train/val split.
  beenet train --data synth --out runs/demo --config demo --epochs 3 --set optim.lr=0.003
      a short run on 'beenet synth' data with a different learning rate.
  beenet train --data synth --out runs/video --config my.yaml --set model.temporal_pool=gem
      a config file, with one override.
  beenet train --data mine --out runs/tuned --config finetune --init beenet-demo/run/best.pt
      fine-tune a trained model on a 'beenet import' dataset (model, data and loss as the init's).
  beenet train --data synth --out runs/demo --resume
      continue runs/demo after an interruption, from its last.pt, exactly.

config keys (--set): SECTION.KEY, sections data, model, loss, optim, context, run.
--print-config shows every key with its value; a wrong key lists the valid ones, a wrong value
the valid choices (read off the config's types, so this help never lists a stale copy).
See docs/training.md.
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True, metavar="DIR", help="BoLD directory (annotations/, videos/, joints/)")
    p.add_argument("--out", required=True, metavar="RUN", help="run directory to create (or to resume)")
    p.add_argument("--config", default=None, metavar="NAME|FILE",
                   help="preset name (paper, demo, video, finetune) or a YAML file (default: paper; with --resume: RUN/config.yaml)")
    # No choices= copy: run.protocol's type owns them and names them when a value is wrong
    # (and reading it here would import torch for --help).
    p.add_argument("--protocol", default=None, metavar="NAME",
                   help="split protocol: official, paper (clip-disjoint) or paper-video (source-video-disjoint) "
                        "(sets run.protocol)")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="number of epochs (sets optim.epochs)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=0.001 (repeatable)")
    p.add_argument("--init", default=None, metavar="CKPT|FOLDER|HUB_ID",
                   help="start a new run from these weights (not their optimizer); the model config must be "
                        "the one they were trained with; the file's sha256 goes into the checkpoints")
    p.add_argument("--resume", action="store_true", help="continue RUN from RUN/last.pt")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return p


def resolve_config(args: argparse.Namespace):  # -> RunConfig
    """The run config from --config / RUN/config.yaml, --protocol, --epochs and --set."""
    from beenet.run_config import load_config  # lazy: keeps 'beenet train --help' fast (loads torch)

    overrides = list(args.overrides)
    if args.protocol is not None:
        overrides.append(f"run.protocol={args.protocol}")
    if args.epochs is not None:
        overrides.append(f"optim.epochs={args.epochs}")
    source = args.config
    if source is None:
        saved = Path(args.out) / "config.yaml"
        source = str(saved) if args.resume and saved.is_file() else "paper"
    init = getattr(args, "init", None)
    return load_config(source, overrides, init_config=(lambda: _stored_config(init)) if init else None)


def _stored_config(source: str) -> dict:
    """The run config stored with the weights ``--init`` names (the ``finetune`` preset's model,
    data and loss sections)."""
    from beenet.training.init import stored_config  # lazy: keeps 'beenet train --help' fast (loads torch)

    return stored_config(source)


def run(args: argparse.Namespace) -> int:
    from beenet.metrics import format_headline  # lazy: keeps 'beenet train --help' fast (loads torch)
    from beenet.run_config import to_yaml  # lazy: keeps 'beenet train --help' fast (loads torch)

    cfg = resolve_config(args)
    if args.print_config:
        print(to_yaml(cfg), end="")
        return 0
    from beenet.distributed import env_world_size  # lazy: keeps 'beenet train --help' fast (loads torch)
    from beenet.training.loop import train  # lazy: keeps 'beenet train --help' fast (loads torch)

    result = train(cfg, args.data, args.out, resume=args.resume, init=args.init)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return 0
    best = result.get("best") or {}
    last = result.get("val") or {}
    chance = best.get("chance") or {}
    run_dir = Path(result["run_dir"])

    print(f"run {run_dir} ({cfg.run.protocol} protocol, val split, {result['epochs_done']} epochs, "
          f"{env_world_size()} process(es))")
    print(f"  last epoch:   {format_headline(last)}")
    print(f"  best epoch {result.get('best_epoch')}: {format_headline(best)}")
    print(f"  chance:       {format_headline(chance)}")
    print("  (the best epoch was selected on this split, val, so its number is optimistic; "
          + ("the official test labels are withheld, so there is no held-out number under this protocol)"
             if cfg.run.protocol == "official" else
             f"the held-out number is `beenet eval --split test` on {run_dir / 'best.pt'})"))
    if cfg.run.bn_recalibrate == 0 and args.epochs is not None:
        _print_recalibrated(run_dir, args.data, cfg.run.device)
    print(f"checkpoints: {run_dir / 'best.pt'} (best val ERS), {run_dir / 'last.pt'}; "
          f"per-epoch metrics: {run_dir / 'metrics.csv'}")
    return 0


def _print_recalibrated(run_dir: Path, data: str | Path, device: str) -> None:
    """A shortened run (--epochs) that kept its training BatchNorm statistics (run.bn_recalibrate=0,
    the paper preset): the best epoch also with recalibrated statistics, beside the headline."""
    from beenet.ablation.scoring import RECAL_BATCHES, recalibrated_checkpoint_scores  # lazy: loads torch
    from beenet.metrics import format_headline  # lazy: keeps 'beenet train --help' fast (loads torch)

    recal = recalibrated_checkpoint_scores(run_dir / "best.pt", data, "val", device)
    print(f"  best epoch, BatchNorm recalibrated over {RECAL_BATCHES} training batches: {format_headline(recal)}")
    print("  (headline: the stored statistics above, as best.pt is saved and was selected; after a shortened "
          "run they can still lean on the init, docs/ablations.md section 5)")
