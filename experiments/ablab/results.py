"""Per-run results as JSON Lines: one row per (arm, prompt, seed), flat enough for pandas.

    rows = run_rows(result)                 # list of dicts
    write_jsonl("ab.jsonl", result)         # pandas.read_json("ab.jsonl", lines=True) reads it
    result = read_jsonl("ab.jsonl")         # an ABResult again: summarize() and the table work on it

Every row has the same keys. The scalar columns are what the summaries and comparisons pool
(compare.AB_METRICS); the generation itself (``token_ids``, ``logprobs``, ``text``) and the
daemon's ``stats`` and ``timings`` ride along, so a JSONL file holds everything ``--json`` holds
per run and :func:`read_jsonl` can rebuild the runs. ``config_hash`` (arms.config_hash) identifies
the arm's configuration: decoder, parameters, model specs and the run's settings.

The loaders at the end read the other result files of experiments/ into the same row shape:
:func:`read_rows` (JSON Lines, gzipped or not) and :func:`spec_record_rows` (``decodelab bench
spec`` records).
"""

from __future__ import annotations

import gzip
import json
import pathlib
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from .arms import Arm, arm_temperature, config_hash
from .runner import ABResult, Run

PathLike = Union[str, pathlib.Path]

# Columns of run_rows, in order (a row has exactly these keys).
COLUMNS = [
    "arm", "decoder", "temperature", "config_hash", "prompt_id", "category", "seed", "max_tokens",
    "tokens", "prompt_tokens", "stop_reason", "seconds", "prefill_seconds", "target_calls", "steps", "target_nodes",
    "proposed", "accepted", "tokens_per_step", "nodes_per_step", "logprob_sum", "logprob_count", "mean_logprob",
    "passed", "params", "models", "text", "token_ids", "logprobs", "stats", "timings",
]


def _ratio(num: float, den: float) -> Optional[float]:
    return num / den if den else None


def run_row(run: Run, arm: Arm, config: Dict[str, Any]) -> Dict[str, Any]:
    """One flat row for ``run`` (of ``arm``, in a run with ``config``: ABResult.config)."""
    stats = run.stats or {}
    seconds = stats.get("seconds", {}) or {}
    steps = int(stats.get("steps", 0))
    proposed = int(stats.get("tokens_proposed", 0))
    hashes = config.get("config_hashes") or {}
    row = {
        "arm": run.arm, "decoder": arm.decoder, "temperature": arm_temperature(arm),
        "config_hash": hashes.get(arm.name) or config_hash(arm, config),
        "prompt_id": run.prompt_id, "category": run.category, "seed": run.seed, "max_tokens": config.get("max_tokens"),
        "tokens": len(run.tokens), "prompt_tokens": run.prompt_tokens, "stop_reason": run.stop_reason,
        "seconds": float(seconds.get("total", 0.0)), "prefill_seconds": float(seconds.get("prefill", 0.0)),
        "target_calls": int(stats.get("target_calls", 0)), "steps": steps,
        "target_nodes": int(stats.get("target_nodes", 0)), "proposed": proposed,
        "accepted": int(stats.get("tokens_accepted", 0)),
        "tokens_per_step": _ratio(len(run.tokens), steps), "nodes_per_step": _ratio(proposed, steps),
        "logprob_sum": float(sum(run.logprobs)), "logprob_count": len(run.logprobs),
        "mean_logprob": _ratio(sum(run.logprobs), len(run.logprobs)),
        "passed": run.passed, "params": dict(arm.params), "models": dict(arm.models),
        "text": run.text, "token_ids": list(run.tokens), "logprobs": list(run.logprobs),
        "stats": stats, "timings": dict(run.timings or {}),
    }
    return {k: row[k] for k in COLUMNS}


def run_rows(result: ABResult) -> List[Dict[str, Any]]:
    """Rows of every run, in run order (prompt, seed, then arm)."""
    arms = {a.name: a for a in result.arms}
    return [run_row(r, arms[r.arm], result.config) for r in result.runs]


def write_jsonl(path: PathLike, result: ABResult) -> pathlib.Path:
    """Writes ``run_rows(result)``, one JSON object a line; returns the path."""
    path = pathlib.Path(path)
    with open(path, "w") as f:
        for row in run_rows(result):
            f.write(json.dumps(row) + "\n")
    return path


def read_rows(path: PathLike) -> List[Dict[str, Any]]:
    """The rows of a JSON Lines file (``.gz``: gzipped); blank lines skipped."""
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        rows = []
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{number}: not JSON ({e})") from None
        return rows


def read_jsonl(path: PathLike) -> ABResult:
    """An :class:`ABResult` from a file of :func:`write_jsonl`: arms in order of first appearance,
    runs as written. The configuration is what the rows carry (max tokens, seeds, prompts)."""
    rows = read_rows(path)
    missing = [c for c in ("arm", "decoder", "prompt_id", "seed", "token_ids") if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: not an ablab JSON Lines file (no column {missing[0]!r})")
    arms: Dict[str, Arm] = {}
    runs = []
    for r in rows:
        if r["arm"] not in arms:
            arms[r["arm"]] = Arm(r["arm"], r["decoder"], dict(r.get("params") or {}), dict(r.get("models") or {}))
        runs.append(Run(arm=r["arm"], prompt_id=r["prompt_id"], category=r.get("category", ""), seed=int(r["seed"]),
                        tokens=list(r["token_ids"]), text=r.get("text", ""), logprobs=list(r.get("logprobs") or []),
                        stop_reason=r.get("stop_reason", ""), prompt_tokens=int(r.get("prompt_tokens", 0)),
                        stats=dict(r.get("stats") or {}), timings=dict(r.get("timings") or {}), passed=r.get("passed")))
    config = {"max_tokens": rows[0].get("max_tokens") if rows else None,
              "seeds": sorted({int(r["seed"]) for r in rows}),
              "prompts": list(dict.fromkeys(r["prompt_id"] for r in rows)),
              "config_hashes": {r["arm"]: r.get("config_hash") for r in rows}, "source": str(path)}
    return ABResult(arms=list(arms.values()), runs=runs, skipped=[], config=config)


def spec_record_rows(records: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """``decodelab bench spec`` records (``"type": "spec_run"``) as rows: the decoder (with its
    settings, e.g. ``sd(L=4)``) is the arm, and each temperature is its own run of arms, so the arm
    name carries it (``sd(L=4)@0.6``); ``nodes_per_step`` is the draft tokens offered to
    verification per step, as the bench's report computes it. Other record types are skipped."""
    rows = []
    for r in records:
        if r.get("type") != "spec_run":
            continue
        steps = int(r.get("steps", 0))
        temperature = float(r.get("temperature", 0.0))
        rows.append({
            "arm": f"{r['decoder']}@{temperature:g}", "decoder": r["decoder"], "temperature": temperature,
            "prompt_id": r.get("prompt_id", str(r.get("prompt_index"))), "seed": int(r.get("seed", 0)),
            "tokens": int(r["tokens"]), "seconds": float(r["seconds"]),
            "prefill_seconds": float(r.get("prefill_seconds", 0.0)), "target_calls": int(r.get("target_calls", 0)),
            "steps": steps, "proposed": int(r.get("proposed", 0)), "accepted": int(r.get("accepted", 0)),
            "tokens_per_step": _ratio(int(r["tokens"]), steps), "nodes_per_step": _ratio(int(r.get("proposed", 0)), steps),
        })
    return rows


def spec_baseline(temperature: float) -> str:
    """The arm ``decodelab bench spec`` measures speedups against: autoregressive ``sample`` at the
    same temperature (at T = 0 that is greedy decoding; the bench's table prints it as greedy)."""
    return f"sample@{temperature:g}"


def read_any_rows(paths: Sequence[PathLike]) -> List[Dict[str, Any]]:
    """Rows of several files, concatenated; ``bench spec`` records are converted (spec_record_rows)."""
    rows: List[Dict[str, Any]] = []
    for p in paths:
        part = read_rows(p)
        if part and part[0].get("type") == "spec_run":
            part = spec_record_rows(part)
        rows += part
    return rows
