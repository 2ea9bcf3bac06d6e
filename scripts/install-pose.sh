#!/usr/bin/env bash
# Install the offline multi-person pose backend ('beenet predict --pose mediapipe', the default)
# into the active Python environment. beenet must be installed already (scripts/install.sh does both).
#
# Python <= 3.12: mediapipe 0.10.21, which ships the BlazePose models, without its dependencies
#   (they would pull jax and numpy < 2), plus the few it imports.
# Python >= 3.13: mediapipe 1.2.3 (the newest when written: a py3-none wheel with the Tasks API
#   but no models), and the two model files copied out of the 0.10.21 wheel (downloaded here, once) into beenet's cache
#   (~/.cache/beenet/mediapipe-models, or $BEENET_CACHE/../mediapipe-models).
# Both: ai-edge-litert (LiteRT, Google's tflite runtime), which runs the two models directly (the
#   default engine, src/beenet/inference/pose/blazepose.py); without it the backend falls back to
#   mediapipe's Tasks PoseLandmarker, slower.
# BEENET_POSE_NEWEST=1 takes the Python >= 3.13 route on any Python (to test it).
# Nothing is downloaded when beenet runs. Ends by running the backend once on a blank frame.
set -euo pipefail
PY="${PYTHON:-python}"
PIP="$PY -m pip --disable-pip-version-check -q"
minor=$($PY -c 'import sys; print(sys.version_info[1] if sys.version_info[0] == 3 else 99)')
if [ "$minor" -le 12 ] && [ "${BEENET_POSE_NEWEST:-0}" != 1 ]; then
  $PIP install --no-deps mediapipe==0.10.21
  $PIP install absl-py attrs flatbuffers "protobuf>=4.25.3,<5" "opencv-python-headless<5" "ai-edge-litert>=2.0"
else
  # Tested on Python 3.13.0 (numpy 2.5, opencv 4.14): the same people found on real footage as
  # 0.10.21 on Python 3.11. Its vision module imports matplotlib (also a beenet dependency).
  $PIP install --no-deps mediapipe==1.2.3
  $PIP install absl-py certifi flatbuffers matplotlib "opencv-python-headless<5" "ai-edge-litert>=2.0"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  $PY -m pip --disable-pip-version-check download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 mediapipe==0.10.21 -d "$tmp"
  $PY -m beenet.inference.pose install-models "$tmp"/mediapipe-0.10.21-*.whl
fi
$PY -m beenet.inference.pose check
