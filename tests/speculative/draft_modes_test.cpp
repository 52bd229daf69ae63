// Draft sampling set apart from the target's (draft_temperature, draft_top_k, draft_chain) and
// deterministic drafts (the most probable draft tokens as children), on analytic TableModel
// target/draft pairs:
//   - the first two generated tokens follow the exact target law for every draft-model decoder
//     with its own draft law, and for deterministic chains and trees (chi-square + TV at false-alarm
//     rate 1e-3, fixed seeds);
//   - the same check catches two broken variants: deterministic children verified as draws without
//     replacement from q, and drafts drawn at one temperature but verified with the law of another;
//   - at target temperature 0 the trees no longer collapse to a chain, and the output is still
//     greedy decoding;
//   - defaults leave the draft on the target's chain, and bad combinations fail clearly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "decodelab/error.hpp"
#include "decoders/speculative/sequence_drafters.hpp"
#include "decoders/speculative/tree_speculation.hpp"
#include "tests/speculative/first_tokens_fit.hpp"

namespace decodelab {
namespace {

constexpr int kVocab = 6;

using Config = testing::DraftPairConfig;

const std::vector<Config> kConfigs = {
    {"sd", {{"L", int64_t(3)}, {"temperature", 1.0}, {"draft_temperature", 0.5}}, 1.0, 0.3},
    {"sd",
     {{"L", int64_t(2)}, {"temperature", 0.3}, {"draft_temperature", 1.5}, {"draft_top_k", int64_t(3)}},
     1.6,
     0.2},
    {"specinfer", {{"k", int64_t(3)}, {"L", int64_t(2)}, {"temperature", 0.3}, {"draft_temperature", 1.4}}, 1.0, 0.4},
    {"specinfer",
     {{"k", int64_t(3)}, {"L", int64_t(2)}, {"replacement", false}, {"temperature", 1.0}, {"draft_top_k", int64_t(2)}},
     0.6,
     0.3},
    {"spectr", {{"k", int64_t(3)}, {"L", int64_t(2)}, {"temperature", 1.0}, {"draft_temperature", 0.6}}, 1.0, 0.5},
    {"dyspec",
     {{"budget", int64_t(6)}, {"max_depth", int64_t(3)}, {"temperature", 0.3}, {"draft_temperature", 1.5}},
     1.6,
     0.3},
    {"spectr",
     {{"k", int64_t(2)}, {"L", int64_t(2)}, {"draft_chain", std::string("top_k(k=4),temperature(t=0.8)")}},
     1.0,
     0.3},
    // Deterministic drafts: the most probable draft tokens, verified with the target-only rule.
    {"sd", {{"L", int64_t(3)}, {"deterministic", true}, {"temperature", 1.0}}, 1.0, 0.3},
    {"specinfer", {{"k", int64_t(3)}, {"L", int64_t(2)}, {"deterministic", true}, {"temperature", 0.3}}, 1.6, 0.3},
    {"specinfer", {{"k", int64_t(4)}, {"L", int64_t(3)}, {"deterministic", true}, {"temperature", 1.0}}, 0.6, 0.5},
    {"dyspec",
     {{"budget", int64_t(6)}, {"max_depth", int64_t(3)}, {"deterministic", true}, {"temperature", 1.0}},
     1.0,
     0.4},
};

TEST(DraftModes, FirstTwoTokensFollowTheExactTargetLaw) {
  const std::vector<TokenId> prompt{1, 2, 3, 1, 2};
  testing::expect_first_two_exact(kConfigs, kVocab, 500, prompt);
}

// Draws each chain token from q^2 (renormalized: q at half the temperature) but leaves the tree's
// q as the chain gave it, so verification uses a law the drafts were not drawn from: the bug of a
// draft temperature applied when drafting and forgotten when verifying.
class MislabeledChainDrafter final : public speculative::TreeDrafter {
 public:
  explicit MislabeledChainDrafter(int length) : length_(length) {}
  void build(speculative::DraftContext& context, speculative::DraftTree& tree) override {
    int node = -1;
    for (int depth = 1; depth <= std::min(length_, context.max_nodes); ++depth) {
      if (depth > 1) context.evaluate(tree);
      std::vector<float> sharp(tree.q(node).begin(), tree.q(node).end());
      for (float& v : sharp) v *= v;
      node = tree.add_node(node, sample_from_weights(sharp, context.rng(depth, 0).uniform_double()));
      tree.propose(node);
    }
  }

 private:
  int length_;
};

TEST(DraftModes, TheSameCheckCatchesBrokenVariants) {
  const std::vector<TokenId> prompt{1, 2, 3, 1, 2};
  auto target = TableModel::random(kVocab, 2, 520, 1.5);
  auto draft = TableModel::derive_draft(*target, 1.0, 0.4, 620);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const ParamMap sampling{{"temperature", 1.0}};
  const auto chain = [&] { return chain_from_params(resolve_params("test", sampling_param_specs(), sampling)); };
  {
    // The SpecInfer/Sequoia rule without replacement on the most probable tokens.
    speculative::TreeDrafter* drafter =
        new speculative::WorSequencesDrafter(3, 2, speculative::DraftDraw::most_probable);
    speculative::TreeSpeculativeDecoder broken(
        chain(), speculative::TreeSpeculationMethod{std::unique_ptr<speculative::TreeDrafter>(drafter),
                                                    speculative::verify_rrs_wor});
    const auto fit = testing::first_two_fit(broken, models, *target, sampling, prompt, 60000);
    EXPECT_FALSE(testing::fits(fit)) << "deterministic children verified as draws without replacement: "
                                     << fit.describe();
    std::printf("most probable children verified by rrs_wor: %s\n", fit.describe().c_str());
    EXPECT_LT(fit.p_value, 1e-3);
  }
  {
    speculative::TreeSpeculativeDecoder broken(
        chain(),
        speculative::TreeSpeculationMethod{std::make_unique<MislabeledChainDrafter>(3), speculative::verify_rrs_iid});
    const auto fit = testing::first_two_fit(broken, models, *target, sampling, prompt, 60000);
    EXPECT_FALSE(testing::fits(fit)) << "drafted at one temperature, verified with another: " << fit.describe();
    std::printf("drafted from q^2, verified with q: %s\n", fit.describe().c_str());
    EXPECT_LT(fit.p_value, 1e-3);
  }
}

TEST(DraftModes, TargetTemperatureZeroGrowsRealTreesAndStaysGreedy) {
  auto target = TableModel::random(12, 2, 31, 1.0);
  auto draft = TableModel::derive_draft(*target, 1.5, 0.5, 32);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const std::vector<TokenId> prompt{3, 4};
  DecodeOptions options;
  options.max_new_tokens = 40;
  TokenStream reference(prompt);
  make_decoder("greedy", {}, &models)->generate(models, options, reference);
  const auto run = [&](const std::string& name, ParamMap params) {
    params["temperature"] = 0.0;
    options.seed = 7;
    TokenStream s(prompt);
    const Stats stats = make_decoder(name, params, &models)->generate(models, options, s);
    EXPECT_EQ(s.tokens(), reference.tokens()) << name;
    return stats;
  };
  // The draft on the target's chain is greedy too: every tree is one chain of L tokens.
  const Stats chain = run("specinfer", {{"k", int64_t(3)}, {"L", int64_t(3)}});
  EXPECT_DOUBLE_EQ(chain.metrics.at("mean_tree_size"), chain.metrics.at("mean_tree_depth"));
  for (const auto& [name, params] : std::vector<std::pair<std::string, ParamMap>>{
           {"specinfer", {{"k", int64_t(3)}, {"L", int64_t(3)}, {"draft_temperature", 1.0}}},
           {"specinfer", {{"k", int64_t(3)}, {"L", int64_t(3)}, {"replacement", false}, {"draft_temperature", 1.0}}},
           {"spectr", {{"k", int64_t(3)}, {"L", int64_t(3)}, {"draft_temperature", 1.0}}},
           {"specinfer", {{"k", int64_t(3)}, {"L", int64_t(3)}, {"deterministic", true}}},
           {"dyspec", {{"deterministic", true}}},
           {"dyspec", {{"draft_temperature", 1.0}}},
           {"sd", {{"L", int64_t(4)}, {"deterministic", true}}},
           {"sd", {{"L", int64_t(4)}, {"draft_temperature", 1.0}, {"draft_top_k", int64_t(3)}}},
       }) {
    const Stats stats = run(name, params);
    if (name != "sd") {
      EXPECT_GT(stats.metrics.at("mean_tree_size"), stats.metrics.at("mean_tree_depth") + 0.5)
          << name << ": a real tree, not a chain";
    }
  }
  // Deterministic top-3 children hold the target's argmax at least as often as one greedy chain.
  const Stats top = run("specinfer", {{"k", int64_t(3)}, {"L", int64_t(3)}, {"deterministic", true}});
  EXPECT_GE(top.metrics.at("tokens_per_step"), chain.metrics.at("tokens_per_step"));
}

TEST(DraftModes, DefaultsKeepTheTargetChainAndBadCombinationsFail) {
  auto target = TableModel::random(kVocab, 2, 11, 1.0);
  auto draft = TableModel::derive_draft(*target, 1.3, 0.3, 12);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  DecodeOptions options;
  options.seed = 3;
  options.max_new_tokens = 20;
  const std::vector<TokenId> prompt{1, 2};
  // draft_temperature = the target's temperature and draft_top_k = the target's top_k give the
  // same draft chain as the defaults, hence the same tokens.
  TokenStream a(prompt), b(prompt);
  make_decoder("specinfer", {{"temperature", 0.7}, {"top_k", int64_t(4)}}, &models)->generate(models, options, a);
  make_decoder("specinfer",
               {{"temperature", 0.7}, {"top_k", int64_t(4)}, {"draft_temperature", 0.7}, {"draft_top_k", int64_t(4)}},
               &models)
      ->generate(models, options, b);
  EXPECT_EQ(a.tokens(), b.tokens());
  // And a different draft law changes the drafts (so the parameter is not ignored).
  int differing = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    options.seed = seed;
    TokenStream c(prompt), d(prompt);
    const Stats sc = make_decoder("sd", {{"temperature", 0.7}}, &models)->generate(models, options, c);
    const Stats sd =
        make_decoder("sd", {{"temperature", 0.7}, {"draft_temperature", 2.0}}, &models)->generate(models, options, d);
    differing += sc.tokens_accepted != sd.tokens_accepted || c.tokens() != d.tokens();
  }
  EXPECT_GT(differing, 10);
  const auto code = [&](const ParamMap& params) {
    try {
      make_decoder("sd", params, &models);
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::internal;
  };
  EXPECT_EQ(code({{"draft_temperature", -0.5}}), ErrorCode::invalid_argument);
  EXPECT_EQ(code({{"draft_top_k", int64_t(-2)}}), ErrorCode::invalid_argument);
  EXPECT_EQ(code({{"draft_chain", std::string("temperature(t=2)")}, {"draft_temperature", 1.0}}),
            ErrorCode::invalid_argument);
  EXPECT_EQ(code({{"chain", std::string("temperature(t=0.5)")}, {"draft_top_k", int64_t(3)}}),
            ErrorCode::invalid_argument);
  EXPECT_THROW(make_decoder("ngram", {{"draft_temperature", 1.0}}, &models), Error);  // no draft, no draft law
}

}  // namespace
}  // namespace decodelab
