#!/usr/bin/env bash
# A short device call without the project build: Nsight Compute's per-source-line counts
# (instructions executed, warp stalls sampled) for the LoRA kernels a 7b step spends most of its
# LoRA time in, from bench/low_rank_kernels_bench.cu --once, so the next change to them knows
# which lines the instructions come from (session 20: they are instruction-bound).
# Usage (device call): OUT=$OUT scripts/gpu-kernel-source-profile.sh   -> $OUT/source.tgz
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-call-folder.sh
call_folder /tmp/source-out source.tgz
nvcc -O3 -std=c++17 -arch=sm_90 -lineinfo bench/low_rank_kernels_bench.cu -o /tmp/lrk \
  >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
for kernel in low_rank_down_mma_pair low_rank_outer_mma_ring low_rank_up_pair_narrow; do
  timeout 100 ncu -f --clock-control none -k "regex:$kernel" -c 1 \
    --section SourceCounters --section WarpStateStats --section InstructionStats \
    --import-source yes -o "/tmp/$kernel" /tmp/lrk --once >"$WORK/$kernel.log" 2>&1
  ncu -i "/tmp/$kernel.ncu-rep" --page source --print-source cuda --csv \
    >"$WORK/$kernel-source.csv" 2>>"$WORK/$kernel.log"
  ncu -i "/tmp/$kernel.ncu-rep" --page details >"$WORK/$kernel-details.txt" 2>>"$WORK/$kernel.log"
  echo "$kernel: $(wc -l <"$WORK/$kernel-source.csv") source lines"
done
