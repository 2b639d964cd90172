#!/usr/bin/env bash
# CPU benchmark of what a new user runs first (issue 17, item 4), through the real llmhost binary:
#   train  the demo's LoRA finetune (configs/finetune/tiny-demo.json) of tests/data/tiny-pythia-trained
#          on the prepared Dolly sample, as scripts/demo.sh runs it: median and overall tokens/s
#   eval   truthfulqa_mc on tests/data/eval-data (10 items): seconds, as `evaluate` reports them
#   start  `llmhost --help` and `llmhost --task list`: best wall time of 5
# Prints one line per figure and, last, one JSON line. Figures, not pass/fail: targets and recorded
# results are in bench/NOTES.md ("CPU speed"). Needs a build (scripts/build.sh); BUILD_DIR=build.
#   bench/cpu_bench.sh [--steps N]   (N: stop the finetune after N of its 45 steps; default all)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
LLMHOST="$BUILD_DIR/bin/llmhost"
MODEL=tests/data/tiny-pythia-trained
STEPS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) STEPS=$2; shift 2 ;;
    *) echo "cpu_bench.sh: unknown argument '$1' (expected --steps N)" >&2; exit 2 ;;
  esac
done
[ -x "$LLMHOST" ] || { echo "cpu_bench.sh: $LLMHOST not found: run scripts/build.sh first" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/llmhost-cpu-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The BLAS LibTorch's matrix products go through: Debian's reference libblas3 is ~10x slower than
# OpenBLAS on these shapes (bench/NOTES.md), so say which one this run had.
blas=$(ldd "$LLMHOST" | awk '/libblas\.so\.3/ {print $3; exit}')
blas_real=$( [ -n "$blas" ] && readlink -f "$blas" || echo "none")
echo "cpu: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "blas: $blas_real"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine slows every figure)"

best_of_5() {
  local best=""
  for _ in 1 2 3 4 5; do
    local start end took
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    took=$(echo "$end - $start" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$took < $best" | bc -l)" = 1 ]; then best=$took; fi
  done
  printf '%.3f' "$best"
}

help_s=$(best_of_5 "$LLMHOST" --help)
list_s=$(best_of_5 "$LLMHOST" --task list)
echo "start: --help ${help_s} s, --task list ${list_s} s (best of 5)"

"$LLMHOST" --task prepare --plugin dolly --data_file tests/data/datasets/dolly-sample.jsonl \
  --checkpoint_dir "$MODEL" --destination_dir "$WORK/data" >/dev/null 2>&1

stop=()
[ "$STEPS" -gt 0 ] && stop=(--stop_after_step "$STEPS")
train_start=$(date +%s.%N)
"$LLMHOST" --task finetune --plugin lora --config configs/finetune/tiny-demo.json \
  --data_dir "$WORK/data" --checkpoint_dir "$MODEL" --out_dir "$WORK/finetune" "${stop[@]}" \
  >"$WORK/finetune.log" 2>&1 || { cat "$WORK/finetune.log" >&2; exit 1; }
train_wall=$(echo "$(date +%s.%N) - $train_start" | bc -l)
# metrics.csv: step,epoch,loss,val_loss,lr,tokens_per_s,... ; step 0 is the initial validation.
tps=$(awk -F, 'NR > 1 && $1 > 0 && $6 > 0 {print $6}' "$WORK/finetune/metrics.csv" | sort -g)
steps=$(echo "$tps" | wc -l)
median=$(echo "$tps" | awk -v n="$steps" '{v[NR] = $1} END {
  printf "%.0f", (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }')
# Harmonic mean: total tokens over total step time when steps hold about as many tokens.
overall=$(echo "$tps" | awk '{h += 1 / $1} END {printf "%.0f", NR / h}')
final_loss=$(awk -F, 'NR > 1 && $3 != "" {l = $3} END {print l}' "$WORK/finetune/metrics.csv")
printf 'train: %d steps, median %s tok/s, harmonic mean %s tok/s, finetune wall %.1f s (last loss %s)\n' \
  "$steps" "$median" "$overall" "$train_wall" "$final_loss"

eval_line=$("$LLMHOST" --task evaluate --checkpoint_dir "$MODEL" --eval_tasks truthfulqa_mc \
  --data_dir tests/data/eval-data --save_filepath "$WORK/eval.json" 2>&1 | grep 'done in')
eval_s=$(echo "$eval_line" | sed -E 's/.*done in ([0-9.]+) s.*/\1/')
mc2=$(sed -E 's/.*"mc2": ([0-9.e-]+).*/\1/' "$WORK/eval.json")
echo "eval: truthfulqa_mc (10 items) ${eval_s} s (mc2 ${mc2})"

printf '{"blas": "%s", "help_s": %s, "list_s": %s, "train_steps": %d, "train_tok_s_median": %s, "train_tok_s_hmean": %s, "finetune_wall_s": %.2f, "eval_truthfulqa_s": %s, "mc2": %s}\n' \
  "$blas_real" "$help_s" "$list_s" "$steps" "$median" "$overall" "$train_wall" "$eval_s" "$mc2"
