#!/usr/bin/env bash
# One device call: GPU build, CUDA parity tests, our benchmark (bench/llmhost_bench), the
# Hugging Face + PEFT reference (bench/hf_peft_bench.py) on the same GPU, the ratio table, and the
# whole test suite with the time left. Everything lands under $OUT (at most 8 files, for the
# device tool): check.log, ours.log, ours.jsonl, hf.log, hf.json, results/<date>-<gpu>.{json,md}.
# Copy results/* into bench/results/ and commit them.
# Usage: scripts/gpu-bench.sh [all|bench|check]   (all: default; BUDGET_S=570 seconds in all)
#   PROFILE=1: also a Kineto trace summary per workload in $OUT/profile.txt (bench/trace_summary.py)
set -uo pipefail
cd "$(dirname "$0")/.."
PHASE=${1:-all}
BUDGET_S=${BUDGET_S:-570}
OUT_DIR=${OUT:-$PWD/out}
BUILD_DIR=${BUILD_DIR:-$PWD/build-gpu}
export BUILD_DIR DEPS=${DEPS:-/tmp/deps} PYTHONUNBUFFERED=1
TRACE_DIR=/tmp/llmhost-traces
mkdir -p "$TRACE_DIR"
mkdir -p "$OUT_DIR/results"
left() { echo $((BUDGET_S - SECONDS)); }
DATE=$(date -u +%Y-%m-%d)
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 |
  tr 'A-Z ' 'a-z-' | tr -cd 'a-z0-9._-')
GPU=${GPU:-unknown-gpu}
PREFIX="$OUT_DIR/results/$DATE-$GPU"
echo "gpu-bench: phase $PHASE on $GPU, budget $BUDGET_S s"

if [ "$PHASE" = check ]; then
  scripts/gpu-check.sh --suite-timeout "$(($(left) - 20))"
  exit $?
fi

# Build + parity tests first (the bench needs the build; parity is quick).
scripts/gpu-check.sh --parity-only $([ "$PHASE" = bench ] && [ -x "$BUILD_DIR/bin/llmhost_bench" ] && echo --no-build)
check_rc=$?
export LD_LIBRARY_PATH="$DEPS/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
echo "after build + parity: $SECONDS s"

# Our side: one process per shape, so an out-of-memory at one size leaves the others measured.
: >"$OUT_DIR/ours.jsonl"
if [ -x "$BUILD_DIR/bin/llmhost_bench" ]; then
  for shape in pythia-160m pythia-410m pythia-1.4b llama-2-7b; do
    t=$(($(left) - 200)) # keep ~200 s for the reference side, the table and the suite
    [ "$t" -gt 20 ] || { echo "ours: no time left for $shape" | tee -a "$OUT_DIR/ours.log"; continue; }
    checks=$([ "$shape" = pythia-160m ] || echo --no_correctness)
    # Activation checkpointing's memory saving (issue 5) shows at the larger shapes.
    # lora-train-eager: the step through autograd, beside lora-train's replayed graph (bench/NOTES.md).
    extra="--workload score generate lora-train lora-train-eager"
    case "$shape" in pythia-1.4b|llama-2-7b) extra="$extra lora-train-checkpointed" ;; esac
    profile=$([ -n "${PROFILE:-}" ] && echo --profile "$TRACE_DIR")
    timeout "$t" "$BUILD_DIR/bin/llmhost_bench" --shape "$shape" --device cuda $checks $extra \
      $profile --json_out "$OUT_DIR/ours.jsonl" >>"$OUT_DIR/ours.log" 2>&1
    echo "ours $shape: exit $? at $SECONDS s" | tee -a "$OUT_DIR/ours.log"
  done
  # PROFILE=1: Kineto traces of a few extra steps per workload, summarised (the traces are big).
  if [ -n "${PROFILE:-}" ]; then
    for trace in "$TRACE_DIR"/*.json; do
      [ -f "$trace" ] && python3 bench/trace_summary.py "$trace" 12 >>"$OUT_DIR/profile.txt" 2>&1
    done
    rm -rf "$TRACE_DIR"
  fi
else
  echo "ours: llmhost_bench was not built (see check.log)" | tee -a "$OUT_DIR/ours.log"
fi

# Reference side, same GPU, same call.
t=$(($(left) - 40))
if [ "$t" -gt 30 ]; then
  timeout "$t" python3 bench/hf_peft_bench.py "$OUT_DIR/hf.json" >"$OUT_DIR/hf.log" 2>&1
  echo "hf: exit $? at $SECONDS s" | tee -a "$OUT_DIR/hf.log"
else
  echo "hf: no time left" | tee -a "$OUT_DIR/hf.log"
fi
# hf_peft_bench.py writes its file only at the end: rebuild it from the printed lines if cut short.
[ -s "$OUT_DIR/hf.json" ] || python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{\"model\"")]
json.dump(rows, open(sys.argv[2], "w"), indent=1)' "$OUT_DIR/hf.log" "$OUT_DIR/hf.json"

# The rest of the suite with what is left ("all" only).
if [ "$PHASE" = all ] && [ "$(left)" -gt 40 ]; then
  scripts/gpu-check.sh --no-build --suite-only --suite-timeout "$(($(left) - 15))" >/dev/null 2>&1
  check_rc=$((check_rc | $?))
fi

echo
echo "== ours ($GPU)"
grep -E '^(shape|pythia|llama|tiny)' "$OUT_DIR/ours.log" | grep -v '^{' | tail -20
echo "== checks: parity/suite exit $check_rc; $(grep -E '^(parity|suite|build):' "$OUT_DIR/check.log" | tr '\n' ' ')"
python3 bench/compare.py "$OUT_DIR/ours.jsonl" "$OUT_DIR/hf.json" "$PREFIX" --gpu "$GPU"
