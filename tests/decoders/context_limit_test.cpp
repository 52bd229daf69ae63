// Reaching a model's context length ends generation with stop reason "length" and keeps every
// token generated so far, for every decoder; speculative decoders shorten their drafts to the
// room that is left. (It used to fail the whole request: ngram with a 60-token prompt at
// context 64 failed at its first step.)
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "decodelab/decoder.hpp"
#include "decodelab/params.hpp"
#include "decodelab/table_model.hpp"

namespace decodelab {
namespace {

const std::vector<std::string> kDecoders = {"sample",
                                            "greedy",
                                            "sd(L=4)",
                                            "spectr(k=3,L=3)",
                                            "specinfer(k=2,L=4,replacement=false)",
                                            "dyspec(budget=12)",
                                            "sequoia(budget=12)",
                                            "delayed(k=3,L=4,delay=2,verify=traversal)",
                                            "block(L=4)",
                                            "traversal(k=3,L=3)",
                                            "traversal(k=3,L=3,deterministic=true)",
                                            "ngram(L=8)",
                                            "cntp(max_trials=4)",
                                            "smc(particles=4)",
                                            "awrs(constraint=regex(pattern=( [a-z])+))",
                                            "masking(constraint=regex(pattern=( [a-z])+))"};

std::vector<TokenId> repetitive_prompt(std::size_t n) {
  std::vector<TokenId> p;
  for (std::size_t i = 0; i < n; ++i) p.push_back(TokenId(i % 7));  // n-gram lookup finds matches
  return p;
}

Stats run(const std::string& spec, const ModelSet& models, std::span<const TokenId> prompt, int max_tokens,
          TokenStream& out) {
  auto [name, params] = parse_spec(spec);
  DecodeOptions options;
  options.seed = 3;
  options.max_new_tokens = max_tokens;
  out = TokenStream(prompt);
  return make_decoder(name, params, &models)->generate(models, options, out);
}

TEST(ContextLimit, EveryDecoderStopsWithLengthAndKeepsItsTokens) {
  for (std::size_t prompt_size : {std::size_t(20), std::size_t(60)}) {
    auto target = TableModel::random(26, 2, 5, 1.5);
    auto draft = TableModel::derive_draft(*target, 1.2, 0.2, 9);
    target->set_context_length(64);
    draft->set_context_length(64);
    ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
    const std::vector<TokenId> prompt = repetitive_prompt(prompt_size);
    for (const std::string& spec : kDecoders) {
      TokenStream stream;
      Stats stats;
      ASSERT_NO_THROW(stats = run(spec, models, prompt, 200, stream)) << spec << ", prompt " << prompt_size;
      EXPECT_EQ(stats.stop_reason, "length") << spec << ", prompt " << prompt_size;
      EXPECT_GE(stream.generated_size(), 1u) << spec;
      EXPECT_LE(stream.size(), 65u) << spec << ": the last token needs no room, nothing else exceeds 64";
      EXPECT_EQ(stats.metrics.count("context_full_draft"), 0u) << spec;
    }
  }
}

TEST(ContextLimit, PlainDecodingFillsTheContextWithTheUnlimitedRunsTokens) {
  auto target = TableModel::random(26, 2, 5, 1.5);
  ModelSet models{{"target", target.get()}};
  const std::vector<TokenId> prompt = repetitive_prompt(60);
  for (const std::string spec : {"sample", "greedy"}) {
    TokenStream unlimited, limited;
    run(spec, models, prompt, 30, unlimited);
    target->set_context_length(64);
    run(spec, models, prompt, 30, limited);
    target->set_context_length(0);
    // 64 tokens in the context, then one more decided from the last logits.
    ASSERT_EQ(limited.generated_size(), 5u) << spec;
    const auto all = unlimited.generated_tokens(), some = limited.generated_tokens();
    EXPECT_EQ(std::vector<TokenId>(all.begin(), all.begin() + 5), some) << spec;
  }
}

TEST(ContextLimit, TheDraftsSmallerContextIsNamed) {
  auto target = TableModel::random(26, 2, 5, 1.5);
  auto draft = TableModel::derive_draft(*target, 1.2, 0.2, 9);
  target->set_context_length(64);
  draft->set_context_length(40);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  for (const std::string spec : {"sd(L=4)", "spectr(k=2,L=3)", "dyspec(budget=8)"}) {
    TokenStream stream;
    const Stats stats = run(spec, models, repetitive_prompt(20), 200, stream);
    EXPECT_EQ(stats.stop_reason, "length") << spec;
    EXPECT_EQ(stats.metrics.count("context_full_draft"), 1u) << spec;
    EXPECT_EQ(stream.size(), 40u) << spec << ": the draft holds the whole stream, and it has room for 40";
  }
}

}  // namespace
}  // namespace decodelab
