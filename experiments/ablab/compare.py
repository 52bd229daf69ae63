"""Arms against a baseline, with intervals and tests, from per-run rows.

A *row* is one generation as a dict: the arm's name, the prompt, the seed and numeric fields
(ablab's JSON Lines, ``results.run_rows``; the HumanEval scripts' rows have the same shape with
``task_id`` for the prompt). A :class:`Metric` says how an arm's figure pools over its rows
(sum of a numerator over sum of a denominator, or a mean) and how two arms compare (difference or
ratio). :func:`compare_arms` pairs each arm's rows with the baseline's on the same (prompt, seed),
and gives, for every metric both arms have:

* a paired bootstrap interval over prompts (stats.paired_bootstrap) at ``confidence`` (marginal),
  and a family-wise one: Bonferroni, each of the m comparisons of one metric at 1 - (1 - confidence)/m;
* for pass/fail metrics, McNemar's exact test on the pairs, and the p-values of the m comparisons
  of that metric adjusted by Holm's step-down procedure (or Bonferroni, ``correction``).

``pair_by="prompt"`` pairs whole prompts instead (each arm's rows of a prompt pooled, whatever
their seeds): for arms that ran different seeds, e.g. one seed of an expensive arm against four of
sampling. McNemar needs one outcome per arm and pair, so it is left out where a prompt has several.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .stats import McNemarResult, bonferroni, holm, mcnemar, paired_bootstrap


@dataclass(frozen=True)
class Metric:
    """``num`` and ``den`` name row fields; an arm's figure is sum(num) / sum(den), or the mean of
    ``num`` when ``den`` is None. ``effect``: "diff" (arm - baseline) or "ratio" (arm / baseline).
    ``binary``: ``num`` is a pass/fail outcome (McNemar applies)."""

    name: str
    num: str
    den: Optional[str] = None
    effect: str = "diff"
    binary: bool = False
    fmt: str = "{:.3f}"


# What ablab's rows support (results.run_rows); a metric is compared only when both arms' rows have it.
AB_METRICS = [
    Metric("pass@1", "passed", binary=True),
    Metric("tok/s", "tokens", "seconds", "ratio", fmt="{:.2f}"),
    Metric("tok/call", "tokens", "target_calls", "ratio", fmt="{:.2f}"),
    Metric("tok/step", "tokens", "steps", "ratio", fmt="{:.2f}"),
    Metric("tokens", "tokens", None, "diff", fmt="{:.1f}"),
    Metric("logp", "logprob_sum", "logprob_count", "diff"),
    Metric("accept", "accepted", "proposed", "diff", fmt="{:.2f}"),
]

# The HumanEval scripts' rows (humaneval_ab.py, smc_vs_best_of_n.py).
HUMANEVAL_METRICS = [
    Metric("pass@1", "passed", binary=True),
    Metric("tokens", "tokens", None, "diff", fmt="{:.1f}"),
    Metric("forwards", "forwards", None, "ratio", fmt="{:.1f}"),
    Metric("calls", "target_calls", None, "ratio", fmt="{:.1f}"),
    Metric("s/run", "seconds", None, "ratio", fmt="{:.2f}"),
    Metric("wall s", "wall_s", None, "ratio", fmt="{:.2f}"),
    Metric("logp", "mean_logprob", None, "diff"),
]


@dataclass
class Comparison:
    arm: str
    baseline: str
    metric: str
    effect: str
    baseline_value: float
    arm_value: float
    estimate: float
    low: float
    high: float
    fw_low: float
    fw_high: float
    confidence: float
    family_size: int
    n_pairs: int
    n_prompts: int
    pair_by: str
    n_resamples: int
    seed: int
    mcnemar: Optional[McNemarResult] = None
    p_adjusted: Optional[float] = None
    correction: str = "holm"

    @property
    def null(self) -> float:
        """The no-effect value: 0 for a difference, 1 for a ratio."""
        return 0.0 if self.effect == "diff" else 1.0

    @property
    def p_value(self) -> Optional[float]:
        return self.mcnemar.p_value if self.mcnemar else None

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["mcnemar"] = self.mcnemar.to_dict() if self.mcnemar else None
        d["p_value"] = self.p_value
        return d


def _number(row: Dict[str, Any], field: str) -> Optional[float]:
    value = row.get(field)
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _values(rows: Sequence[Dict[str, Any]], metric: Metric) -> Optional[List[Tuple[float, float]]]:
    """(numerator, denominator) per row, or None when a row lacks either field."""
    out = []
    for r in rows:
        num = _number(r, metric.num)
        den = 1.0 if metric.den is None else _number(r, metric.den)
        if num is None or den is None:
            return None
        out.append((num, den))
    return out


def pooled(rows: Sequence[Dict[str, Any]], metric: Metric) -> Optional[float]:
    """An arm's figure for ``metric``: sum(num) / sum(den) over its rows (None when a row lacks a
    field or the denominator sums to 0)."""
    values = _values(rows, metric)
    if not values:
        return None
    den = sum(d for _, d in values)
    return sum(n for n, _ in values) / den if den > 0 else None


def arm_names(rows: Sequence[Dict[str, Any]]) -> List[str]:
    """Arm names in order of first appearance."""
    return list(dict.fromkeys(r["arm"] for r in rows))


def _pairs(base: Sequence[Dict[str, Any]], mine: Sequence[Dict[str, Any]], prompt_key: str, seed_key: str,
           pair_by: str) -> List[Tuple[Any, List[Dict[str, Any]], List[Dict[str, Any]]]]:
    """(prompt, baseline rows, arm rows) per pair, on the keys both arms have, in the baseline's order."""
    def key(r):
        return (r[prompt_key], r[seed_key]) if pair_by == "seed" else (r[prompt_key],)
    def group(rows):
        g: Dict[tuple, List[Dict[str, Any]]] = {}
        for r in rows:
            g.setdefault(key(r), []).append(r)
        return g
    gb, gm = group(base), group(mine)
    if pair_by == "seed":
        dup = next((k for k, v in list(gb.items()) + list(gm.items()) if len(v) > 1), None)
        if dup is not None:
            raise ValueError(f"compare: more than one row for (prompt, seed) {dup} of one arm; "
                             "pass pair_by='prompt' or remove the duplicates")
    return [(k[0], gb[k], gm[k]) for k in gb if k in gm]


def compare_arms(rows: Sequence[Dict[str, Any]], baseline: Optional[str] = None, metrics: Sequence[Metric] = AB_METRICS,
                 *, arms: Optional[Sequence[str]] = None, pairs: Optional[Sequence[Tuple[str, str]]] = None,
                 prompt_key: str = "prompt_id", seed_key: str = "seed", pair_by: str = "seed",
                 confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0, method: str = "percentile",
                 correction: str = "holm") -> List[Comparison]:
    """Every arm (``arms``, default all but the baseline, in row order) against ``baseline``
    (default the first arm), or the explicit ``pairs`` of (arm, baseline). Comparisons come out
    grouped by metric, in ``metrics`` order; a metric is skipped for a pair when either arm's rows
    lack its fields or its denominator sums to 0. The family of a metric is its comparisons here."""
    if pair_by not in ("seed", "prompt"):
        raise ValueError(f"compare: pair_by must be 'seed' or 'prompt', got {pair_by!r}")
    if correction not in ("holm", "bonferroni"):
        raise ValueError(f"compare: correction must be 'holm' or 'bonferroni', got {correction!r}")
    names = arm_names(rows)
    if pairs is None:
        base = baseline if baseline is not None else (names[0] if names else None)
        if base is None:
            return []
        if base not in names:
            raise ValueError(f"compare: baseline arm {base!r} is not in the rows (arms: {names})")
        pairs = [(a, base) for a in (arms if arms is not None else names) if a != base]
    for a, b in pairs:
        for name in (a, b):
            if name not in names:
                raise ValueError(f"compare: arm {name!r} is not in the rows (arms: {names})")
    by_arm: Dict[str, List[Dict[str, Any]]] = {}
    for r in rows:
        by_arm.setdefault(r["arm"], []).append(r)

    out: List[Comparison] = []
    for metric in metrics:
        found = []
        for arm, base in pairs:
            matched = _pairs(by_arm[base], by_arm[arm], prompt_key, seed_key, pair_by)
            if not matched:
                continue
            base_rows = [r for _, b, _ in matched for r in b]
            arm_rows = [r for _, _, m in matched for r in m]
            base_value, arm_value = pooled(base_rows, metric), pooled(arm_rows, metric)
            if base_value is None or arm_value is None:
                continue
            if metric.effect == "ratio" and base_value == 0:
                continue
            found.append((arm, base, matched, base_value, arm_value))
        m = len(found)
        fw_confidence = 1.0 - (1.0 - confidence) / max(m, 1)
        family = []
        for arm, base, matched, base_value, arm_value in found:
            a, a_den, b, b_den, clusters = [], [], [], [], []
            for prompt, base_rows, arm_rows in matched:
                bv, mv = _values(base_rows, metric), _values(arm_rows, metric)
                a.append(sum(n for n, _ in bv)); a_den.append(sum(d for _, d in bv))
                b.append(sum(n for n, _ in mv)); b_den.append(sum(d for _, d in mv))
                clusters.append(prompt)
            common = dict(a_den=a_den, b_den=b_den, clusters=clusters, effect=metric.effect, n_resamples=n_resamples,
                          seed=seed, method=method)
            ci = paired_bootstrap(a, b, confidence=confidence, **common)
            fw = paired_bootstrap(a, b, confidence=fw_confidence, **common) if m > 1 else ci
            test = None
            if metric.binary and all(len(bases) == 1 and len(mine) == 1 for _, bases, mine in matched):
                test = mcnemar([bool(x) for x in a], [bool(x) for x in b])  # one outcome per arm and pair
            family.append(Comparison(
                arm=arm, baseline=base, metric=metric.name, effect=metric.effect, baseline_value=base_value,
                arm_value=arm_value, estimate=ci.estimate, low=ci.low, high=ci.high, fw_low=fw.low, fw_high=fw.high,
                confidence=confidence, family_size=m, n_pairs=len(matched), n_prompts=ci.n_clusters,
                pair_by=pair_by, n_resamples=n_resamples, seed=seed, mcnemar=test, correction=correction))
        tested = [c for c in family if c.mcnemar is not None]
        if tested:
            adjust = holm if correction == "holm" else bonferroni
            for c, p in zip(tested, adjust([c.mcnemar.p_value for c in tested])):
                c.p_adjusted = float(p)
        out += family
    return out


def _num(value: Optional[float], fmt: str = "{:.3f}") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def _p(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def format_comparisons(comparisons: Sequence[Comparison], metrics: Sequence[Metric] = AB_METRICS) -> str:
    """A fixed-width table, one line per (arm, metric), and lines that say how it was computed."""
    if not comparisons:
        return "no comparisons (one arm, or no (prompt, seed) pairs in common with the baseline)"
    fmts = {m.name: m.fmt for m in metrics}
    conf = comparisons[0].confidence
    rows = [["arm", "vs", "metric", "base", "arm", "effect", f"{conf:.0%} CI", "family-wise CI", "pairs",
             "only base/arm", "p", "p adj"]]
    for c in comparisons:
        fmt = fmts.get(c.metric, "{:.3f}")
        sign = "x" if c.effect == "ratio" else ""
        effect_fmt = "{:.2f}" if c.effect == "ratio" else fmt.replace("{:", "{:+", 1)
        interval = f"[{_num(c.low, effect_fmt)}, {_num(c.high, effect_fmt)}]"
        fw = f"[{_num(c.fw_low, effect_fmt)}, {_num(c.fw_high, effect_fmt)}]" if c.family_size > 1 else "(one test)"
        discordant = f"{c.mcnemar.first_only}/{c.mcnemar.second_only}" if c.mcnemar else "-"
        rows.append([c.arm, c.baseline, c.metric, _num(c.baseline_value, fmt), _num(c.arm_value, fmt),
                     _num(c.estimate, effect_fmt) + sign, interval, fw, str(c.n_pairs), discordant, _p(c.p_value),
                     _p(c.p_adjusted)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    left = {0, 1, 2}
    lines = ["  ".join(cell.ljust(w) if i in left else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    first = comparisons[0]
    unit = "(prompt, seed) pairs" if first.pair_by == "seed" else "prompts (each arm pooled over its seeds)"
    families = {}
    for c in comparisons:
        families[c.metric] = c.family_size
    sizes = sorted(set(families.values()))
    lines.append(f"effect: arm - base (ratio metrics: arm / base, marked x); pairs: {unit} both arms ran")
    lines.append(f"CI: paired bootstrap over prompts ({first.n_resamples} resamples, seed {first.seed}), "
                 f"{conf:.0%} per comparison; family-wise: Bonferroni over the m comparisons of a metric "
                 f"(m = {', '.join(map(str, sizes))}), each at 1 - {1 - conf:.2g}/m")
    few = min(c.n_prompts for c in comparisons)
    if few < 10:
        lines.append(f"note: {few} prompts only; a bootstrap over so few prompts gives rough intervals "
                     "(too narrow, if anything): use more prompts for a result")
    if any(c.mcnemar for c in comparisons):
        lines.append(f"p: McNemar exact (binomial on the discordant pairs, two-sided); p adj: "
                     f"{'Holm step-down' if first.correction == 'holm' else 'Bonferroni'} over the comparisons of a metric")
    return "\n".join(lines)


def comparisons_to_dicts(comparisons: Sequence[Comparison]) -> List[Dict[str, Any]]:
    return [c.to_dict() for c in comparisons]
