// The plain sampling decoder reproduces the model's exact distributions (chi-square + TV at
// false-alarm rate 1e-3, fixed seeds), is reproducible, and honours stop conditions.
#include <gtest/gtest.h>

#include <map>

#include "decodelab/decoder.hpp"
#include "decodelab/error.hpp"
#include "decodelab/sampler.hpp"
#include "decodelab/table_model.hpp"
#include "tests/support/seeded_runs.hpp"
#include "tests/support/stats.hpp"

namespace decodelab {
namespace {

TEST(SampleDecoder, FirstTwoTokensFollowTheExactJointLaw) {
  auto model = TableModel::random(6, 2, 17, 1.0);
  ModelSet models{{"target", model.get()}};
  auto decoder = make_decoder("sample", {{"temperature", 0.7}, {"top_k", int64_t(4)}}, &models);
  const std::vector<TokenId> prompt{1, 2};
  // Exact joint law of (x1, x2) under top_k(4) then temperature 0.7.
  auto chain = parse_chain("top_k(k=4),temperature(t=0.7)");
  const std::vector<float> p1 = chain->probs(model->exact_logits(prompt));
  std::vector<double> joint(36, 0.0);
  for (int a = 0; a < 6; ++a) {
    const std::vector<float> p2 = chain->probs(model->exact_logits(std::vector<TokenId>{2, a}));
    for (int b = 0; b < 6; ++b) joint[std::size_t(a * 6 + b)] = double(p1[std::size_t(a)]) * p2[std::size_t(b)];
  }
  DecodeOptions options;
  options.max_new_tokens = 2;
  const std::vector<int64_t> counts =
      testing::seeded_outcome_counts(*decoder, models, prompt, options, 30000, 36,
                                     [](const TokenStream& s) { return std::size_t(s.token(2) * 6 + s.token(3)); });
  EXPECT_FITS_DISTRIBUTION(counts, std::span<const double>(joint), 1e-3);
}

TEST(SampleDecoder, ReproducibleAndStops) {
  auto model = TableModel::random(30, 2, 3, 2.0, /*eos=*/29);
  ModelSet models{{"target", model.get()}};
  auto decoder = make_decoder("sample", {}, &models);
  DecodeOptions options;
  options.seed = 42;
  options.max_new_tokens = 50;
  TokenStream a(std::vector<TokenId>{1}), b(std::vector<TokenId>{1});
  const Stats sa = decoder->generate(models, options, a);
  decoder->generate(models, options, b);
  EXPECT_EQ(a.tokens(), b.tokens());
  EXPECT_TRUE(sa.stop_reason == "max_tokens" || sa.stop_reason == "eos") << sa.stop_reason;
  if (sa.stop_reason == "eos") {
    EXPECT_EQ(a.back(), 29);
  }
  // logprobs are the raw model's
  const auto lp = log_softmax(model->exact_logits(std::vector<TokenId>{1}));
  EXPECT_NEAR(a.at(1).logprob, lp[std::size_t(a.token(1))], 1e-5);

  options.stop_tokens = {a.token(3)};
  TokenStream c(std::vector<TokenId>{1});
  const Stats sc = decoder->generate(models, options, c);
  EXPECT_EQ(sc.stop_reason, "stop_token");
  EXPECT_LE(c.size(), 4u);

  std::atomic<bool> cancel{true};
  options.cancel = &cancel;
  TokenStream d(std::vector<TokenId>{1});
  EXPECT_EQ(decoder->generate(models, options, d).stop_reason, "cancelled");
  EXPECT_EQ(d.size(), 1u);
}

TEST(SampleDecoder, GreedyFollowsArgmaxAndCountsCalls) {
  auto model = TableModel::random(30, 2, 3, 2.0);
  ModelSet models{{"target", model.get()}};
  auto decoder = make_decoder("greedy", {}, &models);
  DecodeOptions options;
  options.max_new_tokens = 10;
  TokenStream s(std::vector<TokenId>{4, 5});
  const Stats st = decoder->generate(models, options, s);
  for (std::size_t i = 2; i < s.size(); ++i) {
    const auto toks = s.tokens();
    EXPECT_EQ(s.token(i), argmax(model->exact_logits(std::span<const TokenId>(toks).subspan(0, i))));
  }
  EXPECT_EQ(st.tokens_generated, 10);
  EXPECT_EQ(st.target_calls, 1 + 9);  // prefill + one per token but the last
}

TEST(Decoders, RegistryErrors) {
  auto model = TableModel::random(8, 1, 3, 2.0);
  ModelSet models{{"target", model.get()}};
  EXPECT_THROW(make_decoder("nosuch", {}, &models), Error);
  EXPECT_THROW(make_decoder("sample", {{"temperature", -1.0}}, &models), Error);
  EXPECT_THROW(make_decoder("sample", {{"chain", std::string("top_k(k=abc)")}}, &models), Error);
  ModelSet none;
  EXPECT_THROW(make_decoder("sample", {}, &none), Error);
}

}  // namespace
}  // namespace decodelab
