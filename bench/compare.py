#!/usr/bin/env python3
"""Joins llmhost_bench's JSON lines with hf_peft_bench.py's results (same call, same GPU) into
rows {"shape", "workload", "metric", "ours", "hf", "ratio"} (ratio = ours / hf) and a Markdown
table with the issue-6 targets.

Usage: compare.py OURS.jsonl HF.json OUT_PREFIX [--gpu NAME]
Writes OUT_PREFIX.json and OUT_PREFIX.md; prints the Markdown table.
"""
import json
import sys

SHAPES = ["pythia-160m", "pythia-410m", "pythia-1.4b", "llama-2-7b"]
# Extra lora-train measurements of ours, listed apart: activation checkpointing (memory, issue 5)
# and the whole step replayed as a CUDA graph (host overhead, issue 6).
VARIANTS = ["lora-train-checkpointed", "lora-train-graph"]
# (workload, metric, our key, HF key, HF scale, direction, targets per shape)
CELLS = [
    ("lora-train", "tok/s", "tok_s", "lora_tok_s", 1.0, ">=", [2.0, 2.0, 1.5, 1.3]),
    ("lora-train", "peak_memory", "peak_memory_bytes", "lora_peak_GiB", 2.0**30, "<=",
     [1.0, 1.0, 1.0, 1.0]),
    ("score", "tok/s", "tok_s", "score_tok_s", 1.0, ">=", [1.2, 1.2, 1.2, 1.2]),
    ("generate", "tok/s", "tok_s", "generate_tok_s", 1.0, ">=", [10.0, 10.0, 5.0, 4.0]),
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


def read_hf(path):
    try:
        with open(path) as f:
            return {r["model"]: r for r in json.load(f)}
    except (OSError, ValueError):
        return {}


def fmt(value, metric):
    if value is None:
        return "—"
    if metric == "peak_memory":
        return f"{value / 2**30:.2f} GiB"
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    ours, hf, prefix = read_ours(argv[1]), read_hf(argv[2]), argv[3]
    gpu = argv[argv.index("--gpu") + 1] if "--gpu" in argv else "?"
    rows, lines = [], []
    lines.append(f"# llmhost vs Hugging Face + PEFT ({gpu}, same call)\n")
    lines.append("ratio = ours / HF; target from issue 6 (peak memory: lower is better).\n")
    lines.append("| shape | workload | metric | ours | HF + PEFT | ratio | target | met |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for i, shape in enumerate(SHAPES):
        for workload, metric, our_key, hf_key, scale, direction, targets in CELLS:
            mine = ours.get((shape, workload), {})
            value = mine.get(our_key)
            if mine and not mine.get("passed", True):
                value = None  # a failed check voids the number
            ref = hf.get(shape, {}).get(hf_key)
            ref = ref * scale if ref is not None else None
            ratio = value / ref if value is not None and ref else None
            target = targets[i]
            met = None if ratio is None else (ratio >= target if direction == ">=" else ratio <= target)
            rows.append({"shape": shape, "workload": workload, "metric": metric, "ours": value,
                         "hf": ref, "ratio": ratio, "target": f"{direction} {target}", "met": met})
            lines.append(f"| {shape} | {workload} | {metric} | {fmt(value, metric)} | {fmt(ref, metric)} | "
                         f"{'—' if ratio is None else f'{ratio:.2f}×'} | {direction} {target}× | "
                         f"{'—' if met is None else ('yes' if met else '**no**')} |")
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
                     "lora-train):\n")
        lines.append("| shape | workload | tok/s | ratio | peak memory | ratio | note |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- |")
        for shape, workload in variants:
            r = ours[(shape, workload)]
            ref = hf.get(shape, {})
            tok, peak = r.get("tok_s"), r.get("peak_memory_bytes")
            tok_ratio = tok / ref["lora_tok_s"] if tok and ref.get("lora_tok_s") else None
            peak_ratio = (peak / (ref["lora_peak_GiB"] * 2**30)
                          if peak and ref.get("lora_peak_GiB") else None)
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
