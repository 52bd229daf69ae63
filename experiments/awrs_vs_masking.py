#!/usr/bin/env python3
"""AWRS versus token masking on a few regex and JSON tasks with a real model (docs/experiments-awrs.md).

Both decoders sample the same locally constrained law (docs/awrs.md): `masking` checks every token
with nonzero probability at every step, `awrs` tests tokens in Gumbel order until one is allowed,
plus one more for its weight. The paper (Lipkin et al. 2025) claims orders of magnitude fewer
constraint evaluations for AWRS. This script measures, per decoder and task:

* constraint evaluations per generated token (the decoders' `constraint_evaluations` metric over
  their `steps`),
* decoder wall time per token (`seconds.total`, prefill included) and the part spent sampling
  (`seconds.sample`: sampler chain, constraint checks and the draw; the rest is the model),
* validity of the final text (Python's `re.fullmatch` of the task's pattern, or `json.loads`), and
  whether the generation finished (eos or `constraint_complete`) rather than hit the token cap,
* for awrs, the mean per-step estimate Z-hat = exp(step_log_weight) (unbiased for the allowed mass
  Z of each step), which the paper's cost argument (about 1/Z tests per step) is about.

    DECODELAB_BUILD_DIR=build-awrs .venv/bin/python experiments/awrs_vs_masking.py --json awrs.json

The two decoders draw from different random streams (masking: `sample`, awrs: `proposal`), so the
same seed gives different texts; their laws, not their tokens, are equal.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import pathlib
import re
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from ablab import Daemon, apply_template  # noqa: E402
from ablab.runner import portable_spec  # noqa: E402
from ablab.stats import mcnemar, paired_bootstrap  # noqa: E402
from ablab._client import ROOT  # noqa: E402

DEFAULT_MODEL = pathlib.Path.home() / ".cache" / "decodelab" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class Task:
    id: str
    kind: str        # "regex" or "json"
    prompt: str      # the user's message (ChatML-wrapped)
    pattern: str = ""  # regex tasks: PCRE2 pattern, also valid Python `re` syntax

    @property
    def constraint(self) -> str:
        return f"regex(pattern={self.pattern})" if self.kind == "regex" else "json"

    def valid(self, text: str) -> bool:
        if self.kind == "regex":
            return re.fullmatch(self.pattern, text) is not None
        try:
            json.loads(text)
            return True
        except ValueError:
            return False


# Written for this experiment: short chat prompts asking for exactly the constrained output.
TASKS = [
    Task("date", "regex", "What is the date of the first Moon landing? Answer with only the date in ISO format (YYYY-MM-DD).",
         r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
    Task("email", "regex", "Write a plausible email address for a support team at a company called Acme. Answer with only the address.",
         r"[a-z0-9._]+@[a-z0-9-]+(\.[a-z]{2,4})+"),
    Task("phone", "regex", "Make up a US phone number for a pizza shop, formatted like (555) 123-4567. Answer with only the number.",
         r"\([0-9]{3}\) [0-9]{3}-[0-9]{4}"),
    Task("person", "json", "Give a JSON object describing a fictional person with the keys \"name\" and \"age\". "
         "Answer with only the JSON."),
    Task("colors", "json", "Give a JSON array of three color names. Answer with only the JSON."),
]
DECODERS = ("awrs", "masking")


@dataclass
class Run:
    task: str
    kind: str
    decoder: str
    seed: int
    max_tokens: int
    tokens: int
    text: str
    stop_reason: str
    evaluations: float
    seconds_total: float
    seconds_sample: float
    valid: bool
    finished: bool
    z_hat_mean: Optional[float]  # awrs only: mean over steps of exp(step_log_weight)


def answer_text(text: str, stop_reason: str, eos_text: str) -> str:
    """The daemon's text includes the eos token's text when eos stopped the generation; the answer
    is what precedes it."""
    if stop_reason != "eos":
        return text
    if not text.endswith(eos_text):
        raise RuntimeError(f"stopped at eos but the text does not end with {eos_text!r} (see --eos-text): {text!r}")
    return text[: len(text) - len(eos_text)]


def run_one(client, task: Task, decoder: str, seed: int, max_tokens: int, eos_text: str) -> Run:
    r = client.generate(apply_template(task.prompt, "chatml"), models={"target": "t"}, decoder=decoder,
                        params={"constraint": task.constraint}, seed=seed, max_tokens=max_tokens, stop_at_eos=True)
    stats = dict(r.stats)
    metrics = stats.get("metrics", {})
    seconds = stats.get("seconds", {})
    steps = [v for k, v in sorted(metrics.items()) if k.startswith("step_log_weight.")]
    text = answer_text(r.text, r.stop_reason, eos_text)
    z_hat = sum(math.exp(v) for v in steps) / len(steps) if decoder == "awrs" and steps else None
    return Run(task=task.id, kind=task.kind, decoder=decoder, seed=seed, max_tokens=max_tokens, tokens=len(r.tokens),
               text=text, stop_reason=r.stop_reason, evaluations=float(metrics.get("constraint_evaluations", 0.0)),
               seconds_total=float(seconds.get("total", 0.0)), seconds_sample=float(seconds.get("sample", 0.0)),
               valid=task.valid(text), finished=r.stop_reason in ("eos", "constraint_complete"), z_hat_mean=z_hat)


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def summarize(runs: List[Run], key: Callable[[Run], tuple]) -> List[Dict]:
    groups: Dict[tuple, List[Run]] = {}
    for r in runs:
        groups.setdefault(key(r), []).append(r)
    rows = []
    for k, rs in groups.items():
        tokens = sum(r.tokens for r in rs)
        z = [r.z_hat_mean for r in rs if r.z_hat_mean is not None]
        rows.append({"group": k, "runs": len(rs), "tokens": tokens,
                     "evals_per_tok": _ratio(sum(r.evaluations for r in rs), tokens),
                     "ms_per_tok": 1e3 * _ratio(sum(r.seconds_total for r in rs), tokens),
                     "sample_ms_per_tok": 1e3 * _ratio(sum(r.seconds_sample for r in rs), tokens),
                     "valid": sum(r.valid for r in rs), "finished": sum(r.finished for r in rs),
                     "z_hat": sum(z) / len(z) if z else None})
    return rows


def format_rows(rows: List[Dict], head: str) -> str:
    lines = [f"{head:<18} runs  tokens  evals/tok  ms/tok  sample ms/tok  valid  finished  mean Z-hat"]
    for row in rows:
        z = f"{row['z_hat']:.3f}" if row["z_hat"] is not None else "-"
        lines.append(f"{' '.join(map(str, row['group'])):<18} {row['runs']:>4}  {row['tokens']:>6}  {row['evals_per_tok']:>9.1f}  "
                     f"{row['ms_per_tok']:>6.1f}  {row['sample_ms_per_tok']:>13.1f}  {row['valid']:>2}/{row['runs']:<2}  "
                     f"{row['finished']:>4}/{row['runs']:<3}  {z:>10}")
    return "\n".join(lines)


def paired_comparisons(runs: List[Run], n_resamples: int = 10_000) -> str:
    """awrs against masking on the same (task, seed) slots: validity (McNemar, paired bootstrap of
    the difference) and the ratios of evaluations, time and sampling time per token (paired
    bootstrap over slots; both decoders' texts differ, so the pairing shares only task and seed)."""
    by_slot = {(r.task, r.seed, r.decoder): r for r in runs}
    slots = sorted({(r.task, r.seed) for r in runs if (r.task, r.seed, "awrs") in by_slot
                    and (r.task, r.seed, "masking") in by_slot})
    if len(slots) < 2:
        return "paired comparisons: fewer than two (task, seed) slots ran both decoders"
    m = [by_slot[(t, s, "masking")] for t, s in slots]
    a = [by_slot[(t, s, "awrs")] for t, s in slots]
    lines = [f"awrs against masking, {len(slots)} (task, seed) pairs, 95% paired bootstrap intervals "
             f"({n_resamples} resamples of the pairs):"]
    valid = paired_bootstrap([r.valid for r in m], [r.valid for r in a], n_resamples=n_resamples)
    test = mcnemar([r.valid for r in m], [r.valid for r in a])
    lines.append(f"  valid: masking {sum(r.valid for r in m)}/{len(m)}, awrs {sum(r.valid for r in a)}/{len(a)}; "
                 f"awrs - masking {valid.estimate:+.3f} [{valid.low:+.3f}, {valid.high:+.3f}]; only masking "
                 f"{test.first_only}, only awrs {test.second_only}, McNemar exact p = {test.p_value:.3f}")
    for name, field in (("evaluations per token", "evaluations"), ("ms per token", "seconds_total"),
                        ("sample ms per token", "seconds_sample")):
        ratio = paired_bootstrap([getattr(r, field) for r in m], [getattr(r, field) for r in a],
                                 a_den=[r.tokens for r in m], b_den=[r.tokens for r in a], effect="ratio",
                                 n_resamples=n_resamples)
        lines.append(f"  {name}: awrs / masking {ratio.estimate:.4g} [{ratio.low:.4g}, {ratio.high:.4g}]")
    return "\n".join(lines)


def read_runs(path: str) -> tuple:
    """The config and runs of a --json file (gzipped when it ends in .gz)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        data = json.load(f)
    return data["config"], [Run(**r) for r in data["runs"]]


def report(runs: List[Run]) -> None:
    by_decoder = summarize(runs, lambda r: (r.decoder,))
    print(format_rows(by_decoder, "decoder"))
    print()
    print(format_rows(summarize(runs, lambda r: (r.task, r.decoder)), "task decoder"))
    evals = {row["group"][0]: row["evals_per_tok"] for row in by_decoder}
    if evals.get("awrs"):
        print(f"\nmasking / awrs evaluations per token: {evals['masking'] / evals['awrs']:.0f}x")
    print()
    print(paired_comparisons(runs))


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="GGUF file (default SmolLM2-135M-Instruct Q4_1)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads of the model (default 1: the machine is shared)")
    ap.add_argument("--build-dir", default=os.environ.get("DECODELAB_BUILD_DIR", str(ROOT / "build")))
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--masking-max-tokens", type=int, default=None,
                    help="token cap of the masking arm (default --max-tokens); lower it when masking is too slow")
    ap.add_argument("--tasks", default=",".join(t.id for t in TASKS), help="comma-separated task ids")
    ap.add_argument("--eos-text", default="<|im_end|>", help="the eos token's text, stripped from the answer (SmolLM2: <|im_end|>)")
    ap.add_argument("--json", help="write every run and the summaries here (gzipped when the name ends in .gz)")
    ap.add_argument("--report-only", metavar="FILE", help="print the tables and comparisons of a --json file; run nothing")
    args = ap.parse_args(argv)
    if args.report_only:
        try:
            config, runs = read_runs(args.report_only)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SystemExit(f"--report-only {args.report_only}: not a readable --json file of this script ({e})")
        print(f"{args.report_only}: model {config.get('model')}; seeds {config.get('seeds')}; "
              f"max tokens {config.get('max_tokens')}")
        report(runs)
        return 0

    seeds = [int(s) for s in args.seeds.split(",") if s]
    wanted = args.tasks.split(",")
    tasks = [t for t in TASKS if t.id in wanted]
    caps = {"awrs": args.max_tokens, "masking": args.masking_max_tokens or args.max_tokens}
    binary = pathlib.Path(args.build_dir) / "bin" / "decodelabd"
    spec = f"gguf(path={args.model},threads={args.threads})"
    load_before = os.getloadavg()
    started = time.time()
    runs: List[Run] = []
    with Daemon({"t": spec}, binary=binary) as d:
        with d.client(timeout=600.0) as client:
            # Warm-up (not recorded): page cache, allocator, the first constraint compilation.
            client.generate(apply_template(tasks[0].prompt, "chatml"), models={"target": "t"}, decoder="awrs",
                            params={"constraint": tasks[0].constraint}, seed=0, max_tokens=2)
            for task in tasks:
                for seed in seeds:
                    for decoder in DECODERS:  # interleaved, so drifts of the shared machine hit both alike
                        run = run_one(client, task, decoder, seed, caps[decoder], args.eos_text)
                        runs.append(run)
                        print(f"  {task.id:<7} {decoder:<8} seed {seed}: {run.tokens:>2} tok, {run.evaluations:>9.0f} evals, "
                              f"{run.seconds_total:6.2f} s, {run.stop_reason:<19} valid={int(run.valid)} {run.text!r}",
                              file=sys.stderr, flush=True)
    wall = time.time() - started
    load_after = os.getloadavg()

    by_decoder = summarize(runs, lambda r: (r.decoder,))
    by_task = summarize(runs, lambda r: (r.task, r.decoder))
    report(runs)
    print(f"model {spec}; seeds {seeds}; max tokens {caps}; wall {wall:.0f} s; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    if args.json:
        opener = gzip.open if args.json.endswith(".gz") else open
        with opener(args.json, "wt") as f:
            json.dump({"config": {"model": portable_spec(spec), "seeds": seeds, "max_tokens": caps, "tasks": [asdict(t) for t in tasks],
                                  "wall_s": wall, "load_before": load_before, "load_after": load_after},
                       "by_decoder": by_decoder, "by_task": by_task, "runs": [asdict(r) for r in runs]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
