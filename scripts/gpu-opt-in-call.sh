#!/usr/bin/env bash
# One device call for kernels that wait behind opt-in switches (bench/NOTES.md, "Issue 13,
# session 18"): the build, the CUDA tests (each opt-in has its own), the LoRA kernel bench, our
# 7b lora-train with a trace, the same step again with each switch alone and with all of them,
# then the compiled Hugging Face reference; scripts/gpu-train-bench.sh does each part.
# Usage (device call, carry .gpu-debs): OUT=$OUT scripts/gpu-opt-in-call.sh SWITCH...
#   SWITCH: an environment variable set to 1 for its A/B (session 18's list became the default
#   or was removed in session 19/20; LLMHOST_LOW_RANK_UP_MMA is the one opt-in left). For a
#   decision between settings, scripts/gpu-ab-repeat.sh alternates them.
set -uo pipefail
cd "$(dirname "$0")/.."
SWITCHES=("$@")
if [ ${#SWITCHES[@]} -eq 0 ]; then
  echo "usage: OUT=DIR scripts/gpu-opt-in-call.sh SWITCH... (e.g. LLMHOST_LOW_RANK_UP_MMA)" >&2
  exit 2
fi
ab="" all=""
for s in "${SWITCHES[@]}"; do
  ab+="$s=1;"
  all+="$s=1 "
done
# A call brings back at most 8 files (session 19's first call lost its logs): everything is
# written to a work folder and packed into $OUT/call.tgz.
source scripts/gpu-call-folder.sh
call_folder /tmp/opt-in-out call.tgz
PROFILE=1 LOW_RANK_KERNELS=1 HF_TRAIN=compiled HF_SHAPES=llama-2-7b BUDGET_S=${BUDGET_S:-560} \
  AB_ENV="$ab${all% }" OUT=$WORK scripts/gpu-train-bench.sh llama-2-7b
