#!/usr/bin/env bash
# Issue 13 on the GPU machine, one device call: LoRA training ours against Hugging Face + PEFT eager
# and torch.compile'd, the same shapes in the same call (bench/hf_lora_train_bench.py).
#   1. builds with scripts/gpu-build.sh (needs .gpu-debs/: scripts/fetch-gpu-debs.sh, carried),
#   2. runs the CUDA tests (kernels against plain LibTorch, parity with the goldens),
#   3. per shape: our lora-train (+ lora-train-graph), then the reference, eager and compiled,
#   4. joins them with bench/compare.py into results/<date>-<gpu>-train.{json,md}.
# Output in $OUT (or ./out): train.log, tests.log, ours.jsonl, hf.json, results/*, profile.txt.
# Usage: scripts/gpu-train-bench.sh SHAPE...   (default: pythia-160m llama-2-7b)
#   PROFILE=1: a Kineto trace summary of our lora-train per shape (bench/trace_summary.py).
#   VARLEN=1: also lora-train-varlen (variable-length samples; ours packed, the reference padded per
#   micro-batch), both sides. SKIP_TESTS=1, SKIP_HF=1: leave those steps out. BUDGET_S (default 585): the reference side
#   gets what is left of it, so the table is written inside one device call.
set -uo pipefail
cd "$(dirname "$0")/.."
SHAPES=("$@")
[ ${#SHAPES[@]} -gt 0 ] || SHAPES=(pythia-160m llama-2-7b)
OUT_DIR=${OUT:-$PWD/out}
BUILD_DIR=${BUILD_DIR:-$PWD/build-gpu}
DEPS=${DEPS:-/tmp/deps}
export DEPS PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/inductor-cache}
BUDGET_S=${BUDGET_S:-585}
mkdir -p "$OUT_DIR/results"
LOG="$OUT_DIR/train.log"
say() { echo "== $* ($(date -u +%T), ${SECONDS}s)" | tee -a "$LOG"; }

if [ ! -x "$BUILD_DIR/bin/llmhost_bench" ]; then
  # The CUDA kernels alone first: a compile error shows in seconds, not after the whole build.
  if command -v nvcc >/dev/null && ! nvcc -std=c++17 -c sdk/src/nn/fused_kernels.cu -o /tmp/fused_kernels.o >>"$LOG" 2>&1; then
    echo "gpu-train-bench: fused_kernels.cu does not compile:" | tee -a "$LOG"
    grep -E 'error' "$LOG" | head -30
    exit 1
  fi
  [ -d .gpu-debs ] || { echo "gpu-train-bench: .gpu-debs/ missing (scripts/fetch-gpu-debs.sh; carry it)" | tee -a "$LOG"; exit 2; }
  say "build into $BUILD_DIR"
  if ! scripts/gpu-build.sh "$BUILD_DIR" >>"$LOG" 2>&1; then
    echo "gpu-train-bench: BUILD FAILED; first errors:" | tee -a "$LOG"
    grep -E 'error|FAILED' "$LOG" | head -30
    exit 1
  fi
fi
export LD_LIBRARY_PATH="$DEPS/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 |
  tr 'A-Z ' 'a-z-' | tr -cd 'a-z0-9._-')
GPU=${GPU:-unknown-gpu}

if [ -z "${SKIP_TESTS:-}" ]; then
  say "CUDA tests"
  timeout 240 "$BUILD_DIR/tests/llmhost_tests" \
    --gtest_filter='*Cuda*:*Fused*:SummedLinearCrossEntropy.*:MaskedNextTokenLoss.*:LoraAdapter.*' \
    >"$OUT_DIR/tests.log" 2>&1
  echo "tests: exit $?" | tee -a "$LOG"
  grep -E '^\[  (FAILED|PASSED) ' "$OUT_DIR/tests.log" | tee -a "$LOG"
fi

: >"$OUT_DIR/ours.jsonl"
TRACE_DIR=/tmp/llmhost-traces
for shape in "${SHAPES[@]}"; do
  say "ours $shape"
  profile=()
  [ -n "${PROFILE:-}" ] && mkdir -p "$TRACE_DIR" && profile=(--profile "$TRACE_DIR")
  checks=$([ "$shape" = pythia-160m ] || echo --no_correctness)
  timeout 300 "$BUILD_DIR/bin/llmhost_bench" --shape "$shape" --device cuda $checks \
    --workload lora-train lora-train-graph ${VARLEN:+lora-train-varlen} "${profile[@]}" \
    --json_out "$OUT_DIR/ours.jsonl" \
    >>"$LOG" 2>&1
  echo "ours $shape: exit $?" | tee -a "$LOG"
done
if [ -n "${PROFILE:-}" ]; then
  for trace in "$TRACE_DIR"/*.json; do
    [ -f "$trace" ] && python3 bench/trace_summary.py "$trace" 16 >>"$OUT_DIR/profile.txt" 2>&1
  done
  rm -rf "$TRACE_DIR"
fi

if [ -z "${SKIP_HF:-}" ]; then
  say "reference: HF + PEFT eager and compiled, ${SHAPES[*]}"
  timeout $((BUDGET_S - SECONDS - 10)) python3 bench/hf_lora_train_bench.py "$OUT_DIR/hf.json" "${SHAPES[@]}" >>"$LOG" 2>&1
  echo "hf: exit $?" | tee -a "$LOG"
  if [ -n "${VARLEN:-}" ]; then
    timeout $((BUDGET_S - SECONDS - 10)) python3 bench/hf_lora_train_bench.py "$OUT_DIR/hf-varlen.json" \
      "${SHAPES[@]}" --workload varlen >>"$LOG" 2>&1
    echo "hf varlen: exit $?" | tee -a "$LOG"
  fi
  # Written only at the end: rebuild from the printed lines if it was cut short.
  [ -s "$OUT_DIR/hf.json" ] || python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{\"model\"")]
json.dump(rows, open(sys.argv[2], "w"), indent=1)' "$LOG" "$OUT_DIR/hf.json"
fi

say "table"
hf_files=("$OUT_DIR/hf.json")
[ -s "$OUT_DIR/hf-varlen.json" ] && hf_files+=("$OUT_DIR/hf-varlen.json")
python3 bench/compare.py "$OUT_DIR/ours.jsonl" "${hf_files[@]}" \
  "$OUT_DIR/results/$(date -u +%Y-%m-%d)-$GPU-train" --gpu "$GPU" | tee -a "$LOG"
