"""``beenet predict``: per-person emotions over time from videos, as tables and pictures."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

DESCRIPTION = """\
Find every person in each video, follow them over time, and predict per person and time window
the 26 BoLD emotion categories (scores in [0, 1]) and valence / arousal / dominance (BoLD scale,
about 1..10) with a trained beenet checkpoint.

INPUT may be:
  a video file                 people and joints come from the pose backend (--pose)
  a folder                     every video under it (recursively)
  a BoLD joints file X.npy     precomputed OpenPose-18 joints; the video is X.mp4 beside it
                               (or, in the BoLD layout, joints/... -> videos/...)
  an OpenPose JSON folder      per-frame *_keypoints.json (COCO-18 or BODY_25); the video is
                               <folder>.mp4 beside it, or the one video inside it

For each video, in --out:
  <stem>.csv / .json / .parquet  one row per person and window (--format); a CSV has its
                                 metadata (model, checkpoint sha256, ...) in <stem>.meta.json
  <stem>_timeline.png            per person: category heat map over time and VAD curves
  <stem>_annotated.mp4           with --video: skeleton, box, id, top-3 emotions, VAD bars

Columns: video, person_id, start_frame, end_frame (inclusive), start_s, end_s, box_x, box_y,
box_w, box_h (pixels, around the person's joints in the window), the 26 categories,
valence, arousal, dominance, and with --streams '<stream>.<label>' per model stream.
See docs/predict.md for the details.

Exit status: 0 when every input was processed, 1 when some failed (each failure is printed
with its file; the others are still processed), 2 for a usage error.
"""

EPILOG = """\
examples:
  beenet predict talk.mp4 --checkpoint runs/demo/best.pt --out preds
  beenet predict clips/ --checkpoint best.pt --out preds --format csv,parquet --video
  beenet predict BOLD_public/joints/003/x.mp4/0114.npy --checkpoint best.pt --out preds
  beenet predict talk.mp4 --checkpoint model.onnx --engine onnx --window 2 --stride 1
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    from beenet.context.build import PREDICT_CONTEXTS
    from beenet.inference.engines import ENGINES
    from beenet.inference.pose import POSE_CHOICES
    from beenet.inference.table import FORMATS

    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="videos, folders of videos, joints .npy, OpenPose JSON folders")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="a 'beenet train' checkpoint (.pt) or an exported .onnx")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--format", default="csv", metavar="FMT[,FMT]",
                   help=f"table formats, comma separated: {', '.join(FORMATS)} (default: csv)")
    p.add_argument("--video", action="store_true", help="also write the annotated <stem>_annotated.mp4")
    p.add_argument("--window", type=float, default=4.0, metavar="SECONDS", help="window length (default 4)")
    p.add_argument("--stride", type=float, default=2.0, metavar="SECONDS", help="step between windows (default 2)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where the model runs (default auto)")
    p.add_argument("--engine", default="torch", choices=tuple(ENGINES), help="PyTorch or ONNX Runtime (default torch)")
    p.add_argument("--pose", default="auto", choices=POSE_CHOICES,
                   help="pose backend for plain videos: mediapipe (offline, one person), rcnn (torchvision "
                        "Keypoint R-CNN, several people), auto = mediapipe when installed (default)")
    p.add_argument("--streams", action="store_true", help="add each model stream's scores as '<stream>.<label>' columns")
    p.add_argument("--batch-size", type=int, default=8, metavar="N", help="(person, window) items per model call (default 8)")
    p.add_argument("--stills", type=int, default=1, metavar="K",
                   help="still-frame models: average K stills per window (default 1: the middle frame)")
    p.add_argument("--min-presence", type=float, default=0.25, metavar="F",
                   help="score a person in a window only when present in this fraction of its frames (default 0.25)")
    p.add_argument("--context", default="auto", choices=PREDICT_CONTEXTS,
                   help="models fused with expert context: the experts of the checkpoint (auto) or Places365 + COCO")
    return p


def parse_formats(text: str) -> list[str]:
    from beenet.inference.table import FORMATS

    fmts = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in fmts if f not in FORMATS]
    if not fmts or bad:
        raise ValueError(f"--format {text!r}: choose from {', '.join(FORMATS)} (comma separated)")
    return list(dict.fromkeys(fmts))


def run(args: argparse.Namespace) -> int:
    from beenet.errors import BeenetError
    from beenet.inference.inputs import resolve_inputs
    from beenet.inference.predictor import Predictor
    from beenet.inference.render import render_timeline, render_video

    try:
        formats = parse_formats(args.format)
    except ValueError as exc:
        print(f"beenet predict: error: {exc}", file=sys.stderr)
        return 2
    if args.window <= 0 or args.stride <= 0 or args.batch_size < 1 or args.stills < 1:
        print("beenet predict: error: --window, --stride must be > 0 and --batch-size, --stills >= 1", file=sys.stderr)
        return 2
    out = Path(args.out)
    jobs = resolve_inputs(list(args.inputs))
    predictor = Predictor(
        args.checkpoint, device=args.device, engine=args.engine, pose=args.pose, window=args.window,
        stride=args.stride, batch_size=args.batch_size, streams=args.streams, stills=args.stills,
        min_presence=args.min_presence, context=args.context,
    )
    failures: list[str] = []
    done = 0
    summary = []
    try:
        for job in jobs:
            if job.error is not None:
                failures.append(job.error)
                print(f"FAILED {job.source}: {job.error}", file=sys.stderr)
                continue
            t0 = time.perf_counter()
            try:
                result = predictor.run(job.video, job.keypoints, name=job.name)
                written = [result.table.write(out / f"{job.stem}.{fmt}", fmt) for fmt in formats]
                written.append(render_timeline(result.table, out / f"{job.stem}_timeline.png",
                                               duration_s=result.num_frames / result.fps, title=job.name))
                if args.video:
                    written.append(render_video(result, out / f"{job.stem}_annotated.mp4"))
            except BeenetError as exc:
                failures.append(str(exc))
                print(f"FAILED {job.source}: {exc}", file=sys.stderr)
                continue
            seconds = time.perf_counter() - t0
            duration = result.num_frames / result.fps if result.fps else 0.0
            done += 1
            summary.append({"video": str(job.video), "people": result.stats.get("people", 0),
                            "windows": len(result.table), "seconds": round(seconds, 3),
                            "realtime_factor": round(seconds / duration, 3) if duration else None})
            print(f"ok {job.video}: {result.stats.get('people', 0)} people, {len(result.table)} windows, "
                  f"{seconds:.1f} s for {duration:.1f} s of video -> {', '.join(p.name for p in written)}")
    finally:
        predictor.close()
    if done:
        out.mkdir(parents=True, exist_ok=True)
        (out / "predict_summary.json").write_text(json.dumps(
            {"checkpoint": str(args.checkpoint), **predictor.metadata, "videos": summary,
             "failures": failures}, indent=2) + "\n")
    print(f"{done} of {done + len(failures)} inputs done, {len(failures)} failed; results in {out}")
    return 1 if failures else 0
