// Exact kept-set tests for the baseline truncation samplers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "decodelab/error.hpp"
#include "decodelab/philox.hpp"
#include "decodelab/sampler.hpp"

namespace decodelab {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::set<TokenId> kept(const std::string& chain, const std::vector<float>& logits) {
  Candidates c = Candidates::from_logits(logits);
  parse_chain(chain)->apply(c);
  std::set<TokenId> ids;
  for (const Candidate& x : c.data) ids.insert(x.id);
  return ids;
}

std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(p > 0 ? float(std::log(p)) : -kInf);
  return l;
}

TEST(TopK, KeepsExactlyK) {
  const std::vector<float> l{0.1f, 3.0f, 2.0f, 5.0f, 1.0f};
  EXPECT_EQ(kept("top_k(k=2)", l), (std::set<TokenId>{3, 1}));
  EXPECT_EQ(kept("top_k(k=1)", l), (std::set<TokenId>{3}));
  EXPECT_EQ(kept("top_k(k=0)", l).size(), 5u);   // 0 = off
  EXPECT_EQ(kept("top_k(k=99)", l).size(), 5u);  // k > vocab
}

TEST(TopK, TiesGoToTheLowestId) {
  const std::vector<float> l{1.0f, 2.0f, 2.0f, 2.0f, 0.0f};
  EXPECT_EQ(kept("top_k(k=2)", l), (std::set<TokenId>{1, 2}));
  const std::vector<float> equal(6, 0.5f);
  EXPECT_EQ(kept("top_k(k=3)", equal), (std::set<TokenId>{0, 1, 2}));
}

TEST(TopP, SmallestPrefixReachingP) {
  const auto l = logits_of({0.1, 0.4, 0.2, 0.3});
  EXPECT_EQ(kept("top_p(p=0.4)", l), (std::set<TokenId>{1}));
  EXPECT_EQ(kept("top_p(p=0.5)", l), (std::set<TokenId>{1, 3}));
  EXPECT_EQ(kept("top_p(p=0.65)", l), (std::set<TokenId>{1, 3}));
  EXPECT_EQ(kept("top_p(p=0.75)", l), (std::set<TokenId>{1, 3, 2}));
  EXPECT_EQ(kept("top_p(p=1)", l).size(), 4u);               // off
  EXPECT_EQ(kept("top_p(p=0)", l), (std::set<TokenId>{1}));  // always keeps one
  EXPECT_EQ(kept("top_p(p=0.1,min_keep=3)", l), (std::set<TokenId>{1, 3, 2}));
}

TEST(TopP, AllEqualLogits) {
  const std::vector<float> l(4, 1.0f);
  EXPECT_EQ(kept("top_p(p=0.5)", l), (std::set<TokenId>{0, 1}));
  EXPECT_EQ(kept("top_p(p=0.51)", l), (std::set<TokenId>{0, 1, 2}));
}

TEST(MinP, RelativeThreshold) {
  const auto l = logits_of({0.5, 0.25, 0.15, 0.1});
  EXPECT_EQ(kept("min_p(p=0.5)", l), (std::set<TokenId>{0, 1}));
  EXPECT_EQ(kept("min_p(p=0.29)", l), (std::set<TokenId>{0, 1, 2}));
  EXPECT_EQ(kept("min_p(p=0.31)", l), (std::set<TokenId>{0, 1}));
  EXPECT_EQ(kept("min_p(p=1)", l), (std::set<TokenId>{0}));
  EXPECT_EQ(kept("min_p(p=0)", l).size(), 4u);
  EXPECT_EQ(kept("min_p(p=1,min_keep=2)", l), (std::set<TokenId>{0, 1}));
  const std::vector<float> equal(5, -3.0f);
  EXPECT_EQ(kept("min_p(p=1)", equal).size(), 5u);  // everyone ties with the max
}

TEST(Typical, KeepsTokensClosestToTheEntropy) {
  // p = (0.4, 0.3, 0.2, 0.1): H = 1.2799 nats; |-log p - H| = 0.364, 0.076, 0.330, 1.023.
  // Order: 1, 2, 0, 3; cumulative 0.3, 0.5, 0.9, 1.0; strict "cum > p".
  const auto l = logits_of({0.4, 0.3, 0.2, 0.1});
  EXPECT_EQ(kept("typical(p=0.2)", l), (std::set<TokenId>{1}));
  EXPECT_EQ(kept("typical(p=0.29)", l), (std::set<TokenId>{1}));
  EXPECT_EQ(kept("typical(p=0.31)", l), (std::set<TokenId>{1, 2}));
  EXPECT_EQ(kept("typical(p=0.6)", l), (std::set<TokenId>{1, 2, 0}));
  EXPECT_EQ(kept("typical(p=0.95)", l).size(), 4u);
  EXPECT_EQ(kept("typical(p=1)", l).size(), 4u);
  EXPECT_EQ(kept("typical(p=0.1,min_keep=2)", l), (std::set<TokenId>{1, 2}));
}

TEST(Temperature, ZeroIsGreedyAndScalingPreservesOrder) {
  const std::vector<float> l{1.0f, 4.0f, 4.0f, 2.0f};
  EXPECT_EQ(kept("temperature(t=0)", l), (std::set<TokenId>{1}));
  Candidates c = Candidates::from_logits(l);
  parse_chain("temperature(t=2)")->apply(c);
  EXPECT_EQ(c.data[1].logit, 2.0f);
  auto p = parse_chain("temperature(t=0.5)")->probs(l);
  EXPECT_NEAR(p[1], p[2], 1e-7);
  EXPECT_NEAR(p[3] / p[0], std::exp(2.0), 1e-4);
}

TEST(Samplers, InfAndNaNLogits) {
  const std::vector<float> with_inf{-kInf, 1.0f, -kInf, 0.0f};
  EXPECT_EQ(kept("top_k(k=3)", with_inf), (std::set<TokenId>{1, 3}));  // -inf never kept
  const auto p = parse_chain("top_p(p=0.99)")->probs(with_inf);
  EXPECT_EQ(p[0], 0.0f);
  EXPECT_EQ(p[2], 0.0f);
  const std::vector<float> with_nan{0.0f, std::nanf(""), 1.0f};
  try {
    kept("top_k(k=1)", with_nan);
    FAIL() << "NaN must be an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::numeric);
  }
  EXPECT_THROW(kept("", std::vector<float>{-kInf, -kInf}), Error);
}

TEST(Samplers, IdentitySettingsLeaveTheDistributionUnchanged) {
  const std::vector<float> l{0.3f, -1.0f, 2.0f, 0.7f, 0.0f};
  const auto ref = softmax(l);
  const auto p = parse_chain("top_k(k=0),top_p(p=1),min_p(p=0),typical(p=1),temperature(t=1)")->probs(l);
  for (std::size_t i = 0; i < l.size(); ++i) EXPECT_NEAR(p[i], ref[i], 1e-7);
}

TEST(Samplers, KeptSetIsRenormalizedSubset) {
  const std::vector<float> l{0.3f, -1.0f, 2.0f, 0.7f, 0.0f};
  const auto ref = softmax(l);
  const auto p = parse_chain("top_k(k=3)")->probs(l);
  const double kept_mass = ref[2] + ref[3] + ref[0];
  EXPECT_NEAR(p[2], ref[2] / kept_mass, 1e-6);
  EXPECT_NEAR(p[0], ref[0] / kept_mass, 1e-6);
  EXPECT_EQ(p[1], 0.0f);
  EXPECT_EQ(p[4], 0.0f);
}

TEST(Samplers, ChainOrderMatters) {
  // Truncating before or after temperature gives different kept sets (llama.cpp vs HF order).
  const auto l = logits_of({0.5, 0.3, 0.2});
  EXPECT_EQ(kept("top_p(p=0.75),temperature(t=3)", l), (std::set<TokenId>{0, 1}));
  EXPECT_EQ(kept("temperature(t=3),top_p(p=0.75)", l), (std::set<TokenId>{0, 1, 2}));
}

TEST(Samplers, BadChainsAreClearErrors) {
  EXPECT_THROW(parse_chain("top_k(k=-1)"), Error);
  EXPECT_THROW(parse_chain("top_q(p=0.5)"), Error);
  EXPECT_THROW(parse_chain("top_p(p=2)"), Error);
  EXPECT_THROW(parse_chain("top_p(p=0.5"), Error);
  try {
    parse_chain("top_p(q=0.5)");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sampler 'top_p': unknown parameter 'q'"), std::string::npos) << e.what();
  }
}

TEST(Greedy, SelectsFirstMax) {
  Candidates c = Candidates::from_logits(std::vector<float>{1.0f, 3.0f, 3.0f});
  parse_chain("greedy")->apply(c);
  EXPECT_EQ(c.selected_token(), 1);
  EXPECT_EQ(c.dense_probs(3), (std::vector<float>{0.0f, 1.0f, 0.0f}));
  EXPECT_EQ(parse_chain("top_k(k=2),greedy")->probs(std::vector<float>{1.0f, 3.0f, 2.0f}),
            (std::vector<float>{0.0f, 1.0f, 0.0f}));
}

TEST(Dist, ReproducibleCloneAndReset) {
  auto chain = parse_chain("top_k(k=5),dist(seed=9)");
  const std::vector<float> l{0.0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  std::vector<TokenId> first;
  for (int i = 0; i < 20; ++i) {
    Candidates c = Candidates::from_logits(l);
    chain->apply(c);
    first.push_back(c.selected_token());
    if (i == 9) {
      auto clone = chain->clone();
      Candidates d = Candidates::from_logits(l);
      chain->accept(first.back());
      Candidates e = Candidates::from_logits(l);
      clone->accept(first.back());
      chain->apply(e);
      clone->apply(d);
      EXPECT_EQ(d.selected_token(), e.selected_token());
      continue;
    }
    chain->accept(first.back());
  }
  for (TokenId t : first) EXPECT_GE(t, 2);  // top-5 of 7 keeps ids 2..6
  chain->reset();
  Candidates c = Candidates::from_logits(l);
  chain->apply(c);
  EXPECT_EQ(c.selected_token(), first[0]);
}

}  // namespace
}  // namespace decodelab

namespace decodelab {
namespace {

// Reference kept sets by a full sort, against the samplers' partial-sort fast paths.
std::vector<TokenId> reference_order(const std::vector<float>& l) {
  std::vector<TokenId> ids(l.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = TokenId(i);
  std::sort(ids.begin(), ids.end(), [&](TokenId a, TokenId b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
  return ids;
}

TEST(Truncation, FastPathsEqualFullSortReference) {
  PhiloxStream rng(77, 0);
  for (int trial = 0; trial < 40; ++trial) {
    const int n = 50 + int(rng.next_u32() % 3000);
    const double scale = 0.5 + 4.0 * rng.uniform_double();
    std::vector<float> l(static_cast<std::size_t>(n));
    for (float& x : l) x = float(scale * rng.normal());
    if (trial % 5 == 0) {
      for (float& x : l) x = std::round(x);  // many ties
    }
    const auto order = reference_order(l);
    const auto p = softmax(l);
    const int k = 1 + int(rng.next_u32() % 200);
    EXPECT_EQ(kept("top_k(k=" + std::to_string(k) + ")", l),
              std::set<TokenId>(order.begin(), order.begin() + std::min(k, n)));
    const double top_p = rng.uniform_double();
    std::set<TokenId> nucleus;
    double cum = 0.0;
    for (TokenId t : order) {
      nucleus.insert(t);
      cum += p[std::size_t(t)];
      if (cum >= top_p) break;
    }
    EXPECT_EQ(kept("top_p(p=" + std::to_string(top_p) + ")", l).size(), nucleus.size()) << "p=" << top_p;
    const double min_p = rng.uniform_double() * 0.2;
    std::set<TokenId> above;
    const float pmax = p[std::size_t(order[0])];
    for (int i = 0; i < n; ++i) {
      if (double(p[std::size_t(i)]) >= min_p * pmax) above.insert(TokenId(i));
    }
    EXPECT_EQ(kept("min_p(p=" + std::to_string(min_p) + ")", l), above);
  }
}

}  // namespace
}  // namespace decodelab
