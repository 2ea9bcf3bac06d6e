"""Benchmark ``beenet predict`` on real 720p footage of several people: per-stage times and the
speed against real time, for several ``--pose-every`` settings side by side in one run.

The default clip is vtest.avi (pedestrians on a campus plaza, 3-8 people at once; Debian's
opencv-doc package, fetched by ``scripts/fetch-footage.sh``) scaled to 1280x720, so pose sees real
people at 720p. ``speed`` is video duration / wall time: 2.0 means twice as fast as real time.

    python benchmarks/bench_predict.py                              # vtest at 720p, first 20 s
    python benchmarks/bench_predict.py --pose-every auto,1,3 --seconds 30
    python benchmarks/bench_predict.py --video my.mp4 --model paper
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 1280, 720
REPO = Path(__file__).resolve().parents[1]


def footage_path(name: str) -> Path:
    """A clip of scripts/fetch-footage.sh (``$BEENET_TEST_FOOTAGE`` or ``.footage/``)."""
    for d in (os.environ.get("BEENET_TEST_FOOTAGE"), REPO / ".footage"):
        if d and (Path(d) / name).is_file():
            return Path(d) / name
    sys.exit(f"{name} is missing: run bash scripts/fetch-footage.sh (or give --video)")


def scaled_clip(src: Path, dst: Path, seconds: float) -> int:
    """The first ``seconds`` of ``src`` scaled to 1280x720 (H.264); returns its frame count."""
    from PIL import Image

    from beenet.media.video import VideoReader
    from beenet.media.video_writer import write_video

    with VideoReader(src) as r:
        fps = float(r.fps or 25.0)
        n = min(r.num_frames, int(round(seconds * fps)))
        frames = (np.asarray(Image.fromarray(f).resize((WIDTH, HEIGHT), Image.BILINEAR))
                  for _, f in r.iter_frames(0, n))
        return write_video(dst, frames, fps)


def make_checkpoint(path: Path, model: str) -> Path:
    """A randomly initialised checkpoint (the timing does not depend on the weights)."""
    from beenet.models import ModelConfig, build_model
    from beenet.artifacts.checkpoint import save_checkpoint
    from beenet.run_config import RunConfig

    cfg = RunConfig()
    cfg.model.pretrained = False
    if model == "tiny":
        cfg.model.image_size = cfg.data.image_size = 112
        cfg.model.stream_channels = 64
    cfg.model.validate()
    config = cfg.to_dict()
    net = build_model(ModelConfig.from_dict(config["model"]), seed=0)
    return save_checkpoint(path, model=net, config=config, epoch=0)


def run_once(ckpt: Path, video: Path, args: argparse.Namespace, pose_every: int | str) -> dict:
    from beenet.inference.predictor import Predictor
    from beenet.inference.tracking_config import TrackingConfig

    more = {} if args.min_confidence is None else {"min_confidence": args.min_confidence}
    pred = Predictor(ckpt, device=args.device, engine=args.engine, pose=args.pose, window=args.window,
                     stride=args.stride, batch_size=args.batch_size,
                     tracking=TrackingConfig(pose_every=pose_every, **more),
                     show_progress=False, pose_options=args.pose_options)
    t0 = time.perf_counter()
    res = pred.run(video)
    wall = time.perf_counter() - t0
    pose_name = pred.pose.name
    pred.close()
    tm = res.timings
    stages = {"decode": tm.get("decode", 0.0) + tm.get("decode2", 0.0), "pose": tm.get("pose", 0.0),
              "track": tm.get("track", 0.0), "preprocess": tm.get("preprocess", 0.0),
              "model": tm.get("model", 0.0), "context": tm.get("context", 0.0),
              "open+init": tm.get("open", 0.0) + tm.get("pose_init", 0.0)}
    duration = res.num_frames / res.fps
    label = f"auto={res.stats['pose_every']}" if pose_every == "auto" else str(pose_every)
    return {"pose_every": label, "posed_frames": res.stats.get("posed_frames"), "frames": res.num_frames,
            "detections": res.stats.get("detections"),
            "duration_s": duration, "wall_s": wall,
            "speed": duration / wall, "stages_s": stages, "people": res.stats.get("people"),
            "windows": len(res.table), "pose": pose_name, "model": pred.spec.name,
            "image_size": pred.spec.image_size, "device": str(pred.device)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, help="a video to time as it is (default: vtest.avi scaled to 720p)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the default clip (default 20)")
    ap.add_argument("--pose-every", default="auto,1,2,3",
                    help="comma-separated values to compare, 'auto' (the default) or N (default auto,1,2,3)")
    ap.add_argument("--model", choices=("tiny", "paper"), default="tiny",
                    help="tiny: 112 px, 64-channel streams; paper: the default 224 px BEE-NET")
    ap.add_argument("--pose", default="mediapipe")
    ap.add_argument("--pose-option", action="append", default=[], metavar="KEY=VALUE",
                    help="a pose backend option, e.g. detector=blazepose or hog_every=3 (repeatable)")
    ap.add_argument("--min-confidence", type=float, default=None,
                    help="the tracker's min_confidence (default: predict's); 0 with --pose-option detector=movenet")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--engine", default="torch", choices=("torch", "onnx"))
    ap.add_argument("--window", type=float, default=4.0)
    ap.add_argument("--stride", type=float, default=2.0)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)
    settings = [v.strip() if v.strip() == "auto" else int(v) for v in args.pose_every.split(",") if v.strip()]
    from beenet.cli.predict import parse_pose_option  # typed as beenet predict types them

    args.pose_options = dict(parse_pose_option(item) for item in args.pose_option)

    with tempfile.TemporaryDirectory(prefix="beenet-bench-") as tmp:
        tmp = Path(tmp)
        if args.video is None:
            video = tmp / "vtest-720p.mp4"
            t0 = time.perf_counter()
            n = scaled_clip(footage_path("vtest.avi"), video, args.seconds)
            print(f"vtest.avi -> {n} frames of {WIDTH}x{HEIGHT} in {time.perf_counter() - t0:.1f} s")
        else:
            video = args.video
        ckpt = make_checkpoint(tmp / "m.pt", args.model)
        # Warm-up outside the timings: imports, the pose model's first load (its model files are
        # fetched into the cache once), so the first setting pays what the others do.
        from beenet.inference.pose import make_pose_backend

        warm = make_pose_backend(args.pose, **args.pose_options)
        warm.reset()
        warm(np.zeros((HEIGHT, WIDTH, 3), np.uint8), 0)
        getattr(warm, "close", lambda: None)()
        runs = [run_once(ckpt, video, args, k) for k in settings]

    r0 = runs[0]
    print(f"{video.name}: {r0['frames']} frames, {r0['duration_s']:.1f} s; device {r0['device']}, engine "
          f"{args.engine}, pose {r0['pose']} {args.pose_options or ''}, model {args.model} ({r0['model']}, {r0['image_size']} px); "
          f"torch threads {__import__('torch').get_num_threads()}")
    names = list(r0["stages_s"])
    print(f"{'pose_every':>10} {'posed':>6} " + " ".join(f"{k:>10}" for k in names) + f" {'wall s':>8} {'speed':>6} "
          f"{'people':>6} {'windows':>7} {'dets/posed':>10}")
    for r in runs:
        print(f"{r['pose_every']:>10} {r['posed_frames']:>6} " + " ".join(f"{r['stages_s'][k]:>10.2f}" for k in names)
              + f" {r['wall_s']:>8.2f} {r['speed']:>5.2f}x {r['people']:>6} {r['windows']:>7}"
              + f" {r['detections'] / max(r['posed_frames'], 1):>10.2f}")
    print("speed = video duration / wall time (2.00x = twice as fast as real time); stage columns in "
          "seconds over the whole clip; dets/posed = people the pose backend found per posed frame")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
