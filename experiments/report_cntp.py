#!/usr/bin/env python3
"""CNTP against stochastic sampling at equal compute, from two humaneval_ab.py runs.

    .venv/bin/python experiments/humaneval_ab.py --arms experiments/arms/cntp_stochastic.json \
        --problems 24 --seeds 1,2,3,4 --out sample.jsonl
    .venv/bin/python experiments/humaneval_ab.py --arms experiments/arms/cntp_compute.json \
        --problems 24 --seeds 1 --out cntp.jsonl
    .venv/bin/python experiments/report_cntp.py sample.jsonl cntp.jsonl

Prints a Markdown table: pass@1 and token forwards per problem for each CNTP arm (seed 1), for
sampling (seed 1, and the mean over all seeds), and for best-of-k by the model's own mean
log-probability, the compute-matched baseline that picks without a verifier, as CNTP does.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict

from humaneval_ab import read_rows, wilson


def line(name, passed, n, forwards):
    lo, hi = wilson(passed, n)
    return f"| {name} | {passed / n:.3f} | [{lo:.2f}, {hi:.2f}] | {forwards:.0f} |"


def main(argv) -> int:
    sample_rows = read_rows(__import__("pathlib").Path(argv[0]))
    cntp_rows = read_rows(__import__("pathlib").Path(argv[1]))
    cntp = defaultdict(dict)
    for r in cntp_rows:
        if r["seed"] == 1:
            cntp[r["arm"]][r["task_id"]] = r
    tasks = sorted(set.intersection(*(set(v) for v in cntp.values())), key=lambda t: int(t.split("/")[1]))
    samples = defaultdict(list)
    for r in sample_rows:
        if r["task_id"] in tasks:
            samples[r["task_id"]].append(r)
    for t in tasks:
        samples[t].sort(key=lambda r: r["seed"])
    n = len(tasks)
    print(f"{n} problems (seed 1 of every arm; sampling seeds 1..{max(len(v) for v in samples.values())})\n")
    print("| arm | pass@1 | 95% CI | forwards / problem |\n|---|---|---|---|")
    first = [samples[t][0] for t in tasks]
    print(line("sampling (seed 1)", sum(r["passed"] for r in first), n, sum(r["forwards"] for r in first) / n))
    every = [r for t in tasks for r in samples[t]]
    print(line(f"sampling (mean of {len(every) // n} seeds)", sum(r["passed"] for r in every), len(every),
               sum(r["forwards"] for r in every) / len(every)))
    for k in range(2, max(len(v) for v in samples.values()) + 1):
        picks = [max(samples[t][:k], key=lambda r: r["mean_logprob"]) for t in tasks]
        cost = sum(sum(r["forwards"] for r in samples[t][:k]) for t in tasks) / n
        print(line(f"best-of-{k} by mean log-probability", sum(r["passed"] for r in picks), n, cost))
    for arm, by_task in cntp.items():
        rows = [by_task[t] for t in tasks]
        print(line(arm, sum(r["passed"] for r in rows), n, sum(r["forwards"] for r in rows) / n))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
