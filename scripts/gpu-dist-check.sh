#!/usr/bin/env bash
# On the GPU machine, after scripts/gpu-build.sh: (1) the NCCL path with world size 1 finetunes
# like the non-distributed run (adapters compared), (2) peak GPU memory with and without
# --activation_checkpointing (pythia-160m-sized random weights via tests/data/tiny-pythia's
# tokenizer are not enough, so pass a real checkpoint as CHECKPOINT to measure).
# Usage: scripts/gpu-dist-check.sh [BUILD_DIR]   (env: CHECKPOINT, DATA, STEPS)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-/tmp/llmhost-build}
export LD_LIBRARY_PATH=${DEPS:-/tmp/deps}/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
LLMHOST="$BUILD_DIR/host/llmhost"
CHECKPOINT=${CHECKPOINT:-tests/data/tiny-pythia}
STEPS=${STEPS:-6}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DATA=${DATA:-$WORK/data}
if [[ ! -f "$DATA/manifest.json" ]]; then
  "$LLMHOST" --task prepare --plugin dolly --data_file tests/data/datasets/dolly-sample.jsonl \
    --checkpoint_dir "$CHECKPOINT" --destination_dir "$DATA" --max_seq_length 256 >/dev/null
fi
common=(--task finetune --plugin lora --checkpoint_dir "$CHECKPOINT" --data_dir "$DATA"
  --device cuda --precision fp32 --batch_size 8 --micro_batch_size 4 --max_steps "$STEPS"
  --warmup_steps 1 --learning_rate 0.01 --lora_dropout 0 --eval_interval 0 --eval_iters 4
  --save_interval 0 --seed 5 --format json)

echo "== NCCL, world size 1 vs no process group"
"$LLMHOST" "${common[@]}" --out_dir "$WORK/plain" >"$WORK/plain.json"
"$LLMHOST" "${common[@]}" --out_dir "$WORK/nccl" --world_size 1 --rank 0 \
  --master_addr 127.0.0.1 --master_port 29531 >"$WORK/nccl.json" 2>"$WORK/nccl.err"
grep -o "data parallel.*" "$WORK/nccl.err" || true
python3 - "$WORK" <<'PY'
import json, struct, sys
import torch
def load_file(path):  # safetensors without the safetensors package: F32 tensors only (LoRA)
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__": continue
        a, b = v["data_offsets"]
        out[k] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32)
    return out
w = sys.argv[1]
a = load_file(f"{w}/plain/final/adapter_model.safetensors")
b = load_file(f"{w}/nccl/final/adapter_model.safetensors")
diff = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
pa, pb = (json.load(open(f"{w}/{n}.json")) for n in ("plain", "nccl"))
print(f"adapter max |diff| = {diff:.3g}; final val_loss {pa['final_val_loss']} vs {pb['final_val_loss']}")
PY

echo "== peak GPU memory, activation checkpointing off / on"
for ac in false true; do
  "$LLMHOST" "${common[@]}" --out_dir "$WORK/ac-$ac" --activation_checkpointing "$ac" \
    --precision bf16 >/dev/null 2>&1 &
  pid=$!
  peak=0
  while kill -0 $pid 2>/dev/null; do
    used=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits |
      awk -F', ' -v p=$pid '$1==p {print $2}')
    [[ -n "$used" && "$used" -gt "$peak" ]] && peak=$used
    sleep 0.2
  done
  wait $pid
  echo "activation_checkpointing=$ac: peak ${peak} MiB (nvidia-smi, process total)"
done
