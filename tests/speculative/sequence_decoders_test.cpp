// The sequence-level decoders, block and traversal, on analytic TableModel target/draft pairs:
//   - the first two generated tokens follow the exact target law over several draft/target
//     divergences, both temperatures, i.i.d., without-replacement and deterministic drafts, draft
//     laws of their own and truncation (chi-square + TV at false-alarm rate 1e-3, fixed seeds), and
//     tokens 3 and 4 too, after complete steps;
//   - the same check catches broken variants (the traversal told the wrong law of the children);
//   - block verification of a chain is traversal of that chain, token for token;
//   - temperature 0 reproduces greedy decoding, and both models end committed to the stream.
#include <gtest/gtest.h>

#include <cstdio>

#include "decoders/speculative/sequence_drafters.hpp"
#include "decoders/speculative/tree_speculation.hpp"
#include "tests/speculative/first_tokens_fit.hpp"

namespace decodelab {
namespace {

constexpr int kVocab = 6;

using Config = testing::DraftPairConfig;

const std::vector<Config> kConfigs = {
    {"block", {{"L", int64_t(1)}, {"temperature", 1.0}}, 1.0, 0.3},
    {"block", {{"L", int64_t(3)}, {"temperature", 0.3}}, 1.6, 0.2},
    {"block", {{"L", int64_t(3)}, {"temperature", 1.0}}, 0.6, 0.5},
    {"block", {{"L", int64_t(2)}, {"deterministic", true}, {"temperature", 1.0}}, 1.0, 0.4},
    {"traversal", {{"k", int64_t(2)}, {"L", int64_t(2)}, {"temperature", 1.0}}, 0.6, 0.3},
    {"traversal", {{"k", int64_t(3)}, {"L", int64_t(3)}, {"temperature", 0.3}}, 1.0, 0.5},
    {"traversal", {{"k", int64_t(8)}, {"L", int64_t(1)}, {"temperature", 1.0}}, 1.0, 0.7},
    {"traversal", {{"k", int64_t(4)}, {"L", int64_t(2)}, {"replacement", false}, {"temperature", 1.0}}, 1.6, 0.3},
    {"traversal",
     {{"k", int64_t(3)}, {"L", int64_t(2)}, {"replacement", false}, {"top_k", int64_t(3)}, {"temperature", 0.3}},
     1.0,
     0.4},
    {"traversal", {{"k", int64_t(3)}, {"L", int64_t(2)}, {"deterministic", true}, {"temperature", 1.0}}, 1.6, 0.2},
    {"traversal", {{"k", int64_t(3)}, {"L", int64_t(3)}, {"deterministic", true}, {"temperature", 0.3}}, 0.6, 0.4},
    {"traversal", {{"k", int64_t(2)}, {"L", int64_t(3)}, {"draft_temperature", 1.5}, {"temperature", 0.3}}, 1.0, 0.3},
    {"traversal", {{"k", int64_t(3)}, {"L", int64_t(2)}, {"min_p", 0.1}, {"temperature", 1.0}}, 1.3, 0.3},
};

TEST(SequenceDecoders, FirstTwoTokensFollowTheExactTargetLaw) {
  const std::vector<TokenId> prompt{1, 2, 3, 1, 2};
  testing::expect_first_two_exact(kConfigs, kVocab, 700, prompt);
}

TEST(SequenceDecoders, LaterTokensFollowTheExactTargetLaw) {
  // Tokens 3 and 4 come after one or more complete steps (commit and the draft's catch-up).
  const std::vector<TokenId> prompt{0, 5};
  const std::vector<Config> configs = {
      {"block", {{"L", int64_t(2)}, {"temperature", 1.0}}, 1.3, 0.3},
      {"traversal", {{"k", int64_t(2)}, {"L", int64_t(2)}, {"temperature", 1.0}}, 0.7, 0.3},
  };
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const Config& c = configs[i];
    auto target = TableModel::random(kVocab, 2, 900 + i, 1.5);
    auto draft = TableModel::derive_draft(*target, c.draft_temper, c.draft_noise, 950 + i);
    ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
    auto decoder = make_decoder(c.decoder, c.params, &models);
    auto chain = chain_from_params(resolve_params("test", sampling_param_specs(), {{"temperature", 1.0}}));
    const auto cond = [&](TokenId a, TokenId b) {
      return chain->probs(target->exact_logits(std::vector<TokenId>{a, b}));
    };
    std::vector<double> joint(kVocab * kVocab, 0.0);
    const std::vector<float> p1 = cond(prompt[0], prompt[1]);
    for (int a = 0; a < kVocab; ++a) {
      const std::vector<float> p2 = cond(prompt[1], a);
      for (int b = 0; b < kVocab; ++b) {
        const std::vector<float> p3 = cond(a, b);
        for (int x = 0; x < kVocab; ++x) {
          const std::vector<float> p4 = cond(b, x);
          for (int y = 0; y < kVocab; ++y)
            joint[std::size_t(x * kVocab + y)] +=
                double(p1[std::size_t(a)]) * p2[std::size_t(b)] * p3[std::size_t(x)] * p4[std::size_t(y)];
        }
      }
    }
    DecodeOptions options;
    options.max_new_tokens = 4;
    const std::vector<int64_t> counts = testing::seeded_outcome_counts(
        *decoder, models, prompt, options, 60000, kVocab * kVocab,
        [](const TokenStream& s) { return std::size_t(s.token(4) * kVocab + s.token(5)); });
    SCOPED_TRACE(describe(c));
    EXPECT_FITS_DISTRIBUTION(counts, std::span<const double>(joint), 1e-3);
  }
}

// The traversal rule told the wrong law of the children: a deliberately broken variant the same
// check must catch.
TEST(SequenceDecoders, TheSameCheckCatchesBrokenVariants) {
  const std::vector<TokenId> prompt{1, 2, 3, 1, 2};
  auto target = TableModel::random(kVocab, 2, 720, 1.5);
  auto draft = TableModel::derive_draft(*target, 1.0, 0.4, 820);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const ParamMap sampling{{"temperature", 1.0}};
  const auto broken = [&](std::unique_ptr<speculative::TreeDrafter> drafter, speculative::DrawKind told) {
    speculative::TreeSpeculationMethod method;
    method.drafter = std::move(drafter);
    method.sequence_rule = speculative::verify_traversal;
    method.draws = told;
    speculative::TreeSpeculativeDecoder decoder(
        chain_from_params(resolve_params("test", sampling_param_specs(), sampling)), std::move(method));
    return testing::first_two_fit(decoder, models, *target, sampling, prompt, 60000);
  };
  // The most probable tokens weighted by p/q as if they had been sampled.
  const auto argmax_as_sampled =
      broken(std::make_unique<speculative::WorSequencesDrafter>(3, 2, speculative::DraftDraw::most_probable),
             speculative::DrawKind::iid);
  EXPECT_FALSE(testing::fits(argmax_as_sampled)) << argmax_as_sampled.describe();
  EXPECT_LT(argmax_as_sampled.p_value, 1e-3);
  std::printf("traversal, most probable children told i.i.d.: %s\n", argmax_as_sampled.describe().c_str());
  // Children drawn without replacement, verified as i.i.d. (the residual keeps drawn tokens' mass).
  const auto wor_as_iid = broken(std::make_unique<speculative::WorSequencesDrafter>(4, 2), speculative::DrawKind::iid);
  EXPECT_FALSE(testing::fits(wor_as_iid)) << wor_as_iid.describe();
  EXPECT_LT(wor_as_iid.p_value, 1e-3);
  std::printf("traversal, children without replacement told i.i.d.: %s\n", wor_as_iid.describe().c_str());
}

TEST(SequenceDecoders, BlockIsTraversalOfOneChain) {
  auto target = TableModel::random(kVocab, 2, 41, 1.2);
  auto draft = TableModel::derive_draft(*target, 1.4, 0.3, 42);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const std::vector<TokenId> prompt{1, 2, 3};
  DecodeOptions options;
  options.max_new_tokens = 16;
  for (int64_t L : {1, 3}) {
    auto block = make_decoder("block", {{"L", L}, {"temperature", 0.8}}, &models);
    auto traversal = make_decoder("traversal", {{"k", int64_t(1)}, {"L", L}, {"temperature", 0.8}}, &models);
    for (uint64_t seed = 0; seed < 200; ++seed) {
      options.seed = seed;
      TokenStream a(prompt), b(prompt);
      block->generate(models, options, a);
      traversal->generate(models, options, b);
      ASSERT_EQ(a.tokens(), b.tokens()) << "L=" << L << " seed " << seed;
    }
  }
}

TEST(SequenceDecoders, TemperatureZeroIsGreedyAndModelsEndOnTheStream) {
  auto target = TableModel::random(12, 2, 31, 1.0);
  auto draft = TableModel::derive_draft(*target, 1.5, 0.5, 32);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const std::vector<TokenId> prompt{3, 4};
  DecodeOptions options;
  options.max_new_tokens = 40;
  TokenStream reference(prompt);
  make_decoder("greedy", {}, &models)->generate(models, options, reference);
  for (const auto& [name, params] : std::vector<std::pair<std::string, ParamMap>>{
           {"block", {{"L", int64_t(4)}}},
           {"block", {{"L", int64_t(4)}, {"draft_temperature", 1.0}}},
           {"traversal", {{"k", int64_t(3)}, {"draft_temperature", 1.0}}},
           {"traversal", {{"k", int64_t(3)}, {"replacement", false}, {"draft_temperature", 1.0}}},
           {"traversal", {{"k", int64_t(3)}, {"deterministic", true}}},
       }) {
    ParamMap p = params;
    p["temperature"] = 0.0;
    for (uint64_t seed : {1u, 2u}) {
      options.seed = seed;
      TokenStream s(prompt);
      make_decoder(name, p, &models)->generate(models, options, s);
      EXPECT_EQ(s.tokens(), reference.tokens()) << name;
    }
  }
  // Commit bookkeeping: at every stop length, both models hold the stream minus at most its last
  // token, one target pass per step.
  for (const std::string name : {"block", "traversal"}) {
    for (int max_tokens : {1, 2, 7, 30}) {
      options.seed = uint64_t(max_tokens);
      options.max_new_tokens = max_tokens;
      TokenStream s(prompt);
      const Stats stats = make_decoder(name, {}, &models)->generate(models, options, s);
      EXPECT_EQ(s.size(), prompt.size() + std::size_t(max_tokens)) << name;
      EXPECT_EQ(stats.target_calls, stats.steps + 1) << name;
      EXPECT_LE(stats.tokens_accepted, stats.tokens_proposed) << name;
    }
  }
}

}  // namespace
}  // namespace decodelab
