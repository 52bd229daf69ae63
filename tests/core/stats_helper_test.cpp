// The statistical-test helper itself: known chi-square quantiles, and its false-alarm rate.
#include <gtest/gtest.h>

#include <cmath>

#include "decodelab/philox.hpp"
#include "tests/support/stats.hpp"

namespace decodelab::testing {
namespace {

TEST(StatsHelper, ChiSquareTailMatchesTables) {
  EXPECT_NEAR(chi_square_sf(3.841458820694124, 1), 0.05, 1e-9);
  EXPECT_NEAR(chi_square_sf(16.918977604620448, 9), 0.05, 1e-9);
  EXPECT_NEAR(chi_square_sf(124.34211340400407, 100), 0.05, 1e-9);
  EXPECT_NEAR(chi_square_sf(10.827566170662733, 1), 0.001, 1e-10);
  EXPECT_NEAR(chi_square_sf(0.0, 3), 1.0, 1e-15);
}

TEST(StatsHelper, AcceptsTheTruthAndRejectsAWrongLaw) {
  const std::vector<double> p{0.5, 0.25, 0.125, 0.0625, 0.0625};
  const std::vector<double> wrong{0.45, 0.3, 0.125, 0.0625, 0.0625};
  PhiloxStream rng(1, 0);
  std::vector<int64_t> counts(p.size(), 0);
  for (int i = 0; i < 100000; ++i) {
    double u = rng.uniform_double(), cum = 0.0;
    std::size_t k = 0;
    while (k + 1 < p.size() && (cum += p[k]) < u) ++k;
    counts[k]++;
  }
  EXPECT_FITS_DISTRIBUTION(counts, p, 1e-3);
  const auto bad = goodness_of_fit(counts, wrong, 1e-3);
  EXPECT_LT(bad.p_value, 1e-3);
  EXPECT_GT(bad.tv, bad.tv_bound);
}

TEST(StatsHelper, FalseAlarmRateIsAboutAlpha) {
  // 400 independent correct experiments at alpha = 0.05: about 20 rejections (binomial sd ~4.4).
  const std::vector<double> p{0.4, 0.3, 0.2, 0.1};
  PhiloxStream rng(2, 0);
  int rejections = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::vector<int64_t> counts(4, 0);
    for (int i = 0; i < 2000; ++i) {
      double u = rng.uniform_double(), cum = 0.0;
      std::size_t k = 0;
      while (k + 1 < p.size() && (cum += p[k]) < u) ++k;
      counts[k]++;
    }
    rejections += goodness_of_fit(counts, p, 0.05).p_value < 0.05;
  }
  EXPECT_NEAR(rejections, 20, 4 * 4.4);
  EXPECT_LT(std::abs(binomial_z(rejections, 400, 0.05)), 4.0);
}

}  // namespace
}  // namespace decodelab::testing
