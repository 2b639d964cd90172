#!/usr/bin/env bash
# Issue 13 on the GPU machine, one device call: LoRA training ours against Hugging Face + PEFT eager
# and torch.compile'd, the same shapes in the same call (bench/hf_lora_train_bench.py).
#   1. builds with scripts/gpu-build.sh (needs .gpu-debs/: scripts/fetch-gpu-debs.sh, carried),
#   2. runs the CUDA tests (kernels against plain LibTorch, parity with the goldens),
#   3. per shape: our lora-train (+ lora-train-eager), then the reference, eager and compiled,
#   4. joins them with bench/compare.py into results/<date>-<gpu>-train.{json,md}.
# Output in $OUT (or ./out): train.log, tests.log, ours.jsonl, hf.json, results/*, profile.txt.
# Usage: scripts/gpu-train-bench.sh SHAPE...   (default: pythia-160m llama-2-7b)
#   PROFILE=1: a Kineto trace summary of our lora-train per shape (bench/trace_summary.py).
#   VARLEN=1: also lora-train-varlen (variable-length samples; ours packed and replayed, and through
#   autograd as lora-train-varlen-eager; the reference padded per micro-batch), both sides.
#   INFER=1: also score and generate (bench/hf_inference_bench.py: score and generate eager,
#   generate compiled). Reference variants per workload: HF_TRAIN, HF_VARLEN,
#   HF_INFER (comma lists of eager,compiled; "none" leaves it out). SKIP_TESTS=1, SKIP_OURS=1,
#   SKIP_HF=1: leave those steps out. AB_LOW_RANK=1: our lora-train again with
#   LLMHOST_FUSED_LOW_RANK=0 (LoRA through LibTorch's operations), then also with
#   LLMHOST_FUSED_CROSS_ENTROPY=0 (the loss too), into ours-plain-*.jsonl; AB_SHAPES (default all)
#   limits those runs to some shapes. FINETUNE_SMOKE=1: the demo's finetune on the device with
#   --packing, replayed as CUDA graphs and not (finetune-graphs-{true,false}.log).
#   BUDGET_S (default 585): the reference side gets what is left of it, so the table is written
#   inside one device call. VARLEN_SHAPES: the shapes of the varlen reference (default all).
#   The eager varlen reference runs without cuDNN attention (HF_SDPA_NO_CUDNN=1); VARLEN_AB=1
#   runs it with cuDNN too, into hf-varlen-cudnn.json.
#   VARLEN_GRANULES="128 256": our lora-train-varlen again with each --token_granule, into
#   ours-granule-N.jsonl (the trainer's default is a 64th of the budget, 128 here).
#   HF_SHAPES: the shapes of the lora-train reference (default all).
#   AB_ENV="VAR=value ...[;VAR=value ...]": our workloads again with each environment, into
#   ours-ab.jsonl, ours-ab-2.jsonl, ...
#   LOW_RANK_KERNELS=1: bench/low_rank_kernels_bench.cu (the LoRA kernels one by one) into
#   low-rank-kernels.jsonl.
#   GEMM_ALGOS=1: bench/gemm_algos_bench.cu (7b's frozen products with every cuBLASLt algorithm)
#   into gemm-algos.jsonl.
#   PROBE_SDPA=1: bench/sdpa_backends_probe.py (attention backends' speed) into sdpa-probe.jsonl.
#   HF_VARLEN_ENV: environment for the compiled varlen reference (default HF_SDPA_NO_CUDNN=1: with
#   cuDNN's attention the compiled steps paid a plan per padded length too, session 9's call 2;
#   HF_VARLEN_ENV=" " keeps PyTorch's default backends).
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
  for cu in fused_kernels low_rank_kernels cross_entropy_kernels; do
    if command -v nvcc >/dev/null && ! nvcc -std=c++17 -c "sdk/src/nn/$cu.cu" -o "/tmp/$cu.o" >>"$LOG" 2>&1; then
      echo "gpu-train-bench: $cu.cu does not compile:" | tee -a "$LOG"
      grep -E 'error' "$LOG" | head -30
      exit 1
    fi
  done
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
    --gtest_filter='*Cuda*:*Fused*:SummedLinearCrossEntropy.*:MaskedNextTokenLoss.*:LoraAdapter.*:*Packing*' \
    >"$OUT_DIR/tests.log" 2>&1
  echo "tests: exit $?" | tee -a "$LOG"
  grep -E '^\[  (FAILED|PASSED) ' "$OUT_DIR/tests.log" | tee -a "$LOG"
fi

if [ -n "${FINETUNE_SMOKE:-}" ]; then
  # The trainer's own path on the device: the demo's finetune with --packing, its micro-batches
  # replayed as CUDA graphs, then the same run through autograd (--cuda_graphs false).
  say "finetune smoke"
  smoke=/tmp/llmhost-smoke
  rm -rf "$smoke"
  "$BUILD_DIR/bin/llmhost" --task prepare --plugin dolly --data_file examples/demo/train.jsonl \
    --checkpoint_dir tests/data/tiny-pythia-trained --destination_dir "$smoke/data" \
    --test_split_fraction 0.05 >>"$LOG" 2>&1
  for graphs in true false; do
    timeout 120 "$BUILD_DIR/bin/llmhost" --task finetune --plugin lora \
      --config configs/finetune/tiny-demo.json --data_dir "$smoke/data" \
      --checkpoint_dir tests/data/tiny-pythia-trained --out_dir "$smoke/graphs-$graphs" \
      --device cuda --precision bf16 --packing true --cuda_graphs "$graphs" --max_seq_length 256 \
      >"$OUT_DIR/finetune-graphs-$graphs.log" 2>&1
    echo "finetune --cuda_graphs $graphs: exit $?; $(grep -E 'step 24/|final val_loss' \
      "$OUT_DIR/finetune-graphs-$graphs.log" | tr '\n' ' ')" | tee -a "$LOG"
  done
fi

: >"$OUT_DIR/ours.jsonl"
TRACE_DIR=/tmp/llmhost-traces
for shape in "${SHAPES[@]}"; do
  [ -n "${SKIP_OURS:-}" ] && break
  say "ours $shape"
  profile=()
  [ -n "${PROFILE:-}" ] && mkdir -p "$TRACE_DIR" && profile=(--profile "$TRACE_DIR")
  checks=$([ "$shape" = pythia-160m ] || echo --no_correctness)
  timeout 300 "$BUILD_DIR/bin/llmhost_bench" --shape "$shape" --device cuda $checks \
    --workload ${INFER:+score generate} lora-train lora-train-eager \
    ${VARLEN:+lora-train-varlen lora-train-varlen-eager} \
    "${profile[@]}" \
    --json_out "$OUT_DIR/ours.jsonl" \
    >>"$LOG" 2>&1
  echo "ours $shape: exit $?" | tee -a "$LOG"
  if [ -n "${AB_LOW_RANK:-}" ] && [[ " ${AB_SHAPES:-${SHAPES[*]}} " == *" $shape "* ]]; then
    # The same training step with LoRA's update, then also the loss, through LibTorch's operations
    # instead of the fused kernels.
    for plain in LLMHOST_FUSED_LOW_RANK LLMHOST_FUSED_LOW_RANK+LLMHOST_FUSED_CROSS_ENTROPY; do
      say "ours $shape, $plain=0"
      env $(for v in ${plain//+/ }; do echo "$v=0"; done) timeout 300 \
        "$BUILD_DIR/bin/llmhost_bench" --shape "$shape" --device cuda --no_correctness \
        --workload lora-train lora-train-eager \
        --json_out "$OUT_DIR/ours-plain-$(echo "$plain" | tr 'A-Z+' 'a-z-').jsonl" >>"$LOG" 2>&1
      echo "ours $shape $plain=0: exit $?" | tee -a "$LOG"
    done
  fi
  if [ -n "${AB_ENV:-}" ]; then
    # The same workloads again under other settings (e.g. AB_ENV=LLMHOST_CUDNN_ATTENTION=0), one
    # run per ";"-separated setting, into ours-ab.jsonl, ours-ab-2.jsonl, ...
    IFS=';' read -r -a settings <<<"$AB_ENV"
    for n in "${!settings[@]}"; do
      setting=${settings[$n]}
      suffix=$([ "$n" = 0 ] || echo "-$((n + 1))")
      say "ours $shape, $setting"
      env $setting timeout 300 "$BUILD_DIR/bin/llmhost_bench" --shape "$shape" --device cuda \
        --no_correctness --workload lora-train lora-train-eager ${VARLEN:+lora-train-varlen} \
        --json_out "$OUT_DIR/ours-ab$suffix.jsonl" >>"$LOG" 2>&1
      echo "ours $shape $setting: exit $?" | tee -a "$LOG"
    done
  fi
  for granule in ${VARLEN_GRANULES:-}; do
    # lora-train-varlen with a finer (or coarser) token granule than the trainer's default.
    say "ours $shape, lora-train-varlen --token_granule $granule"
    timeout 300 "$BUILD_DIR/bin/llmhost_bench" --shape "$shape" --device cuda --no_correctness \
      --workload lora-train-varlen --token_granule "$granule" \
      --json_out "$OUT_DIR/ours-granule-$granule.jsonl" >>"$LOG" 2>&1
    echo "ours $shape granule $granule: exit $?" | tee -a "$LOG"
  done
done
if [ -n "${PROFILE:-}" ]; then
  for trace in "$TRACE_DIR"/*.json; do
    [ -f "$trace" ] && python3 bench/trace_summary.py "$trace" 40 >>"$OUT_DIR/profile.txt" 2>&1
  done
  rm -rf "$TRACE_DIR"
fi

if [ -n "${LOW_RANK_KERNELS:-}" ] && command -v nvcc >/dev/null; then
  say "low-rank kernels one by one"
  nvcc -O3 -std=c++17 -arch=sm_90 bench/low_rank_kernels_bench.cu -o /tmp/low-rank-kernels &&
    /tmp/low-rank-kernels >"$OUT_DIR/low-rank-kernels.jsonl" 2>&1
  echo "low-rank kernels: exit $?" | tee -a "$LOG"
fi

if [ -n "${GEMM_ALGOS:-}" ] && command -v nvcc >/dev/null; then
  say "GEMM algorithms"
  nvcc -O3 -std=c++17 -arch=sm_90 bench/gemm_algos_bench.cu -lcublasLt -lcublas -o /tmp/gemm-algos &&
    timeout 120 /tmp/gemm-algos >"$OUT_DIR/gemm-algos.jsonl" 2>&1
  echo "gemm algos: exit $?" | tee -a "$LOG"
fi

if [ -n "${PROBE_SDPA:-}" ]; then
  say "SDPA backends probe"
  timeout 120 python3 bench/sdpa_backends_probe.py >"$OUT_DIR/sdpa-probe.jsonl" 2>&1
  echo "sdpa probe: exit $?" | tee -a "$LOG"
  cat "$OUT_DIR/sdpa-probe.jsonl" >>"$LOG"
fi

HF_TRAIN=${HF_TRAIN:-eager,compiled}
HF_VARLEN=${HF_VARLEN:-$([ -n "${VARLEN:-}" ] && echo eager,compiled || echo none)}
HF_INFER=${HF_INFER:-$([ -n "${INFER:-}" ] && echo eager,compiled || echo none)}
# One reference script run, cut off where the call's budget ends.
reference() {
  local what=$1 out=$2
  shift 2
  local left=$((BUDGET_S - SECONDS - 10))
  [ "$left" -gt 20 ] || { echo "hf $what: no time left" | tee -a "$LOG"; return; }
  say "reference $what: $*"
  timeout "$left" env ${REF_ENV:-} python3 "$@" >"$OUT_DIR/hf-$what.log" 2>&1
  echo "hf $what: exit $?" | tee -a "$LOG"
  cat "$OUT_DIR/hf-$what.log" >>"$LOG"
  # Written only at the end: rebuild from this run's printed lines if it was cut short.
  [ -s "$out" ] || python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{\"model\"")]
json.dump(rows, open(sys.argv[2], "w"), indent=1)' "$OUT_DIR/hf-$what.log" "$out"
  rm -f "$OUT_DIR/hf-$what.log"
}
if [ -z "${SKIP_HF:-}" ]; then
  [ "$HF_TRAIN" = none ] || reference train "$OUT_DIR/hf.json" \
    bench/hf_lora_train_bench.py "$OUT_DIR/hf.json" ${HF_SHAPES:-${SHAPES[*]}} --variants "$HF_TRAIN"
  [ "$HF_INFER" = none ] || reference inference "$OUT_DIR/hf-infer.json" \
    bench/hf_inference_bench.py "$OUT_DIR/hf-infer.json" "${SHAPES[@]}" --variants "$HF_INFER"
  read -r -a VARLEN_SHAPES <<<"${VARLEN_SHAPES:-${SHAPES[*]}}"
  # Eager without cuDNN's attention: with cuDNN it builds a plan for every new padded length
  # (~2 s each; 9.1k against 35.1k non-pad tok/s at 160m, bench/NOTES.md session 9).
  if [[ ",$HF_VARLEN," == *,eager,* ]]; then
    REF_ENV=HF_SDPA_NO_CUDNN=1 reference varlen-eager "$OUT_DIR/hf-varlen-eager.json" \
      bench/hf_lora_train_bench.py "$OUT_DIR/hf-varlen-eager.json" "${VARLEN_SHAPES[@]}" \
      --workload varlen --variants eager
  fi
  if [ -n "${VARLEN_AB:-}" ]; then
    reference varlen-cudnn "$OUT_DIR/hf-varlen-cudnn.json" bench/hf_lora_train_bench.py \
      "$OUT_DIR/hf-varlen-cudnn.json" "${VARLEN_SHAPES[@]}" --workload varlen --variants eager
  fi
  if [[ ",$HF_VARLEN," == *,compiled,* ]]; then
    REF_ENV=${HF_VARLEN_ENV:-HF_SDPA_NO_CUDNN=1} reference varlen "$OUT_DIR/hf-varlen.json" \
      bench/hf_lora_train_bench.py "$OUT_DIR/hf-varlen.json" "${VARLEN_SHAPES[@]}" \
      --workload varlen --variants compiled
  fi
fi

say "table"
hf_files=()
for f in hf.json hf-varlen-eager.json hf-varlen.json hf-infer.json; do
  [ -s "$OUT_DIR/$f" ] && hf_files+=("$OUT_DIR/$f")
done
python3 bench/compare.py "$OUT_DIR/ours.jsonl" "${hf_files[@]}" \
  "$OUT_DIR/results/$(date -u +%Y-%m-%d)-$GPU-train" --gpu "$GPU" | tee -a "$LOG"
