// Resampling schemes: offspring counts have expectation N W_i for every scheme; systematic and
// stratified have lower offspring variance than multinomial; ESS formula on known weights.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>

#include "decodelab/error.hpp"

#include "decodelab/random.hpp"
#include "decoders/smc/resampling.hpp"

namespace decodelab {
namespace {

TEST(Resampling, EffectiveSampleSize) {
  EXPECT_NEAR(effective_sample_size(std::vector<double>(5, -2.0)), 5.0, 1e-12);
  const double inf = -std::numeric_limits<double>::infinity();
  EXPECT_NEAR(effective_sample_size(std::vector<double>{inf, 0.3, inf}), 1.0, 1e-12);
  std::vector<double> lw = {std::log(0.5), std::log(0.3), std::log(0.1), std::log(0.1)};
  EXPECT_NEAR(effective_sample_size(lw), 1.0 / 0.36, 1e-12);
  EXPECT_EQ(effective_sample_size(std::vector<double>{inf, inf}), 0.0);
}

TEST(Resampling, OffspringMeansAndVariances) {
  const std::vector<double> w = {0.31, 0.02, 0.17, 0.0, 0.25, 0.05, 0.2};
  const int n = 10, runs = 40000;
  std::map<ResamplingScheme, double> variance;
  for (ResamplingScheme scheme :
       {ResamplingScheme::systematic, ResamplingScheme::stratified, ResamplingScheme::multinomial}) {
    std::vector<double> sum(w.size(), 0.0), sum_sq(w.size(), 0.0);
    for (int r = 0; r < runs; ++r) {
      PhiloxStream rng = random_stream(42, RandomStream::resample, uint64_t(r));
      std::vector<int> counts(w.size(), 0);
      const std::vector<int> a = resample(w, n, scheme, rng);
      ASSERT_EQ(a.size(), std::size_t(n));
      for (int i : a) counts[std::size_t(i)] += 1;
      ASSERT_EQ(counts[3], 0) << "a zero-weight particle must never be chosen";
      for (std::size_t i = 0; i < w.size(); ++i) {
        sum[i] += counts[i];
        sum_sq[i] += double(counts[i]) * counts[i];
      }
    }
    double total_var = 0.0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      const double mean = sum[i] / runs;
      const double var = sum_sq[i] / runs - mean * mean;
      total_var += var;
      // Mean within 4 standard errors of N W_i (exact for a zero-variance count).
      EXPECT_NEAR(mean, n * w[i], 4 * std::sqrt(var / runs) + 1e-12) << int(scheme) << " particle " << i;
      if (scheme == ResamplingScheme::multinomial) {
        EXPECT_NEAR(var, n * w[i] * (1 - w[i]), 0.05 * n * w[i] + 1e-9);  // binomial variance
      }
    }
    variance[scheme] = total_var;
  }
  EXPECT_LT(variance[ResamplingScheme::systematic], 0.5 * variance[ResamplingScheme::multinomial]);
  EXPECT_LT(variance[ResamplingScheme::stratified], 0.8 * variance[ResamplingScheme::multinomial]);
  EXPECT_THROW(parse_resampling_scheme("residual"), Error);
}

}  // namespace
}  // namespace decodelab
