#!/usr/bin/env bash
# The worked example of docs/own-data.md, start to finish, on real footage and a CPU:
#   made-up labels of real clips -> beenet import -> beenet data check -> fine-tune the demo
#   checkpoint (the finetune preset) -> beenet eval -> beenet predict a held-out clip -> its page.
# Every command is printed before it runs, with its output and its wall time after it.
#
#   examples/own-data/run.sh [WORK]          (default WORK: own-data-example; must not exist yet)
#
# FOOTAGE  folder holding face_noface.mov and carphone.mp4
#          (default .footage; benchmarks/footage/fetch.sh fetches them)
# DEMO     an existing 'beenet demo' folder to start from (default: train one into WORK/demo)
# DEMO_ARGS  arguments of that 'beenet demo' (default "--quick": the tiny demo, under a minute on a
#          quiet machine, to keep the example short; DEMO_ARGS= trains the full demo, about 10 min)
# BEENET   how to run beenet (default: beenet; e.g. "python -m beenet")
#
# The labels (examples/own-data/labels.csv) are made up for the example: they say nothing true
# about the people in these clips. The person ids are the ones the tracker gives with the default
# pose settings ('beenet predict VIDEO --per-frame' shows them).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
WORK=${1:-own-data-example}
FOOTAGE=${FOOTAGE:-.footage}
read -r -a BEENET <<< "${BEENET:-beenet}"
DEMO_ARGS=${DEMO_ARGS-"--quick"}
read -r -a DEMO_EXTRA <<< "$DEMO_ARGS"

if [ -e "$WORK" ]; then
    echo "run.sh: $WORK already exists; give another folder (nothing was written)" >&2
    exit 2
fi
for f in face_noface.mov carphone.mp4; do
    if [ ! -f "$FOOTAGE/$f" ]; then
        echo "run.sh: $FOOTAGE/$f is missing; set FOOTAGE to the folder of the clips (benchmarks/footage/fetch.sh)" >&2
        exit 2
    fi
done
mkdir -p "$WORK"
start=$(date +%s.%N)

# step NAME COMMAND...: print the command, run it, print its wall time and the load average.
step() {
    local name=$1
    shift
    printf '\n$ %s\n' "$*"
    local t0 t1
    t0=$(date +%s.%N)
    "$@"
    t1=$(date +%s.%N)
    printf '[%s: %.0f s wall; load average %s]\n' "$name" "$(awk "BEGIN {print $t1 - $t0}")" \
        "$(cut -d' ' -f1-3 /proc/loadavg)"
}

if [ -n "${DEMO:-}" ]; then
    echo "starting from the demo checkpoint $DEMO/run/best.pt (DEMO)"
    init=$DEMO/run/best.pt
else
    step demo "${BEENET[@]}" demo --out "$WORK/demo" "${DEMO_EXTRA[@]}"
    init=$WORK/demo/run/best.pt
fi
if [ ! -f "$init" ]; then
    echo "run.sh: no checkpoint $init" >&2
    exit 1
fi

cp "$here/labels.csv" "$WORK/labels.csv"
# Two videos, split by video: face_noface.mov trains, carphone.mp4 is the val video (--seed 0).
step import "${BEENET[@]}" import "$FOOTAGE/face_noface.mov" "$FOOTAGE/carphone.mp4" \
    --labels "$WORK/labels.csv" --out "$WORK/ds" --val-fraction 0.5 --seed 0
step check "${BEENET[@]}" data check "$WORK/ds"
step finetune "${BEENET[@]}" train --data "$WORK/ds" --out "$WORK/tuned" --config finetune --init "$init" \
    --set run.device=cpu
step eval "${BEENET[@]}" eval --data "$WORK/ds" --checkpoint "$WORK/tuned/best.pt" --split val \
    --out "$WORK/eval" --json "$WORK/eval/scores.json"
# The val video, never trained on (it picked the best epoch), predicted whole with the tuned model.
step predict "${BEENET[@]}" predict "$FOOTAGE/carphone.mp4" --checkpoint "$WORK/tuned/best.pt" \
    --out "$WORK/preds" --device cpu --per-frame
step view "${BEENET[@]}" view "$WORK/preds" --videos "$FOOTAGE/carphone.mp4"

end=$(date +%s.%N)
printf '\ntotal: %.0f s wall (%s cores; load average %s)\n' "$(awk "BEGIN {print $end - $start}")" "$(nproc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
echo "CPU time (user, system): this script, then all the steps together:"
times
echo "open $WORK/preds/index.html in a browser (no server needed)"
