"""A PEFT LoRA adapter for tests/data/tiny-llama3, made by PEFT itself (issue 15, item 7: PEFT's
adapters load in llmhost for every family). Run where torch, transformers, PEFT and safetensors
are installed (the GPU machine; CPU fp32 here):

  python3 tests/data/make_llama3_peft_golden.py OUT_DIR

writes OUT_DIR/tiny-llama3-lora-adapter/ (adapter_config.json, adapter_model.safetensors) and
OUT_DIR/tiny-llama3-lora-logits.safetensors (input_ids, logits_lora, logits_merged), on the
input ids of golden/tiny-llama3-logits.safetensors. Copy both into tests/data/golden/.
"""
import json
import pathlib
import sys

import torch
import transformers
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def main():
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    major = int(transformers.__version__.split(".")[0])
    dtype = {"dtype": torch.float32} if major >= 5 else {"torch_dtype": torch.float32}
    model = AutoModelForCausalLM.from_pretrained(str(ROOT / "tiny-llama3"), attn_implementation="eager", **dtype).eval()
    input_ids = load_file(str(ROOT / "golden" / "tiny-llama3-logits.safetensors"))["input_ids"]
    with torch.no_grad():
        base = model(input_ids=input_ids, use_cache=False).logits.float()
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none", target_modules=TARGETS,
                        init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    gen = torch.Generator().manual_seed(17)
    count = 0
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
                count += 1
    layers = model.config.num_hidden_layers
    assert count == 2 * len(TARGETS) * layers, count
    peft_model.eval()
    with torch.no_grad():
        lora = peft_model(input_ids=input_ids, use_cache=False).logits.float().contiguous()
    peft_model.save_pretrained(str(out / "tiny-llama3-lora-adapter"))
    merged_model = peft_model.merge_and_unload()
    with torch.no_grad():
        merged = merged_model(input_ids=input_ids, use_cache=False).logits.float().contiguous()
    effect = float((lora - base).abs().max())
    merge_diff = float((lora - merged).abs().max())
    assert effect > 1e-2, effect
    save_file({"input_ids": input_ids, "logits_lora": lora, "logits_merged": merged},
              str(out / "tiny-llama3-lora-logits.safetensors"))
    print(json.dumps({"lora_tensors": count, "max_abs_diff_lora_vs_base": effect,
                      "max_abs_diff_lora_vs_merged": merge_diff,
                      "transformers": transformers.__version__}))


if __name__ == "__main__":
    main()
