"""ablab.stats against answers known by hand, by enumeration or by simulation (seeded)."""

import itertools
import math
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from ablab.stats import (bonferroni, bootstrap_interval, holm, mcnemar, paired_bootstrap,  # noqa: E402
                         pass_at_k, wilson)


# ---------------------------------------------------------------------------------------------- McNemar


def outcomes(both, first_only, second_only, neither):
    first = [True] * both + [True] * first_only + [False] * second_only + [False] * neither
    second = [True] * both + [False] * first_only + [True] * second_only + [False] * neither
    return first, second


def test_mcnemar_nine_to_nothing_is_two_over_two_to_the_ninth():
    r = mcnemar(*outcomes(both=10, first_only=0, second_only=9, neither=5))
    assert (r.first_only, r.second_only, r.both, r.neither, r.n_pairs) == (0, 9, 10, 5, 24)
    assert r.p_value == 2 / 2 ** 9  # 0.0039: P(X = 0) + P(X = 9) under Binomial(9, 1/2)
    assert r.method == "exact" and r.discordant == 9
    assert mcnemar(*outcomes(0, 9, 0, 0)).p_value == 2 / 2 ** 9  # symmetric


def test_mcnemar_exact_by_hand():
    # 2 against 8 discordant: 2 * (C(10,0) + C(10,1) + C(10,2)) / 2^10 = 2 * 56 / 1024.
    assert mcnemar(*outcomes(3, 2, 8, 1)).p_value == pytest.approx(112 / 1024, abs=0)
    # Equal discordant counts: the two tails overlap and the p-value is capped at 1.
    assert mcnemar(*outcomes(0, 3, 3, 0)).p_value == 1.0
    # Concordant pairs carry no information.
    assert mcnemar(*outcomes(100, 0, 0, 100)).p_value == 1.0
    assert mcnemar(*outcomes(40, 1, 6, 3)).p_value == mcnemar(*outcomes(0, 1, 6, 0)).p_value


def test_mcnemar_chi_square_with_continuity_correction():
    r = mcnemar(*outcomes(5, 10, 25, 5), method="chi2")
    assert r.statistic == pytest.approx(14 ** 2 / 35)  # (|10 - 25| - 1)^2 / 35 = 5.6
    assert r.p_value == pytest.approx(0.017960, abs=1e-6)  # chi-square(1) survival at 5.6
    exact = mcnemar(*outcomes(5, 10, 25, 5)).p_value
    assert exact == pytest.approx(r.p_value, rel=0.25)  # the approximation is close at 35 discordant pairs


def test_mcnemar_rejects_bad_input():
    with pytest.raises(ValueError):
        mcnemar([True, False], [True])
    with pytest.raises(ValueError, match="method"):
        mcnemar([True], [False], method="midp")


# ---------------------------------------------------------------------------------------------- pass@k


def brute_force_pass_at_k(n, c, k):
    """The share of all k-subsets of n samples (the first c correct) that hold a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(1 for s in subsets if any(i < c for i in s)) / len(subsets)


def test_pass_at_k_equals_enumeration():
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_is_stable_where_binomials_overflow_floats():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the plain pass rate
    exact = 1 - math.comb(1500 - 7, 700) / math.comb(1500, 700)  # Python integers: exact, slow
    assert pass_at_k(1500, 7, 700) == pytest.approx(exact, rel=1e-12)
    with pytest.raises(OverflowError):  # why the textbook ratio of binomials cannot be formed in floats
        float(math.comb(1500, 700))
    assert pass_at_k(10 ** 6, 1, 1) == pytest.approx(1e-6)
    assert pass_at_k(5, 5, 3) == 1.0 and pass_at_k(5, 0, 3) == 0.0
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)
    with pytest.raises(ValueError):
        pass_at_k(5, 2, 6)


# ---------------------------------------------------------------------------------------------- Holm


def test_holm_textbook_example():
    # The usual worked example of Holm's method: four hypotheses at alpha = 0.05 with p = 0.01,
    # 0.04, 0.03, 0.005. Sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 =
    # 0.04 -> raised to 0.06 (adjusted p-values may not decrease along the order): the first and
    # the fourth hypotheses are rejected, the other two are not.
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert bonferroni(p) == pytest.approx([0.04, 0.16, 0.12, 0.02])
    assert list(holm(p) <= 0.05) == [True, False, False, True]


def test_holm_by_hand():
    # p = 0.01, 0.02, 0.03, 0.04, 0.05 -> 0.01 x 5 = 0.05, 0.02 x 4 = 0.08, 0.03 x 3 = 0.09, and
    # 0.04 x 2 = 0.08 and 0.05 x 1 are raised to 0.09: only the first is rejected at 0.05.
    assert holm([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx([0.05, 0.08, 0.09, 0.09, 0.09])
    # Holm never rejects less than Bonferroni, and caps at 1.
    rng = np.random.default_rng(5)
    p = rng.uniform(0, 0.2, 30)
    assert np.all(holm(p) <= bonferroni(p) + 1e-15)
    assert list(holm([0.9, 0.8])) == [1.0, 1.0]  # 0.8 x 2 capped at 1, and 0.9 raised to it
    with pytest.raises(ValueError):
        holm([0.5, 1.5])


# ---------------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_estimate_pools_as_the_summaries_do():
    a = [1.0, 2.0, 3.0, 4.0]
    b = [2.0, 2.0, 5.0, 7.0]
    assert paired_bootstrap(a, b).estimate == pytest.approx(np.mean(b) - np.mean(a))
    tok_a, sec_a = [10, 20, 30], [1.0, 4.0, 1.0]
    tok_b, sec_b = [10, 20, 30], [0.5, 1.0, 1.5]
    r = paired_bootstrap(tok_a, tok_b, a_den=sec_a, b_den=sec_b, effect="ratio")
    assert r.estimate == pytest.approx((60 / 3.0) / (60 / 6.0))  # pooled rates, not a mean of ratios
    assert r.low <= r.estimate <= r.high


def test_bootstrap_is_reproducible_with_its_seed():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=40), rng.normal(size=40) + 0.2
    clusters = np.repeat(np.arange(20), 2)
    one = paired_bootstrap(a, b, clusters=clusters, seed=7)
    assert one == paired_bootstrap(a, b, clusters=clusters, seed=7)
    assert (one.low, one.high) != (paired_bootstrap(a, b, clusters=clusters, seed=8).low,
                                   paired_bootstrap(a, b, clusters=clusters, seed=8).high)
    assert one.n_pairs == 40 and one.n_clusters == 20 and one.seed == 7


def test_bootstrap_degenerate_and_bad_input():
    one = paired_bootstrap([1.0, 2.0], [2.0, 3.0], clusters=["p", "p"])
    assert one.estimate == 1.0 and math.isnan(one.low) and math.isnan(one.high)  # one prompt: nothing to resample
    same = paired_bootstrap([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (same.low, same.high) == (0.0, 0.0)
    with pytest.raises(ValueError, match="shape"):
        paired_bootstrap([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="effect"):
        paired_bootstrap([1.0], [1.0], effect="log")
    with pytest.raises(ValueError, match="finite"):
        paired_bootstrap([1.0, math.nan], [1.0, 2.0])
    zero_base = paired_bootstrap([0.0, 0.0, 1.0], [1.0, 1.0, 1.0], effect="ratio", n_resamples=500)
    assert zero_base.undefined > 0  # resamples without the third pair have a zero baseline


def simulated_study(rng, prompts, seeds, difference, prompt_spread=1.0):
    """Two arms on prompts x seeds: a prompt effect shared by both arms and by the prompt's seeds,
    an arm difference that varies by prompt around ``difference``, and run noise."""
    difficulty = np.repeat(rng.normal(0.0, 1.0, prompts), seeds)
    gain = np.repeat(difference + rng.normal(0.0, prompt_spread, prompts), seeds)
    a = difficulty + rng.normal(0.0, 0.5, prompts * seeds)
    b = difficulty + gain + rng.normal(0.0, 0.5, prompts * seeds)
    return a, b, np.repeat(np.arange(prompts), seeds)


def coverage(method, studies=200, prompts=30, seeds=3, clustered=True, n_resamples=1000):
    rng = np.random.default_rng(2024)
    hits = 0
    for study in range(studies):
        # The difference in the population of prompts is exactly 0.3; each study sees a sample of it.
        a, b, clusters = simulated_study(rng, prompts, seeds, 0.3)
        r = paired_bootstrap(a, b, clusters=clusters if clustered else None, n_resamples=n_resamples, seed=study,
                             method=method)
        hits += r.low <= 0.3 <= r.high
    return hits / studies


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_interval_covers_the_true_difference_about_95_percent_of_the_time(method):
    # 200 studies: the standard error of the coverage estimate is about 1.5 points, so a correct
    # 95 % interval lands in [0.89, 0.99] with near certainty (the percentile bootstrap runs a
    # little narrow at 30 prompts, about 93 %). The simulation is seeded: the result is fixed.
    assert 0.89 <= coverage(method) <= 0.99


def test_resampling_runs_instead_of_prompts_undercovers():
    # The same studies, resampling (prompt, seed) pairs as if independent: the seeds of a prompt
    # share its gain, so the interval is too narrow. This is why the bootstrap resamples prompts.
    assert coverage("percentile", clustered=False) < 0.85


def test_bootstrap_ratio_interval_covers_a_known_speedup():
    rng = np.random.default_rng(11)
    hits = 0
    for study in range(200):
        tokens = rng.integers(20, 60, size=40).astype(float)
        base_sec = tokens / 10.0 * rng.lognormal(0, 0.2, 40)  # 10 tok/s with noise
        arm_sec = tokens / 15.0 * rng.lognormal(0, 0.2, 40)  # 15 tok/s: a true ratio of 1.5
        r = paired_bootstrap(tokens, tokens, a_den=base_sec, b_den=arm_sec, effect="ratio", n_resamples=1000,
                             seed=study)
        hits += r.low <= 1.5 <= r.high
    assert 0.89 <= hits / 200 <= 0.99


def test_single_arm_interval_and_wilson():
    r = bootstrap_interval([1, 0, 1, 1, 0, 1, 1, 1], seed=3)
    assert r.estimate == pytest.approx(0.75) and 0.3 < r.low < 0.75 < r.high <= 1.0
    low, high = wilson(17, 24)  # the docs' greedy row: [0.51, 0.85]
    assert (round(low, 2), round(high, 2)) == (0.51, 0.85)
    assert wilson(0, 0) == (0.0, 0.0)
