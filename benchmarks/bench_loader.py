"""Samples/s of one loader worker: decoding 720p mp4 on the fly against the prepared cache.

Writes ``--clips`` clips of ``--frames`` frames at 1280x720 (BoLD's largest size) in the BoLD
layout in a temporary directory, runs ``beenet prepare`` on them (``--storage``: jpeg q95 and raw
by default) and times ``BoLDDataset`` in training mode (random draws: a random still, jittered
uniform frames; everything a worker does for a sample: joints, sampling, decode, resize; the
normalisation runs on the device, in the model's forward, since whole frames ship as uint8) for

- stills at 224 px, and uniform sampling of T=8 frames at 112 and at 224 px,

reading the mp4 (``VideoFrames``) and reading the cache (``PreparedFrames``). One process, torch
with ``--threads`` threads (1: what each DataLoader worker gets), so the rates are per worker.
Reported: the median over ``--repeats`` passes, alternating sources so that other jobs on a
shared machine slow both alike, and the ratio cache / mp4 (target for stills: >= 20).

Example:
    python benchmarks/bench_loader.py --clips 4 --frames 150 --repeats 3
    # two source trees on one set of clips and caches (run each, alternating):
    PYTHONPATH=OTHER/src python benchmarks/bench_loader.py --dir /tmp/b/BOLD --cache /tmp/b/prep \\
        --only "still 224" --storage jpeg --no-mp4
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from beenet.data.bold import BoLD
from beenet.data.dataset import BoLDDataset
from beenet.data.prepared import find_prepared, prepare
from beenet.media.video_writer import VideoWriter
from beenet.labels import NUM_CATEGORIES, NUM_JOINTS
from beenet.progress import progress
from beenet.run_config import load_config, prepare_settings

#: (name, sampling, T, image size): the settings the paper (stills) and video presets read.
CASES = (("still 224", "still", 1, 224), ("T=8 112", "uniform", 8, 112), ("T=8 224", "uniform", 8, 224))

def synthetic_frames(rng: np.random.Generator, n: int, width: int, height: int):
    """Textured background panning, two moving bodies and film grain: h264 has real work to do."""
    small = rng.integers(0, 256, (height // 16 + 2, width // 16 + 2, 3), dtype=np.uint8)
    background = np.repeat(np.repeat(small, 16, 0), 16, 1)
    for t in range(n):
        frame = background[(t // 2) % 16 : (t // 2) % 16 + height, t % 16 : t % 16 + width].copy()
        for k, colour in enumerate(((230, 180, 150), (90, 120, 200))):
            x = int((0.2 + 0.5 * k) * width + 80 * np.sin(t / 15 + k))
            frame[height // 4 : height - 60, x : x + 160] = colour
        grain = rng.integers(-6, 7, (height, width, 1), dtype=np.int16)
        yield np.clip(frame.astype(np.int16) + grain, 0, 255).astype(np.uint8)


def write_dataset(root: Path, clips: int, frames: int, width: int, height: int, seed: int) -> None:
    """A BoLD-layout directory: one annotated person (present in every frame) per clip."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in progress(range(clips), desc="writing clips", unit="clip"):
        video = f"003/benchClip{c:03d}.mp4/{c + 1:04d}.mp4"
        with VideoWriter(root / "videos" / video, 25.0, width, height) as writer:
            for frame in synthetic_frames(rng, frames, width, height):
                writer.write(frame)
        kp = np.zeros((frames, 2 + 3 * NUM_JOINTS))
        kp[:, 0] = 500 + np.arange(frames)
        kp[:, 1] = 0
        kp[:, 2::3] = rng.uniform(0.2 * width, 0.5 * width, (frames, NUM_JOINTS))
        kp[:, 3::3] = rng.uniform(0.2 * height, 0.9 * height, (frames, NUM_JOINTS))
        kp[:, 4::3] = 0.9
        path = root / "joints" / Path(video).with_suffix(".npy")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, kp)
        cats = [f"{v:.3f}" for v in rng.uniform(0, 1, NUM_CATEGORIES)]
        rows.append([video, "0", "500", str(500 + frames - 1), *cats, "5", "5", "5", "1", "1", "1", "1"])
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for name in ("train.csv", "val.csv"):
        with open(root / "annotations" / name, "w", newline="") as fh:
            csv.writer(fh).writerows(rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__[__doc__.index("Example:"):],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--frames", type=int, default=150, help="frames per clip")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=1.0, help="time each pass at least this long")
    parser.add_argument("--storage", nargs="+", default=["jpeg", "raw"], help="cache storages to time")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: what PyTorch gives each DataLoader worker)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="reuse/keep the clips here instead of a temp dir")
    parser.add_argument("--cache", type=Path, default=None,
                        help="reuse/keep the prepared caches here (compare two source trees on one cache)")
    parser.add_argument("--only", default=None, help="time only this case, e.g. 'still 224'")
    parser.add_argument("--no-mp4", action="store_true", help="time the cache only")
    return parser


def rate(ds: BoLDDataset, min_seconds: float) -> float:
    """Samples/s over whole epochs of ``ds`` (new random draws each epoch), at least ``min_seconds``."""
    n, epoch, t0 = 0, 0, time.perf_counter()
    while True:
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            ds[i]
            n += 1
        epoch += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return n / elapsed


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="beenet-bench-") as tmp:
        root = args.dir or Path(tmp) / "BOLD_public"
        if not (root / "annotations" / "train.csv").is_file():
            t0 = time.perf_counter()
            write_dataset(root, args.clips, args.frames, args.width, args.height, args.seed)
            print(f"wrote {args.clips} clips of {args.frames} frames at {args.width}x{args.height} "
                  f"in {time.perf_counter() - t0:.1f} s")
        bold = BoLD(root)
        cache_root = args.cache or Path(tmp) / "prepared"
        print(f"clips: {args.clips} x {args.frames} frames {args.width}x{args.height}; torch threads "
              f"{args.threads}; median of {args.repeats} passes; samples/s of one worker (training draws)")
        for name, sampling, T, size in CASES:
            if args.only is not None and name != args.only:
                continue
            cfg = load_config("paper", [f"data.sampling={sampling}", f"data.num_frames={T}",
                                        f"data.image_size={size}", "context.source=none",
                                        "model.fusion=none", "model.place_stream=false",
                                        "model.object_stream=false", "model.pretrained=false"])
            inst = bold.instances("train")
            sources = {} if args.no_mp4 else {"mp4": None}
            for storage in args.storage:
                t0 = time.perf_counter()
                res = prepare(prepare_settings(cfg), root, cache_root / storage, storage=storage, show_progress=False)
                cache = find_prepared(prepare_settings(cfg), bold, [i.video for i in inst], root=cache_root / storage)
                assert cache is not None and len(cache.served) == args.clips
                sources[storage] = cache.frames()
                print(f"  [{name}] prepare {storage}: {time.perf_counter() - t0:.1f} s for {res.clips} clips, "
                      f"{res.bytes / res.clips / 1e6:.2f} MB per clip ({res.bytes / res.clips / args.frames / 1e3:.1f} "
                      "kB per frame)")
            rates: dict[str, list[float]] = {k: [] for k in sources}
            for _ in range(args.repeats):
                for key, frames in sources.items():
                    ds = BoLDDataset(bold, inst, cfg.data, train=True, seed=args.seed, frames=frames)
                    rates[key].append(rate(ds, args.min_seconds))
            mp4 = statistics.median(rates["mp4"]) if "mp4" in rates else float("nan")
            line = f"{name:>10}: mp4 {mp4:8.1f} samples/s"
            for storage in args.storage:
                r = statistics.median(rates[storage])
                line += f" | cache {storage} {r:8.1f} samples/s ({r / mp4:5.1f}x)"
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
