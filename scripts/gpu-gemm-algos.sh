#!/usr/bin/env bash
# A short device call without the project build: bench/gemm_algos_bench.cu over 7b's frozen
# products, short timings (20 runs an algorithm, pauses between) and SUSTAINED_MS timings (each
# algorithm held at the power limit first), with the GPU's clocks and power sampled beside them.
# Usage (device call): OUT=$OUT scripts/gpu-gemm-algos.sh   -> $OUT/gemm.tgz
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-call-folder.sh
call_folder /tmp/gemm-out gemm.tgz
nvcc -O3 -std=c++17 -arch=sm_90 bench/gemm_algos_bench.cu -lcublasLt -lcublas -o /tmp/gemm-algos \
  >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,clocks_event_reasons.active --format=csv \
  -lms 250 >"$WORK/clocks.csv" 2>&1 &
sampler=$!
timeout 100 /tmp/gemm-algos >"$WORK/gemm-algos-short.jsonl" 2>&1
echo "short: exit $?" | tee -a "$WORK/call.log"
SUSTAINED_MS=${SUSTAINED_MS:-150} timeout 300 /tmp/gemm-algos >"$WORK/gemm-algos-sustained.jsonl" 2>&1
echo "sustained: exit $?" | tee -a "$WORK/call.log"
kill "$sampler"
