#include "decodelab/distribution.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "decodelab/error.hpp"

namespace decodelab {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(Distribution, SoftmaxIsStableForHugeLogits) {
  const std::vector<float> logits{1000.0f, 1000.0f, -kInf, 999.0f};
  const auto p = softmax(logits);
  const double e = std::exp(-1.0);
  EXPECT_NEAR(p[0], 1.0 / (2.0 + e), 1e-7);
  EXPECT_NEAR(p[1], 1.0 / (2.0 + e), 1e-7);
  EXPECT_EQ(p[2], 0.0f);
  EXPECT_NEAR(p[3], e / (2.0 + e), 1e-7);
}

TEST(Distribution, LogSoftmaxAndLogSumExp) {
  const std::vector<float> logits{1.0f, 2.0f, 3.0f};
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(log_sum_exp(logits), lse, 1e-12);
  const auto l = log_softmax(logits);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(l[i], logits[i] - lse, 1e-6);
  EXPECT_EQ(log_sum_exp(std::vector<float>{-kInf, -kInf}), -std::numeric_limits<double>::infinity());
}

TEST(Distribution, NaNIsAnError) {
  const std::vector<float> logits{0.0f, std::nanf(""), 1.0f};
  try {
    softmax(logits);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::numeric);
    EXPECT_NE(std::string(e.what()).find("[1] is NaN"), std::string::npos) << e.what();
  }
  EXPECT_THROW(softmax(std::vector<float>{-kInf, -kInf}), Error);
  EXPECT_THROW(softmax(std::vector<float>{0.0f, kInf}), Error);
}

TEST(Distribution, TemperatureAndEntropy) {
  std::vector<float> logits{2.0f, 4.0f};
  apply_temperature(logits, 2.0f);
  EXPECT_EQ(logits[0], 1.0f);
  EXPECT_EQ(logits[1], 2.0f);
  EXPECT_THROW(apply_temperature(logits, 0.0f), Error);
  EXPECT_THROW(apply_temperature(logits, -1.0f), Error);
  EXPECT_NEAR(entropy(std::vector<float>{0.25f, 0.25f, 0.25f, 0.25f}), std::log(4.0), 1e-7);
  EXPECT_EQ(entropy(std::vector<float>{1.0f, 0.0f}), 0.0);
}

TEST(Distribution, InverseCdfSampling) {
  const std::vector<float> w{0.0f, 1.0f, 0.0f, 3.0f};  // unnormalized
  EXPECT_EQ(sample_from_weights(w, 1e-9), 1);
  EXPECT_EQ(sample_from_weights(w, 0.25), 1);
  EXPECT_EQ(sample_from_weights(w, 0.2500001), 3);
  EXPECT_EQ(sample_from_weights(w, 1.0), 3);
  EXPECT_THROW(sample_from_weights(std::vector<float>{0.0f, 0.0f}, 0.5), Error);
  EXPECT_THROW(sample_from_weights(std::vector<float>{-1.0f, 2.0f}, 0.5), Error);
}

TEST(Distribution, ArgmaxTiesToLowestIndex) { EXPECT_EQ(argmax(std::vector<float>{1.0f, 3.0f, 3.0f, 2.0f}), 1); }

TEST(Distribution, TotalVariationAndResidual) {
  const std::vector<float> p{0.5f, 0.3f, 0.2f}, q{0.6f, 0.3f, 0.1f};
  EXPECT_NEAR(total_variation(p, q), 0.1, 1e-7);
  std::vector<float> r(3);
  EXPECT_NEAR(residual(p, q, r), 0.1, 1e-7);
  EXPECT_EQ(r[0], 0.0f);
  EXPECT_EQ(r[1], 0.0f);
  EXPECT_NEAR(r[2], 1.0f, 1e-6);
  EXPECT_EQ(residual(p, p, r), 0.0);  // no mass: the caller falls back to p
  EXPECT_THROW(total_variation(p, std::vector<float>{1.0f}), Error);
}

}  // namespace
}  // namespace decodelab
