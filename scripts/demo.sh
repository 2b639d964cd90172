#!/usr/bin/env bash
# The main job end to end on the shipped tiny model and sample data, on the CPU:
# prepare (Dolly sample) -> LoRA finetune (configs/finetune/tiny-demo.json) -> merge -> generate
# from the merged model -> evaluate base and finetuned -> report side by side.
# Installs what is missing and builds first (scripts/build.sh). Everything it writes is under
# out/demo (ignored by git); each run starts from a clean out/demo.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
OUT=${OUT:-out/demo}
MODEL=tests/data/tiny-pythia-trained
DATA=tests/data/datasets/dolly-sample.jsonl
EVAL_DATA=tests/data/eval-data
EVAL_TASKS=arithmetic_1dc,openbookqa,truthfulqa_mc,wikitext
PROMPT=$'Question: What is (3 + 4) * 2?\nAnswer:'

started=$SECONDS
step() { printf '\n=== [%3ds] %s ===\n' "$((SECONDS - started))" "$*"; }

step "1/7 build (installs missing Debian packages first)"
BUILD_DIR="$BUILD_DIR" scripts/build.sh
LLMHOST="$BUILD_DIR/bin/llmhost"
rm -rf "$OUT"
mkdir -p "$OUT"

step "2/7 prepare: tokenise the Dolly sample with $MODEL's tokenizer"
"$LLMHOST" --task prepare --plugin dolly --data_file "$DATA" --checkpoint_dir "$MODEL" \
  --destination_dir "$OUT/data"

step "3/7 finetune: LoRA with configs/finetune/tiny-demo.json"
"$LLMHOST" --task finetune --plugin lora --config configs/finetune/tiny-demo.json \
  --data_dir "$OUT/data" --checkpoint_dir "$MODEL" --out_dir "$OUT/finetune"

step "4/7 merge: fold the adapter into the base weights"
"$LLMHOST" --task merge --checkpoint_dir "$MODEL" --lora_path "$OUT/finetune/final" \
  --out_dir "$OUT/merged"

step "5/7 generate from the merged model (greedy)"
"$LLMHOST" --task generate --checkpoint_dir "$OUT/merged" --prompt "$PROMPT" \
  --temperature 0 --max_new_tokens 4
echo

step "6/7 evaluate the base and the finetuned model ($EVAL_TASKS)"
for name in base finetuned; do
  checkpoint=$MODEL
  [ "$name" = finetuned ] && checkpoint=$OUT/merged
  echo "--- $name: $checkpoint"
  "$LLMHOST" --task evaluate --checkpoint_dir "$checkpoint" --eval_tasks "$EVAL_TASKS" \
    --data_dir "$EVAL_DATA" --save_filepath "$OUT/eval-$name.json"
done

step "7/7 report: base vs finetuned"
"$LLMHOST" --task report --inputs "$OUT/eval-base.json,$OUT/eval-finetuned.json"

step "done in $((SECONDS - started)) s; outputs in $OUT"
