"""Command line of the A/B runner: ``python experiments/ab.py --help``.

Either drives a running daemon (``--endpoint``) or starts its own on an ephemeral ipc endpoint
with the models of ``--load`` and stops it (SIGTERM) when done, also on an error or a signal.
"""

from __future__ import annotations

import argparse
import pathlib
import signal
import sys
from typing import Callable, Dict, List, Optional, Sequence

from .arms import Arm, load_arms, parse_arm
from .compare import AB_METRICS, compare_arms, format_comparisons
from .daemon import Daemon
from .metrics import summarize
from .plots import write_plots
from .progress import Progress
from .prompts import TEMPLATES, load_prompts
from .report import format_table, write_csv, write_json
from .results import run_rows, write_jsonl
from .runner import ABResult, run_ab

HERE = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_PROMPTS = HERE / "prompts" / "default.jsonl"


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arm", action="append", default=[], metavar="SPEC",
                   help="NAME=DECODER[:k=v,...][@role=model,...], repeatable (after --arms' arms)")
    p.add_argument("--arms", type=pathlib.Path, help="JSON file: a list of arms")
    p.add_argument("--prompts", type=pathlib.Path, default=DEFAULT_PROMPTS, help="JSON Lines prompt set (default %(default)s)")
    p.add_argument("--category", action="append", help="only prompts of this category (repeatable)")
    p.add_argument("--per-category", type=int, help="the first N prompts of each category")
    p.add_argument("--limit", type=int, help="at most N prompts")
    p.add_argument("--seeds", default="1,2", help="comma-separated seeds shared by every arm (default %(default)s)")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--batch-seeds", action="store_true",
                   help="send each (prompt, arm)'s seeds in one request, run side by side by the daemon: the same "
                        "tokens, faster; timings are then not comparable with unbatched runs")
    p.add_argument("--template", default="none", help=f"{sorted(TEMPLATES)} or a format string with {{prompt}}")
    p.add_argument("--target", default="t", help="loaded model name of the target role (default %(default)s)")
    p.add_argument("--draft", help="loaded model name of the draft role, for arms that name none")
    p.add_argument("--no-stop-at-eos", action="store_true", help="generate max-tokens even past eos")
    p.add_argument("--baseline", help="arm the =base column compares with (default the first)")
    p.add_argument("--json", type=pathlib.Path, help="write config, summary and every run here")
    p.add_argument("--csv", type=pathlib.Path, help="write the summary table here")
    p.add_argument("--jsonl", type=pathlib.Path,
                   help="write one row per (arm, prompt, seed) here (JSON Lines, for pandas), and PNG plots beside it")
    p.add_argument("--no-plots", action="store_true", help="no PNG plots beside --jsonl")
    p.add_argument("--no-stats", action="store_true", help="no comparison table (intervals and tests against the baseline)")
    p.add_argument("--bootstrap", type=int, default=10000, metavar="N",
                   help="bootstrap resamples of the comparison intervals (default %(default)s)")
    p.add_argument("--stats-seed", type=int, default=0, help="seed of the bootstrap's random generator (default %(default)s)")
    p.add_argument("--show-text", type=int, default=0, metavar="N",
                   help="print the first N characters of each arm's output on the first prompt and seed")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (on a terminal: tqdm's bar, or a line when tqdm is missing; otherwise a line "
                        "with the ETA every 30 s)")


def parse_seeds(text: str) -> List[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"--seeds: expected integers like 1,2,3, got {text!r}") from None
    if not seeds:
        raise SystemExit("--seeds: none given")
    return seeds


def arms_from_args(args: argparse.Namespace, default_arms: Optional[Sequence[Arm]] = None) -> List[Arm]:
    arms: List[Arm] = load_arms(args.arms) if args.arms else []
    arms += [parse_arm(a) for a in args.arm]
    if not arms:
        arms = list(default_arms or [])
    if not arms:
        raise SystemExit("no arms: give --arms FILE or --arm SPEC")
    return load_arms([a.to_dict() for a in arms])  # checks that names are unique


class _ProgressCallback:
    """run_ab's progress callback: a Progress bar created at the first generation (when the total is known)."""

    def __init__(self):
        self.bar: Optional[Progress] = None

    def __call__(self, done: int, total: int, run) -> None:
        if self.bar is None:
            tty = sys.stderr.isatty()
            self.bar = Progress(total, "generations", use_tqdm=None if tty else False, every=30.0)
        self.bar.update(done - self.bar.done, status=f"{run.arm} {run.prompt_id} seed {run.seed}")
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_and_report(endpoint: str, arms: Sequence[Arm], args: argparse.Namespace, *, title: str = "",
                   prompts=None, template: Optional[str] = None, runner: Optional[Callable[..., ABResult]] = None
                   ) -> ABResult:
    """Runs the comparison described by ``args`` against ``endpoint`` and prints its table.
    ``runner(arms, prompts, seeds, **options)``, when given, runs it instead (the Ray runner)."""
    if prompts is None:
        prompts = load_prompts(args.prompts, categories=args.category, per_category=args.per_category, limit=args.limit)
    roles: Dict[str, str] = {"target": args.target}
    if args.draft:
        roles["draft"] = args.draft
    progress = None if args.quiet else _ProgressCallback()
    try:
        options = dict(max_tokens=args.max_tokens, template=template if template is not None else args.template,
                       stop_at_eos=not args.no_stop_at_eos, progress=progress)
        if runner is not None:
            result = runner(arms, prompts, parse_seeds(args.seeds), roles=roles, **options)
        else:
            result = run_ab(endpoint, arms, prompts, parse_seeds(args.seeds), models=roles,
                            batch_seeds=args.batch_seeds, **options)
    finally:
        if progress is not None:
            progress.close()
    summaries = summarize(result, baseline=args.baseline)
    comparisons = []
    if not getattr(args, "no_stats", False):
        comparisons = compare_arms(run_rows(result), baseline=args.baseline, metrics=AB_METRICS,
                                   n_resamples=getattr(args, "bootstrap", 10000), seed=getattr(args, "stats_seed", 0))
    if title:
        print(title)
    print(f"{len(result.config['prompts'])} prompts x {len(result.config['seeds'])} seeds "
          f"(seeds {','.join(map(str, result.config['seeds']))}), max {args.max_tokens} tokens")
    print(format_table(summaries, baseline=args.baseline))
    for s in result.skipped:
        print(f"skipped optional arm '{s.arm}': {s.reason}")
    if comparisons:
        print(f"against '{comparisons[0].baseline}':")
        print(format_comparisons(comparisons, AB_METRICS))
    if args.show_text and result.runs:
        first = (result.runs[0].prompt_id, result.runs[0].seed)
        print(f"outputs on prompt '{first[0]}', seed {first[1]}:")
        for r in result.runs:
            if (r.prompt_id, r.seed) == first:
                text = r.text.replace("\n", "\\n")
                print(f"  {r.arm:<14} {text[:args.show_text]}")
    if args.json:
        write_json(args.json, result, summaries, comparisons=comparisons)
    if args.csv:
        write_csv(args.csv, summaries)
    if getattr(args, "jsonl", None):
        write_jsonl(args.jsonl, result)
        if not args.no_plots:
            written = write_plots(run_rows(result), args.jsonl, baseline=args.baseline)
            for path in written:
                print(f"plot: {path}")
    return result


def raise_on_sigterm() -> None:
    """SIGTERM becomes SystemExit, so ``with Daemon(...)`` blocks stop their daemon on the way out."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="ab.py", description="A/B comparison of decodelab decoders through decodelabd.")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--endpoint", help="a running daemon, e.g. ipc:///tmp/decodelabd.sock")
    where.add_argument("--load", action="append", metavar="NAME=SPEC",
                       help="start a private daemon with these models (repeatable), e.g. t='table(vocab=32)'")
    p.add_argument("--build-dir", type=pathlib.Path, help="where bin/decodelabd is (default $DECODELAB_BUILD_DIR or build/)")
    p.add_argument("--workers", type=int, default=1,
                   help="generation slots of each daemon started here (its --workers; default %(default)s)")
    ray_group = p.add_argument_group("several daemons with Ray (docs/experiments-ray.md)")
    ray_group.add_argument("--daemons", type=int, metavar="N",
                           help="start N daemons with --load's models, one per Ray actor, and spread the generations "
                                "over them (a local Ray unless --address)")
    ray_group.add_argument("--address", help="join this Ray cluster (e.g. auto, ray://head:10001); implies --daemons")
    ray_group.add_argument("--cpus-per-daemon", type=float, default=1.0,
                           help="CPUs Ray reserves for each daemon (default %(default)s)")
    ray_group.add_argument("--gpus-per-daemon", type=float, default=0.0,
                           help="GPUs Ray reserves for each daemon (1: one daemon per GPU; default %(default)s)")
    add_run_arguments(p)
    args = p.parse_args(argv)
    arms = arms_from_args(args)
    if args.workers < 1:
        raise SystemExit(f"--workers must be at least 1, got {args.workers}")
    if (args.daemons is not None or args.address) and args.endpoint:
        raise SystemExit("--daemons/--address start their own daemons: give --load, not --endpoint")
    if args.daemons is not None and args.daemons < 1:
        raise SystemExit(f"--daemons must be at least 1, got {args.daemons}")
    if (args.daemons is not None or args.address) and args.batch_seeds:
        raise SystemExit("--batch-seeds is not supported with --daemons (each generation is its own Ray call)")
    if args.endpoint:
        run_and_report(args.endpoint, arms, args)
        return 0
    models = {}
    for item in args.load:
        name, eq, spec = item.partition("=")
        if not eq or not name or not spec:
            raise SystemExit(f"--load expects NAME=SPEC, got {item!r}")
        models[name] = spec
    raise_on_sigterm()
    binary = args.build_dir / "bin" / "decodelabd" if args.build_dir else None
    if args.daemons is not None or args.address:
        from .distributed import run_ab_ray
        try:
            import ray  # noqa: F401
        except ImportError:
            raise SystemExit("--daemons/--address need Ray: .venv/bin/pip install -r scripts/python-requirements-ray.txt")

        def runner(arms, prompts, seeds, roles, **options):
            return run_ab_ray(models, arms, prompts, seeds, daemons=args.daemons or 2, workers=args.workers,
                              address=args.address, cpus_per_daemon=args.cpus_per_daemon,
                              gpus_per_daemon=args.gpus_per_daemon, binary=str(binary) if binary else None,
                              roles=roles, **options)
        run_and_report("", arms, args, runner=runner)
        return 0
    with Daemon(models, binary=binary, workers=args.workers) as d:
        run_and_report(d.endpoint, arms, args)
    return 0
