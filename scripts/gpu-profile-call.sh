#!/usr/bin/env bash
# One device call that explains where the 7b step's time goes, rather than timing levers:
#   1. the project build (background) and the CUDA tests on it;
#   2. Nsight Compute over bench/low_rank_kernels_bench.cu --once (the LoRA kernels at 7b's shape,
#      each launched once; caches flushed before each replay, as x arrives from HBM in the step);
#   3. our 7b lora-train with the GPU's clocks, power and throttle reasons sampled every 200 ms
#      (are the products and the ALU-bound kernels running at a power-capped clock?).
# Everything lands in $OUT/profile.tgz (a call brings back at most 8 files).
# Usage (device call, carry .gpu-debs): OUT=$OUT scripts/gpu-profile-call.sh
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-call-folder.sh
call_folder /tmp/profile-out profile.tgz
say() { echo "== $* ($(date -u +%T), ${SECONDS}s)" | tee -a "$WORK/call.log"; }

say "build (background); the CUDA tests run after Nsight Compute, not beside it"
(OUT=$WORK SKIP_TESTS=1 SKIP_OURS=1 SKIP_HF=1 scripts/gpu-train-bench.sh llama-2-7b \
  >"$WORK/bench.log" 2>&1) &
build=$!

say "ncu over the LoRA kernels at 7b"
nvcc -O3 -std=c++17 -arch=sm_90 -lineinfo bench/low_rank_kernels_bench.cu -o /tmp/low-rank-kernels \
  >>"$WORK/call.log" 2>&1
timeout 240 ncu --clock-control none -k regex:'low_rank|sum_chunks' \
  --section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis \
  --section Occupancy --section LaunchStats --section SchedulerStats --section WarpStateStats \
  --section InstructionStats /tmp/low-rank-kernels --once >"$WORK/ncu-low-rank.txt" 2>&1
echo "ncu: exit $?" | tee -a "$WORK/call.log"

wait "$build"
say "build: exit $?"
OUT=$WORK SKIP_OURS=1 SKIP_HF=1 scripts/gpu-train-bench.sh llama-2-7b >>"$WORK/bench.log" 2>&1
say "tests: exit $? (tests.log)"
BUILD_DIR=${BUILD_DIR:-$PWD/build-gpu}
export LD_LIBRARY_PATH="${DEPS:-/tmp/deps}/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
if [ -x "$BUILD_DIR/bin/llmhost_bench" ]; then
  say "7b lora-train with clocks sampled"
  nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,power.limit,temperature.gpu,utilization.gpu,clocks_event_reasons.active \
    --format=csv -lms 200 >"$WORK/clocks.csv" 2>&1 &
  sampler=$!
  timeout 120 "$BUILD_DIR/bin/llmhost_bench" --shape llama-2-7b --device cuda --no_correctness \
    --workload lora-train --json_out "$WORK/ours.jsonl" >"$WORK/ours.log" 2>&1
  echo "lora-train: exit $?" | tee -a "$WORK/call.log"
  kill "$sampler"
  nvidia-smi -q -d PERFORMANCE,CLOCK,POWER >"$WORK/smi-after.txt" 2>&1
fi
say "done"
