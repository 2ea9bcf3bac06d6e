"""The whole ``beenet predict`` command, as a user runs it, for several code trees side by side:
wall time, CPU time (user + system of the child) and speed against real time, the trees' runs
interleaved (A B A B ...) so that both meet the same machine.

The clip is vtest.avi (pedestrians, 3-8 people at once; ``scripts/fetch-footage.sh``) scaled to
1280x720 (``bench_predict.scaled_clip``), the first ``--seconds``; the checkpoint is the tiny
random model of ``bench_predict.make_checkpoint``. Start-up, pass 1, pass 2 and the output files
are all in the time, as a user sees them.

    git worktree add --detach /tmp/before <commit>          # the code before a change
    python benchmarks/bench_predict_versions.py --tree before=/tmp/before --tree now=. --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import footage_path, make_checkpoint, scaled_clip

REPO = Path(__file__).resolve().parents[1]


def parse_tree(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    src = Path(path).expanduser().resolve()
    src = src / "src" if (src / "src" / "beenet").is_dir() else src
    if not sep or not name or not (src / "beenet").is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=PATH of a checkout (or its src/)")
    return name, src


def run_once(src: Path, video: Path, ckpt: Path, out: Path, extra: list[str]) -> dict:
    """One ``python -m beenet predict`` with ``src`` first on the path: wall, CPU, its summary."""
    env = dict(os.environ, PYTHONPATH=str(src))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "beenet", "predict", str(video), "--checkpoint", str(ckpt),
                           "--out", str(out), "--overwrite", *extra], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{src}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    summary = json.loads((out / "predict_summary.json").read_text())["videos"][0]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "people": summary["people"], "posed": summary["posed_frames"],
            "frames": summary["frames"], "load": os.getloadavg()[0],
            "stages": summary.get("stage_seconds", {})}  # absent from trees before 2026-12-07


#: The stages of ``predict_summary.json``'s ``stage_seconds`` shown, in the order of a run.
STAGES = ("pose", "track", "decode", "shots", "decode2", "model", "outputs")


def print_stages(runs: dict[str, list[dict]], wall_of: dict[str, list[float]]) -> None:
    """Median seconds per stage of each tree (what the main thread waited on: pass 1's pose,
    track, decode and shots, pass 2's decode2 and model, the outputs written after), and the rest
    of the wall time (start-up and what no stage names). Trees whose summaries have no
    ``stage_seconds`` (older code) are left out."""
    shown = {name: rs for name, rs in runs.items() if all(r.get("stages") for r in rs)}
    if not shown:
        return
    print("\nmedian seconds per stage (the main thread's waits; 'rest': start-up and the unnamed)")
    print(f"{'tree':<10} " + " ".join(f"{s:>8}" for s in (*STAGES, "rest")))
    for name, rs in shown.items():
        cells = [statistics.median(r["stages"].get(s, 0.0) for r in rs) for s in STAGES]
        rest = statistics.median(w - r["stages"].get("total", 0.0) - r["stages"].get("outputs", 0.0)
                                 for w, r in zip(wall_of[name], rs))
        print(f"{name:<10} " + " ".join(f"{c:>8.2f}" for c in (*cells, rest)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", type=parse_tree, required=True, metavar="NAME=PATH",
                    help="a checkout to time (repeatable; the first is the baseline)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the clip (default 20)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per tree, interleaved (default 2)")
    ap.add_argument("--video", type=Path, help="time this video as it is instead")
    ap.add_argument("--arg", action="append", default=[], help="one more predict argument (repeatable)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="beenet-versions-") as tmp:
        tmp = Path(tmp)
        video = args.video or tmp / "vtest-720p.mp4"
        if args.video is None:
            scaled_clip(footage_path("vtest.avi"), video, args.seconds)
        ckpt = make_checkpoint(tmp / "tiny.pt", "tiny")
        runs: dict[str, list[dict]] = {name: [] for name, _ in args.tree}
        for name, src in args.tree:  # file caches warm, and each tree's own caches made (the ONNX
            # export of the checkpoint, which a tree's first predict makes and later ones reuse)
            first = run_once(src, video, ckpt, tmp / f"warm-{name}", args.arg)
            print(f"{name}: first run (caches made) {first['wall_s']:.1f} s", flush=True)
        for k in range(args.repeat):
            for name, src in args.tree:
                r = run_once(src, video, ckpt, tmp / f"{name}{k}", args.arg)
                runs[name].append(r)
                print(f"... {name} run {k + 1}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, "
                      f"{r['people']} people, posed {r['posed']}/{r['frames']}, load {r['load']:.1f}", flush=True)
        from beenet.media.video import VideoReader  # lazy: after the runs, from this checkout

        with VideoReader(video) as r:
            seconds = r.num_frames / float(r.fps or 25.0)
    base = runs[args.tree[0][0]]
    print(f"\n{seconds:.1f} s of video; speed = video seconds per wall second")
    print(f"{'tree':<10} {'wall s (each)':<22} {'x real time':<14} {'CPU s':<16} {'wall vs ' + args.tree[0][0]:<12}")
    for name, _ in args.tree:
        rs = runs[name]
        walls = [r["wall_s"] for r in rs]
        ratio = sum(b["wall_s"] for b in base) / sum(walls)
        speed = " ".join(f"{seconds / w:.2f}" for w in walls)
        cpus = " ".join(f"{r['cpu_s']:.1f}" for r in rs)
        print(f"{name:<10} {' '.join(f'{w:.1f}' for w in walls):<22} {speed:<14} {cpus:<16} {ratio:.2f}x")
    print_stages(runs, wall_of={name: [r["wall_s"] for r in rs] for name, rs in runs.items()})
    print(f"load average (1 min) after each run: {min(r['load'] for v in runs.values() for r in v):.1f} to "
          f"{max(r['load'] for v in runs.values() for r in v):.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
