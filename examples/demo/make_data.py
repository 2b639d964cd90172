#!/usr/bin/env python3
"""Writes the data of scripts/demo.sh (committed; rerun only to change it, same bytes every time).

The shipped model (tests/data/tiny-pythia-trained) learnt two-operator problems such as
"Question: What is (3 + 4) * 2?\\nAnswer: 14" (GPT-3's arithmetic_1dc) but answers one-operator
problems ("What is 7 * 8?") only a third of the time. The demo teaches it those:

  train.jsonl                     Dolly-15k JSONL, 200 records; each response is six solved
                                  problems in the eval's own layout ("Question: ...\\nAnswer: N")
  eval-data/arithmetic_1dc.jsonl  100 held-out problems in EleutherAI/arithmetic's fields
                                  (context, completion), scored by the arithmetic_1dc task

The 243 problems a op b (a, b in 1..9, op in + - *) are shuffled once; the first 100 are the eval
set, the training records draw only from the other 143, so no eval question is trained on (checked
below, together with the questions of tests/data/eval-data). Randomness is a fixed-seed 64-bit LCG,
not Python's random module, so the bytes do not depend on the Python version.
"""
import json
import pathlib

SEED = 20261201
EVAL_SIZE = 100
RECORDS = 200
PROBLEMS_PER_RECORD = 6
HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent


class Lcg:
    """Knuth's MMIX LCG; below(n) from the high bits."""

    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def below(self, n):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return (self.state >> 33) % n


def problem(a, op, b):
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    return f"Question: What is {a} {op} {b}?\nAnswer:", f" {value}"


def main():
    problems = [(a, op, b) for a in range(1, 10) for op in "+-*" for b in range(1, 10)]
    rng = Lcg(SEED)
    for i in range(len(problems) - 1, 0, -1):  # Fisher-Yates
        j = rng.below(i + 1)
        problems[i], problems[j] = problems[j], problems[i]
    eval_set = [problem(*p) for p in problems[:EVAL_SIZE]]
    train_pool = [problem(*p) for p in problems[EVAL_SIZE:]]

    held_out = {context for context, _ in eval_set}
    for path in (ROOT / "tests/data/eval-data").glob("arithmetic_*.jsonl"):
        held_out |= {json.loads(line)["context"] for line in path.open() if line.strip()}
    leaked = {context for context, _ in train_pool} & held_out
    assert not leaked, f"training questions in an eval set: {sorted(leaked)[:3]}"

    (HERE / "eval-data").mkdir(exist_ok=True)
    with open(HERE / "eval-data/arithmetic_1dc.jsonl", "w", newline="\n") as out:
        for context, completion in eval_set:
            out.write(json.dumps({"context": context, "completion": completion}) + "\n")
    with open(HERE / "train.jsonl", "w", newline="\n") as out:
        for _ in range(RECORDS):
            solved = [train_pool[rng.below(len(train_pool))] for _ in range(PROBLEMS_PER_RECORD)]
            response = "".join(f"\n{context}{completion}" for context, completion in solved)
            record = {"instruction": "Solve these arithmetic problems.", "context": "",
                      "response": response, "category": "arithmetic"}
            out.write(json.dumps(record) + "\n")
    print(f"{RECORDS} training records from {len(train_pool)} problems; "
          f"{len(eval_set)} held-out eval problems; no overlap")


if __name__ == "__main__":
    main()
