"""Tracking on real footage: ids issued and kept, track lengths, shot cuts, pose_every speed-up.

Runs pose (``--backend multi``: several people per frame from mediapipe's Tasks PoseLandmarker,
benchmarks/_multipose.py; ``mediapipe``: the single-person default backend) once per clip, keeps
the detections (``--cache DIR`` keeps them across runs), and tracks them twice: with the tracker
before issue 11 (every detection opens an id, no velocity, nothing dropped, no shot cuts) and with
the new one at the Predictor's defaults. ``--sheets DIR`` writes contact sheets (every k-th frame
with the kept boxes and final ids, one colour per id, thin boxes where interpolated) to look at. ``--pose-every 1,2,3`` times pose on every N-th
frame and tracks the result.

    PYTHONPATH=src python benchmarks/bench_tracking.py --footage /work/main/.footage --cache /tmp/tc \\
        --sheets /tmp/sheets bikes.mp4 vtest.avi talking.mp4 face_noface.mov
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from beenet.inference.pose import PoseDetection, valid_mask
from beenet.inference.predictor import (
    MAX_TILT,
    MIN_CONFIDENCE,
    MIN_HITS,
    MIN_JOINTS,
    MIN_TRACK_S,
)
from beenet.inference.shots import ShotCutDetector
from beenet.inference.tracking import Tracker
from beenet.inference.windows import TrackStore


def frames_of(path: Path):
    import av

    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            yield i, f.to_ndarray(format="rgb24")


def make_backend(kind: str, fps: float):
    if kind == "multi":
        from _multipose import MultiPoseTasks

        return MultiPoseTasks(num_poses=6, fps=fps)
    from beenet.inference.pose import MediaPipePose

    return MediaPipePose()


def detect(path: Path, kind: str, every: int = 1, cache: Path | None = None) -> dict:
    """Detections (every ``every``-th frame and each shot's first), shot cuts, pose seconds."""
    import av

    key = cache / f"{path.name}.{kind}.{every}.pkl" if cache else None
    if key is not None and key.is_file():
        return pickle.loads(key.read_bytes())
    with av.open(str(path)) as c:
        fps = float(c.streams.video[0].average_rate or 25)
    backend = make_backend(kind, fps)
    backend.reset()
    shots = ShotCutDetector()
    dets: dict[int, list[PoseDetection]] = {}
    cuts, t_pose, t_shot, n = [], 0.0, 0.0, 0
    for i, frame in frames_of(path):
        n = i + 1
        t0 = time.perf_counter()
        cut = shots(frame)
        t_shot += time.perf_counter() - t0
        if cut:
            cuts.append(i)
        if i % every and not cut:
            continue
        t0 = time.perf_counter()
        dets[i] = [d for d in backend(frame, i) if valid_mask(d.keypoints).sum() >= MIN_JOINTS]
        t_pose += time.perf_counter() - t0
    out = {"fps": fps, "num_frames": n, "dets": dets, "cuts": cuts, "pose_s": t_pose, "shot_s": t_shot, "size": frame.shape[:2]}
    if key is not None:
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(pickle.dumps(out))
    return out


def old_tracker(fps: float) -> Tracker:
    """The tracker before issue 11: every detection counts, nothing dropped, no velocity."""
    return Tracker(max_age=max(1, round(0.5 * fps)), min_hits=1, constant_velocity=False, max_tilt=None)


def new_tracker(fps: float, every: int = 1, **kw) -> Tracker:
    opts = {"max_age": max(every, round(0.5 * fps)), "min_hits": MIN_HITS,
                "min_track_frames": max(1, round(MIN_TRACK_S * fps)), "min_confidence": MIN_CONFIDENCE, "max_tilt": MAX_TILT}
    opts.update(kw)
    return Tracker(**opts)


def track(run: dict, tracker: Tracker, use_cuts: bool) -> TrackStore:
    store = TrackStore()
    cuts = set(run["cuts"]) if use_cuts else set()
    for i in range(run["num_frames"]):
        store.frame_done(i)
        if i in cuts:
            tracker.cut(i)
        if i in run["dets"]:
            dets = run["dets"][i]
            for pid, d in zip(tracker.update(i, dets), dets):
                store.add(i, pid, d.keypoints, d.box, d.score)
    store.relabel(tracker.finalize())
    store.interpolate(tracker.max_age)
    return store


def describe(tracker: Tracker, store: TrackStore) -> str:
    lengths = [len(v) for v in store.boxes().values()]
    firsts = [min(v) for v in store.boxes().values()]
    conf = [np.mean(list(v.values())) for v in store.confidences().values()]
    return (f"issued {len(tracker.all_tracks()):3d} kept {len(store.person_ids):2d}  lengths {lengths}  "
            f"first frames {firsts}  confidence {[round(float(c), 2) for c in conf]}")


PALETTE = ("red", "lime", "cyan", "magenta", "yellow", "orange", "white", "blue")


def sheet(path: Path, store: TrackStore, out: Path, step: int, cols: int = 6, width: int = 320,
          first: int = 0, last: int | None = None) -> None:
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=max(12, 8 * next(frames_of(path))[1].shape[1] // width))
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    boxes = store.boxes()
    interp = store.interpolated()
    tiles = []
    for i, frame in frames_of(path):
        if i % step or i < first or (last is not None and i > last):
            continue
        im = Image.fromarray(frame)
        d = ImageDraw.Draw(im)
        for pid, per in boxes.items():
            if i in per:
                x, y, w, h = per[i]
                col = PALETTE[pid % len(PALETTE)]  # one colour per id: a switch shows as a change
                d.rectangle([x, y, x + w, y + h], outline=col, width=1 if i in interp.get(pid, ()) else 3)
                d.text((x + 3, max(0, y - 12)), f"id {pid}", fill=col, font=font)
        d.text((3, 3), f"#{i}", fill="white")
        s = width / im.width
        tiles.append(im.resize((width, int(im.height * s))))
    rows = (len(tiles) + cols - 1) // cols
    out_im = Image.new("RGB", (cols * width, rows * tiles[0].height))
    for k, t in enumerate(tiles):
        out_im.paste(t, ((k % cols) * width, (k // cols) * t.height))
    out.parent.mkdir(parents=True, exist_ok=True)
    out_im.save(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="+")
    ap.add_argument("--footage", default="/work/main/.footage")
    ap.add_argument("--backend", default="multi", choices=("multi", "mediapipe"))
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--sheets", type=Path)
    ap.add_argument("--sheet-step", type=int, default=0, help="frames between tiles (default: 36 tiles a clip)")
    ap.add_argument("--sheet-frames", default="", metavar="A:B", help="only frames A..B on the sheets")
    ap.add_argument("--sheet-width", type=int, default=320, help="tile width in pixels")
    ap.add_argument("--pose-every", default="1", help="comma-separated N values to time")
    args = ap.parse_args()
    for clip in args.clips:
        path = Path(args.footage) / clip
        for every in [int(x) for x in args.pose_every.split(",")]:
            run = detect(path, args.backend, every, args.cache)
            fps, n = run["fps"], run["num_frames"]
            print(f"{clip} [{args.backend}] pose_every={every}: {n} frames, {fps:g} fps, shot cuts {run['cuts']}, "
                  f"pose {run['pose_s']:.1f} s ({run['pose_s'] / n * 1000:.0f} ms/frame of video), "
                  f"shots {run['shot_s'] / n * 1000:.1f} ms/frame")
            if every == 1:
                t = old_tracker(fps)
                print("  old:", describe(t, track(run, t, use_cuts=False)))
            t = new_tracker(fps, every)
            store = track(run, t, use_cuts=True)
            print("  new:", describe(t, store))
            if args.sheets and every == 1:
                a, _, b = args.sheet_frames.partition(":")
                first, last = int(a or 0), int(b or n - 1)
                step = args.sheet_step or max(1, (last - first + 1) // 36)
                suffix = f"_{first}-{last}" if args.sheet_frames else ""
                sheet(path, store, args.sheets / f"{Path(clip).stem}_{args.backend}{suffix}.png", step,
                      width=args.sheet_width, first=first, last=last)


if __name__ == "__main__":
    main()
