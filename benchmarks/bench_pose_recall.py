"""People found on the 10 hand-counted frames of vtest.avi, for pose backend options side by side.

vtest.avi (Debian's opencv-doc, fetched by ``scripts/fetch-footage.sh``) was counted by eye on
frames 0, 80, ..., 720: 3, 6, 7, 7, 6, 3, 4, 5, 6, 8 people (55). Each frame is run on its own
(a fresh start of the backend), and the people found are counted; the boxes of these frames were
checked on contact sheets for the default (no false people), so "found" is read as "people found".
Also prints the time of HOG on each whole counted frame (the part of the default backend that
grows with the pixels; between whole-frame runs predict's HOG looks only where the frame changed).

``--history S``: each counted frame is reached as ``beenet predict`` reaches it, the backend run
on every ``--stride``-th frame of the S seconds before it (so people are followed from call to
call), and the people found on the counted frame are counted. ``--sheet PNG`` draws the boxes
found on the 10 frames (one tile each, in order) to check them by eye.

    python benchmarks/bench_pose_recall.py '{}' '{"hog_upscale": 1.6, "hog_max_pixels": 1200000}'
    python benchmarks/bench_pose_recall.py '{}' '{"follow": false}' --history 2 --sheet /tmp/recall.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FRAMES = tuple(range(0, 721, 80))
HAND_COUNT = (3, 6, 7, 7, 6, 3, 4, 5, 6, 8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("options", nargs="*", default=["{}"], help="backend options as JSON objects (default: {})")
    ap.add_argument("--backend", default="mediapipe")
    ap.add_argument("--history", type=float, default=0.0, metavar="S",
                    help="run the backend on the S seconds before each counted frame first (default 0: alone)")
    ap.add_argument("--stride", type=int, default=2, help="frames between calls in --history (default 2: "
                    "predict's auto at 10 fps)")
    ap.add_argument("--sheet", type=Path, help="write the counted frames with the boxes found (last options)")
    args = ap.parse_args(argv)
    if args.stride < 1 or args.history < 0:
        ap.error(f"--stride must be >= 1 and --history >= 0, got {args.stride} and {args.history}")
    import av

    from beenet.inference.pose import make_pose_backend

    path = next((Path(d) / "vtest.avi" for d in (os.environ.get("BEENET_TEST_FOOTAGE"), REPO / ".footage")
                 if d and (Path(d) / "vtest.avi").is_file()), None)
    if path is None:
        sys.exit("vtest.avi is missing: run bash scripts/fetch-footage.sh")
    back = int(round(args.history * 10))  # vtest.avi runs at 10 fps
    runs = {i: [j for j in range(max(0, i - back), i + 1) if (i - j) % args.stride == 0] for i in FRAMES}
    wanted = {j for r in runs.values() for j in r}
    frames = {}
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in wanted:
                frames[i] = f.to_ndarray(format="rgb24")
            if i >= FRAMES[-1]:
                break
    print(f"vtest.avi frames {', '.join(map(str, FRAMES))}: {sum(HAND_COUNT)} people counted by eye")
    for spec in args.options:
        options = json.loads(spec)
        pose = make_pose_backend(args.backend, **options)
        found, hog_s, boxes = [], 0.0, []
        for i in FRAMES:
            pose.reset()
            if hasattr(pose, "hog_boxes"):
                t0 = time.perf_counter()
                pose.hog_boxes(frames[i])
                hog_s += time.perf_counter() - t0
            for j in runs[i]:
                dets = pose(frames[j], j)
            found.append(len(dets))
            boxes.append([d.box for d in dets])
        getattr(pose, "close", lambda: None)()
        history = f" (after {args.history:g} s, every {args.stride}. frame)" if back else ""
        print(f"{spec}: found {sum(found)} of {sum(HAND_COUNT)}{history} {found}; "
              f"HOG {1000 * hog_s / len(FRAMES):.1f} ms/frame")
    if args.sheet:
        _sheet(args.sheet, [frames[i] for i in FRAMES], boxes)
        print(f"boxes of the last options on {args.sheet}")
    return 0


def _sheet(path: Path, images: list, boxes: list) -> None:
    """The frames side by side, 5 a row, each with its boxes drawn in red."""
    import numpy as np
    from PIL import Image, ImageDraw

    h, w = images[0].shape[:2]
    sheet = Image.new("RGB", (5 * w, ((len(images) + 4) // 5) * h))
    for k, (img, bs) in enumerate(zip(images, boxes)):
        tile = Image.fromarray(np.asarray(img))
        draw = ImageDraw.Draw(tile)
        for x, y, bw, bh in bs:
            draw.rectangle([x, y, x + bw, y + bh], outline=(255, 0, 0), width=3)
        draw.text((8, 8), f"frame {FRAMES[k]}: {len(bs)}", fill=(255, 255, 0))
        sheet.paste(tile, ((k % 5) * w, (k // 5) * h))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


if __name__ == "__main__":
    raise SystemExit(main())
