#!/usr/bin/env python3
"""CNTP against stochastic sampling at equal compute, from two humaneval_ab.py runs.

    .venv/bin/python experiments/humaneval_ab.py --arms experiments/arms/cntp_stochastic.json \
        --problems 24 --seeds 1,2,3,4 --out sample.jsonl
    .venv/bin/python experiments/humaneval_ab.py --arms experiments/arms/cntp_compute.json \
        --problems 24 --seeds 1 --out cntp.jsonl
    .venv/bin/python experiments/report_cntp.py sample.jsonl cntp.jsonl

Prints a Markdown table: pass@1, token forwards and decoder seconds per problem for each CNTP arm
(seed 1), for sampling (seed 1, and the mean over all seeds), and for best-of-k by the model's own
mean log-probability, the compute-matched baseline that picks without a verifier, as CNTP does.
Then paired comparisons over the problems (ablab.compare): each CNTP arm against sampling's seed 1
(the same seed, so the same random numbers where the arms agree), CNTP against best-of-3 (the
baseline nearest in forwards) and the two ablations, with McNemar's exact test (Holm over these
six), bootstrap intervals of the pass@1 differences and of the forwards and time ratios; and the
CNTP arms' pass@1 against the mean of sampling's seeds (each problem's samples pooled).
"""

from __future__ import annotations

import pathlib
import sys
from collections import defaultdict

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from ablab.compare import Metric, compare_arms, format_comparisons  # noqa: E402
from ablab.stats import pass_at_k  # noqa: E402
from humaneval_ab import read_rows, task_index, wilson  # noqa: E402

METRICS = [Metric("pass@1", "passed", binary=True), Metric("forwards", "forwards", "problems", "ratio", fmt="{:.1f}"),
           Metric("s/run", "seconds", "problems", "ratio", fmt="{:.2f}")]


def line(name, passed, n, forwards, seconds):
    lo, hi = wilson(passed, n)
    return f"| {name} | {passed / n:.3f} | [{lo:.2f}, {hi:.2f}] | {forwards:.0f} | {seconds:.1f} |"


def best_of(samples, tasks, k):
    """Per problem, among the first k seeds' samples, the one with the highest mean log-probability,
    carrying the forwards and seconds of all k."""
    out = []
    for t in tasks:
        mine = samples[t][:k]
        pick = max(mine, key=lambda r: r["mean_logprob"])
        out.append({**pick, "arm": f"best-of-{k}", "seed": 1, "forwards": sum(r["forwards"] for r in mine),
                    "seconds": sum(r["seconds"] for r in mine), "problems": 1.0})
    return out


def main(argv) -> int:
    if len(argv) != 2:
        raise SystemExit("usage: report_cntp.py SAMPLE.jsonl[.gz] CNTP.jsonl[.gz]")
    sample_rows = read_rows(pathlib.Path(argv[0]))
    cntp_rows = read_rows(pathlib.Path(argv[1]))
    cntp = defaultdict(dict)
    for r in cntp_rows:
        if r["seed"] == 1:
            cntp[r["arm"]][r["task_id"]] = r
    tasks = sorted(set.intersection(*(set(v) for v in cntp.values())), key=task_index)
    samples = defaultdict(list)
    for r in sample_rows:
        if r["task_id"] in tasks:
            samples[r["task_id"]].append(r)
    for t in tasks:
        samples[t].sort(key=lambda r: r["seed"])
    n = len(tasks)
    seeds = max(len(v) for v in samples.values())
    print(f"{n} problems (seed 1 of every arm; sampling seeds 1..{seeds})\n")
    print("| arm | pass@1 | 95% CI | forwards / problem | s / problem |\n|---|---|---|---|---|")
    first = [samples[t][0] for t in tasks]
    print(line("sampling (seed 1)", sum(r["passed"] for r in first), n, sum(r["forwards"] for r in first) / n,
               sum(r["seconds"] for r in first) / n))
    every = [r for t in tasks for r in samples[t]]
    print(line(f"sampling (mean of {len(every) // n} seeds)", sum(r["passed"] for r in every), len(every),
               sum(r["forwards"] for r in every) / len(every), sum(r["seconds"] for r in every) / len(every)))
    picked = {}
    for k in range(2, seeds + 1):
        picked[k] = best_of(samples, tasks, k)
        rows = picked[k]
        print(line(f"best-of-{k} by mean log-probability", sum(r["passed"] for r in rows), n,
                   sum(r["forwards"] for r in rows) / n, sum(r["seconds"] for r in rows) / n))
    for arm, by_task in cntp.items():
        rows = [by_task[t] for t in tasks]
        print(line(arm, sum(r["passed"] for r in rows), n, sum(r["forwards"] for r in rows) / n,
                   sum(r["seconds"] for r in rows) / n))

    ks = ", ".join(f"pass@{k} {sum(pass_at_k(len(samples[t]), sum(r['passed'] for r in samples[t]), k) for t in tasks) / n:.3f}"
                   for k in range(1, seeds + 1))
    print(f"\nsampling, unbiased pass@k over each problem's {seeds} samples (Chen et al. 2021): {ks}")

    # Paired comparisons. "problems" weighs each arm's rows of a problem as one problem in all.
    one = [dict(r, problems=1.0) for r in first] + [dict(r, problems=1.0) for v in cntp.values() for r in v.values()
                                                    if r["task_id"] in tasks]
    one += picked.get(3, [])
    arms = list(cntp)
    pairs = [(a, "sample@1.2") for a in arms if first and first[0]["arm"] == "sample@1.2"]
    if "cntp4" in cntp:
        pairs += [("cntp4", "best-of-3")] if 3 in picked else []
        pairs += [(a, "cntp4") for a in ("cntp4-constant", "cntp10") if a in cntp]
    print("\nseed 1 against seed 1, one run per problem:")
    print(format_comparisons(compare_arms(one, metrics=METRICS, pairs=pairs, prompt_key="task_id"), METRICS))
    mean = [dict(r, arm="sampling, all seeds") for r in every]
    rest = [r for r in one if r["arm"] in cntp]
    print(f"\nagainst the {seeds} sampling seeds (each problem's samples pooled):")
    print(format_comparisons(compare_arms(mean + rest, metrics=METRICS[:1], pairs=[(a, "sampling, all seeds") for a in arms],
                                          prompt_key="task_id", pair_by="prompt"), METRICS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
