#!/usr/bin/env bash
# Install beenet for development into the active Python environment (a venv is best): PyTorch
# (pinned to the release this project is tested with; any recent one works), beenet in editable
# mode with every optional part and the packaging tools ('dev' extra), the pose model files, the
# real footage the tests use, and Debian's chromium for the browser tests of 'beenet view'.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python -m pip --disable-pip-version-check -q"
$PIP install --upgrade pip
$PIP install torch==2.14.1 torchvision==0.29.1
$PIP install -e ".[dev]"
python -m pip --disable-pip-version-check check
beenet -q models fetch >/dev/null  # the BlazePose files, once, into the beenet cache
bash scripts/fetch-footage.sh
# The browser tests of 'beenet view' drive Debian's chromium (Playwright's own browser download
# needs the network); installed when missing and this shell may use apt-get.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  $SUDO apt-get install -y -q chromium >/dev/null 2>&1 || ($SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q chromium >/dev/null 2>&1) \
    || echo "note: could not apt-get install chromium; the browser tests of 'beenet view' will be skipped"
fi
python -c "import beenet, torch, av; print('beenet', beenet.__version__, '| torch', torch.__version__, '| av', av.__version__)"
