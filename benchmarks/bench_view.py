"""Size and speed of a ``beenet view`` page for a long, crowded result.

Writes synthetic predict results in the formats ``beenet predict --per-frame --save-keypoints``
writes (window table + sidecar, ``_frames.csv``, ``_keypoints.npy``) for ``--minutes`` of video at
``--fps`` with ``--people`` people present in every frame (the worst case: every person in every
frame), builds the page, and reports:

- bytes of embedded page data, and per minute per person;
- in headless Chromium (Debian's ``chromium``, driven by Playwright): time to load and show the
  page, and the time to draw one frame (boxes, skeletons, labels, rows, playheads) over many
  seeks: smooth playback needs well under 16 ms at 60 Hz (40 ms at 25 fps).

Example:
    python benchmarks/bench_view.py --minutes 10 --people 4
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from beenet.inference.table import COLUMNS, PredictionTable
from beenet.labels import CATEGORIES, NUM_JOINTS, VAD_NAMES


def synth_results(out: Path, minutes: float, people: int, fps: float, window_s: float = 4.0, stride_s: float = 2.0) -> None:
    rng = np.random.default_rng(0)
    n = int(minutes * 60 * fps)
    win, stride = int(window_s * fps), int(stride_s * fps)
    f = np.arange(n)
    tables, frames, kps = [], [], []
    starts = np.arange(0, n - win + 1, stride)
    nw = len(starts)
    for pid in range(people):
        cx = 150 + pid * 300 + 60 * np.sin(f / (fps * 3) + pid)
        top = 200 + 20 * np.cos(f / (fps * 5))
        cats, vad = rng.random((nw, 26)), rng.uniform(3, 7, (nw, 3))
        t = pd.DataFrame({"video": "long.mp4", "person_id": pid, "start_frame": starts, "end_frame": starts + win - 1,
                          "start_s": starts / fps, "end_s": (starts + win) / fps, "box_x": cx[starts] - 60,
                          "box_y": top[starts] - 40, "box_w": 120.0, "box_h": 400.0})
        t[list(CATEGORIES)] = cats
        t[list(VAD_NAMES)] = vad
        tables.append(t)
        w = np.clip((f - win // 2) // stride, 0, nw - 1)
        fr = pd.DataFrame({"video": "long.mp4", "frame": f, "time_s": f / fps, "person_id": pid, "confidence": 0.9,
                           "box_x": cx - 60, "box_y": top - 40, "box_w": 120.0, "box_h": 400.0, "interpolated": 0})
        fr[list(CATEGORIES)] = cats[w]
        fr[list(VAD_NAMES)] = vad[w]
        frames.append(fr)
        kp = np.zeros((n, NUM_JOINTS, 3))
        kp[..., 0] = cx[:, None] + rng.normal(0, 30, (n, NUM_JOINTS))
        kp[..., 1] = top[:, None] + np.linspace(0, 380, NUM_JOINTS)[None]
        kp[..., 2] = 0.8
        kps.append(np.concatenate([f[:, None], np.full((n, 1), pid), kp.reshape(n, -1)], axis=1))
    table = PredictionTable(pd.concat(tables, ignore_index=True).loc[:, list(COLUMNS)])
    table.set_metadata(video="long.mp4", fps=fps, model="synthetic")
    table.write(out / "long.csv")
    pd.concat(frames, ignore_index=True).to_csv(out / "long_frames.csv", index=False, float_format="%.6g")
    # no video file: the page sizes its canvas from the boxes and plays on its own clock
    np.save(out / "long_keypoints.npy", np.concatenate(kps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--people", type=int, default=4)
    ap.add_argument("--fps", type=float, default=25)
    ap.add_argument("--seeks", type=int, default=300)
    args = ap.parse_args()
    from beenet.view import write_results_view

    with tempfile.TemporaryDirectory() as d:
        out = Path(d)
        t0 = time.perf_counter()
        synth_results(out, args.minutes, args.people, args.fps)
        t1 = time.perf_counter()
        write_results_view(out)
        t2 = time.perf_counter()
        html = (out / "long.html").read_text()
        data = re.search(r"<script>window.BEENET=(.*?);</script>", html, re.S).group(1)
        per = len(data) / args.minutes / args.people
        print(f"synthetic results: {t1 - t0:.1f} s; page written in {t2 - t1:.1f} s")
        print(f"page {len(html) / 1e6:.2f} MB, data {len(data) / 1e6:.2f} MB = {per / 1e3:.0f} kB per minute per person "
              f"({args.minutes:g} min, {args.people} people, {args.fps:g} fps, every person in every frame)")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=shutil.which("chromium"))
            pg = b.new_page(viewport={"width": 1400, "height": 900})
            t = time.perf_counter()
            pg.goto((out / "long.html").as_uri())
            pg.wait_for_function("document.getElementById('overlay').dataset.frame !== undefined")
            load = time.perf_counter() - t
            n = pg.evaluate("window.BEENET.num_frames")
            ms = pg.evaluate(f"""(() => {{ const out = [];
                for (let k = 0; k < {args.seeks}; k++) {{ const f = Math.floor(Math.random() * {n});
                  const t = performance.now(); window.__beenetSeekFrame(f); out.push(performance.now() - t); }}
                return out; }})()""")
            heap = pg.evaluate("performance.memory ? performance.memory.usedJSHeapSize : null")
            b.close()
        print(f"chromium: page loaded and drawn in {load:.2f} s; one frame drawn in median {statistics.median(ms):.2f} ms, "
              f"p95 {sorted(ms)[int(0.95 * len(ms))]:.2f} ms over {len(ms)} seeks"
              + (f"; JS heap {heap / 1e6:.0f} MB" if heap else ""))


if __name__ == "__main__":
    main()
