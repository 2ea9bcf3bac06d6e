"""People found on the 10 hand-counted frames of vtest.avi, for pose backend options side by side.

vtest.avi (Debian's opencv-doc, fetched by ``scripts/fetch-footage.sh``) was counted by eye on
frames 0, 80, ..., 720: 3, 6, 7, 7, 6, 3, 4, 5, 6, 8 people (55). Each frame is run on its own
(a fresh start of the backend), and the people found are counted; the boxes of these frames were
checked on contact sheets for the default (no false people), so "found" is read as "people found".
Also prints the HOG time per frame (the part of the default backend that grows with the pixels).

    python benchmarks/bench_pose_recall.py '{}' '{"hog_upscale": 1.6, "hog_max_pixels": 1200000}'
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
    args = ap.parse_args(argv)
    import av

    from beenet.inference.pose import make_pose_backend

    path = next((Path(d) / "vtest.avi" for d in (os.environ.get("BEENET_TEST_FOOTAGE"), REPO / ".footage")
                 if d and (Path(d) / "vtest.avi").is_file()), None)
    if path is None:
        sys.exit("vtest.avi is missing: run bash scripts/fetch-footage.sh")
    frames = {}
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in FRAMES:
                frames[i] = f.to_ndarray(format="rgb24")
            if i >= FRAMES[-1]:
                break
    print(f"vtest.avi frames {', '.join(map(str, FRAMES))}: {sum(HAND_COUNT)} people counted by eye")
    for spec in args.options:
        options = json.loads(spec)
        pose = make_pose_backend(args.backend, **options)
        found, hog_s = [], 0.0
        for i in FRAMES:
            pose.reset()
            if hasattr(pose, "hog_boxes"):
                t0 = time.perf_counter()
                pose.hog_boxes(frames[i])
                hog_s += time.perf_counter() - t0
            found.append(len(pose(frames[i], 0)))
        getattr(pose, "close", lambda: None)()
        print(f"{spec}: found {sum(found)} of {sum(HAND_COUNT)} {found}; HOG {1000 * hog_s / len(FRAMES):.1f} ms/frame")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
