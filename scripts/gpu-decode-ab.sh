#!/usr/bin/env bash
# One device call: greedy decode with each token read back (greedy_sync_every 1) against tokens
# kept on the device and read back 16 at a time (the default), alternated A B A B in the same
# call so that the machine's own speed cancels out. Builds first (scripts/gpu-build.sh) and runs
# the CUDA tests of generation and the model parities. Output: $OUT/decode-ab.jsonl, decode-ab.log.
# Usage: scripts/gpu-decode-ab.sh [SHAPE...]   (default: llama-2-7b pythia-160m)
set -uo pipefail
cd "$(dirname "$0")/.."
SHAPES=("$@")
[ ${#SHAPES[@]} -gt 0 ] || SHAPES=(llama-2-7b pythia-160m)
OUT_DIR=${OUT:-$PWD/out}
BUILD_DIR=${BUILD_DIR:-$PWD/build-gpu}
DEPS=${DEPS:-/tmp/deps}
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/decode-ab.log"
if [ ! -x "$BUILD_DIR/bin/llmhost_bench" ]; then
  DEPS=$DEPS scripts/gpu-build.sh "$BUILD_DIR" >>"$LOG" 2>&1 ||
    { echo "gpu-decode-ab: BUILD FAILED"; grep -E 'error' "$LOG" | head -20; exit 1; }
fi
export LD_LIBRARY_PATH="$DEPS/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
"$BUILD_DIR/tests/llmhost_tests" --gtest_filter='*Cuda*:Generate.*' >"$OUT_DIR/tests.log" 2>&1
echo "tests: exit $?" | tee -a "$LOG"
grep -E '^\[  (FAILED|PASSED) ' "$OUT_DIR/tests.log" | tee -a "$LOG"
: >"$OUT_DIR/decode-ab.jsonl"
for shape in "${SHAPES[@]}"; do
  for round in 1 2; do
    for every in 1 0; do
      echo "== $shape round $round greedy_sync_every $every" | tee -a "$LOG"
      timeout 120 "$BUILD_DIR/bin/llmhost_bench" --shape "$shape" --device cuda --no_correctness \
        --workload generate --greedy_sync_every "$every" --generate_runs 5 \
        --json_out "$OUT_DIR/decode-ab.jsonl" >>"$LOG" 2>&1
      tail -1 "$OUT_DIR/decode-ab.jsonl"
    done
  done
done
