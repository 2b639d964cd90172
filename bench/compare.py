#!/usr/bin/env python3
"""Joins llmhost_bench's JSON lines with the reference's results (same call, same GPU) into rows
{"shape", "workload", "metric", "ours", "hf", "ratio", "hf_compiled", "ratio_compiled"} (ratio =
ours / HF eager, ratio_compiled = ours / HF with torch.compile; for peak memory lower is better)
and a Markdown table with the issue-13 targets (against the compiled reference).

Usage: compare.py OURS.jsonl HF.json [HF.json...] OUT_PREFIX [--gpu NAME]
HF files: hf_peft_bench.py's list and/or hf_lora_train_bench.py's (rows for one shape merge).
Writes OUT_PREFIX.json and OUT_PREFIX.md; prints the Markdown table.
"""
import json
import sys

SHAPES = ["pythia-160m", "pythia-410m", "pythia-1.4b", "llama-2-7b"]
# Extra lora-train measurements of ours, listed apart: activation checkpointing (memory, issue 5)
# and the [8, 512] step through autograd every step, beside lora-train's replayed graph.
VARIANTS = ["lora-train-checkpointed", "lora-train-eager"]
# (workload, metric, our key, HF eager key, HF compiled key, HF scale, direction, issue-13 target
# per shape against the compiled reference; score's target is against eager HF)
CELLS = [
    ("lora-train", "tok/s", "tok_s", "lora_tok_s", "lora_compiled_tok_s", 1.0, ">=",
     [1.2, 1.2, 1.2, 1.2]),
    ("lora-train", "peak_memory", "peak_memory_bytes", "lora_peak_GiB", "lora_compiled_peak_GiB",
     2.0**30, "<=", [0.9, 0.9, 0.9, 0.9]),
    ("lora-train-varlen", "non-pad tok/s", "tok_s", "varlen_tok_s", "varlen_compiled_tok_s", 1.0,
     ">=", [2.0, 2.0, 2.0, 2.0]),
    ("score", "tok/s", "tok_s", "score_tok_s", None, 1.0, ">=", [1.2, 1.2, 1.2, 1.2]),
    ("generate", "tok/s", "tok_s", "generate_tok_s", "generate_compiled_tok_s", 1.0, ">=",
     [3.0, 3.0, 2.0, 1.3]),
]


def read_ours(path):
    rows = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "workload" in row and "shape" in row:
                rows[(row["shape"], row["workload"])] = row
    return rows


def read_hf(paths):
    merged = {}
    for path in paths:
        try:
            with open(path) as f:
                rows = json.load(f)
        except (OSError, ValueError):
            continue
        for r in rows:
            if "model" in r:
                merged.setdefault(r["model"], {}).update(r)
    return merged


def ratio_of(value, ref):
    return value / ref if value is not None and ref else None


def fmt_ratio(ratio):
    return "—" if ratio is None else f"{ratio:.2f}×"


def fmt(value, metric):
    if value is None:
        return "—"
    if metric == "peak_memory":
        return f"{value / 2**30:.2f} GiB"
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def main(argv):
    gpu = "?"
    if "--gpu" in argv:
        i = argv.index("--gpu")
        gpu = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    if len(argv) < 4:
        sys.exit(__doc__)
    ours, hf, prefix = read_ours(argv[1]), read_hf(argv[2:-1]), argv[-1]
    rows, lines = [], []
    lines.append(f"# llmhost vs Hugging Face + PEFT ({gpu}, same call)\n")
    lines.append("ratio = ours / HF eager; compiled = ours / HF with torch.compile; targets from "
                 "issue 13, against the compiled reference where there is one (score: eager). "
                 "Peak memory: lower is better.\n")
    lines.append("| shape | workload | metric | ours | HF eager | ratio | HF compiled | ratio | "
                 "target | met |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for i, shape in enumerate(SHAPES):
        for workload, metric, our_key, hf_key, compiled_key, scale, direction, targets in CELLS:
            mine = ours.get((shape, workload), {})
            value = mine.get(our_key)
            if mine and not mine.get("passed", True):
                value = None  # a failed check voids the number
            ref_row = hf.get(shape, {})
            ref = ref_row.get(hf_key)
            ref = ref * scale if ref is not None else None
            compiled = ref_row.get(compiled_key) if compiled_key else None
            compiled = compiled * scale if compiled is not None else None
            if value is None and ref is None and compiled is None:
                continue
            ratio, ratio_compiled = ratio_of(value, ref), ratio_of(value, compiled)
            judged = ratio_compiled if compiled_key else ratio
            target = targets[i]
            met = None if judged is None else (judged >= target if direction == ">=" else judged <= target)
            rows.append({"shape": shape, "workload": workload, "metric": metric, "ours": value,
                         "hf": ref, "ratio": ratio, "hf_compiled": compiled,
                         "ratio_compiled": ratio_compiled, "target": f"{direction} {target}",
                         "met": met})
            lines.append(f"| {shape} | {workload} | {metric} | {fmt(value, metric)} | {fmt(ref, metric)} | "
                         f"{fmt_ratio(ratio)} | {fmt(compiled, metric)} | {fmt_ratio(ratio_compiled)} | "
                         f"{direction} {target}× | {'—' if met is None else ('yes' if met else '**no**')} |")
    checks = [r for r in ours.values() if not r.get("passed", True) or r["workload"] == "correctness"]
    if checks:
        lines.append("\nChecks at speed:\n")
        for r in checks:
            state = "ok" if r.get("passed", True) else "FAIL"
            lines.append(f"- {r['shape']} {r['workload']}: {state} {r.get('note', '')}")
    train = [r for r in ours.values() if r["workload"] == "lora-train"]
    for r in train:
        if "loss_first_timed" in r:
            lines.append(f"- {r['shape']} lora-train loss {r['loss_first_timed']:.4f} -> "
                         f"{r['loss_last_timed']:.4f} over the timed steps")
    variants = [(shape, w) for shape in SHAPES for w in VARIANTS if (shape, w) in ours]
    if variants:
        lines.append("\nVariants of lora-train (not in the targets; ratios to the same HF + PEFT "
                     "lora-train, compiled where it ran, else eager):\n")
        lines.append("| shape | workload | tok/s | ratio | peak memory | ratio | note |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- |")
        for shape, workload in variants:
            r = ours[(shape, workload)]
            ref = hf.get(shape, {})
            tok, peak = r.get("tok_s"), r.get("peak_memory_bytes")
            ref_tok = ref.get("lora_compiled_tok_s") or ref.get("lora_tok_s")
            ref_peak = ref.get("lora_compiled_peak_GiB") or ref.get("lora_peak_GiB")
            tok_ratio = tok / ref_tok if tok and ref_tok else None
            peak_ratio = peak / (ref_peak * 2**30) if peak and ref_peak else None
            lines.append(f"| {shape} | {workload} | {fmt(tok, 'tok/s')} | "
                         f"{'—' if tok_ratio is None else f'{tok_ratio:.2f}×'} | "
                         f"{fmt(peak, 'peak_memory')} | "
                         f"{'—' if peak_ratio is None else f'{peak_ratio:.2f}×'} | "
                         f"{r.get('note', '')} |")
    text = "\n".join(lines) + "\n"
    with open(prefix + ".json", "w") as f:
        json.dump(rows, f, indent=1)
    with open(prefix + ".md", "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv)
