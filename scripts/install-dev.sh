#!/usr/bin/env bash
# Install beenet for development into the active Python environment (a venv is best): what
# scripts/install.sh installs (PyTorch, beenet, the offline pose backend) with beenet's
# test/ONNX/parquet/hub extras, then the real footage the tests use.
set -euo pipefail
cd "$(dirname "$0")/.."
BEENET_EXTRAS="[test,onnx,parquet,hub]" bash scripts/install.sh
bash scripts/fetch-footage.sh
# The browser tests of 'beenet view' drive Debian's chromium (Playwright's own browser download
# needs the network); installed when missing and this shell may use apt-get.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  $SUDO apt-get install -y -q chromium >/dev/null 2>&1 || ($SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q chromium >/dev/null 2>&1) \
    || echo "note: could not apt-get install chromium; the browser tests of 'beenet view' will be skipped"
fi
python -c "import beenet, torch, av; print('beenet', beenet.__version__, '| torch', torch.__version__, '| av', av.__version__)"
