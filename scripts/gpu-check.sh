#!/usr/bin/env bash
# On the GPU machine: builds with scripts/gpu-build.sh (LibTorch 2.x from the PyTorch wheel), then
# runs the CUDA parity tests, the PEFT interop check (scripts/peft_interop.py) and the whole suite.
# Every step's output lands in $OUT/check.log (or out/check.log off the device machine); a failing
# step does not stop the next one.
# Usage: scripts/gpu-check.sh [--no-build] [--parity-only|--suite-only] [--suite-timeout SECONDS]
# Exit status: 0 when the build and every test passed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT:-$PWD/out}
BUILD_DIR=${BUILD_DIR:-$PWD/build-gpu}
DEPS=${DEPS:-/tmp/deps}
export DEPS
BUILD=1 PARITY_ONLY=0 SUITE_ONLY=0 SUITE_TIMEOUT=${SUITE_TIMEOUT:-300}
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --parity-only) PARITY_ONLY=1 ;;
    --suite-only) SUITE_ONLY=1 ;;
    --suite-timeout) SUITE_TIMEOUT=$2; shift ;;
    *) echo "gpu-check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/check.log"
status=0

if [ "$BUILD" = 1 ] || [ ! -x "$BUILD_DIR/tests/llmhost_tests" ]; then
  echo "== gpu-build ($(date -u +%T))" | tee -a "$LOG"
  start=$SECONDS
  if ! scripts/gpu-build.sh "$BUILD_DIR" >>"$LOG" 2>&1; then
    echo "gpu-check: BUILD FAILED; errors:"
    grep -E 'error|FAILED' "$LOG" | head -20
    status=1
    # Build whatever still builds (ninja -k 0), so one broken target leaves the rest testable.
    cmake --build "$BUILD_DIR" -j "$(nproc)" -- -k 0 >>"$LOG" 2>&1
    [ -x "$BUILD_DIR/tests/llmhost_tests" ] || { echo "gpu-check: no test binary"; exit 1; }
  fi
  echo "build: $((SECONDS - start)) s" | tee -a "$LOG"
fi
# A plain run, as a lab runs it: no LD_PRELOAD, no LD_LIBRARY_PATH (the build links the system
# libstdc++ ahead of the wheel's libtorch_cpu, whose own std::filesystem copies would otherwise win).
# The carried Debian libraries stand in for a lab's apt-installed ones: copied into /usr/local/lib
# (nothing there to overwrite on the GPU machine) and registered, as `apt-get install` would.
echo "== plain run ($(date -u +%T))" | tee -a "$LOG"
if [ -d "$DEPS/usr/lib/x86_64-linux-gnu" ]; then
  cp -an "$DEPS"/usr/lib/x86_64-linux-gnu/*.so* /usr/local/lib/ 2>/dev/null && ldconfig
fi
readelf -d "$BUILD_DIR/bin/llmhost" | grep NEEDED | head -4 | tee -a "$LOG"
env -i PATH=/usr/bin:/bin HOME=/tmp "$BUILD_DIR/bin/llmhost" --task generate --device cuda \
  --checkpoint_dir tests/data/tiny-pythia-trained --temperature 0 --max_new_tokens 4 \
  --prompt $'Question: What is (3 + 4) * 2?\nAnswer:' >>"$LOG" 2>&1
rc=$?
echo "plain run: exit $rc" | tee -a "$LOG"
[ $rc = 0 ] || status=1
env -i PATH=/usr/bin:/bin HOME=/tmp "$BUILD_DIR/bin/llmhost" --task list 2>&1 | tail -3 | tee -a "$LOG"
export LD_LIBRARY_PATH="$DEPS/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
TESTS="$BUILD_DIR/tests/llmhost_tests"

if [ "$SUITE_ONLY" = 0 ]; then
  echo "== CUDA parity tests ($(date -u +%T))" | tee -a "$LOG"
  timeout 180 "$TESTS" --gtest_filter='*Cuda*' >"$OUT_DIR/parity.tmp" 2>&1
  rc=$?
  cat "$OUT_DIR/parity.tmp" >>"$LOG"
  grep -E '^\[ +(OK|FAILED|SKIPPED|PASSED) ' "$OUT_DIR/parity.tmp" | tail -20
  rm -f "$OUT_DIR/parity.tmp"
  echo "parity: exit $rc" | tee -a "$LOG"
  [ $rc = 0 ] || status=1
fi

# PEFT and transformers read our adapters and merged models (scripts/peft_interop.py).
if [ "$SUITE_ONLY" = 0 ] && python3 -c 'import peft' 2>/dev/null; then
  echo "== PEFT interop ($(date -u +%T))" | tee -a "$LOG"
  timeout 300 python3 scripts/peft_interop.py "$BUILD_DIR/bin/llmhost" "$OUT_DIR/interop.json" 2>&1 |
    tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  echo "interop: exit $rc" | tee -a "$LOG"
  [ $rc = 0 ] || status=1
fi

if [ "$PARITY_ONLY" = 0 ]; then
  echo "== whole suite, LibTorch $(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null) ($(date -u +%T))" | tee -a "$LOG"
  start=$SECONDS
  timeout "$SUITE_TIMEOUT" "$TESTS" --gtest_brief=1 >>"$LOG" 2>&1
  rc=$?
  echo "suite: exit $rc after $((SECONDS - start)) s$([ $rc = 124 ] && echo ' (TIMED OUT)')" | tee -a "$LOG"
  grep -E '^\[  (PASSED|FAILED) |^\[  FAILED  \]' "$LOG" | sort -u | tail -25
  [ $rc = 0 ] || status=1
fi
exit $status
