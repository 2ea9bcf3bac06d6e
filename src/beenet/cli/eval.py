"""``beenet eval``: score a predictions CSV or a checkpoint on a BoLD split with the BoLD metric.

Heavy modules (torch, matplotlib, the data reader) are imported inside ``run`` so that
``beenet eval --help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from beenet import atomic
from beenet.data.bold import BoLD
from beenet.data.splits import PROTOCOLS
from beenet.errors import BeenetError, PredictionsError

#: Protocol and split seed of --predictions runs when none is given.
DEFAULT_PROTOCOL = "official"
DEFAULT_SEED = 42
#: Result keys that are not files the evaluator wrote (not echoed as such).
_NOT_FILES = frozenset({"split", "protocol", "excluded_categories", "excluded_dimensions", "overlap"})

DESCRIPTION = """\
Score predictions with the BoLD metric: mAP and mRA (mean ROC AUC) over the 26 categories
(ground truth binarised at >= 0.5), mR2 over valence, arousal and dominance, and
ERS = (mR2 + (mAP + mRA) / 2) / 2. Categories with no positive or no negative in the split
cannot have an AP or AUC: they are left out of the means and listed in the report.

Two sources of predictions:
  --predictions FILE   a CSV with the header
                       video,person_id,<26 categories in BoLD order>,valence,arousal,dominance
                       and one row per instance of the split, matched by (video, person_id)
                       (row order does not matter; missing, duplicate or unknown rows are errors,
                       so is a value that is not a finite number: line and column are named).
                       Category scores outside [0, 1] or VAD outside [0, 10] are scored with a
                       warning naming the columns and the number of rows (the paper's 'scale'
                       fusion scores categories up to 1/lambda).
  --checkpoint CKPT    a beenet checkpoint: the model is run on the split, plots are written to
                       --out, and on the test split the predictions CSV as well.

Protocols:
  official   BoLD's own split: train.csv, val.csv, test_meta.csv. The test labels are withheld
             by BoLD, so the official test split cannot be scored here: score val, or submit the
             test predictions to the BoLD organisers.
  paper      BEE-NET's clip-disjoint 60/10/30 split of the labelled instances, drawn with --seed
             and saved under DIR/splits/. Its numbers are NOT comparable with official ones.
  paper-video  the same 60/10/30 fractions, but every clip of one source video
             (003/<video>.mp4/<clip>.mp4) stays in one part: stricter than 'paper'.

A checkpoint scored on the split its best epoch was selected on (val of its own protocol) is
marked "selected on this split": that number is optimistic. A split with instances from clips the
checkpoint trained on (another --protocol or --seed than the checkpoint's, or --split train) is
refused; --allow-overlap scores it anyway and prints the overlap beside every number.

The report prints the split and protocol beside every number, with chance levels
(mAP: mean positive rate, mRA: 0.5, mR2: 0).
"""

EPILOG = """\
examples:
  beenet eval --data BOLD_public --split val --predictions val_predictions.csv
  beenet eval --data BOLD_public --split val --predictions preds.csv --json scores.json --out plots/
  beenet eval --data BOLD_public --protocol paper --seed 42 --split test --checkpoint runs/a/best.pt --out runs/a/eval
  beenet eval --data BOLD_public --split test --checkpoint best.pt --out submission/   # writes the test CSV

exit status: 0 when scored (or, with --checkpoint, when the unlabelled test predictions are written);
1 on an error (one line on stderr), or with --predictions on a split that has no labels.
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, type=Path, metavar="DIR",
                        help="BoLD root (the directory holding annotations/, videos/, joints/)")
    parser.add_argument("--split", choices=("val", "test", "train"), default="val",
                        help="which split to score (default: val)")

    parser.add_argument("--protocol", choices=PROTOCOLS, default=None,
                        help="official BoLD split, BEE-NET's paper split or the source-video-disjoint paper-video split (default: official; "
                             "with --checkpoint, the protocol the checkpoint was trained under)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the paper protocol's split (default: 42; with --checkpoint, "
                             "the checkpoint's split seed; ignored by official)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", type=Path, metavar="FILE", help="predictions CSV to score")
    source.add_argument("--checkpoint", type=Path, metavar="CKPT", help="beenet checkpoint to evaluate")
    parser.add_argument("--json", type=Path, metavar="OUT",
                        help="also write the scores as JSON here (written atomically)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="directory for plots (and, with --checkpoint on the test split, the predictions CSV)")
    parser.add_argument("--batch-size", type=int, default=16, metavar="N",
                        help="batch size when running a checkpoint (default: 16)")
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help="device when running a checkpoint: auto (cuda if available), cpu, cuda, cuda:N, mps, "
                             "or any torch device string (default: auto)")
    parser.add_argument("--allow-overlap", action="store_true",
                        help="with --checkpoint: score a split that holds clips the checkpoint trained on "
                             "(refused otherwise); the overlap is printed beside every number")
    parser.add_argument("--prepared-dir", type=Path, default=None, metavar="CACHE",
                        help="root of 'beenet prepare' caches (default: the run's run.prepared_dir, else "
                             "~/.cache/beenet/prepared); a cache matching the checkpoint's config is used")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.out is not None:  # an --out that cannot be made fails now, not after the whole split is scored
        args.out.mkdir(parents=True, exist_ok=True)
    if args.predictions is not None:
        return _run_predictions(args)
    return _run_checkpoint(args)


def _run_predictions(args: argparse.Namespace) -> int:
    from beenet.evaluation.predictions import (  # lazy: keeps 'beenet eval --help' fast (loads torch)
        align_predictions,
        instance_targets,
        read_predictions,
    )
    from beenet.evaluation.report import format_scores  # lazy: keeps 'beenet eval --help' fast (loads torch)
    from beenet.metrics import add_intervals, bold_scores  # lazy: keeps 'beenet eval --help' fast (loads torch)

    protocol = args.protocol or DEFAULT_PROTOCOL
    seed = DEFAULT_SEED if args.seed is None else args.seed
    instances = BoLD(args.data).instances(args.split, protocol=protocol, seed=seed)
    frame = read_predictions(args.predictions)
    cat_scores, vad = align_predictions(frame, instances)
    if any(inst.categories is None or inst.vad is None for inst in instances):
        print(
            f"{args.predictions}: one row for each of the {len(instances)} instances of the "
            f"{protocol} {args.split} split, so the file is complete."
        )
        print(
            f"beenet eval: the {protocol} {args.split} split has no labels (BoLD withholds the "
            "test labels), so it cannot be scored here. Score --split val, or submit this file "
            "to the BoLD organisers."
        )
        return 1
    cat_targets, vad_true = instance_targets(instances, f"the {protocol} {args.split} split")
    result = add_intervals(bold_scores(cat_scores, cat_targets, vad, vad_true), cat_scores, cat_targets, vad, vad_true)
    result.update(split=args.split, protocol=protocol, seed=seed if protocol != "official" else None,
                  predictions=str(args.predictions))
    if args.out is not None:
        from beenet.evaluation.plots import (  # lazy: matplotlib loads only when plots are drawn
            plot_category_bars,
            plot_pr_curves,
        )

        title = f"{args.split} ({protocol} protocol), n={len(instances)}"
        bars = plot_category_bars(result, args.out / "category_bars.png", title=f"Per-category scores: {title}")
        curves = plot_pr_curves(cat_scores, cat_targets, args.out / "pr_curves.png", title=f"Precision-recall: {title}")
        result["plots"] = [str(bars), str(curves)]
        from beenet.view.run import (  # lazy: keeps 'beenet eval --help' fast (loads torch)
            write_pr_curves,
            write_run_view,
        )

        write_json(args.out / "metrics.json", result)
        write_pr_curves(args.out, cat_scores, cat_targets)
        result["plots"].append(str(write_run_view(args.out)))
    if args.json is not None:
        write_json(args.json, result)
    print(format_scores(result, args.split, protocol))
    for extra in result.get("plots", []):
        print(f"plot: {extra}")
    if args.json is not None:
        print(f"scores: {args.json}")
    return 0


def _run_checkpoint(args: argparse.Namespace) -> int:
    from beenet.evaluation.evaluate import evaluate_checkpoint  # lazy: keeps 'beenet eval --help' fast (loads torch)
    from beenet.evaluation.report import format_scores  # lazy: keeps 'beenet eval --help' fast (loads torch)
    from beenet.metrics import HEADLINE_KEYS  # lazy: keeps 'beenet eval --help' fast (loads torch)

    result = evaluate_checkpoint(
        args.data,
        args.checkpoint,
        split=args.split,
        protocol=args.protocol,
        seed=args.seed,
        out_dir=args.out,
        batch_size=args.batch_size,
        device=args.device,
        prepared_dir=args.prepared_dir,
        allow_overlap=args.allow_overlap,
    )
    result = dict(result)
    split = result.setdefault("split", args.split)
    protocol = result.setdefault("protocol", args.protocol or DEFAULT_PROTOCOL)
    scored = all(key in result for key in HEADLINE_KEYS)
    if scored and args.out is not None:  # the interactive page beside the plots (beenet view)
        from beenet.view.run import write_eval_view  # lazy: keeps 'beenet eval --help' fast (loads torch)

        try:
            seed = args.seed
            if seed is None:  # evaluate_checkpoint's default: the checkpoint's split seed
                from beenet.artifacts.checkpoint import (
                    load_checkpoint,  # lazy: keeps 'beenet eval --help' fast (loads torch)
                )

                seed = int(load_checkpoint(args.checkpoint)["config"]["run"].get("split_seed", DEFAULT_SEED))
            page = write_eval_view(args.out, args.data, split, protocol, seed)
        except (BeenetError, OSError) as exc:  # the page is an extra: the scores stand without it
            print(f"beenet eval: warning: no report.html ({exc})", file=sys.stderr)
        else:
            if page is not None:
                result["page"] = str(page)
    if args.json is not None:
        write_json(args.json, result)
    if scored:
        print(format_scores(result, split, protocol))
    else:
        print(
            f"beenet eval: the {protocol} {split} split has no labels (BoLD withholds the "
            "test labels): predictions written, nothing scored."
        )
    for key, value in result.items():
        # Files the evaluator wrote (predictions CSV, plots) are strings, paths or lists of them.
        if key in _NOT_FILES:
            continue
        if isinstance(value, (str, os.PathLike)):
            print(f"{key}: {value}")
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, os.PathLike)) for v in value):
            print(f"{key}: {', '.join(map(str, value))}")
    if args.json is not None:
        print(f"scores: {args.json}")
    return 0


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON atomically (temp file in the same directory, then replace)."""
    try:
        return atomic.write_json(path, payload, default=str)
    except ValueError as exc:
        raise PredictionsError(f"cannot write {path}: the scores hold NaN or inf ({exc})") from exc
