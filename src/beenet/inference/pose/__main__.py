"""``python -m beenet.inference.pose check``: finds the BlazePose model files (fetching them when
they are missing, as ``beenet models fetch`` does) and runs the ``mediapipe`` backend once on a
blank frame."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from beenet.errors import BeenetError
from beenet.inference.pose.multi import MediaPipeMultiPose


def _check(models_dir: str | None = None) -> str:
    pose = MediaPipeMultiPose(models_dir=models_dir)
    found = pose(np.zeros((64, 64, 3), np.uint8), 0)
    pose.close()
    where = ", ".join(str(p) for p in pose.model_files.values())
    return f"pose backend 'mediapipe' ({pose.engine}) works: models {where} ({len(found)} people in a blank frame)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m beenet.inference.pose")
    sub = p.add_subparsers(dest="cmd", required=True)
    check = sub.add_parser("check", help="find (or fetch) the model files, run the landmarker once")
    check.add_argument("--models-dir", default=None, metavar="DIR",
                       help="a folder with pose_detection.tflite and pose_landmark_full.tflite "
                            "(default: beenet's model cache, fetched on first use)")
    args = p.parse_args(argv)
    try:
        print(_check(args.models_dir))
    except BeenetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
