"""Throughput of BoLDDataset against plain PyAV decoding of the same frames.

Writes ``--clips`` clips of ``--frames`` frames at 1280x720 (BoLD's largest size) in the BoLD
layout in a temporary directory, then times, on the same clips and in the same run:

- loader: ``BoLDDataset`` with uniform sampling of ``--num-frames`` frames at ``--size`` px
  (evaluation mode: joints, sampling, decode, resize, normalise: everything a sample costs);
- plain: open the mp4 with PyAV, decode forward, convert just those frames to RGB ndarrays.

Passes alternate between the two so that other jobs on a shared machine slow both alike; the
reported rate is the median over ``--repeats`` passes. Torch runs with ``--threads`` threads (1 by
default, what each DataLoader worker gets). Target: loader >= 0.8 x plain.

Example:
    python benchmarks/bench_loader.py --clips 4 --frames 150 --repeats 5
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import torch

from beenet.data.bold import BoLD
from beenet.data.dataset import BoLDDataset, DataConfig, spread
from beenet.data.video_writer import VideoWriter
from beenet.labels import NUM_CATEGORIES, NUM_JOINTS
from beenet.progress import progress


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


def plain_pyav(path: Path, indices: np.ndarray) -> list[np.ndarray]:
    """The baseline: decode forward, convert only the wanted frames, stop after the last."""
    wanted = set(indices.tolist())
    last = int(indices.max())
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                out.append(frame.to_ndarray(format="rgb24"))
            if i >= last:
                break
    return out


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
    parser.add_argument("--num-frames", type=int, default=16, help="frames sampled per clip")
    parser.add_argument("--size", type=int, default=224, help="image size of the loader's frames")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: what PyTorch gives each DataLoader worker)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="reuse/keep the clips here instead of a temp dir")
    return parser


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
        cfg = DataConfig(sampling="uniform", num_frames=args.num_frames, image_size=args.size)
        ds = BoLDDataset(bold, "train", cfg, train=False)
        jobs = []
        for inst in ds.instances:
            n = inst.max_frame - inst.min_frame + 1
            jobs.append((bold.video_path(inst.video), spread(np.arange(n), args.num_frames, None)))
        # Same frames on both sides (the person is present in every frame).
        assert ds[0]["frame_mask"].all()
        loader_rates, plain_rates = [], []
        for _ in progress(range(args.repeats), desc="passes", unit="pass"):
            t0 = time.perf_counter()
            for path, idx in jobs:
                frames = plain_pyav(path, idx)
                assert len(frames) == len(idx)
            plain_rates.append(len(jobs) / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for i in range(len(ds)):
                sample = ds[i]
                assert sample["frames"].shape == (args.num_frames, 3, args.size, args.size)
            loader_rates.append(len(ds) / (time.perf_counter() - t0))
        loader, plain = statistics.median(loader_rates), statistics.median(plain_rates)
        print(f"clips: {len(jobs)} x {args.frames} frames {args.width}x{args.height}; "
              f"{args.num_frames} frames per clip; torch threads {args.threads}; passes {args.repeats}")
        print(f"plain PyAV (decode + RGB of the same frames): {plain:6.2f} clips/s "
              f"({plain * args.num_frames:6.1f} frames/s)")
        print(f"BoLDDataset (uniform, {args.size}x{args.size}, normalised): {loader:6.2f} clips/s "
              f"({loader * args.num_frames:6.1f} frames/s)")
        ratio = loader / plain
        print(f"ratio loader / plain: {ratio:.2f} (target >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
