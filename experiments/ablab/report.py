"""The summary table as text, and results as JSON or CSV."""

from __future__ import annotations

import csv
import json
import pathlib
from typing import List, Optional, Sequence, Union

from .compare import Comparison
from .metrics import ArmSummary
from .runner import ABResult

# (header, attribute, format); None values print as "-".
COLUMNS = [
    ("arm", "arm", "{}"),
    ("decoder", "decoder", "{}"),
    ("runs", "runs", "{}"),
    ("tokens", "mean_tokens", "{:.1f}"),
    ("tok/s", "tok_s", "{:.1f}"),
    ("calls", "target_calls", "{:.1f}"),
    ("tok/call", "tok_per_call", "{:.2f}"),
    ("accept", "acceptance", "{:.2f}"),
    ("logp", "mean_logprob", "{:.3f}"),
    ("ppl", "ppl", "{:.2f}"),
    ("dist-1", "distinct_1", "{:.2f}"),
    ("dist-2", "distinct_2", "{:.2f}"),
    ("=base", "match", "{:.2f}"),
]


def _cell(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def format_table(summaries: Sequence[ArmSummary], *, baseline: Optional[str] = None) -> str:
    """A fixed-width table, one row per arm; ``=base`` compares with ``baseline`` (default the first arm)."""
    rows = [[h for h, _, _ in COLUMNS]]
    rows += [[_cell(getattr(s, attr), fmt) for _, attr, fmt in COLUMNS] for s in summaries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    left = {0, 1}  # names left-aligned, numbers right-aligned
    lines = ["  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if summaries:
        base = baseline or summaries[0].arm
        lines.append(f"=base: share of (prompt, seed) pairs with the same tokens as '{base}'")
    return "\n".join(lines)


def write_json(path: Union[str, pathlib.Path], result: ABResult, summaries: Sequence[ArmSummary],
               comparisons: Sequence[Comparison] = ()) -> None:
    """Everything: configuration, arms, skipped arms, summaries and every run (tokens, text, logprobs,
    stats), and the comparisons with the baseline when given (compare.compare_arms)."""
    doc = result.to_dict()
    doc["summary"] = [s.to_dict() for s in summaries]
    if comparisons:
        doc["comparisons"] = [c.to_dict() for c in comparisons]
    pathlib.Path(path).write_text(json.dumps(doc, indent=1) + "\n")


def read_json(path: Union[str, pathlib.Path]) -> dict:
    return json.loads(pathlib.Path(path).read_text())


def write_csv(path: Union[str, pathlib.Path], summaries: Sequence[ArmSummary]) -> None:
    """One row per arm with every summary field (stop reasons as reason=count;...)."""
    fields: List[str] = list(ArmSummary.__dataclass_fields__)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for s in summaries:
            row = s.to_dict()
            row["stop_reasons"] = ";".join(f"{k}={v}" for k, v in sorted(s.stop_reasons.items()))
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})
