#pragma once
// Statistical tests for decoders' output laws, with stated false-alarm rates.
//
// Every distribution-preserving decoder is checked the same way: draw n samples with fixed seeds,
// count them, and compare with the exact law by
//   - Pearson's chi-square goodness of fit (bins with expected count < 5 merged), rejecting when
//     the p-value is below alpha: under the null this fails with probability alpha;
//   - a total-variation bound: P(TV(empirical, exact) >= eps) <= alpha for
//     eps = 1/2 sqrt(2/n (k ln 2 + ln(1/alpha))) (Weissman et al. 2003, L1 deviation inequality).
// Seeds are fixed, so a passing test passes every time; alpha says how unlucky a correct
// implementation would have to be to fail with some other seed.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace decodelab::testing {

// Upper tail P(X >= x) of a chi-square variable with `dof` degrees of freedom.
double chi_square_sf(double x, double dof);

// Regularized upper incomplete gamma Q(a, x).
double gamma_q(double a, double x);

struct FitResult {
  double chi_square = 0.0;
  int dof = 0;
  double p_value = 1.0;
  double tv = 0.0;        // TV(empirical, exact)
  double tv_bound = 0.0;  // eps above for the given alpha
  int64_t n = 0;
  std::string describe() const;
};

// counts[i] samples of outcome i against exact probabilities probs[i] (summing to 1). Outcomes with
// probability 0 that were observed make the fit fail outright (p_value = 0).
FitResult goodness_of_fit(std::span<const int64_t> counts, std::span<const double> probs, double alpha);
FitResult goodness_of_fit(std::span<const int64_t> counts, std::span<const float> probs, double alpha);

// Bound on TV between an n-sample empirical law over k outcomes and the truth, exceeded with
// probability <= alpha.
double tv_bound(int64_t n, int k, double alpha);

// Standard deviations between an observed rate (successes / trials) and an expected probability.
double binomial_z(int64_t successes, int64_t trials, double p);

}  // namespace decodelab::testing

// Passes when both the chi-square and the TV test accept at false-alarm rate alpha.
#define EXPECT_FITS_DISTRIBUTION(counts, probs, alpha)                                   \
  do {                                                                                   \
    const auto fit_ = ::decodelab::testing::goodness_of_fit((counts), (probs), (alpha)); \
    EXPECT_GE(fit_.p_value, (alpha)) << fit_.describe();                                 \
    EXPECT_LE(fit_.tv, fit_.tv_bound) << fit_.describe();                                \
  } while (0)
