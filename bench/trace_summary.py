#!/usr/bin/env python3
"""Summarises a Kineto Chrome trace written by llmhost_bench --profile: GPU busy time against the
traced wall time (how launch-bound the workload is), kernel count, and the kernels and CPU ops that
take the most time.

Usage: trace_summary.py TRACE.json [TOP]
The GPU's idle gaps longer than 20 us are listed too, largest first, with the kernels either side:
they show where a replayed step waits on the host. Then the memsets, by the CPU op that launched
them (Kineto's "External id"; in a replayed CUDA graph there is none): small memsets are cheap
alone but a step at 7b had ~500 of them.
"""
import collections
import json
import sys


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    top = int(argv[2]) if len(argv) > 2 else 15
    with open(argv[1]) as f:
        events = json.load(f).get("traceEvents", [])
    kernels = collections.defaultdict(lambda: [0.0, 0])
    cpu_ops = collections.defaultdict(lambda: [0.0, 0])
    starts, ends = [], []
    gpu_spans = []  # (start, end, name) of each kernel, copy or fill
    busy = 0.0
    op_of_id = {}  # External id -> CPU op name
    memset_ids = []  # External id of each memset (None: none recorded)
    memset_us = collections.defaultdict(float)
    for e in events:
        if e.get("ph") != "X" or "dur" not in e:
            continue
        cat = e.get("cat", "")
        starts.append(e["ts"])
        ends.append(e["ts"] + e["dur"])
        if cat == "kernel" or cat == "gpu_memcpy" or cat == "gpu_memset":
            k = kernels[e["name"][:90]]
            k[0] += e["dur"]
            k[1] += 1
            busy += e["dur"]
            gpu_spans.append((e["ts"], e["ts"] + e["dur"], e["name"][:50]))
            if cat == "gpu_memset":
                external = e.get("args", {}).get("External id")
                memset_ids.append(external)
                memset_us[external] += e["dur"]
        elif cat == "cpu_op":
            c = cpu_ops[e["name"][:60]]
            c[0] += e["dur"]
            c[1] += 1
            external = e.get("args", {}).get("External id")
            if external is not None:
                op_of_id[external] = e["name"][:60]
    wall = (max(ends) - min(starts)) if starts else 0.0
    count = sum(v[1] for v in kernels.values())
    print(f"{argv[1]}: traced wall {wall / 1e3:.1f} ms, GPU busy {busy / 1e3:.1f} ms "
          f"({100 * busy / wall if wall else 0:.0f}%), {count} kernels")
    print("  top kernels (ms, calls):")
    for name, (dur, n) in sorted(kernels.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"    {dur / 1e3:8.2f} {n:6d}  {name}")
    gpu_spans.sort()
    gaps = []
    for (_, end, before), (start, _, after) in zip(gpu_spans, gpu_spans[1:]):
        if start - end > 20:
            gaps.append((start - end, before, after))
    gaps.sort(reverse=True)
    print(f"  GPU idle gaps over 20 us: {len(gaps)}, {sum(g[0] for g in gaps) / 1e3:.2f} ms in all;"
          f" first kernel to last {(gpu_spans[-1][1] - gpu_spans[0][0]) / 1e3 if gpu_spans else 0:.1f} ms")
    for gap, before, after in gaps[:top]:
        print(f"    {gap / 1e3:8.3f} ms after {before} | before {after}")
    by_op = collections.defaultdict(lambda: [0.0, 0])
    for external in memset_ids:
        by_op[op_of_id.get(external, "(no CPU op: a replayed graph)")][1] += 1
    for external, dur in memset_us.items():
        by_op[op_of_id.get(external, "(no CPU op: a replayed graph)")][0] += dur
    print(f"  memsets by the CPU op that launched them: {len(memset_ids)} (ms, count):")
    for name, (dur, n) in sorted(by_op.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"    {dur / 1e3:8.3f} {n:6d}  {name}")
    print("  top CPU ops, inclusive (ms, calls):")
    for name, (dur, n) in sorted(cpu_ops.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"    {dur / 1e3:8.2f} {n:6d}  {name}")


if __name__ == "__main__":
    main(sys.argv)
