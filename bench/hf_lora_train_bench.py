"""Reference side of lora-train (issue 13): Hugging Face transformers + PEFT, eager and with
torch.compile on the loss (as ../shared/bench/hf_peft_bench_compiled.py), on one model built once
per variant, in the same call as llmhost_bench. Workload as bench/hf_peft_bench.py: random-init
bf16 shape, LoRA r 8 alpha 16 dropout 0.05, AdamW lr 3e-4 wd 0.01, micro-batch 8 x 512, labels =
inputs, 5 warm-up + 20 timed steps; peak = torch.cuda.max_memory_allocated after a reset before
the loop (weights included).

Workload varlen (PROTOCOL.md, "Variable-length workload"; --workload varlen): micro-batches of
8 samples with the lengths of bench/varlen_lengths.json (the same as llmhost_bench's
lora-train-varlen), each padded to its longest sample rounded up to a multiple of 8 (the collator's
pad_to_multiple_of=8), padding masked in attention and labels; compiled with dynamic=True. Metric:
non-pad tokens per second.

Usage: [HF_SDPA_NO_CUDNN=1] hf_lora_train_bench.py OUT.json SHAPE [SHAPE...]
                              [--variants eager,compiled] [--workload fixed|varlen]
HF_SDPA_NO_CUDNN=1 takes cuDNN out of SDPA's backends.
Prints one JSON line per shape as it finishes; OUT.json gets the list at the end.
Compile warm-up is 50-190 s per shape: keep TORCHINDUCTOR_CACHE_DIR on a path that a warm
machine reuses.
"""
import json
import os
import sys

import torch
from peft import LoraConfig, get_peft_model

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_peft_bench import SHAPES, measure_rows, pop_option, random_model, sync_time  # noqa: E402


def build(name):
    targets = SHAPES[name][3]
    cfg, model = random_model(name)
    model.config.use_cache = False
    model.train()
    pm = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=targets))
    return cfg, pm


def memory_categories(pm, opt, forward):
    """One more untimed step, split as bench/workloads.cpp splits ours (record_memory_categories):
    frozen weights, the rest of what stays between steps (LoRA parameters, optimizer state), what
    the forward pass keeps for backward, and what backward needs beyond that at its peak."""
    gib = 2**30
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    frozen = sum(p.numel() * p.element_size() for p in pm.parameters() if not p.requires_grad)
    loss = forward()
    torch.cuda.synchronize()
    after_forward = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    loss.backward()
    torch.cuda.synchronize()
    backward_peak = torch.cuda.max_memory_allocated()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return {"weights": frozen / gib, "trainable_and_optimizer": (before - frozen) / gib,
            "saved_by_forward": (after_forward - before) / gib,
            "backward_beyond_saved": (backward_peak - after_forward) / gib}


def train(name, compiled, mb=8, seq=512):
    cfg, pm = build(name)
    opt = torch.optim.AdamW([q for q in pm.parameters() if q.requires_grad], lr=3e-4, weight_decay=0.01)
    loss_of = lambda x: pm(input_ids=x, labels=x).loss  # noqa: E731
    step = torch.compile(loss_of) if compiled else loss_of
    x = torch.randint(0, cfg.vocab_size, (mb, seq), device="cuda")
    losses = []
    torch.cuda.reset_peak_memory_stats()
    for i in range(25):
        if i == 5:
            t = sync_time()
        loss = step(x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= 5:
            losses.append(loss.detach())
    dt = sync_time() - t
    result = {"tok_s": 20 * mb * seq / dt, "step_ms": 1000 * dt / 20,
              "peak_GiB": torch.cuda.max_memory_allocated() / 2**30,
              "loss_first": losses[0].item(), "loss_last": losses[-1].item(),
              "memory_GiB": memory_categories(pm, opt, lambda: step(x))}
    del pm, opt, loss, losses
    torch.cuda.empty_cache()
    return result


def train_varlen(name, compiled, mb=8, warmup=5, timed=20):
    cfg, pm = build(name)
    here = os.path.dirname(os.path.abspath(__file__))
    lengths = json.load(open(os.path.join(here, "varlen_lengths.json")))["lengths"]
    opt = torch.optim.AdamW([q for q in pm.parameters() if q.requires_grad], lr=3e-4, weight_decay=0.01)
    loss_of = lambda x, m, y: pm(input_ids=x, attention_mask=m, labels=y).loss  # noqa: E731
    step = torch.compile(loss_of, dynamic=True) if compiled else loss_of
    g = torch.Generator().manual_seed(3)
    # Every sample is a prefix of one seeded random text (as llmhost_bench's lora-train-varlen), so
    # the loss can fall over the timed steps.
    text = torch.randint(0, cfg.vocab_size, (max(lengths),), generator=g)
    batches = []
    for i in range(warmup + timed):
        lens = [lengths[(i * mb + j) % len(lengths)] for j in range(mb)]
        # The collator's pad_to_multiple_of=8: inductor specialises on whether the length is a
        # multiple of 8, and the other kind would recompile (~60 s at 160m) inside the timed steps.
        longest = (max(lens) + 7) // 8 * 8
        x = torch.zeros(mb, longest, dtype=torch.long)
        m = torch.zeros(mb, longest, dtype=torch.long)
        for j, n in enumerate(lens):
            x[j, :n] = text[:n]
            m[j, :n] = 1
        y = x.masked_fill(m == 0, -100)
        batches.append((x.cuda(), m.cuda(), y.cuda(), sum(lens)))
    losses = []
    warmup_s = []  # compiling shows here; a shape that recompiles in the timed steps shows in step_ms
    torch.cuda.reset_peak_memory_stats()
    previous = sync_time()
    for i, (x, m, y, _) in enumerate(batches):
        if 0 < i <= warmup:
            now = sync_time()
            warmup_s.append(round(now - previous, 2))
            previous = now
        if i == warmup:
            t = sync_time()
        loss = step(x, m, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            losses.append(loss.detach())
    dt = sync_time() - t
    tokens = sum(b[3] for b in batches[warmup:])
    result = {"tok_s": tokens / dt, "step_ms": 1000 * dt / timed,
              "peak_GiB": torch.cuda.max_memory_allocated() / 2**30,
              "loss_first": losses[0].item(), "loss_last": losses[-1].item(), "warmup_s": warmup_s}
    # Not a row ({"model": ...} lines are the results gpu-train-bench.sh salvages from a cut run).
    print(json.dumps({"warmup_of": name, "compiled": compiled, "warmup_s": warmup_s}),
          file=sys.stderr, flush=True)
    del pm, opt, loss, losses, batches
    torch.cuda.empty_cache()
    return result


def main(argv):
    workload, argv = pop_option(argv, "--workload", "fixed")
    variants, argv = pop_option(argv, "--variants", "eager,compiled")
    variants = variants.split(",")
    out_path, shapes = argv[1], argv[2:]
    if os.environ.get("HF_SDPA_NO_CUDNN") == "1":
        # cuDNN's attention builds a plan per new shape: with padding to each micro-batch's longest
        # sample, every varlen step is a new shape (bench/NOTES.md, session 9).
        torch.backends.cuda.enable_cudnn_sdp(False)
    import peft
    import transformers
    print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__,
                      "peft": peft.__version__, "gpu": torch.cuda.get_device_name()}), flush=True)
    def key_of(variant):
        key = "lora" if variant == "eager" else "lora_compiled"
        return key.replace("lora", "varlen") if workload == "varlen" else key

    def measure(name, variant):
        run = train_varlen if workload == "varlen" else train
        r = run(name, compiled=variant == "compiled")
        key = key_of(variant)
        row = {f"{key}_tok_s": r["tok_s"], f"{key}_step_ms": r["step_ms"],
               f"{key}_peak_GiB": r["peak_GiB"], f"{key}_loss": [r["loss_first"], r["loss_last"]],
               f"{key}_cudnn_sdp": torch.backends.cuda.cudnn_sdp_enabled()}
        if "warmup_s" in r:
            row[f"{key}_warmup_s"] = r["warmup_s"]
        if "memory_GiB" in r:
            row[f"{key}_memory_GiB"] = r["memory_GiB"]
        return row

    measure_rows(out_path, shapes, variants, measure, lambda variant: f"{key_of(variant)}_error",
                 first={"lora_mb": 8, "lora_seq": 512})

if __name__ == "__main__":
    main(sys.argv)
