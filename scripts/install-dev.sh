#!/usr/bin/env bash
# Install beenet for development into the active Python environment (a venv is best): what
# scripts/install.sh installs (PyTorch, beenet, the offline pose backend) with beenet's
# test/ONNX/parquet/hub extras, then the real footage the tests use.
set -euo pipefail
cd "$(dirname "$0")/.."
BEENET_EXTRAS="[test,onnx,parquet,hub]" bash scripts/install.sh
bash scripts/fetch-footage.sh
python -c "import beenet, torch, av; print('beenet', beenet.__version__, '| torch', torch.__version__, '| av', av.__version__)"
