"""Per-arm metrics over an :class:`ABResult`.

Rates are pooled (sums over the arm's runs, then one ratio), so long and short generations weigh
by their tokens, as a throughput figure should:

* ``tok_s``: generated tokens per second of decoder time (stats.seconds.total: prefill included);
  ``decode_tok_s`` leaves prefill out. Wall-clock figures: they move with the machine's load.
* ``target_calls``: target forward passes per run (the prefill is one); ``tok_per_call`` =
  tokens / target calls: 1 for autoregressive decoding, more when speculation is accepted.
* ``acceptance``: accepted / proposed draft tokens; None for arms that propose none.
* ``mean_logprob``: the mean over generated tokens of log p_target(token | prefix) under the
  target's raw (untempered, untruncated) distribution; ``ppl`` = exp(-mean_logprob).
* ``distinct_1``, ``distinct_2``: distinct token n-grams / all token n-grams, pooled over the
  arm's generations (Li et al. 2016's distinct-n, on token ids so it needs no tokenizer).
* ``match``: the fraction of (prompt, seed) pairs whose tokens equal the baseline arm's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence

from .runner import ABResult, Run


@dataclass
class ArmSummary:
    arm: str
    decoder: str
    runs: int
    tokens: int
    mean_tokens: float
    seconds: float
    tok_s: float
    decode_tok_s: float
    target_calls: float
    tok_per_call: float
    acceptance: Optional[float]
    mean_logprob: Optional[float]
    ppl: Optional[float]
    distinct_1: Optional[float]
    distinct_2: Optional[float]
    match: Optional[float]
    stop_reasons: Dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def distinct_n(sequences: Iterable[Sequence[int]], n: int) -> Optional[float]:
    """Distinct n-grams / total n-grams over all ``sequences`` (None when there are none)."""
    seen = set()
    total = 0
    for seq in sequences:
        for i in range(len(seq) - n + 1):
            seen.add(tuple(seq[i:i + n]))
            total += 1
    return len(seen) / total if total else None


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def summarize_runs(arm: str, decoder: str, runs: List[Run], baseline: Optional[Dict[tuple, List[int]]] = None) -> ArmSummary:
    tokens = sum(len(r.tokens) for r in runs)
    seconds = sum(float(r.stats.get("seconds", {}).get("total", 0.0)) for r in runs)
    prefill = sum(float(r.stats.get("seconds", {}).get("prefill", 0.0)) for r in runs)
    calls = sum(int(r.stats.get("target_calls", 0)) for r in runs)
    proposed = sum(int(r.stats.get("tokens_proposed", 0)) for r in runs)
    accepted = sum(int(r.stats.get("tokens_accepted", 0)) for r in runs)
    logprobs = [lp for r in runs for lp in r.logprobs]
    mean_lp = sum(logprobs) / len(logprobs) if logprobs else None
    match = None
    if baseline is not None:
        pairs = [(r.prompt_id, r.seed) for r in runs if (r.prompt_id, r.seed) in baseline]
        if pairs:
            same = sum(1 for r in runs if (r.prompt_id, r.seed) in baseline and r.tokens == baseline[(r.prompt_id, r.seed)])
            match = same / len(pairs)
    reasons: Dict[str, int] = {}
    for r in runs:
        reasons[r.stop_reason] = reasons.get(r.stop_reason, 0) + 1
    return ArmSummary(
        arm=arm, decoder=decoder, runs=len(runs), tokens=tokens, mean_tokens=_ratio(tokens, len(runs)), seconds=seconds,
        tok_s=_ratio(tokens, seconds), decode_tok_s=_ratio(tokens, seconds - prefill),
        target_calls=_ratio(calls, len(runs)), tok_per_call=_ratio(tokens, calls),
        acceptance=accepted / proposed if proposed else None, mean_logprob=mean_lp,
        ppl=math.exp(-mean_lp) if mean_lp is not None else None,
        distinct_1=distinct_n((r.tokens for r in runs), 1), distinct_2=distinct_n((r.tokens for r in runs), 2),
        match=match, stop_reasons=reasons)


def summarize(result: ABResult, baseline: Optional[str] = None) -> List[ArmSummary]:
    """One summary per arm, in arm order. ``baseline`` (an arm name; default the first arm) is
    what ``match`` compares with; the baseline's own match is 1 by construction and is left None."""
    base_name = baseline if baseline is not None else (result.arms[0].name if result.arms else None)
    if base_name is not None and base_name not in {a.name for a in result.arms}:
        raise ValueError(f"baseline arm {base_name!r} is not among the arms that ran")
    base = {(r.prompt_id, r.seed): r.tokens for r in result.runs_of(base_name)} if base_name else None
    return [summarize_runs(a.name, a.decoder, result.runs_of(a.name), None if a.name == base_name else base)
            for a in result.arms]
