#!/usr/bin/env bash
# A short device call for one opt-in kernel: the LoRA kernels one by one (bench/low_rank_kernels_bench.cu,
# standalone, built while the project builds), then the CUDA tests named by TESTS, then one shape's
# lora-train with the setting and without it, back to back. Each step writes into $OUT as it ends,
# so a call cut at its budget still returns what finished.
# Usage: SETTING=LLMHOST_LOW_RANK_MMA=1 TESTS='LowRankUpdate.*' scripts/gpu-kernel-ab.sh [SHAPE]
set -uo pipefail
cd "$(dirname "$0")/.."
SHAPE=${1:-llama-2-7b}
OUT_DIR=${OUT:-$PWD/out}
BUILD_DIR=${BUILD_DIR:-$PWD/build-gpu}
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/kernel-ab.log"
say() { echo "== $* ($(date -u +%T), ${SECONDS}s)" | tee -a "$LOG"; }

say "project build (background) and the kernel bench"
scripts/gpu-build.sh "$BUILD_DIR" >"$OUT_DIR/build.log" 2>&1 &
build=$!
nvcc -O3 -std=c++17 -arch=sm_90 bench/low_rank_kernels_bench.cu -o /tmp/low-rank-kernels &&
  /tmp/low-rank-kernels >"$OUT_DIR/low-rank-kernels.jsonl" 2>&1
echo "kernel bench: exit $?" | tee -a "$LOG"
wait "$build" || { echo "build failed" | tee -a "$LOG"; grep -E 'error' "$OUT_DIR/build.log" | head; exit 1; }
export LD_LIBRARY_PATH="${DEPS:-/tmp/deps}/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
say "tests ${TESTS:-none}"
[ -n "${TESTS:-}" ] && timeout 60 "$BUILD_DIR/tests/llmhost_tests" --gtest_filter="$TESTS" \
  >"$OUT_DIR/tests.log" 2>&1
grep -E '^\[  (FAILED|PASSED) |OK \]|FAILED \]' "$OUT_DIR/tests.log" | tee -a "$LOG"
for setting in "${SETTING:-}" ""; do
  say "lora-train $SHAPE ${setting:-default}"
  env $setting timeout 60 "$BUILD_DIR/bin/llmhost_bench" --shape "$SHAPE" --device cuda \
    --no_correctness --workload lora-train \
    --json_out "$OUT_DIR/ours$([ -n "$setting" ] && echo -setting).jsonl" >>"$LOG" 2>&1
done
say "done"
