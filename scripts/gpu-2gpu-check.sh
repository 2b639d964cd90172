#!/usr/bin/env bash
# On nvidia-h200-x2 (issue 7): builds, then finetunes the tiny model with LoRA (fp32) in one
# process on one GPU and in two NCCL ranks (one per GPU), launched torchrun-style and SLURM-style
# (variables set by hand), and compares the final adapters. NVLink multicast stays off.
# Not run yet: status listed nvidia-h200-x2 once (2026-11-24) but the call was refused.
# Usage: scripts/gpu-2gpu-check.sh [BUILD_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
BUILD_DIR=${1:-/tmp/llmhost-build}
scripts/gpu-build.sh "$BUILD_DIR" >/tmp/build.log 2>&1 || { grep -E "error" /tmp/build.log | head; exit 1; }
export LD_LIBRARY_PATH=${DEPS:-/tmp/deps}/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
LLMHOST=$BUILD_DIR/bin/llmhost
[ -x "$LLMHOST" ] || LLMHOST=$(find "$BUILD_DIR" -name llmhost -type f -perm -u+x | head -1)
nvidia-smi -L
W=$(mktemp -d)
"$LLMHOST" --task prepare --plugin dolly --data_file tests/data/datasets/dolly-sample.jsonl \
  --checkpoint_dir tests/data/tiny-pythia --destination_dir "$W/data" --max_seq_length 256 >/dev/null
common=(--task finetune --plugin lora --checkpoint_dir tests/data/tiny-pythia --data_dir "$W/data"
  --device cuda --precision fp32 --batch_size 8 --micro_batch_size 4 --max_steps 8
  --warmup_steps 1 --learning_rate 0.01 --lora_dropout 0 --eval_interval 0 --eval_iters 4
  --save_interval 0 --seed 5 --format json)
"$LLMHOST" "${common[@]}" --out_dir "$W/one" >"$W/one.json" 2>"$W/one.err"; echo "1 GPU: exit $?"
for r in 0 1; do
  RANK=$r LOCAL_RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29541 \
    "$LLMHOST" "${common[@]}" --out_dir "$W/torchrun" >"$W/tr$r.json" 2>"$W/tr$r.err" &
done
wait; echo "torchrun-style: $(tail -1 $W/tr0.err)"
for r in 0 1; do
  SLURM_NTASKS=2 SLURM_PROCID=$r SLURM_LOCALID=$r SLURM_NODEID=0 SLURM_NNODES=1 \
    SLURM_NODELIST=localhost SLURM_JOB_ID=4242 SLURM_GPUS_ON_NODE=2 \
    "$LLMHOST" "${common[@]}" --out_dir "$W/slurm" >"$W/sl$r.json" 2>"$W/sl$r.err" &
done
wait; echo "SLURM-style: $(tail -1 $W/sl0.err)"
grep -h "data parallel" "$W"/tr0.err "$W"/sl0.err | head -2
python3 - "$W" <<'PY'
import json, struct, sys, torch
def load(path):
    raw = open(path, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n]); out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        a, b = v["data_offsets"]
        out[k] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32)
    return out
w = sys.argv[1]
one = load(f"{w}/one/final/adapter_model.safetensors")
for run in ("torchrun", "slurm"):
    try:
        other = load(f"{w}/{run}/final/adapter_model.safetensors")
    except OSError as e:
        print(f"{run}: no adapter ({e})"); continue
    d = max((one[k] - other[k]).abs().max().item() for k in one)
    print(f"{run}: 2 GPUs vs 1 GPU adapter max |diff| = {d:.3g} over {len(one)} tensors")
PY
tail -3 "$W"/tr1.err "$W"/sl1.err
