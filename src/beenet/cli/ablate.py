"""``beenet ablate``: train and score model variants x seeds, and tabulate mean ± std."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Run an ablation study: every variant of the study is trained with the same budget (config,
epochs, data) for each seed (and split seed), selected on the val split, scored on the held-out
split (test under the paper protocols; val under official, whose test labels are withheld), and
summarised as mean ± std over seeds and split seeds.

studies:
  paper    the paper's table: emotion stream only; + place; + object; + both with concatenation;
           + both with probabilistic pooling (camode gate per sample, the authors' scaffold gate
           camode-scaffold, beenet per-sample form)
  pooling  docs/pooling.md's protocol, one site at a time: a (over frames) x every pooling kind,
           c (over contexts) x max/mean/gem/attention, b (over joints and time) when the skeleton
           stream is on; each run also scored with 25% / 50% distractor frames and with one
           context source dropped at test time. Use a video config (--config video).
  streams  whole frame; + body crop; + skeleton; all
  distill  the scale of the context distillation (docs/method.md section 4): off; KL in nats at
           weight 1 (older reading); KL / log K; KL / K (per-class mean); KL / K at weight 10

OUT receives runs/<variant>/seed<k>/ (full run directories), results.csv (one row per run and
stress setting), summary.csv and summary.md (printed at the end). Interrupt it at any time:
the same command again skips finished runs and resumes the unfinished one.
"""

EPILOG = """\
examples:
  beenet synth synth --clips 200 && beenet ablate --data synth --out abl-paper --config demo
      the paper's ablation on the synthetic data, 3 seeds, demo budget.
  beenet ablate --data synth --out abl-pool --config video --study pooling --seeds 3 --epochs 4
      compare poolings at sites a, b, c, with distractor and dropped-context stress tests.
  beenet ablate --data BOLD_public --out abl-streams --config video --study streams \\
          --set model.pretrained=true --set context.source=experts
      the body-stream study on real BoLD.
  beenet ablate --data synth --out abl-paper --only emotion,both-beenet --seeds 1
      two variants only.
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, metavar="DIR", help="BoLD directory (or 'beenet synth' output)")
    p.add_argument("--out", required=True, metavar="DIR", help="where runs and tables go (resumable)")
    p.add_argument("--config", default="demo", metavar="NAME|FILE", help="base config: preset or YAML (default: demo)")
    # No argparse choices: the study names belong to beenet.ablation.studies (importing
    # it here would make --help wait for torch); an unknown name is refused there, listing the studies.
    p.add_argument("--study", default="paper", metavar="NAME", help="which study, one of those above (default: paper)")
    p.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds per variant: run.seed, run.seed+1, ... (default: 3)")
    p.add_argument("--split-seeds", type=int, default=1, metavar="N",
                   help="split seeds per variant: run.split_seed, +1, ... (paper protocols; default: 1)")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="training epochs of every run (default: the config's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of the base config (repeatable)")
    p.add_argument("--only", default=None, metavar="V1,V2", help="run only these variants (comma separated)")
    return p


def run(args: argparse.Namespace) -> int:
    from beenet.ablation import run_ablation  # lazy: keeps 'beenet ablate --help' fast (loads torch)

    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    run_ablation(args.data, args.out, config=args.config, study=args.study, seeds=args.seeds,
                 epochs=args.epochs, overrides=args.overrides, only=only, split_seeds=args.split_seeds)
    print((Path(args.out) / "summary.md").read_text(), end="")
    print(f"tables: {args.out}/summary.md, {args.out}/summary.csv, {args.out}/results.csv")
    return 0
