#!/usr/bin/env bash
# One device call: the 7b training step with and without a set of switches, alternating ROUNDS
# times (a fresh process each, so the A/B is not one machine state against another), after the
# build and the CUDA tests; then a trace of each arm. Everything lands in $OUT/ab.tgz (a call
# brings back at most 8 files).
# Usage (device call, carry .gpu-debs): OUT=$OUT scripts/gpu-ab-repeat.sh [VAR=1 ...]
#   default switches: session 18's seven; ROUNDS (default 3).
set -uo pipefail
cd "$(dirname "$0")/.."
FINAL=${OUT:-$PWD/out}
WORK=/tmp/ab-out
rm -rf "$WORK"
mkdir -p "$WORK" "$FINAL"
SWITCHES=("$@")
if [ ${#SWITCHES[@]} -eq 0 ]; then
  for s in LLMHOST_LOW_RANK_OUTER_RING LLMHOST_LOW_RANK_UP_PAIR_NARROW LLMHOST_LOW_RANK_DOWN_PAIR \
    LLMHOST_LOW_RANK_DY_PASS LLMHOST_LOW_RANK_CHUNK_SUM LLMHOST_LOW_RANK_OUTER_PAIR \
    LLMHOST_JOINT_PRODUCTS; do
    SWITCHES+=("$s=1")
  done
fi
export PATH=/usr/local/cuda/bin:$PATH
pack() { tar czf "$FINAL/ab.tgz" -C "$WORK" .; }
trap pack EXIT
# The build and the CUDA tests (tests.log), nothing else.
OUT=$WORK SKIP_OURS=1 SKIP_HF=1 scripts/gpu-train-bench.sh llama-2-7b >"$WORK/bench.log" 2>&1
BUILD_DIR=${BUILD_DIR:-$PWD/build-gpu}
export LD_LIBRARY_PATH="${DEPS:-/tmp/deps}/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
[ -x "$BUILD_DIR/bin/llmhost_bench" ] || { echo "gpu-ab-repeat: no build" | tee -a "$WORK/ab.log"; exit 1; }
step() {  # ARM FILE WORKLOAD [--profile DIR]
  local arm=$1 file=$2 workload=$3
  shift 3
  local envs=()
  [ "$arm" = switched ] && envs=("${SWITCHES[@]}")
  env "${envs[@]}" timeout 120 "$BUILD_DIR/bin/llmhost_bench" --shape llama-2-7b --device cuda \
    --no_correctness --workload "$workload" "$@" --json_out "$file" >>"$WORK/ab.log" 2>&1
  echo "$arm: exit $?" >>"$WORK/ab.log"
}
for round in $(seq 1 "${ROUNDS:-3}"); do
  step base "$WORK/base.jsonl" lora-train
  step switched "$WORK/switched.jsonl" lora-train
done
for arm in base switched; do
  rm -rf /tmp/ab-trace && mkdir -p /tmp/ab-trace
  # Kineto sees the kernels of the step through autograd, not inside a replayed graph.
  step "$arm" "$WORK/traced-$arm.jsonl" lora-train-eager --profile /tmp/ab-trace
  for trace in /tmp/ab-trace/*.json; do
    [ -f "$trace" ] && python3 bench/trace_summary.py "$trace" 40 >>"$WORK/profile-$arm.txt" 2>&1
  done
done
python3 - "$WORK" <<'PY' | tee -a "$WORK/ab.log"
import json, statistics, sys
for arm in ("base", "switched"):
    steps = [json.loads(l)["step_ms"] for l in open(f"{sys.argv[1]}/{arm}.jsonl")]
    print(arm, "step ms", [round(s, 2) for s in steps], "median", round(statistics.median(steps), 2))
PY
