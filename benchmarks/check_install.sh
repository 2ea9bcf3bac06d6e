#!/usr/bin/env bash
# The install routes of the README, checked as a new user meets them, on each Python given
# (default: the 3.11, 3.12 and 3.13 of pyenv): a clean clone, a fresh venv, README command 1's
# install (torch pinned, then 'pip install .'), then
#   - its output holds no pip ERROR and no setuptools deprecation box ('!!' / 'deprecated'),
#   - 'pip check' is clean,
#   - 'beenet demo --quick' runs (the full demo is README command 1's last step; --full runs it),
#   - the wheel built from the sdist installs with [pose] into a second fresh venv, and
#     'beenet predict' on a real clip (talking.mp4 from .footage/) works there, offline here:
#     the pose models come through beenet.model_files (URL, else the package index).
# Prints one line per Python and check; exits 1 if any check failed. Takes ~4 min per Python
# (two torch installs) on 2 cores.
#
# Usage: bash benchmarks/check_install.sh [--full] [PYTHON_VERSION ...]
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FULL=0
if [ "${1:-}" = "--full" ]; then FULL=1; shift; fi
VERSIONS=("$@")
[ ${#VERSIONS[@]} -eq 0 ] && VERSIONS=(3.11 3.12 3.13)
CLIP="$ROOT/.footage/talking.mp4"
[ -f "$CLIP" ] || bash "$ROOT/scripts/fetch-footage.sh" >/dev/null
WORK="$(mktemp -d /tmp/beenet-install-check.XXXX)"
trap 'rm -rf "$WORK"' EXIT
failed=0
say() { printf '%-6s %-34s %s\n' "$1" "$2" "$3"; [ "$3" = ok ] || failed=1; }

for v in "${VERSIONS[@]}"; do
  py="$(pyenv root 2>/dev/null)/versions/$(pyenv versions --bare 2>/dev/null | grep -E "^${v//./\\.}(\.|$)" | tail -1)/bin/python"
  [ -x "$py" ] || { say "$v" "python" "missing (pyenv install $v)"; continue; }
  d="$WORK/$v"; mkdir -p "$d"
  git clone -q "$ROOT" "$d/src"
  cd "$d/src" || exit 1
  # README command 1 (its install part), output kept
  ( "$py" -m venv .venv && . .venv/bin/activate && pip install torch==2.14.1 torchvision==0.29.1 \
      && pip install . ) > "$d/install.log" 2>&1
  rc=$?
  say "$v" "README command 1 install" "$([ $rc = 0 ] && echo ok || echo "failed (see $d/install.log)")"
  noise=$(grep -v "^WARNING: Location" "$d/install.log" | grep -E "^ERROR|!!|[Dd]eprecat" | head -3)
  say "$v" "no ERROR or deprecation box" "$([ -z "$noise" ] && echo ok || echo "found: $noise")"
  out=$(.venv/bin/python -m pip --disable-pip-version-check check 2>&1)
  say "$v" "pip check" "$([ $? = 0 ] && echo ok || echo "$out" | head -2 | tr '\n' ' ')"
  if [ $FULL = 1 ]; then demo=(beenet demo --out "$d/demo"); else demo=(beenet demo --quick --out "$d/demo"); fi
  ( . .venv/bin/activate && BEENET_CACHE="$d/cache" "${demo[@]}" ) > "$d/demo.log" 2>&1
  say "$v" "${demo[*]:0:3}" "$([ $? = 0 ] && echo ok || echo "failed (see $d/demo.log)")"
  # The wheel route: build sdist + wheel, install the wheel with [pose] into a second venv, predict.
  ( . .venv/bin/activate && pip install -q build && python -m build -q -o "$d/dist" ) > "$d/build.log" 2>&1
  whl=$(ls "$d"/dist/beenet-*.whl 2>/dev/null | head -1)
  say "$v" "sdist -> wheel" "$([ -n "$whl" ] && echo ok || echo "failed (see $d/build.log)")"
  [ -n "$whl" ] || continue
  ( "$py" -m venv "$d/wheel-venv" && . "$d/wheel-venv/bin/activate" \
      && pip install -q torch==2.14.1 torchvision==0.29.1 && pip install -q "$whl[pose]" ) > "$d/wheel.log" 2>&1
  say "$v" "pip install beenet-*.whl[pose]" "$([ $? = 0 ] && echo ok || echo "failed (see $d/wheel.log)")"
  ( cd "$d" && . wheel-venv/bin/activate && BEENET_CACHE="$d/cache" beenet predict "$CLIP" \
      --checkpoint "$d/demo/run/best.pt" --out "$d/pred" ) > "$d/predict.log" 2>&1
  rc=$?
  rows=$(($(wc -l < "$d/pred/talking.csv" 2>/dev/null || echo 1) - 1))
  say "$v" "wheel: beenet predict talking.mp4" "$([ $rc = 0 ] && [ "$rows" -gt 0 ] && echo ok || echo "failed (rc $rc, $rows rows; see $d/predict.log)")"
done
exit $failed
