"""``python -m beenet.inference.pose install-models WHEEL`` (used by ``scripts/install-pose.sh``:
the BlazePose model files out of a mediapipe 0.10.21 wheel) or ``... check`` (finds the models,
builds what the engine needs and runs the ``mediapipe`` backend once on a blank frame)."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from beenet.errors import BeenetError
from beenet.inference.pose.models import install_models_from_wheel
from beenet.inference.pose.multi import MediaPipeMultiPose


def _check() -> str:
    pose = MediaPipeMultiPose()
    found = pose(np.zeros((64, 64, 3), np.uint8), 0)
    pose.close()
    where = f"bundle {pose.bundle}" if pose.bundle else "models " + ", ".join(str(p) for p in pose.model_files.values())
    return f"pose backend 'mediapipe' ({pose.engine}) works: {where} ({len(found)} people in a blank frame)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m beenet.inference.pose")
    sub = p.add_subparsers(dest="cmd", required=True)
    inst = sub.add_parser("install-models", help="copy the tflite files out of a mediapipe 0.10.21 wheel")
    inst.add_argument("wheel")
    sub.add_parser("check", help="find the models, build the bundle, run the landmarker once")
    args = p.parse_args(argv)
    try:
        if args.cmd == "install-models":
            print(f"pose models in {install_models_from_wheel(args.wheel)}")
        else:
            print(_check())
    except BeenetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
