"""ablab: A/B comparisons of decodelab decoders through decodelabd.

    from ablab import Arm, Daemon, load_prompts, run_ab, summarize, format_table

    with Daemon(models={"t": "table(vocab=32,order=2,seed=1,sharpness=2)"}) as d:
        result = run_ab(d.endpoint, [Arm("greedy", "greedy"), Arm("t0.7", "sample", {"temperature": 0.7})],
                        load_prompts("experiments/prompts/default.jsonl"), seeds=[1, 2], max_tokens=32)
    print(format_table(summarize(result)))

Every arm runs on every (prompt, seed) with the same seed, so arms share their random numbers
(decodelab keys every uniform by seed, purpose and position): differences between arms come from
the decoders, not from the draw. See experiments/README.md for the metrics, and stats.py /
compare.py for the intervals and tests of the comparisons with a baseline.
"""

from .arms import Arm, arm_temperature, config_hash, load_arms, parse_arm
from .compare import AB_METRICS, HUMANEVAL_METRICS, Comparison, Metric, compare_arms, format_comparisons
from .daemon import Daemon, DaemonError
from .metrics import ArmSummary, distinct_n, summarize
from .prompts import Prompt, apply_template, load_prompts
from .report import format_table, read_json, write_csv, write_json
from .results import read_jsonl, read_rows, run_rows, write_jsonl
from .runner import ABResult, ArmRejected, Run, Skipped, run_ab

__all__ = ["AB_METRICS", "ABResult", "Arm", "ArmRejected", "ArmSummary", "Comparison", "Daemon", "DaemonError",
           "HUMANEVAL_METRICS", "Metric", "Prompt", "Run", "Skipped", "apply_template", "arm_temperature",
           "compare_arms", "config_hash", "distinct_n", "format_comparisons", "format_table", "load_arms",
           "load_prompts", "parse_arm", "read_json", "read_jsonl", "read_rows", "run_ab", "run_rows", "summarize",
           "write_csv", "write_json", "write_jsonl"]
