// Typed sampler factories: each builds the sampler its spec string names (same name, same
// output on the same logits, state included) and rejects what the spec string would.
#include "decodelab/sampler_factories.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "decodelab/error.hpp"
#include "decodelab/philox.hpp"

namespace decodelab {
namespace {

std::vector<float> logits(int n, uint64_t seed) {
  PhiloxStream rng(seed, 1);
  std::vector<float> out(static_cast<std::size_t>(n));
  for (float& x : out) x = float(2.0 * rng.normal());
  return out;
}

// Applies both samplers to the same logits a few times (accepting what they select) and expects
// identical names and results.
void expect_same(std::unique_ptr<Sampler> typed, const std::string& spec) {
  SCOPED_TRACE(spec);
  auto named = parse_chain(spec);
  ASSERT_EQ(named->size(), 1u);
  EXPECT_EQ(typed->name(), named->at(0).name());
  for (uint64_t round = 0; round < 4; ++round) {
    const std::vector<float> l = logits(300, round);
    Candidates a = Candidates::from_logits(l), b = Candidates::from_logits(l);
    typed->apply(a);
    named->apply(b);
    EXPECT_EQ(a.dense_probs(300), b.dense_probs(300));
    EXPECT_EQ(a.selected, b.selected);
    const TokenId token = a.selected >= 0 ? a.data[std::size_t(a.selected)].id : TokenId(round);
    typed->accept(token);
    named->accept(token);
  }
}

TEST(SamplerFactories, EachEqualsItsSpecString) {
  expect_same(make_top_k(40), "top_k(k=40)");
  expect_same(make_top_p(0.9, 3), "top_p(p=0.9,min_keep=3)");
  expect_same(make_min_p(0.05), "min_p(p=0.05)");
  expect_same(make_typical(0.8), "typical(p=0.8)");
  expect_same(make_temperature(0.7), "temperature(t=0.7)");
  expect_same(make_greedy(), "greedy");
  expect_same(make_dist(11, 2), "dist(seed=11,stream=2)");
  TopWSettings geometry_off;
  geometry_off.gamma = 0.0;
  geometry_off.m = 100;
  expect_same(make_top_w(geometry_off), "top_w(gamma=0,m=100)");
}

TEST(SamplerFactories, ChainsOfTypedSamplers) {
  SamplerChain typed;
  typed.add(make_top_k(20)).add(make_top_p(0.95)).add(make_temperature(0.5));
  auto named = parse_chain("top_k(k=20),top_p(p=0.95),temperature(t=0.5)");
  const std::vector<float> l = logits(500, 9);
  EXPECT_EQ(typed.probs(l), named->probs(l));
  EXPECT_EQ(typed.name(), named->name());
}

TEST(SamplerFactories, OutOfRangeParametersAreTheRegistrysErrors) {
  for (auto bad : {+[] { return make_top_k(-1); }, +[] { return make_top_p(1.5); },
                   +[] { return make_temperature(-0.1); }, +[] { return make_min_p(0.1, 0); }}) {
    try {
      bad();
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << e.what();
      EXPECT_NE(std::string(e.what()).find("sampler '"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace decodelab
