"""Our LoRA adapters and merged models as Hugging Face PEFT and transformers read them.

Run where torch, transformers and PEFT are installed (the GPU machine; the check itself is fp32 on
the CPU). For each tiny family shipped in tests/data, llmhost prepares the Dolly sample, finetunes a
few LoRA steps on every attention and MLP projection, and merges. Then, in Python:
  peft    = PeftModel.from_pretrained(base, our adapter)      (PEFT reads our adapter files)
  merged  = AutoModelForCausalLM.from_pretrained(our merged)  (transformers reads our merged model)
and the check is |logits(peft) - logits(merged)| <= 1e-4 while the adapter moved the logits away
from the base's by more than 1e-3 (a zero adapter would pass trivially). Our own merged == unmerged
is proven by the C++ tests (Qwen2Cli.FinetuneThenMergeThenGenerate and the LoRA tests).

Usage: python3 scripts/peft_interop.py LLMHOST_BINARY OUT_JSON
Exit status 0 when every family passed.
"""
import json
import pathlib
import subprocess
import sys
import tempfile

import torch
import transformers
from transformers import AutoModelForCausalLM
import peft
from peft import PeftModel

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
FAMILIES = ["tiny-pythia", "tiny-llama", "tiny-qwen2", "tiny-llama3"]
TOLERANCE = 1e-4
MIN_MOVE = 1e-3


def llmhost(binary, *args):
    result = subprocess.run([binary, *args, "--format", "json"], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"llmhost {' '.join(args[:2])} failed ({result.returncode}): {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def fp32_model(directory):
    major = int(transformers.__version__.split(".")[0])
    kwargs = {"dtype": torch.float32} if major >= 5 else {"torch_dtype": torch.float32}
    return AutoModelForCausalLM.from_pretrained(str(directory), **kwargs).eval()


def check_family(binary, name, work):
    checkpoint = DATA / name
    data = work / "data"
    llmhost(binary, "--task", "prepare", "--plugin", "dolly", "--data_file",
            str(DATA / "datasets" / "dolly-sample.jsonl"), "--checkpoint_dir", str(checkpoint),
            "--destination_dir", str(data))
    run = work / "run"
    llmhost(binary, "--task", "finetune", "--plugin", "lora", "--data_dir", str(data),
            "--checkpoint_dir", str(checkpoint), "--out_dir", str(run), "--learning_rate", "1e-2",
            "--batch_size", "4", "--micro_batch_size", "4", "--max_steps", "6", "--warmup_steps",
            "1", "--lora_key", "true", "--lora_projection", "true", "--lora_mlp", "true",
            "--eval_interval", "0", "--eval_iters", "1", "--save_interval", "0")
    adapter = run / "final"
    merged = work / "merged"
    llmhost(binary, "--task", "merge", "--checkpoint_dir", str(checkpoint), "--lora_path",
            str(adapter), "--out_dir", str(merged))

    base = fp32_model(checkpoint)
    vocab = base.config.vocab_size
    ids = torch.randint(0, vocab, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base_logits = base(ids).logits
        peft_model = PeftModel.from_pretrained(base, str(adapter)).eval()
        peft_logits = peft_model(ids).logits
        merged_logits = fp32_model(merged)(ids).logits
    config = json.loads((adapter / "adapter_config.json").read_text())
    diff = (peft_logits - merged_logits).abs().max().item()
    moved = (peft_logits - base_logits).abs().max().item()
    return {
        "model": name,
        "target_modules": config.get("target_modules"),
        "max_abs_diff_peft_vs_merged": diff,
        "max_abs_move_from_base": moved,
        "passed": diff <= TOLERANCE and moved > MIN_MOVE,
    }


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    binary, out_json = sys.argv[1], pathlib.Path(sys.argv[2])
    rows = []
    for name in FAMILIES:
        with tempfile.TemporaryDirectory() as work:
            try:
                row = check_family(binary, name, pathlib.Path(work))
            except Exception as error:  # one family's failure must not hide the others'
                row = {"model": name, "passed": False, "error": str(error)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    report = {
        "tolerance": TOLERANCE,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": peft.__version__},
        "families": rows,
    }
    out_json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
