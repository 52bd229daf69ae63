// The verification rules as pure functions: exact edge cases (point masses, zero residual mass,
// K-SEQ's division factor) and their output laws against p with many cheap draws (chi-square + TV
// at false-alarm rate 1e-3, fixed seeds).
#include <gtest/gtest.h>

#include <cmath>

#include "decodelab/error.hpp"
#include "decodelab/random.hpp"
#include "decodelab/verify.hpp"
#include "tests/support/stats.hpp"

namespace decodelab::speculative {
namespace {

const std::vector<float> kP{0.5f, 0.3f, 0.2f, 0.0f, 0.0f};
const std::vector<float> kQ{0.1f, 0.2f, 0.3f, 0.25f, 0.15f};

enum class Draw { iid, wor };

// Output law of `rule` with candidates drawn from q (i.i.d. or without replacement) and fresh
// uniforms, counted over n draws. Returns counts and the acceptance count.
template <class Rule>
std::pair<std::vector<int64_t>, int64_t> simulate(const std::vector<float>& p, const std::vector<float>& q, int k,
                                                  Draw draw, int n, Rule rule) {
  std::vector<int64_t> counts(p.size(), 0);
  int64_t accepted = 0;
  for (int t = 0; t < n; ++t) {
    PhiloxStream rng = random_stream(1234, RandomStream::user, uint64_t(t));
    std::vector<float> r = q;
    std::vector<TokenId> xs;
    std::vector<double> us;
    for (int i = 0; i < k; ++i) {
      double mass = 0.0;
      for (float v : r) mass += v;
      if (mass <= 0.0) break;
      const TokenId x = sample_from_weights(r, rng.uniform_double());
      if (draw == Draw::wor) r[std::size_t(x)] = 0.0f;
      xs.push_back(x);
      us.push_back(rng.uniform_double());
    }
    const VerifyOutcome out = rule(p, q, xs, us, rng.uniform_double());
    counts[std::size_t(out.token)]++;
    if (out.accepted >= 0) {
      ++accepted;
      EXPECT_EQ(xs[std::size_t(out.accepted)], out.token);
    }
  }
  return {counts, accepted};
}

TEST(Verify, ChainRuleAcceptanceIsOneMinusTv) {
  const int n = 200000;
  auto [counts, accepted] = simulate(kP, kQ, 1, Draw::iid, n, verify_rrs_iid);
  EXPECT_FITS_DISTRIBUTION(counts, std::span<const float>(kP), 1e-3);
  EXPECT_LT(std::abs(testing::binomial_z(accepted, n, 1.0 - total_variation(kP, kQ))), 4.0);
}

TEST(Verify, RecursiveRejectionWithAndWithoutReplacementPreserveP) {
  for (int k : {2, 3, 5}) {
    auto iid = simulate(kP, kQ, k, Draw::iid, 100000, verify_rrs_iid);
    {
      SCOPED_TRACE(::testing::Message() << "iid k=" << k);
      EXPECT_FITS_DISTRIBUTION(iid.first, std::span<const float>(kP), 1e-3);
    }
    auto wor = simulate(kP, kQ, k, Draw::wor, 100000, verify_rrs_wor);
    {
      SCOPED_TRACE(::testing::Message() << "wor k=" << k);
      EXPECT_FITS_DISTRIBUTION(wor.first, std::span<const float>(kP), 1e-3);
    }
    // Without replacement never wastes a slot on a duplicate: it accepts at least as often.
    EXPECT_GT(wor.second, iid.second) << "k=" << k;
  }
}

TEST(Verify, KSeqPreservesPAndItsResidualIsValid) {
  for (int k : {1, 2, 4, 8}) {
    const double rho = kseq_rho(kP, kQ, k);
    EXPECT_GE(rho, 1.0);
    EXPECT_LE(rho, double(k));
    const double beta = kseq_beta(kP, kQ, rho);
    EXPECT_GE(rho * beta - (1.0 - std::pow(1.0 - beta, k)), -1e-9) << "residual would be negative, k=" << k;
    if (k == 1) {
      EXPECT_EQ(rho, 1.0);
    }
    auto [counts, accepted] = simulate(kP, kQ, k, Draw::iid, 100000, [rho](auto p, auto q, auto xs, auto us, double u) {
      return verify_kseq(p, q, xs, us, u, rho);
    });
    {
      SCOPED_TRACE(::testing::Message() << "k=" << k);
      EXPECT_FITS_DISTRIBUTION(counts, std::span<const float>(kP), 1e-3);
    }
    EXPECT_LT(std::abs(testing::binomial_z(accepted, 100000, 1.0 - std::pow(1.0 - beta, k))), 4.0) << "k=" << k;
  }
}

TEST(Verify, TargetOnlyRuleAcceptsWithTargetMass) {
  // Fixed candidates (no draft law): the output is p and acceptance is p(candidates).
  const std::vector<TokenId> candidates{2, 0, 2};
  std::vector<int64_t> counts(kP.size(), 0);
  int64_t accepted = 0;
  const int n = 200000;
  for (int t = 0; t < n; ++t) {
    PhiloxStream rng = random_stream(77, RandomStream::user, uint64_t(t));
    std::vector<double> us;
    for (std::size_t i = 0; i < candidates.size(); ++i) us.push_back(rng.uniform_double());
    const VerifyOutcome out = verify_target_only(kP, {}, candidates, us, rng.uniform_double());
    counts[std::size_t(out.token)]++;
    accepted += out.accepted >= 0;
    EXPECT_NE(out.accepted, 2) << "a rejected token cannot be accepted again";
  }
  EXPECT_FITS_DISTRIBUTION(counts, std::span<const float>(kP), 1e-3);
  EXPECT_LT(std::abs(testing::binomial_z(accepted, n, double(kP[2]) + double(kP[0]))), 4.0);
}

TEST(Verify, PointMassesAndZeroResidualMass) {
  const std::vector<float> one_hot{0.0f, 1.0f, 0.0f};
  const std::vector<float> other{1.0f, 0.0f, 0.0f};
  const std::vector<double> us{0.999, 0.999};
  const TokenId hit[] = {1}, miss[] = {0};
  // Greedy target: the argmax is accepted whatever the uniform; anything else yields the argmax.
  EXPECT_EQ(verify_rrs_iid(one_hot, one_hot, hit, us, 0.5).accepted, 0);
  EXPECT_EQ(verify_rrs_iid(one_hot, other, miss, us, 0.5).token, 1);
  EXPECT_EQ(verify_rrs_wor(one_hot, other, miss, us, 0.5).token, 1);
  EXPECT_EQ(verify_kseq(one_hot, other, miss, us, 0.5, kseq_rho(one_hot, other, 1)).token, 1);
  // p == q: a rejection can only be rounding; the residual has no mass and the rule falls back to p.
  const std::vector<float> p{0.25f, 0.25f, 0.5f};
  const TokenId zero_prob[] = {2};
  std::vector<float> q_above = p;
  q_above[2] = 0.5000001f;
  const VerifyOutcome out = verify_rrs_iid(p, q_above, zero_prob, std::vector<double>{1.0 - 1e-12}, 0.1);
  EXPECT_EQ(out.accepted, -1);
  EXPECT_EQ(out.token, 0);  // sampled from p itself with u = 0.1
}

TEST(Verify, RejectsMalformedInputs) {
  const std::vector<float> p{0.5f, 0.5f}, q3{0.3f, 0.3f, 0.4f};
  const TokenId x[] = {0}, out_of_range[] = {7};
  const std::vector<double> u{0.5};
  EXPECT_THROW(verify_rrs_iid(p, q3, x, u, 0.5), Error);
  EXPECT_THROW(verify_rrs_wor(p, p, out_of_range, u, 0.5), Error);
  EXPECT_THROW(verify_kseq(p, p, x, {}, 0.5, 1.0), Error);
  EXPECT_THROW(verify_kseq(p, p, x, u, 0.5, 0.5), Error);
  EXPECT_THROW(kseq_rho(p, p, 0), Error);
}

// Negative control: the same statistical test catches a biased rule. Drafting the argmax of q and
// verifying it with q(x) < 1 in the ratio (instead of the point mass it was drawn from) is the
// classic bug; here p = [.5 .3 .2], q = [.6 .3 .1] gives [.833 0 .167] instead of p.
TEST(Verify, NegativeControlArgmaxDraftWithSoftQIsDetected) {
  const std::vector<float> p{0.5f, 0.3f, 0.2f}, q{0.6f, 0.3f, 0.1f};
  std::vector<int64_t> counts(3, 0);
  const int n = 20000;
  for (int t = 0; t < n; ++t) {
    PhiloxStream rng = random_stream(99, RandomStream::user, uint64_t(t));
    const TokenId x[] = {argmax(q)};
    const std::vector<double> u{rng.uniform_double()};
    counts[std::size_t(verify_rrs_iid(p, q, x, u, rng.uniform_double()).token)]++;
  }
  const auto fit = testing::goodness_of_fit(counts, std::span<const float>(p), 1e-3);
  EXPECT_LT(fit.p_value, 1e-3) << fit.describe();
  EXPECT_GT(fit.tv, fit.tv_bound) << fit.describe();
}

}  // namespace
}  // namespace decodelab::speculative
