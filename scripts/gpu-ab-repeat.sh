#!/usr/bin/env bash
# One device call: the 7b training step under several settings ("arms"), round-robin ROUNDS
# times (a fresh process each, so no arm is one machine state against another's), after the build
# and the CUDA tests; then a trace of each arm; with HF=1 the compiled Hugging Face reference too,
# for the ratio. Everything lands in $OUT/ab.tgz (a call brings back at most 8 files).
# Usage (device call, carry .gpu-debs):
#   OUT=$OUT ARMS='default;old|LLMHOST_LOW_RANK_DY_PASS=0 LLMHOST_LOW_RANK_DOWN_PAIR=0' \
#     scripts/gpu-ab-repeat.sh
#   ARMS: ';'-separated arms, each "label" or "label|VAR=value ..."; ROUNDS (default 3);
#   TRACE_ARMS: the labels traced (default all). TEST_ENV="VAR=value ...": the CUDA tests again
#   with those settings (an opt-in kernel's own check), into tests-switched.log.
#   LOW_RANK_KERNELS=1: the LoRA kernel bench too (scripts/gpu-train-bench.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-call-folder.sh
call_folder /tmp/ab-out ab.tgz
# The build, the CUDA tests (tests.log) and, with HF=1, the compiled reference (hf.json).
if [ -n "${HF:-}" ]; then
  OUT=$WORK SKIP_OURS=1 HF_TRAIN=compiled HF_SHAPES=llama-2-7b BUDGET_S=${BUDGET_S:-300} \
    scripts/gpu-train-bench.sh llama-2-7b >"$WORK/bench.log" 2>&1
else
  OUT=$WORK SKIP_OURS=1 SKIP_HF=1 scripts/gpu-train-bench.sh llama-2-7b >"$WORK/bench.log" 2>&1
fi
BUILD_DIR=${BUILD_DIR:-$PWD/build-gpu}
export LD_LIBRARY_PATH="${DEPS:-/tmp/deps}/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
[ -x "$BUILD_DIR/bin/llmhost_bench" ] || { echo "gpu-ab-repeat: no build" | tee -a "$WORK/ab.log"; exit 1; }
if [ -n "${TEST_ENV:-}" ]; then
  # shellcheck disable=SC2086  # the settings are words
  env $TEST_ENV timeout 240 "$BUILD_DIR/tests/llmhost_tests" \
    --gtest_filter='*Cuda*:*Fused*:SummedLinearCrossEntropy.*:MaskedNextTokenLoss.*:LoraAdapter.*:*Packing*' \
    >"$WORK/tests-switched.log" 2>&1
  echo "tests with $TEST_ENV: exit $?" >>"$WORK/ab.log"
  grep -E '^\[  (FAILED|PASSED) ' "$WORK/tests-switched.log" >>"$WORK/ab.log"
fi
IFS=';' read -r -a ARM_LIST <<<"${ARMS:-default}"
step() {  # ARM FILE WORKLOAD [--profile DIR]
  local arm=$1 file=$2 workload=$3 label settings
  shift 3
  label=${arm%%|*}
  settings=$([[ "$arm" == *"|"* ]] && echo "${arm#*|}")
  # shellcheck disable=SC2086  # the settings are words
  env $settings timeout 120 "$BUILD_DIR/bin/llmhost_bench" --shape llama-2-7b --device cuda \
    --no_correctness --workload "$workload" "$@" --json_out "$file" >>"$WORK/ab.log" 2>&1
  echo "$label: exit $?" >>"$WORK/ab.log"
}
for round in $(seq 1 "${ROUNDS:-3}"); do
  for arm in "${ARM_LIST[@]}"; do step "$arm" "$WORK/arm-${arm%%|*}.jsonl" lora-train; done
done
for arm in "${ARM_LIST[@]}"; do
  label=${arm%%|*}
  [[ " ${TRACE_ARMS:-$label} " == *" $label "* ]] || continue
  rm -rf /tmp/ab-trace && mkdir -p /tmp/ab-trace
  # Kineto sees the kernels of the step through autograd, not inside a replayed graph.
  step "$arm" "$WORK/traced-$label.jsonl" lora-train-eager --profile /tmp/ab-trace
  for trace in /tmp/ab-trace/*.json; do
    [ -f "$trace" ] && python3 bench/trace_summary.py "$trace" 40 >>"$WORK/profile-$label.txt" 2>&1
  done
done
python3 - "$WORK" "${ARM_LIST[@]}" <<'PY' | tee -a "$WORK/ab.log"
import json, statistics, sys
for arm in sys.argv[2:]:
    label = arm.split("|")[0]
    steps = [json.loads(l)["step_ms"] for l in open(f"{sys.argv[1]}/arm-{label}.jsonl")]
    print(label, "step ms", [round(s, 2) for s in steps], "median", round(statistics.median(steps), 2))
PY
