"""Time to draw and write the timeline PNG that ``beenet predict`` writes at the end of each video.

Synthetic window tables (random scores, ``--window`` s windows every ``--stride`` s) of 1, 8 and
13 people over ``--seconds`` of video, each person seen over part of it (the timeline greys the
rest); 13 people shows the 8 seen longest. For each table, ``render_timeline(table, png)`` (draw
the picture with Pillow, encode and write the PNG) is timed ``--repeats`` times in this process;
the first call of the process (Pillow's drawing modules and font, the category names drawn once)
is reported on its own.

Example:
    python benchmarks/bench_timeline.py --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from beenet.inference.timeline import render_timeline
from beenet.inference.table import COLUMNS, PredictionTable, make_table
from beenet.labels import CATEGORIES, VAD_NAMES


def synth_table(people: int, seconds: float, window_s: float, stride_s: float, fps: float = 25.0,
                seed: int = 0) -> PredictionTable:
    """Windows of ``people`` people; person 0 is seen throughout, the others over a random part."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {c: [] for c in COLUMNS}
    all_starts = np.arange(0.0, max(seconds - window_s, 0.0) + 1e-9, stride_s)
    for pid in range(people):
        first, last = (0, len(all_starts)) if pid == 0 else sorted(rng.integers(0, len(all_starts) + 1, 2))
        starts = all_starts[first:max(last, first + 1)]
        n = len(starts)
        cols["video"] += ["synthetic.mp4"] * n
        cols["person_id"] += [pid] * n
        cols["start_frame"] += list((starts * fps).astype(int))
        cols["end_frame"] += list(((starts + window_s) * fps).astype(int) - 1)
        cols["start_s"] += list(starts)
        cols["end_s"] += list(starts + window_s)
        for c, v in (("box_x", 100.0), ("box_y", 50.0), ("box_w", 120.0), ("box_h", 300.0)):
            cols[c] += [v] * n
        for c in CATEGORIES:
            cols[c] += list(rng.random(n))
        for c in VAD_NAMES:
            cols[c] += list(rng.uniform(2.0, 8.0, n))
    return make_table(cols)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, nargs="+", default=[1, 8, 13])
    ap.add_argument("--seconds", type=float, default=20.0, help="video length (default 20)")
    ap.add_argument("--window", type=float, default=4.0)
    ap.add_argument("--stride", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=None, help="write the PNGs here (default: a temporary folder)")
    args = ap.parse_args()
    tables = {n: synth_table(n, args.seconds, args.window, args.stride) for n in args.people}
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        render_timeline(tables[args.people[0]], out / "first.png")
        print(f"first call in this process ({args.people[0]} people, Pillow's font loaded): "
              f"{time.perf_counter() - t0:.3f} s")
        print(f"{'people':>6} {'shown':>5} {'windows':>7} {'median s':>9} {'min s':>7} {'max s':>7} {'PNG kB':>7}")
        for n, table in tables.items():
            png = out / f"timeline_{n}.png"
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                render_timeline(table, png)
                times.append(time.perf_counter() - t0)
            print(f"{n:>6} {min(n, 8):>5} {len(table):>7} {statistics.median(times):>9.3f} {min(times):>7.3f} "
                  f"{max(times):>7.3f} {png.stat().st_size / 1000:>7.0f}")


if __name__ == "__main__":
    main()
