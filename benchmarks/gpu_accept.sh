#!/usr/bin/env bash
# beenet on one GPU, checked end to end in under 10 minutes: one script, a compact summary last.
#
#   benchmarks/gpu_accept.sh                  # on a machine with one CUDA GPU
#   benchmarks/gpu_accept.sh --device cpu     # the same steps on the CPU, small sizes (the test suite runs this)
#   options: --work DIR (keep everything there; default: a temporary folder, removed at the end)
#            PYTHON=/path/to/python to choose the interpreter (default: python)
#
# Steps (each one PASS / FAIL / WARN in the summary, with its figures; logs in WORK/logs/):
#   env      GPU name, CUDA, NCCL available, bf16 support, GPU memory, free /dev/shm
#   synth    a synthetic BoLD (beenet synth)
#   prepare  beenet prepare of it (the paper preset with the synthetic sidecar context: no download)
#   epoch    one training epoch from the prepared cache with run.amp=auto
#   sweep    one training step's samples/s and GPU memory per sample, batch 8/32/128 x amp off/bf16
#            x channels_last off/on (benchmarks/accept_helper.py sweep)
#   ddp      torch DDP over NCCL at world size 1 with beenet's model, under torchrun (accept_helper.py
#            ddp), and 'torchrun --nproc_per_node 1 -m beenet train' for one epoch
#   resume   2 epochs stopped after the first and resumed with 'beenet train --resume', against 2 epochs
#            straight: the same metrics.csv
#            (bit for bit on CPU; within --tolerance on GPU, where cuDNN is not deterministic)
#   compile  one epoch with run.compile=true, dynamo's graph breaks and recompiles counted
#
# CPU mode: gloo instead of NCCL, amp off only (bf16 is CUDA-only here), the demo preset at 32 px
# on 24 tiny clips, and torch.compile with the 'eager' backend (dynamo only: the graph breaks and
# recompiles it counts are the same for every backend; inductor's C++ build takes minutes on 2 cores).
# Exit status: 0 when every step passed (WARN included), 1 otherwise.

set -u -o pipefail

DEVICE=cuda
WORK=""
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --work) WORK="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//; s/^#$//'; exit 0 ;;
        *) echo "gpu_accept.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$DEVICE" in cuda|cpu) ;; *) echo "gpu_accept.sh: --device cuda or cpu, not $DEVICE" >&2; exit 2 ;; esac

HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-python}"
HELPER="$HERE/accept_helper.py"
CLEAN=0
if [ -z "$WORK" ]; then WORK="$(mktemp -d "${TMPDIR:-/tmp}/beenet-accept-XXXXXX")"; CLEAN=1; fi
mkdir -p "$WORK/logs"
SUMMARY="$WORK/summary.txt"
: > "$SUMMARY"
export BEENET_NO_PROGRESS=1
START=$(date +%s)

if [ "$DEVICE" = cuda ]; then
    CONFIG=paper
    SETS=(model.pretrained=false context.source=sidecar context.pretrained=false run.device=cuda
          run.num_workers=-1)
    CLIPS=160; SIZE=320x240; FRAMES=40-90; PREP_WORKERS=4
    BATCHES=8,32,128; AMPS=off,bf16; STEPS=10; TOLERANCE=5e-3; BACKEND=inductor; BACKEND_NAME=nccl
else
    CONFIG=demo
    SETS=(data.image_size=32 data.crop_size=32 data.skeleton_frames=8 data.num_frames=2 model.pretrained=false
          model.stream_channels=16 model.stream_layers=1 model.skeleton_channels=8 optim.batch_size=8
          run.num_workers=0 run.device=cpu context.pretrained=false run.bn_recalibrate=2)
    CLIPS=24; SIZE=64x48; FRAMES=8-16; PREP_WORKERS=1
    BATCHES=2,4,8; AMPS=off; STEPS=2; TOLERANCE=0; BACKEND=eager; BACKEND_NAME=gloo
    export OMP_NUM_THREADS=1
fi
SETARGS=()
for s in "${SETS[@]}"; do SETARGS+=(--set "$s"); done
DATA="$WORK/synth"
PREP="$WORK/prepared"
TRAIN=(-m beenet train --data "$DATA" --config "$CONFIG" "${SETARGS[@]}" --set "run.prepared_dir=$PREP")

# run NAME CMD...: run one step, its output in logs/NAME.log; sets STATUS and SECS.
run() {
    local name="$1"; shift
    local t0; t0=$(date +%s.%N)
    echo "== $name: $*" >> "$WORK/logs/commands.txt"
    if "$@" > "$WORK/logs/$name.log" 2>&1; then STATUS=PASS; else STATUS=FAIL; fi
    SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
}

# note NAME DETAIL [LINES-FILE]: one summary line (and indented lines from a file).
note() {
    printf '%-8s %-4s %6ss  %s\n' "$1" "$STATUS" "$SECS" "$2" >> "$SUMMARY"
    if [ $# -ge 3 ] && [ -s "$3" ]; then sed 's/^/           /' "$3" >> "$SUMMARY"; fi
    echo "[gpu_accept] $1: $STATUS (${SECS}s)"
}

metric() {  # metric RUN COLUMN [ROW]: one value of RUN/metrics.csv (last row by default)
    "$PY" - "$1" "$2" "${3:--1}" <<'EOF' 2>/dev/null || echo "?"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/metrics.csv", newline="")))
print(rows[int(sys.argv[3])][sys.argv[2]])
EOF
}

# 1. environment
run env "$PY" "$HELPER" env --device "$DEVICE"
grep -v '^torch:' "$WORK/logs/env.log" | head -8 > "$WORK/logs/env.lines"
if [ "$STATUS" = PASS ]; then
    shm=$(sed -n 's|^/dev/shm free: \([0-9]*\) MiB.*|\1|p' "$WORK/logs/env.log")
    if [ -n "$shm" ] && [ "$shm" -lt 1024 ]; then
        STATUS=WARN
        echo "/dev/shm has ${shm} MiB free: DataLoader workers share batches there; give the container" \
             "--shm-size=8g (docker) or use fewer run.num_workers" >> "$WORK/logs/env.lines"
    fi
    grep -q 'NOT available' "$WORK/logs/env.log" && STATUS=FAIL
fi
note env "$(head -1 "$WORK/logs/env.log")" "$WORK/logs/env.lines"

# 2. synthetic data
run synth "$PY" -m beenet synth "$DATA" --clips "$CLIPS" --size "$SIZE" --frames "$FRAMES" --no-progress
note synth "$(head -1 "$WORK/logs/synth.log")"

# 3. prepare
run prepare "$PY" -m beenet prepare --data "$DATA" --config "$CONFIG" "${SETARGS[@]}" --out "$PREP" \
    --workers "$PREP_WORKERS"
note prepare "$(grep '^prepared cache' "$WORK/logs/prepare.log" | sed 's|prepared cache [^:]*: ||' | tail -1)"

# 4. one epoch, amp auto, from the cache
run epoch "$PY" "${TRAIN[@]}" --out "$WORK/run-a" --epochs 1 --set run.amp=auto
served=$(grep -c 'prepared cache' "$WORK/run-a/train.log" 2>/dev/null || echo 0)
[ "$STATUS" = PASS ] && [ "$served" = 0 ] && STATUS=WARN
amp=$(grep -o 'amp [a-z0-9]*' "$WORK/run-a/train.log" 2>/dev/null | head -1)
note epoch "epoch $(metric "$WORK/run-a" time_s)s, val ERS $(metric "$WORK/run-a" val_ERS), run.amp=auto${amp:+ ($amp)}, prepared cache lines in train.log: $served"

# 5. compute sweep
run sweep "$PY" "$HELPER" sweep --device "$DEVICE" --data "$DATA" --config "$CONFIG" "${SETARGS[@]}" \
    --batches "$BATCHES" --amps "$AMPS" --steps "$STEPS"
grep -E '^ *(batch|[0-9]+ )' "$WORK/logs/sweep.log" > "$WORK/logs/sweep.lines"
note sweep "$(grep '^sweep best' "$WORK/logs/sweep.log" | sed 's/^sweep //')" "$WORK/logs/sweep.lines"

# 6. DDP at world size 1: torch's DDP over NCCL (gloo on CPU) with beenet's model, then beenet under torchrun
run ddp "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 "$HELPER" ddp --device "$DEVICE" \
    --data "$DATA" --config "$CONFIG" "${SETARGS[@]}" --steps "$STEPS"
ddp_status=$STATUS; ddp_secs=$SECS
run torchrun "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 "${TRAIN[@]}" --out "$WORK/run-ddp" \
    --epochs 1
[ "$ddp_status" = FAIL ] && STATUS=FAIL
SECS=$(awk -v a="$ddp_secs" -v b="$SECS" 'BEGIN { printf "%.1f", a + b }')
note ddp "$(grep '^ddp:' "$WORK/logs/ddp.log" | tail -1 | sed 's/^ddp: //'); torchrun -m beenet train: epoch $(metric "$WORK/run-ddp" time_s)s, $(grep -o 'world size [0-9]*' "$WORK/run-ddp/train.log" 2>/dev/null | head -1)"

# 7. resume vs rerun: 2 epochs stopped after the first and resumed, against 2 epochs straight
run resume-a "$PY" "$HELPER" interrupt --device "$DEVICE" --data "$DATA" --config "$CONFIG" "${SETARGS[@]}" \
    --set "run.prepared_dir=$PREP" --set run.amp=auto --out "$WORK/run-r" --epochs 2
ra=$STATUS; rs=$SECS
run resume-b "$PY" -m beenet train --data "$DATA" --out "$WORK/run-r" --resume
rb=$STATUS; rs=$(awk -v a="$rs" -v b="$SECS" 'BEGIN { printf "%.1f", a + b }')
run resume-c "$PY" "${TRAIN[@]}" --out "$WORK/run-b" --epochs 2 --set run.amp=auto
rc=$STATUS; rs=$(awk -v a="$rs" -v b="$SECS" 'BEGIN { printf "%.1f", a + b }')
run resume "$PY" "$HELPER" compare "$WORK/run-r" "$WORK/run-b" --tolerance "$TOLERANCE"
{ [ "$ra" = FAIL ] || [ "$rb" = FAIL ] || [ "$rc" = FAIL ]; } && STATUS=FAIL
SECS=$(awk -v a="$rs" -v b="$SECS" 'BEGIN { printf "%.1f", a + b }')
note resume "$(grep '^resume vs rerun' "$WORK/logs/resume.log" | sed 's/^resume vs rerun: //') (tolerance $TOLERANCE)"

# 8. torch.compile
run compile "$PY" "$HELPER" compile --device "$DEVICE" --data "$DATA" --config "$CONFIG" "${SETARGS[@]}" \
    --set "run.prepared_dir=$PREP" --out "$WORK/run-compile" --backend "$BACKEND"
grep -E '^  ' "$WORK/logs/compile.log" > "$WORK/logs/compile.lines"
note compile "$(grep -E '^(graph breaks|recompiles|graphs compiled|compile epoch)' "$WORK/logs/compile.log" \
    | tr '\n' ';' | sed 's/;$//; s/;/; /g')" "$WORK/logs/compile.lines"

# summary, last
total=$(( $(date +%s) - START ))
failed=$(grep -c '^[a-z-]\+ \+FAIL' "$SUMMARY")
{
    echo
    echo "=== beenet gpu_accept summary: device $DEVICE ($BACKEND_NAME), $(date -u +%Y-%m-%dT%H:%M:%SZ), ${total}s ==="
    cat "$SUMMARY"
    if [ "$failed" = 0 ]; then
        echo "RESULT: PASS (every step; logs in $WORK/logs)"
    else
        echo "RESULT: FAIL ($failed step(s) failed; logs in $WORK/logs$([ $CLEAN = 1 ] && echo ', removed: rerun with --work DIR to keep them'))"
        for f in $(grep '^[a-z-]\+ \+FAIL' "$SUMMARY" | awk '{print $1}'); do
            echo "--- last lines of logs/$f.log"
            tail -5 "$WORK/logs/$f.log" 2>/dev/null
        done
    fi
} > "$WORK/summary.final"
cat "$WORK/summary.final"
[ "$CLEAN" = 1 ] && rm -rf "$WORK"
[ "$failed" = 0 ]
