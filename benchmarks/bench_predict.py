"""Benchmark ``beenet predict`` on a 720p video of a (synthetic) moving person.

The person is the astronaut of scikit-image's sample photo, cut out and moved over a 1280x720
textured background (panning, bobbing, growing), so the pose backend sees a real human. Reports the
real-time factor (wall time / video duration; below 1 is faster than real time) and the total
time against the sum of the per-stage times (decode, pose, model, ...) measured in the same run.

    python benchmarks/bench_predict.py                      # tiny model, 10 s at 25 fps
    python benchmarks/bench_predict.py --model paper --seconds 4
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 1280, 720


def synthetic_video(path: Path, seconds: float, fps: float, seed: int = 0) -> int:
    """Write the 720p clip; returns its frame count."""
    import torch
    import torch.nn.functional as F
    from skimage import data

    from beenet.data.video_writer import write_video

    rng = np.random.default_rng(seed)
    person = torch.from_numpy(data.astronaut()[40:512, 60:470]).permute(2, 0, 1)[None].float()
    bg = rng.integers(30, 80, (HEIGHT // 8, WIDTH // 8, 3)).astype(np.uint8)
    bg = np.kron(bg, np.ones((8, 8, 1), np.uint8))
    n = int(round(seconds * fps))

    def frames():
        for t in range(n):
            u = t / max(n - 1, 1)
            h = int(420 + 180 * u)
            w = int(h * person.shape[3] / person.shape[2])
            img = F.interpolate(person, size=(h, w), mode="bilinear", align_corners=False)[0]
            img = img.permute(1, 2, 0).clamp(0, 255).byte().numpy()
            x0 = int(100 + (WIDTH - w - 200) * u)
            y0 = int(HEIGHT - h - 10 * (1 + np.sin(t / 6)))
            f = bg.copy()
            f[max(0, y0) : y0 + h, x0 : x0 + w] = img[max(0, -y0) : HEIGHT - y0]
            yield f

    return write_video(path, frames(), fps)


def make_checkpoint(path: Path, model: str) -> Path:
    """A randomly initialised checkpoint (the timing does not depend on the weights)."""
    from beenet.models import ModelConfig, build_model
    from beenet.training.checkpoint import save_checkpoint
    from beenet.training.config import RunConfig

    cfg = RunConfig()
    cfg.model.pretrained = False
    if model == "tiny":
        cfg.model.image_size = cfg.data.image_size = 112
        cfg.model.stream_channels = 64
    cfg.model.validate()
    config = cfg.to_dict()
    net = build_model(ModelConfig.from_dict(config["model"]), seed=0)
    return save_checkpoint(path, model=net, config=config, epoch=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--model", choices=("tiny", "paper"), default="tiny",
                    help="tiny: 112 px, 64-channel streams; paper: the default 224 px BEE-NET")
    ap.add_argument("--pose", default="auto", choices=("auto", "mediapipe", "rcnn"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--engine", default="torch", choices=("torch", "onnx"))
    ap.add_argument("--window", type=float, default=4.0)
    ap.add_argument("--stride", type=float, default=2.0)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)

    from beenet.inference.predictor import Predictor

    with tempfile.TemporaryDirectory(prefix="beenet-bench-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        n = synthetic_video(tmp / "bench.mp4", args.seconds, args.fps)
        print(f"wrote {n} frames of {WIDTH}x{HEIGHT} in {time.perf_counter() - t0:.1f} s")
        ckpt = make_checkpoint(tmp / "m.pt", args.model)
        pred = Predictor(ckpt, device=args.device, engine=args.engine, pose=args.pose, window=args.window,
                         stride=args.stride, batch_size=args.batch_size, show_progress=False)
        t0 = time.perf_counter()
        res = pred.run(tmp / "bench.mp4")
        wall = time.perf_counter() - t0
        pred.close()

    duration = res.num_frames / res.fps
    tm = res.timings
    decode = tm.get("decode", 0.0) + tm.get("decode2", 0.0)
    stages = {"decode": decode, "pose": tm.get("pose", 0.0), "model": tm.get("model", 0.0),
              "track": tm.get("track", 0.0), "preprocess": tm.get("preprocess", 0.0),
              "context": tm.get("context", 0.0), "open+init": tm.get("open", 0.0) + tm.get("pose_init", 0.0)}
    main3 = stages["decode"] + stages["pose"] + stages["model"]
    all_stages = sum(stages.values())
    print(f"device {pred.device}, engine {args.engine}, pose {pred.pose.name}, model {args.model} "
          f"({pred.spec.name}, {pred.spec.image_size} px)")
    print(f"video: {res.num_frames} frames, {duration:.1f} s, {res.stats['people']} people, "
          f"{len(res.table)} windows")
    for k, v in stages.items():
        print(f"  {k:<10} {v:8.2f} s  ({v / res.num_frames * 1000:7.1f} ms/frame)")
    print(f"total wall time           {wall:8.2f} s")
    print(f"sum decode + pose + model {main3:8.2f} s  ({main3 / wall:.0%} of total)")
    print(f"sum of all stages         {all_stages:8.2f} s  ({all_stages / wall:.0%} of total)")
    print(f"real-time factor          {wall / duration:8.2f}  (wall / video duration; < 1 is faster than real time)")
    if args.json:
        args.json.write_text(json.dumps({"frames": res.num_frames, "duration_s": duration, "wall_s": wall,
                                         "stages_s": stages, "rtf": wall / duration, "stats": res.stats}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
