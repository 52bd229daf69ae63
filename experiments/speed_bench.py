#!/usr/bin/env python3
"""Decoding speed per task domain and number of concurrent clients (see docs/speed-bench.md).

    .venv/bin/python experiments/speed_bench.py            # reduced: SmolLM2-135M, greedy vs prompt lookup
    .venv/bin/python experiments/speed_bench.py --full     # Qwen2.5-Coder 1.5B with the 0.5B draft, every prompt

Starts a private decodelabd (``--workers`` = the largest concurrency), runs every (domain,
concurrency, arm) level with arms interleaved at each concurrency, and prints one table per domain.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ablab import Arm, Daemon, DaemonError, parse_arm  # noqa: E402
from ablab.cli import raise_on_sigterm  # noqa: E402
from ablab.speedbench import DOMAINS, format_domain_table, load_bench_prompts, run_level  # noqa: E402
from main_job import model_threads  # noqa: E402

MODELS = pathlib.Path(os.environ.get("DECODELAB_MODELS") or pathlib.Path.home() / ".cache" / "decodelab" / "models")
SMOL = "SmolLM2-135M-Instruct.Q4_1.gguf"
QWEN_TARGET = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_DRAFT = "qwen2.5-coder-0.5b-instruct.gguf"
LONG_DOMAINS = ("summarization",)
REDUCED_ARMS = [Arm("greedy", "greedy"), Arm("ngram", "ngram", {"temperature": 0})]
FULL_ARMS = [Arm("greedy", "greedy"), Arm("ngram", "ngram", {"temperature": 0}),
             Arm("sd", "sd", {"L": 4, "temperature": 0}, models={"draft": "d"})]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speed_bench.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true",
                   help="Qwen2.5-Coder-1.5B target with the 0.5B as draft (greedy, ngram, sd), every prompt, "
                        "256 tokens, 2 rounds, summarization at every client count")
    p.add_argument("--model", help="target GGUF file or model spec (default SmolLM2-135M, or Qwen 1.5B with --full)")
    p.add_argument("--draft-model", help="draft GGUF file for arms with a draft role (default with --full: Qwen 0.5B)")
    p.add_argument("--arm", action="append", default=[], metavar="SPEC",
                   help="NAME=DECODER[:k=v,...][@role=model], repeatable; replaces the default arms (first = baseline)")
    p.add_argument("--prompts", type=pathlib.Path, default=HERE / "prompts" / "speed" / "speed_bench.jsonl")
    p.add_argument("--domain", action="append", choices=DOMAINS, help="only this domain (repeatable)")
    p.add_argument("--per-domain", type=int,
                   help="prompts per domain (default 2 and 1 for summarization, all with --full)")
    p.add_argument("--concurrency", default="1,2,4,8", help="client counts (default %(default)s)")
    p.add_argument("--rounds", type=int, help="requests per client per level (default 1, 2 with --full)")
    p.add_argument("--max-tokens", type=int, help="default 64 (256 with --full)")
    p.add_argument("--long-max-clients", type=int,
                   help="run the summarization domain (2-3k-token prompts) only at client counts up to this "
                        "(default 1; every count with --full): on 2 loaded CPU cores one such prefill takes minutes, so the "
                        "reduced run also keeps one summarization prompt")
    p.add_argument("--template", default="chatml")
    p.add_argument("--threads", default="auto", help="the model's CPU threads: a number (0 = all cores) or auto")
    p.add_argument("--build-dir", type=pathlib.Path, help="where bin/decodelabd is (default $DECODELAB_BUILD_DIR or build/)")
    p.add_argument("--json", type=pathlib.Path, help="write every level's requests here")
    return p


def model_spec(model: str, threads: str) -> str:
    if "(" in model:  # already a spec, e.g. table(...)
        return model
    if not pathlib.Path(model).exists():
        raise SystemExit(f"speed_bench: model file {model} not found; run scripts/fetch-models (all, for --full)")
    return f"gguf(path={model},threads={model_threads(threads)})"


def run(args: argparse.Namespace) -> int:
    try:
        levels_c = sorted({int(c) for c in args.concurrency.split(",") if c.strip()})
    except ValueError:
        raise SystemExit(f"--concurrency: expected integers like 1,2,4, got {args.concurrency!r}") from None
    if not levels_c or levels_c[0] < 1:
        raise SystemExit(f"--concurrency: client counts must be at least 1, got {args.concurrency!r}")
    max_tokens = args.max_tokens or (256 if args.full else 64)
    rounds = args.rounds or (2 if args.full else 1)
    per_domain = args.per_domain if args.per_domain is not None else (None if args.full else 2)
    try:
        prompts = load_bench_prompts(args.prompts, domains=args.domain, per_domain=per_domain)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    arms = [parse_arm(a) for a in args.arm] or (FULL_ARMS if args.full else REDUCED_ARMS)
    target = args.model or str(MODELS / (QWEN_TARGET if args.full else SMOL))
    draft = args.draft_model or (str(MODELS / QWEN_DRAFT) if args.full else None)
    if any("draft" in a.models for a in arms) and not draft:
        raise SystemExit("an arm uses a draft model: give --draft-model")
    binary = args.build_dir / "bin" / "decodelabd" if args.build_dir else None
    domains = [d for d in DOMAINS if any(p.domain == d for p in prompts)]
    long_max = args.long_max_clients if args.long_max_clients is not None else (None if args.full else 1)
    if not args.full and args.per_domain is None:  # the reduced run: one long prompt (minutes of prefill each)
        long_prompts = [p for p in prompts if p.domain in LONG_DOMAINS]
        prompts = [p for p in prompts if p.domain not in LONG_DOMAINS or p is long_prompts[0]]
    everything = []
    print(f"speed_bench: {len(prompts)} prompts in {len(domains)} domains, clients {levels_c}, {rounds} round(s), "
          f"max {max_tokens} tokens, arms {[a.name for a in arms]}, baseline {arms[0].name}; "
          f"{time.strftime('%Y-%m-%d %H:%M %Z')}", flush=True)
    raise_on_sigterm()  # so the daemon is stopped on the way out
    with Daemon({"t": model_spec(target, args.threads)}, binary=binary, workers=max(levels_c)) as d:
        if draft:
            d.load("d", model_spec(draft, args.threads), target="t")
        roles = {"target": "t"}
        for arm in arms:  # warms the model up and fails early on a bad arm
            run_level(d.endpoint, prompts[0].domain, arm, prompts, 1, roles=roles, max_tokens=2, template=args.template)
        for domain in domains:
            levels = []
            for c in levels_c:
                if domain in LONG_DOMAINS and long_max is not None and c > long_max and c != levels_c[0]:
                    continue
                for arm in arms:
                    levels.append(run_level(d.endpoint, domain, arm, prompts, c, roles=roles, max_tokens=max_tokens,
                                            template=args.template, rounds=rounds))
            print()
            print(format_domain_table(domain, levels, baseline=arms[0].name), flush=True)
            everything += levels
    if args.json:
        args.json.write_text(json.dumps([{"domain": lv.domain, "arm": lv.arm, "concurrency": lv.concurrency,
                                          "wall_s": lv.wall_s, "requests": [vars(r) for r in lv.requests]}
                                         for lv in everything], indent=1))
    return 0


def main(argv=None) -> int:
    try:
        return run(parser().parse_args(argv))
    except DaemonError as e:
        print(f"speed_bench: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
