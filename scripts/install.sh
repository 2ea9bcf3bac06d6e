#!/usr/bin/env bash
# Install beenet for use into the active Python environment (a venv is best): PyTorch (pinned to
# the release this project is tested with; any recent one works), beenet itself, and the offline
# multi-person pose backend that 'beenet predict' uses by default (scripts/install-pose.sh).
# Extra pip arguments for beenet go in BEENET_EXTRAS, e.g. BEENET_EXTRAS="[test,onnx]".
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python -m pip --disable-pip-version-check -q"
$PIP install --upgrade pip
$PIP install torch==2.14.1 torchvision==0.29.1
$PIP install -e ".${BEENET_EXTRAS:-}"
PYTHON=python bash scripts/install-pose.sh
