"""Tracking on real footage: ids issued and kept, track lengths, shot cuts, pose_every speed-up.

Runs a shipped pose backend (``--backend mediapipe``, the default: several people per frame;
``rcnn``; ``--pose-option KEY=VALUE`` as ``beenet predict``'s Python options) once
per clip and ``--pose-every`` value, keeps the detections (``--cache DIR`` keeps them across
runs), and tracks them twice: with the tracker before issue 11 (every detection opens an id, no
velocity, nothing dropped, no shot cuts) and with the new one at the Predictor's defaults. For N >
1 it also prints how much of the N = 1 run's tracked person-frames the run covers (a box of the
same frame whose centre lies in the reference box; and with box IoU >= 0.5). ``--sheets DIR`` writes contact sheets (every k-th frame with the kept
boxes and final ids, one colour per id, thin boxes where interpolated) to look at;
``--join-sheets DIR`` one sheet of the tracks relinking joined (the last 3 detections before each
gap and the first 3 after), to judge each join by eye.

    PYTHONPATH=src python benchmarks/bench_tracking.py --cache /tmp/tc --sheets /tmp/sheets \\
        --pose-every 1,2,3 bikes.mp4 vtest.avi talking.mp4 face_noface.mov

Clips are looked up in ``--footage`` (default: ``$BEENET_TEST_FOOTAGE`` or ``.footage/``, where
``scripts/fetch-footage.sh`` puts them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import time
from pathlib import Path

import numpy as np

from beenet.inference.appearance import appearance
from beenet.inference.pose import POSE_BACKENDS, PoseDetection, make_pose_backend, shot_cut, valid_mask
from beenet.inference.people import MIN_JOINTS, pose_due
from beenet.inference.shots import ShotCutDetector
from beenet.inference.pose import box_iou as iou
from beenet.inference.tracking import Tracker
from beenet.inference.tracking_config import MAX_GAP_S, MAX_TILT, MIN_CONFIDENCE, MIN_HITS, MIN_TRACK_S, RELINK_S
from beenet.inference.windows import TrackStore


def frames_of(path: Path):
    import av

    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            yield i, f.to_ndarray(format="rgb24")


REPO = Path(__file__).resolve().parents[1]


def detect(path: Path, kind: str, every: int = 1, cache: Path | None = None, options: dict | None = None) -> dict:
    """Detections (every ``every``-th frame and each shot's first), shot cuts, pose seconds."""
    import av

    options = options or {}
    tag = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:8]
    key = cache / f"{path.name}.{kind}.{tag}.{every}.v5.pkl" if cache else None
    if key is not None and key.is_file():
        return pickle.loads(key.read_bytes())
    with av.open(str(path)) as c:
        fps = float(c.streams.video[0].average_rate or 25)
    from beenet.media.video import VideoReader

    with VideoReader(path) as r:
        total = r.num_frames
    backend = make_pose_backend(kind, **options)
    backend.reset()
    online = new_tracker(fps, every)
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
            online.cut(i)
            shot_cut(backend)
        if not pose_due(i, every, cut, online, last=i == total - 1):  # the Predictor's rule
            continue
        t0 = time.perf_counter()
        dets[i] = [d for d in backend(frame, i) if valid_mask(d.keypoints).sum() >= MIN_JOINTS]
        t_pose += time.perf_counter() - t0
        for d in dets[i]:  # as the Predictor does, for relinking
            d.appearance = appearance(frame, d.keypoints)
        online.update(i, dets[i])
    backend.close()
    out = {"fps": fps, "num_frames": n, "dets": dets, "cuts": cuts, "pose_s": t_pose, "shot_s": t_shot, "size": frame.shape[:2]}
    if key is not None:
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(pickle.dumps(out))
    return out


def old_tracker(fps: float) -> Tracker:
    """The tracker before issue 11: every detection counts, nothing dropped, no velocity."""
    return Tracker(max_age=max(1, round(0.5 * fps)), min_hits=1, constant_velocity=False, max_tilt=None)


def new_tracker(fps: float, every: int = 1, **kw) -> Tracker:
    opts = {"max_age": max(every, round(MAX_GAP_S * fps)), "min_hits": MIN_HITS,
            "min_track_frames": max(1, round(MIN_TRACK_S * fps)), "min_confidence": MIN_CONFIDENCE, "max_tilt": MAX_TILT,
            "relink_frames": round(RELINK_S * fps)}
    opts.update(kw)
    return Tracker(**opts)


def feed(run: dict, tracker: Tracker, use_cuts: bool = True) -> TrackStore:
    """``run``'s detections through ``tracker`` (fresh), frame by frame as the Predictor does; the
    store holds them under the tracker's provisional ids."""
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
    return store


def track(run: dict, tracker: Tracker, use_cuts: bool) -> TrackStore:
    store = feed(run, tracker, use_cuts)
    store.relabel(tracker.finalize())
    store.interpolate(tracker.max_age)
    return store


def joins(run: dict, tracker: Tracker) -> list[tuple[list, list]]:
    """The tracks ``tracker`` (fresh) joins by relinking on ``run``'s detections: for each join, the
    ``(frame, box)`` of the last 3 detections before the gap and of the first 3 after it."""
    store = feed(run, tracker)  # by provisional id: the tracks before they are joined
    kept = sorted((t for t in tracker.all_tracks() if tracker.kept(t)), key=lambda t: (t.first_frame, t.person_id))
    boxes = store.boxes()
    return [([(f, boxes[a][f]) for f in sorted(boxes[a])[-3:]], [(f, boxes[b][f]) for f in sorted(boxes[b])[:3]])
            for a, b in tracker.relinks(kept)]


def join_sheet(path: Path, pairs: list[tuple[list, list]], out: Path, side: int = 96) -> None:
    """One row a join: crops of the 3 detections before the gap, a gap, the 3 after (frame numbers
    on each), to judge by eye whether they are one person."""
    from PIL import Image, ImageDraw

    want: dict[int, list] = {}
    for k, (before, after) in enumerate(pairs):
        for j, (f, box) in enumerate(before + after):
            want.setdefault(f, []).append((k, j, box))
    sheet_im = Image.new("RGB", (7 * side, max(1, len(pairs)) * 2 * side), "black")
    for i, frame in frames_of(path):
        for k, j, (x, y, w, h) in want.get(i, []):
            m = 0.25 * h
            x0, y0 = int(max(0, x - m)), int(max(0, y - m))
            crop = Image.fromarray(frame[y0:int(y + h + m), x0:int(x + w + m)]).resize((side, 2 * side))
            ImageDraw.Draw(crop).text((2, 2), str(i), fill="yellow")
            sheet_im.paste(crop, ((j + (j >= 3)) * side, k * 2 * side))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet_im.save(out)


def likely_splits(store: TrackStore, fps: float, within_s: float = 1.0) -> int:
    """Kept tracks that start where another kept track ended shortly before (within ``within_s``
    seconds, centres closer than the taller box's height): most likely one person given two ids.
    A heuristic, not a hand count: two people can also pass the same spot in turn."""
    spans = []
    for per in store.boxes().values():
        first, last = min(per), max(per)
        spans.append((first, last, per[first], per[last]))
    n = 0
    for first, _, box, _ in spans:
        for _, last, _, end in spans:
            if 0 < first - last <= round(within_s * fps):
                d = np.hypot(box[0] + box[2] / 2 - end[0] - end[2] / 2, box[1] + box[3] / 2 - end[1] - end[3] / 2)
                if d < max(box[3], end[3]):
                    n += 1
                    break
    return n


def describe(tracker: Tracker, store: TrackStore, fps: float = 25.0) -> str:
    lengths = [len(v) for v in store.boxes().values()]
    firsts = [min(v) for v in store.boxes().values()]
    conf = [np.mean(list(v.values())) for v in store.confidences().values()]
    joined = sum(tracker.kept(t) for t in tracker.all_tracks()) - len(store.person_ids)  # by relinking
    return (f"issued {len(tracker.all_tracks()):3d} kept {len(store.person_ids):2d} (joined {joined}) likely splits "
            f"{likely_splits(store, fps)}  tracked person-frames {sum(lengths)}  lengths {lengths}  "
            f"first frames {firsts}  confidence {[round(float(c), 2) for c in conf]}")


def coverage(store: TrackStore, reference: TrackStore) -> tuple[float, float]:
    """Shares of ``reference``'s tracked person-frames that ``store`` also has: a box of the same
    frame with IoU >= 0.5, and a box of the same frame whose centre lies in the reference box
    (the person is there, the box may differ: interpolated, or a hand raised in one of them)."""
    from beenet.inference.pose.boxes import inside as _inside

    mine: dict[int, list] = {}
    for per in store.boxes().values():
        for i, b in per.items():
            mine.setdefault(i, []).append(b)
    total = same = there = 0
    for per in reference.boxes().values():
        for i, b in per.items():
            total += 1
            same += any(iou(b, o) >= 0.5 for o in mine.get(i, ()))
            there += any(_inside(o[0] + o[2] / 2, o[1] + o[3] / 2, b) for o in mine.get(i, ()))
    return same / max(total, 1), there / max(total, 1)


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
    ap.add_argument("--footage", default=os.environ.get("BEENET_TEST_FOOTAGE") or str(REPO / ".footage"))
    ap.add_argument("--backend", default="mediapipe", choices=tuple(POSE_BACKENDS))
    ap.add_argument("--pose-option", action="append", default=[], metavar="KEY=VALUE",
                    help="an option of the backend (e.g. hog_every=2); repeatable")
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--sheets", type=Path)
    ap.add_argument("--join-sheets", type=Path, metavar="DIR",
                    help="write one sheet a clip and N of the tracks relinking joined (crops before and after "
                         "each gap) to judge them by eye")
    ap.add_argument("--sheet-step", type=int, default=0, help="frames between tiles (default: 36 tiles a clip)")
    ap.add_argument("--sheet-frames", default="", metavar="A:B", help="only frames A..B on the sheets")
    ap.add_argument("--sheet-width", type=int, default=320, help="tile width in pixels")
    ap.add_argument("--pose-every", default="1", help="comma-separated N values to time")
    ap.add_argument("--max-gap", default=str(MAX_GAP_S),
                    help=f"comma-separated seconds a person may go undetected and keep their id, each tracked "
                         f"in turn on the same detections (default {MAX_GAP_S:g}, the Predictor's)")
    ap.add_argument("--relink", default=f"0,{RELINK_S:g}",
                    help=f"comma-separated seconds within which a track that looks like one that ended close by "
                         f"continues its id, each tracked in turn (0: never; the Predictor's default is "
                         f"{RELINK_S:g}, the one the coverage and the sheets use)")
    args = ap.parse_args()
    from beenet.cli.predict import parse_pose_option  # typed as beenet predict types them

    options = dict(parse_pose_option(kv) for kv in args.pose_option)
    for clip in args.clips:
        path = Path(args.footage) / clip
        reference = None
        for every in [int(x) for x in args.pose_every.split(",")]:
            run = detect(path, args.backend, every, args.cache, options)
            fps, n = run["fps"], run["num_frames"]
            print(f"{clip} [{args.backend}] pose_every={every}: {n} frames, {fps:g} fps, shot cuts {run['cuts']}, "
                  f"pose {run['pose_s']:.1f} s ({run['pose_s'] / n * 1000:.0f} ms/frame of video), "
                  f"shots {run['shot_s'] / n * 1000:.1f} ms/frame")
            if every == 1:
                t = old_tracker(fps)
                print("  old:", describe(t, track(run, t, use_cuts=False), fps))
            t = new_tracker(fps, every)  # the Predictor's: the coverage and the sheets below are of this one
            store = track(run, t, use_cuts=True)
            print("  new:", describe(t, store, fps))
            for gap in [float(g) for g in args.max_gap.split(",") if float(g) != MAX_GAP_S]:
                other = new_tracker(fps, every, max_age=max(every, round(gap * fps)))
                print(f"  new, max gap {gap:g} s:", describe(other, track(run, other, use_cuts=True), fps))
            for relink in [float(r) for r in args.relink.split(",") if float(r) != RELINK_S]:
                other = new_tracker(fps, every, relink_frames=round(relink * fps))
                print(f"  new, relink {relink:g} s:", describe(other, track(run, other, use_cuts=True), fps))
            if every == 1:
                reference = store
            elif reference is not None:
                same, there = coverage(store, reference)
                print(f"  covers {there:.1%} of the pose_every=1 person-frames ({same:.1%} with box IoU >= 0.5); "
                      f"posed {len(run['dets'])} of {n} frames")
            if args.join_sheets:
                pairs = joins(run, new_tracker(fps, every))
                join_sheet(path, pairs, args.join_sheets / f"{Path(clip).stem}_joins_n{every}.png")
                print(f"  {len(pairs)} joins drawn in {args.join_sheets}")
            if args.sheets:
                a, _, b = args.sheet_frames.partition(":")
                first, last = int(a or 0), int(b or n - 1)
                step = args.sheet_step or max(1, (last - first + 1) // 36)
                suffix = (f"_{first}-{last}" if args.sheet_frames else "") + (f"_n{every}" if every > 1 else "")
                sheet(path, store, args.sheets / f"{Path(clip).stem}_{args.backend}{suffix}.png", step,
                      width=args.sheet_width, first=first, last=last)


if __name__ == "__main__":
    main()
