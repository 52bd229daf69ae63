#!/usr/bin/env python3
"""Comparisons and plots from result files already written: ablab's JSON Lines (``ab.py --jsonl``),
the HumanEval scripts' rows, or ``decodelab bench spec`` records.

    .venv/bin/python experiments/analyze.py ab.jsonl                       # every arm against the first
    .venv/bin/python experiments/analyze.py ab.jsonl --baseline greedy --compare sd:ngram
    .venv/bin/python experiments/analyze.py experiments/results/spec_cpu_full.shard0.jsonl \\
        experiments/results/spec_cpu_full.shard1.jsonl --plots-to experiments/results/spec_cpu_full

Prints the comparison table (paired bootstrap intervals over prompts, McNemar with Holm for
pass/fail, Bonferroni family-wise intervals; ablab/compare.py) and writes the PNGs the columns
allow beside the first file, or at ``--plots-to STEM``. For bench spec records each decoder at
each temperature is an arm (``sd(L=4)@0.6``), compared with the bench's own baseline at that
temperature (greedy at 0, sample above).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from ablab.compare import AB_METRICS, HUMANEVAL_METRICS, compare_arms, format_comparisons  # noqa: E402
from ablab.plots import plot_stem, write_plots  # noqa: E402
from ablab.results import read_any_rows, spec_baseline  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=pathlib.Path, help="JSON Lines files (.gz allowed), concatenated")
    p.add_argument("--baseline", help="arm the others are compared with (default the first; bench spec: per temperature)")
    p.add_argument("--compare", action="append", default=[], metavar="ARM:BASELINE", help="only these pairs (repeatable)")
    p.add_argument("--seeds", help="only rows of these seeds (comma-separated)")
    p.add_argument("--pair-by", choices=("seed", "prompt"), default="seed",
                   help="pair arms on (prompt, seed), or on prompts with each arm's seeds pooled (default %(default)s)")
    p.add_argument("--bootstrap", type=int, default=10000, metavar="N", help="bootstrap resamples (default %(default)s)")
    p.add_argument("--stats-seed", type=int, default=0, help="the bootstrap's seed (default %(default)s)")
    p.add_argument("--plots-to", type=pathlib.Path, metavar="STEM", help="write STEM.<plot>.png (default beside the first file)")
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args(argv)

    rows = read_any_rows(args.files)
    if not rows:
        raise SystemExit("analyze: no rows")
    if args.seeds:
        keep = {int(s) for s in args.seeds.split(",") if s.strip()}
        rows = [r for r in rows if int(r["seed"]) in keep]
    prompt_key = "prompt_id" if "prompt_id" in rows[0] else "task_id"
    spec = "steps" in rows[0] and "passed" not in rows[0] and "@" in rows[0]["arm"] and "token_ids" not in rows[0]
    metrics = HUMANEVAL_METRICS if prompt_key == "task_id" else AB_METRICS
    pairs = []
    for item in args.compare:
        arm, colon, base = item.rpartition(":")
        if not colon or not arm or not base:
            raise SystemExit(f"--compare expects ARM:BASELINE, got {item!r}")
        pairs.append((arm, base))
    if not pairs and spec and not args.baseline:
        names = list(dict.fromkeys(r["arm"] for r in rows))
        temps = {r["arm"]: r["temperature"] for r in rows}
        pairs = [(a, spec_baseline(temps[a])) for a in names if a != spec_baseline(temps[a])]
    found = compare_arms(rows, args.baseline, metrics, pairs=pairs or None, prompt_key=prompt_key, pair_by=args.pair_by,
                         n_resamples=args.bootstrap, seed=args.stats_seed)
    print(format_comparisons(found, metrics))
    if not args.no_plots:
        target = args.plots_to if args.plots_to else plot_stem(args.files[0])
        baseline = spec_baseline if spec and not args.baseline else args.baseline
        for path in write_plots(rows, target.with_name(target.name + ".jsonl"), baseline=baseline, prompt_key=prompt_key):
            print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
