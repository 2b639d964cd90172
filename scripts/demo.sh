#!/usr/bin/env bash
# The main job end to end on the CPU, on the shipped tiny model: teach it something and measure it.
# tests/data/tiny-pythia-trained solves two-operator problems ("(3 + 4) * 2") but few one-operator
# ones ("7 * 8"); examples/demo/train.jsonl (made by examples/demo/make_data.py) teaches those, and
# the held-out problems in examples/demo/eval-data measure it.
# prepare -> LoRA finetune (configs/finetune/tiny-demo.json; OUT/finetune/loss.svg) -> merge ->
# generate from base and finetuned -> evaluate both -> report (table, and OUT/report.svg).
# Installs what is missing and builds only what it runs first (scripts/build.sh, target runtime).
# Everything it writes is under out/demo (ignored by git); each run starts from a clean out/demo.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
OUT=${OUT:-out/demo}
MODEL=tests/data/tiny-pythia-trained
DATA=examples/demo/train.jsonl
EVAL_DATA=examples/demo/eval-data
EVAL_TASKS=arithmetic_1dc
# A held-out problem (examples/demo/eval-data): the base model answers 64, the finetuned one 48.
PROMPT=$'Question: What is 6 * 8?\nAnswer:'

started=$SECONDS
step() { printf '\n=== [%3ds] %s ===\n' "$((SECONDS - started))" "$*"; }

step "1/7 build llmhost and the plugins (installs missing Debian packages first)"
BUILD_DIR="$BUILD_DIR" BUILD_TARGETS=runtime scripts/build.sh
LLMHOST="$BUILD_DIR/bin/llmhost"
rm -rf "$OUT"
mkdir -p "$OUT"

step "2/7 prepare: tokenise $DATA with $MODEL's tokenizer"
"$LLMHOST" --task prepare --plugin dolly --data_file "$DATA" --checkpoint_dir "$MODEL" \
  --destination_dir "$OUT/data" --test_split_fraction 0.05

step "3/7 finetune: LoRA with configs/finetune/tiny-demo.json (loss curve: $OUT/finetune/loss.svg)"
"$LLMHOST" --task finetune --plugin lora --config configs/finetune/tiny-demo.json \
  --data_dir "$OUT/data" --checkpoint_dir "$MODEL" --out_dir "$OUT/finetune"

step "4/7 merge: fold the adapter into the base weights"
"$LLMHOST" --task merge --checkpoint_dir "$MODEL" --lora_path "$OUT/finetune/final" \
  --out_dir "$OUT/merged"

step "5/7 generate (greedy) from the base and the merged model"
for checkpoint in "$MODEL" "$OUT/merged"; do
  echo "--- $checkpoint"
  "$LLMHOST" --task generate --checkpoint_dir "$checkpoint" --prompt "$PROMPT" \
    --temperature 0 --max_new_tokens 3
  echo
done

step "6/7 evaluate the base and the finetuned model ($EVAL_TASKS on $EVAL_DATA)"
for name in base finetuned; do
  checkpoint=$MODEL
  [ "$name" = finetuned ] && checkpoint=$OUT/merged
  echo "--- $name: $checkpoint"
  "$LLMHOST" --task evaluate --checkpoint_dir "$checkpoint" --eval_tasks "$EVAL_TASKS" \
    --data_dir "$EVAL_DATA" --save_filepath "$OUT/eval-$name.json"
done

step "7/7 report: base vs finetuned (chart: $OUT/report.svg)"
"$LLMHOST" --task report --inputs "$OUT/eval-base.json,$OUT/eval-finetuned.json" \
  --svg "$OUT/report.svg"

step "done in $((SECONDS - started)) s; outputs in $OUT"
