"""Reference side of score and generate (issue 13): Hugging Face transformers, eager, and generate
compiled (static cache, torch.compile mode max-autotune-no-cudagraphs, as
../shared/bench/hf_generate_bench_compiled.py; mode reduce-overhead crashes in transformers 5.17,
PROTOCOL.md), in the same call as llmhost_bench. Workloads as
bench/hf_peft_bench.py: random-init bf16 shape; score = forward of 16 x 512 without grad, 3
warm-up + 10 timed; generate = batch 1, 16-token prompt, exactly 128 new tokens greedy, eager 1
warm-up + 3 timed, compiled 2 warm-up + 3 timed (the first calls compile).

Usage: hf_inference_bench.py OUT.json SHAPE [SHAPE...] [--variants eager,compiled]
Prints one JSON line per shape as it finishes; OUT.json gets the list at the end.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_peft_bench import measure_rows, pop_option, random_model, sync_time  # noqa: E402


def build(name):
    cfg, model = random_model(name)
    return cfg, model.eval()


def generate_rate(model, prompt, warmup, timed):
    with torch.no_grad():
        for i in range(warmup + timed):
            if i == warmup:
                t = sync_time()
            model.generate(input_ids=prompt, max_new_tokens=128, min_new_tokens=128, do_sample=False,
                           pad_token_id=0)
    return timed * 128 / (sync_time() - t)


def eager(name):
    cfg, model = build(name)
    x = torch.randint(0, cfg.vocab_size, (16, 512), device="cuda")
    with torch.no_grad():
        for i in range(13):
            if i == 3:
                t = sync_time()
            model(input_ids=x)
    result = {"score_tok_s": 10 * 16 * 512 / (sync_time() - t)}
    prompt = torch.randint(0, cfg.vocab_size, (1, 16), device="cuda")
    result["generate_tok_s"] = generate_rate(model, prompt, 1, 3)
    del model
    torch.cuda.empty_cache()
    return result


def compiled(name):
    cfg, model = build(name)
    model.generation_config.cache_implementation = "static"
    model.forward = torch.compile(model.forward, mode="max-autotune-no-cudagraphs", dynamic=False)
    prompt = torch.randint(0, cfg.vocab_size, (1, 16), device="cuda")
    result = {"generate_compiled_tok_s": generate_rate(model, prompt, 2, 3)}
    del model
    torch.cuda.empty_cache()
    return result


def main(argv):
    variants, argv = pop_option(argv, "--variants", "eager,compiled")
    variants = variants.split(",")
    out_path, shapes = argv[1], argv[2:]
    import transformers
    print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__,
                      "gpu": torch.cuda.get_device_name()}), flush=True)
    measure_rows(out_path, shapes, variants,
                 lambda name, variant: eager(name) if variant == "eager" else compiled(name),
                 lambda variant: f"{variant}_inference_error")


if __name__ == "__main__":
    main(sys.argv)
