"""Statistics for paired A/B comparisons of decoders (numpy and the standard library only).

Two arms that ran on the same prompts with the same seeds form *pairs*: the arms' results on one
(prompt, seed) share the prompt's difficulty and, through decodelab's seeded random numbers, part
of the draw. Paired methods use that, and they resample *prompts*, not single runs, because the
seeds of one prompt are not independent of each other (an easy prompt is easy for every seed).

* :func:`paired_bootstrap`: a confidence interval for the difference or the ratio of two arms'
  pooled figures (sum over runs of a numerator / sum of a denominator; a mean when there is no
  denominator), resampling prompts with replacement and keeping each prompt's pairs together.
  The random generator is seeded (``seed``, default 0), so a report is reproducible.
* :func:`mcnemar`: McNemar's test for paired pass/fail outcomes, from the discordant pairs.
* :func:`pass_at_k`: the unbiased pass@k estimator of Chen et al. (2021), computed as a product.
* :func:`holm` and :func:`bonferroni`: family-wise corrections of several p-values.
* :func:`wilson`: the Wilson score interval of one proportion.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import Any, Dict, Optional, Sequence

import numpy as np

# Bootstrap counts are drawn in chunks of at most this many (resample x prompt) cells, so memory
# stays bounded (about 40 MB of int64) whatever the number of prompts.
_CHUNK_CELLS = 5_000_000


@dataclass
class BootstrapInterval:
    """``estimate`` is the statistic on the data as observed; [low, high] the interval at
    ``confidence``. ``undefined`` counts resamples whose statistic was not finite (a ratio whose
    baseline summed to 0 in that resample); they are left out of the quantiles."""

    effect: str
    estimate: float
    low: float
    high: float
    confidence: float
    method: str
    n_resamples: int
    seed: int
    n_pairs: int
    n_clusters: int
    undefined: int = 0

    def excludes(self, value: float) -> bool:
        """Whether ``value`` lies outside the interval (0 for a difference, 1 for a ratio)."""
        return bool(value < self.low or value > self.high)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _pooled(sums: np.ndarray, effect: str) -> np.ndarray:
    """``sums`` rows: a's numerator, a's denominator, b's numerator, b's denominator (any trailing
    shape). Returns b's pooled figure minus (or over) a's."""
    with np.errstate(divide="ignore", invalid="ignore"):
        first = sums[0] / sums[1]
        second = sums[2] / sums[3]
        return second - first if effect == "diff" else second / first


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, a_den: Optional[Sequence[float]] = None,
                     b_den: Optional[Sequence[float]] = None, clusters: Optional[Sequence[Any]] = None,
                     effect: str = "diff", confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0,
                     method: str = "percentile") -> BootstrapInterval:
    """Interval for ``b``'s pooled figure minus ``a``'s (``effect="diff"``) or over it (``"ratio"``).

    ``a[i]`` and ``b[i]`` are one pair (the two arms on the same prompt and seed). Each arm's figure
    is ``sum(a) / sum(a_den)`` (the mean of ``a`` when ``a_den`` is None), so a rate such as tokens
    per second pools as the arms' own summaries do. ``clusters[i]`` names the prompt of pair ``i``:
    a resample draws as many prompts as there are, with replacement, and takes all their pairs
    (the default, no clusters, makes each pair its own cluster). ``method``: ``"percentile"`` (the
    quantiles of the resampled statistic) or ``"bca"`` (Efron's bias-corrected and accelerated
    interval, with the acceleration from a leave-one-cluster-out jackknife). With fewer than two
    clusters there is nothing to resample, and the bounds are NaN.
    """
    if effect not in ("diff", "ratio"):
        raise ValueError(f"paired_bootstrap: effect must be 'diff' or 'ratio', got {effect!r}")
    if method not in ("percentile", "bca"):
        raise ValueError(f"paired_bootstrap: method must be 'percentile' or 'bca', got {method!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"paired_bootstrap: confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"paired_bootstrap: n_resamples must be positive, got {n_resamples}")
    columns = [np.asarray(x, dtype=float) for x in (a, np.ones(len(a)) if a_den is None else a_den, b,
                                                    np.ones(len(b)) if b_den is None else b_den)]
    n = len(columns[0])
    names = ("a", "a_den", "b", "b_den")
    for name, col in zip(names, columns):
        if col.ndim != 1 or len(col) != n:
            raise ValueError(f"paired_bootstrap: '{name}' has shape {col.shape}, expected ({n},) like 'a'")
        if not np.all(np.isfinite(col)):
            raise ValueError(f"paired_bootstrap: '{name}' has a value that is not finite")
    if n == 0:
        raise ValueError("paired_bootstrap: no pairs")
    labels = np.arange(n) if clusters is None else np.asarray(clusters)
    if len(labels) != n:
        raise ValueError(f"paired_bootstrap: 'clusters' has {len(labels)} entries for {n} pairs")
    _, index = np.unique(labels, return_inverse=True)
    index = index.reshape(-1)
    n_clusters = int(index.max()) + 1
    # Per-cluster sums: every statistic here is a function of them, so a resample is a weighted sum.
    sums = np.stack([np.bincount(index, weights=col, minlength=n_clusters) for col in columns])
    estimate = float(_pooled(sums.sum(axis=1), effect))
    base = dict(effect=effect, estimate=estimate, confidence=confidence, method=method, n_resamples=n_resamples,
                seed=seed, n_pairs=n, n_clusters=n_clusters)
    if n_clusters < 2:
        return BootstrapInterval(low=math.nan, high=math.nan, **base)

    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // n_clusters)
    stats = []
    for start in range(0, n_resamples, chunk):
        counts = rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=min(chunk, n_resamples - start))
        stats.append(_pooled((counts @ sums.T).T, effect))
    boot = np.concatenate(stats)
    finite = boot[np.isfinite(boot)]
    undefined = int(len(boot) - len(finite))
    if len(finite) == 0:
        return BootstrapInterval(low=math.nan, high=math.nan, undefined=undefined, **base)
    alpha = 1.0 - confidence
    levels = np.array([alpha / 2, 1 - alpha / 2])
    if method == "bca":
        levels = _bca_levels(finite, estimate, sums, effect, levels)
    low, high = np.quantile(finite, levels)
    return BootstrapInterval(low=float(low), high=float(high), undefined=undefined, **base)


def bootstrap_interval(values: Sequence[float], *, den: Optional[Sequence[float]] = None,
                       clusters: Optional[Sequence[Any]] = None, **options) -> BootstrapInterval:
    """Interval for one arm's pooled figure sum(values) / sum(den) (a mean without ``den``),
    resampling clusters (prompts) as :func:`paired_bootstrap` does; same options."""
    values = np.asarray(values, dtype=float)
    zeros = np.zeros(len(values))
    return paired_bootstrap(zeros, values, b_den=den, clusters=clusters, effect="diff", **options)


def _bca_levels(boot: np.ndarray, estimate: float, sums: np.ndarray, effect: str, levels: np.ndarray) -> np.ndarray:
    """Efron's BCa: the percentile levels shifted by the bias z0 (how far the bootstrap
    distribution's median sits from the estimate) and the acceleration a (the skew of the
    leave-one-cluster-out jackknife). Falls back to the plain levels when either is undefined
    (every resample equal to the estimate, or a jackknife without spread)."""
    normal = NormalDist()
    below = (np.count_nonzero(boot < estimate) + 0.5 * np.count_nonzero(boot == estimate)) / len(boot)
    if not 0.0 < below < 1.0:
        return levels
    z0 = normal.inv_cdf(below)
    jack = _pooled(sums.sum(axis=1, keepdims=True) - sums, effect)
    jack = jack[np.isfinite(jack)]
    spread = jack.mean() - jack
    denom = 6.0 * float(np.sum(spread ** 2)) ** 1.5
    accel = float(np.sum(spread ** 3)) / denom if denom > 0 else 0.0
    out = []
    for level in levels:
        z = normal.inv_cdf(float(level))
        shifted = z0 + (z0 + z) / (1.0 - accel * (z0 + z))
        out.append(normal.cdf(shifted))
    return np.array(out)


@dataclass
class McNemarResult:
    """Paired pass/fail counts and the test. ``first_only``: pairs where only the first arm
    passed; ``second_only``: only the second. Only these discordant pairs carry information."""

    n_pairs: int
    both: int
    neither: int
    first_only: int
    second_only: int
    p_value: float
    method: str
    statistic: Optional[float] = None

    @property
    def discordant(self) -> int:
        return self.first_only + self.second_only

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def mcnemar(first: Sequence[bool], second: Sequence[bool], *, method: str = "exact") -> McNemarResult:
    """McNemar's test of equal pass rates for paired outcomes, two-sided.

    ``method="exact"`` (the default): under the null each discordant pair is equally likely to
    favour either arm, so the smaller discordant count is Binomial(n, 1/2) with n the discordant
    total, and p = min(1, 2 P(X <= min)). It is computed in exact rational arithmetic, so it is
    valid and exact at every n; it is the right test for the small counts of these studies, where
    the chi-square approximation is poor. ``method="chi2"``: the asymptotic test with Edwards'
    continuity correction, (|b - c| - 1)^2 / (b + c) against chi-square with one degree of freedom,
    for comparison with tools that report it. No discordant pair gives p = 1.
    """
    x = np.asarray(first, dtype=bool)
    y = np.asarray(second, dtype=bool)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"mcnemar: outcome arrays must be 1-D and of one length, got {x.shape} and {y.shape}")
    first_only = int(np.count_nonzero(x & ~y))
    second_only = int(np.count_nonzero(~x & y))
    both = int(np.count_nonzero(x & y))
    neither = int(np.count_nonzero(~x & ~y))
    n = first_only + second_only
    statistic = None
    if method == "exact":
        if n == 0:
            p = 1.0
        else:
            tail = sum(math.comb(n, i) for i in range(min(first_only, second_only) + 1))
            p = float(min(Fraction(1), Fraction(2 * tail, 2 ** n)))
    elif method == "chi2":
        if n == 0:
            p, statistic = 1.0, 0.0
        else:
            statistic = (max(abs(first_only - second_only) - 1, 0) ** 2) / n
            p = math.erfc(math.sqrt(statistic / 2.0))  # chi-square(1) survival function
    else:
        raise ValueError(f"mcnemar: method must be 'exact' or 'chi2', got {method!r}")
    return McNemarResult(n_pairs=int(len(x)), both=both, neither=neither, first_only=first_only,
                         second_only=second_only, p_value=p, method=method, statistic=statistic)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` passed (Chen et al. 2021):
    1 - C(n - c, k) / C(n, k), the chance that k samples drawn without replacement from the n
    include a passing one. Computed as 1 - prod_{i = n-c+1}^{n} (1 - k / i), which never forms
    the (huge) binomial coefficients."""
    n, c, k = int(n), int(c), int(k)
    if n < 1 or not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need n >= 1 and 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=float)))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order: the i-th smallest of m
    p-values is multiplied by (m - i + 1), and the results are made non-decreasing in that order
    and capped at 1. Rejecting where the adjusted p <= alpha controls the family-wise error rate at
    alpha, like Bonferroni, but rejects at least as often."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise ValueError("holm: p-values must be a 1-D sequence of numbers in [0, 1]")
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def bonferroni(p_values: Sequence[float]) -> np.ndarray:
    """Bonferroni-adjusted p-values: each times the number of tests, capped at 1."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise ValueError("bonferroni: p-values must be a 1-D sequence of numbers in [0, 1]")
    return np.minimum(1.0, len(p) * p)


def wilson(k: int, n: int, z: float = 1.96) -> tuple:
    """Wilson score interval of the proportion k / n ((0, 0) for n = 0)."""
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))
