#!/usr/bin/env python3
"""decodelab's main job: a short A/B comparison of decoders on the default model.

Starts a private decodelabd on an ephemeral ipc endpoint with SmolLM2-135M-Instruct (Q4_1, fetched
by scripts/fetch-models), runs the arms of experiments/arms/main.json (greedy; top-p and min-p
sampling at temperature 0.7; prompt-lookup speculation, `ngram`, at temperature 0 and on the top-p
distribution) on one code, one chat and one math prompt with two shared seeds, and prints the
table. Then, unless --no-analytic, the speculative decoders that need a draft model (sd,
specinfer, spectr, dyspec) run on an analytic target/draft pair, where acceptance is exact and
cheap to measure. The daemon is stopped with SIGTERM on the way out, also on an error or a signal.

    .venv/bin/python experiments/main_job.py                   # what scripts/demo runs
    .venv/bin/python experiments/main_job.py --seeds 1,2,3 --per-category 2 --json ab.json
    .venv/bin/python experiments/main_job.py --model other.gguf --template none

Why the speculative arm on the real model is `ngram`: the only model fetched by default is
SmolLM2-135M, and a speculative decoder whose draft is the target itself (at another temperature)
measures nothing a reader wants: its acceptance is a property of the temperature gap, and every
draft token costs as much as a target token. `ngram` needs no draft model (it drafts by prompt
lookup) and is exact, so it is the meaningful speculative arm here. The analytic `draft(...)`
model only derives from an analytic target, so draft-model decoders are compared on that pair.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ablab import Arm, ArmRejected, Daemon, DaemonError, Prompt, load_arms  # noqa: E402
from ablab.cli import add_run_arguments, arms_from_args, raise_on_sigterm, run_and_report  # noqa: E402

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Draft-model decoders on an analytic pair: a 64-token random order-2 target and a draft derived
# from it (tempered 1.5, 20 % noise), so acceptance is well below 1 and differs between decoders.
ANALYTIC_TARGET = "table(vocab=64,order=2,seed=1,sharpness=2)"
ANALYTIC_DRAFT = "draft(temper=1.5,noise=0.2,seed=3)"
ANALYTIC_ARMS = [
    Arm("sample", "sample", note="autoregressive baseline: the law every exact arm below must keep"),
    Arm("sd", "sd", {"L": 4}),
    Arm("specinfer", "specinfer", {"k": 2, "L": 3}),
    Arm("spectr", "spectr", {"k": 2, "L": 3}),
    Arm("dyspec", "dyspec", {"budget": 16}),
]
ANALYTIC_PROMPTS = [Prompt(f"table-{i}", ids=ids, category="table") for i, ids in
                    enumerate([[0, 1, 2], [5, 9], [17, 3, 3, 40]])]


def default_model() -> pathlib.Path:
    return pathlib.Path(os.environ.get("DECODELAB_MODELS", pathlib.Path.home() / ".cache" / "decodelab" / "models")) / MODEL_FILE


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main_job.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None,
                   help=f"GGUF file or model spec for the target (default $DECODELAB_MODELS/{MODEL_FILE})")
    p.add_argument("--threads", default="auto",
                   help="CPU threads of the GGUF model: a number (0 = all cores) or auto (default): all cores, "
                        "or 1 when the load average already exceeds the core count")
    p.add_argument("--build-dir", type=pathlib.Path, help="where bin/decodelabd is (default $DECODELAB_BUILD_DIR or build/)")
    p.add_argument("--no-analytic", action="store_true", help="skip the analytic target/draft comparison")
    p.add_argument("--analytic-tokens", type=int, default=64, help="max tokens of the analytic comparison")
    add_run_arguments(p)  # --arms / --arm replace experiments/arms/main.json
    p.set_defaults(per_category=1, seeds="1,2", max_tokens=32, template="chatml",
                   show_text=72)
    return p


def model_threads(setting: str) -> int:
    """The GGUF runtime's OpenMP threads meet at a barrier after every matmul; on a machine that is
    already oversubscribed a descheduled thread stalls them all (measured at load 14 on 2 cores:
    16 tokens took 23.8 s with 2 threads and 4.2 s with 1), so auto falls back to one thread."""
    if setting != "auto":
        try:
            return max(0, int(setting))
        except ValueError:
            raise SystemExit(f"--threads: expected a number or auto, got {setting!r}") from None
    cores = os.cpu_count() or 1
    return 1 if os.getloadavg()[0] > cores else 0


def target_spec(args: argparse.Namespace) -> str:
    model = args.model or str(default_model())
    if "(" in model:  # already a spec, e.g. table(...) or gguf(path=...,threads=1)
        return model
    if not pathlib.Path(model).exists():
        raise SystemExit(f"main_job: model file {model} not found; run scripts/fetch-models (or pass --model)")
    return f"gguf(path={model},threads={model_threads(args.threads)})"


def main(argv=None) -> int:
    try:
        return run(parser().parse_args(argv))
    except (DaemonError, ArmRejected) as e:  # the daemon's own message is already on stderr
        print(f"main_job: {e}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    arms = arms_from_args(args, default_arms=load_arms(HERE / "arms" / "main.json"))
    spec = target_spec(args)
    binary = args.build_dir / "bin" / "decodelabd" if args.build_dir else None
    raise_on_sigterm()
    start = time.monotonic()
    models = {args.target: spec}
    if not args.no_analytic:
        models["tt"] = ANALYTIC_TARGET
    with Daemon(models, binary=binary) as d:
        print(f"decodelabd at {d.endpoint}; target {args.target} = {spec}", flush=True)
        label = pathlib.Path(args.model or default_model()).name if "(" not in (args.model or "") else spec
        run_and_report(d.endpoint, arms, args, title=f"== A/B on {label}")
        if not args.no_analytic:
            d.load("td", ANALYTIC_DRAFT, target="tt")
            analytic = argparse.Namespace(**{**vars(args), "target": "tt", "draft": "td", "max_tokens": args.analytic_tokens,
                                             "baseline": None, "json": None, "csv": None, "jsonl": None,
                                             "show_text": 0})
            print()
            run_and_report(d.endpoint, ANALYTIC_ARMS, analytic, prompts=ANALYTIC_PROMPTS, template="none",
                           title=f"== draft-model decoders on an analytic pair: target {ANALYTIC_TARGET}, "
                                 f"draft {ANALYTIC_DRAFT}\n   (exact decoders: logp should agree with sample's; "
                                 "tok/s means little here, the analytic draft costs what the target does)")
    print(f"main job: {time.monotonic() - start:.1f} s, daemon exit status {d.returncode}")
    return 0 if d.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
