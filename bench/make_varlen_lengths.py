"""Writes bench/varlen_lengths.json: the sample lengths of workload lora-train-varlen (PROTOCOL.md,
"Variable-length workload"), read by both sides so they train on the same lengths. Lognormal with
median 180 tokens and sigma 0.6 (95th percentile ~480), cut to [16, 1024], seed 0, 512 samples.
Usage: python3 bench/make_varlen_lengths.py   (deterministic: Python's own Mersenne Twister)
"""
import json
import math
import os
import random

rng = random.Random(0)
lengths = [min(1024, max(16, round(rng.lognormvariate(math.log(180), 0.6)))) for _ in range(512)]
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "varlen_lengths.json")
with open(path, "w") as f:
    json.dump({"median": 180, "sigma": 0.6, "min": 16, "max": 1024, "seed": 0,
               "lengths": lengths}, f)
    f.write("\n")
s = sorted(lengths)
print(f"{len(s)} samples: median {s[len(s) // 2]}, p95 {s[int(len(s) * 0.95)]}, max {s[-1]}, "
      f"mean {sum(s) / len(s):.1f}")
