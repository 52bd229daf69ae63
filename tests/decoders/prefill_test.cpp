// Prefill in chunks (DecodeOptions::prefill_chunk): every decoder's output is the same whatever the
// chunk size (bit for bit on analytic models, to 1e-4 in log-probability on SmolLM2), a chunk is
// one model call, and a cancel set while a long prompt is prefilled stops the generation before
// the next chunk: stop reason "cancelled", nothing emitted, every sequence freed. (A prefill used
// to be one model call that nothing could stop.)
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "decodelab/decoder.hpp"
#include "decodelab/error.hpp"
#include "decodelab/model_factory.hpp"
#include "decodelab/params.hpp"
#include "decodelab/table_model.hpp"
#include "tests/model/model_paths.hpp"

namespace decodelab {
namespace {

// Every decoder, at settings its golden case uses.
const std::vector<std::string> kDecoders = {"sample",
                                            "sample(temperature=0.7,top_k=8)",
                                            "greedy",
                                            "sd(L=4)",
                                            "spectr(k=3,L=3)",
                                            "specinfer(k=3,L=3)",
                                            "dyspec(budget=12,width=3)",
                                            "sequoia(budget=10,acceptance=0.5/0.2/0.1)",
                                            "delayed(k=3,L=3,delay=1)",
                                            "block(L=4)",
                                            "traversal(k=3,L=3)",
                                            "ngram(L=4,n=2)",
                                            "cntp(max_trials=4,trials=constant)",
                                            "smc(particles=4)",
                                            "smc(particles=4,lookahead=2,alpha=3)",
                                            "awrs(constraint=regex(pattern=( [abc])+))",
                                            "masking(constraint=regex(pattern=( [abc])+))"};

// Long enough for several chunks, repetitive so that ngram finds matches.
std::vector<TokenId> long_prompt(std::size_t n = 40) {
  std::vector<TokenId> p;
  for (std::size_t i = 0; i < n; ++i) p.push_back(TokenId((i * 5 + i / 7) % 11));
  return p;
}

struct Outcome {
  std::vector<TokenRecord> records;
  Stats stats;
};

Outcome run(const std::string& spec, const ModelSet& models, std::span<const TokenId> prompt, DecodeOptions options) {
  auto [name, params] = parse_spec(spec);
  auto decoder = make_decoder(name, params, &models);
  TokenStream stream(prompt);
  Outcome r;
  r.stats = decoder->generate(models, options, stream);
  for (std::size_t i = prompt.size(); i < stream.size(); ++i) r.records.push_back(stream.at(i));
  return r;
}

DecodeOptions options_with(int prefill_chunk, int max_tokens, uint64_t seed = 5) {
  DecodeOptions o;
  o.seed = seed;
  o.max_new_tokens = max_tokens;
  o.prefill_chunk = prefill_chunk;
  return o;
}

// Same tokens, origins and steps; log-probabilities within `tolerance` (0: the same bits); the same
// counts but the model calls, which chunking adds to.
void expect_same(const Outcome& one_call, const Outcome& chunked, double tolerance, const std::string& what) {
  ASSERT_EQ(one_call.records.size(), chunked.records.size()) << what;
  for (std::size_t i = 0; i < one_call.records.size(); ++i) {
    const TokenRecord &a = one_call.records[i], &b = chunked.records[i];
    EXPECT_EQ(a.id, b.id) << what << ", token " << i;
    EXPECT_EQ(int(a.origin), int(b.origin)) << what << ", token " << i;
    EXPECT_EQ(a.step, b.step) << what << ", token " << i;
    if (tolerance == 0.0) EXPECT_EQ(a.logprob, b.logprob) << what << ", token " << i;
    else EXPECT_NEAR(a.logprob, b.logprob, tolerance) << what << ", token " << i;
  }
  EXPECT_EQ(one_call.stats.steps, chunked.stats.steps) << what;
  EXPECT_EQ(one_call.stats.target_nodes, chunked.stats.target_nodes) << what;
  EXPECT_EQ(one_call.stats.draft_nodes, chunked.stats.draft_nodes) << what;
  EXPECT_EQ(one_call.stats.tokens_proposed, chunked.stats.tokens_proposed) << what;
  EXPECT_EQ(one_call.stats.tokens_accepted, chunked.stats.tokens_accepted) << what;
  EXPECT_EQ(one_call.stats.stop_reason, chunked.stats.stop_reason) << what;
}

constexpr int kOneCall = 1 << 30;

TEST(Prefill, ChunksGiveTheSameOutputBitForBitOnAnalyticModels) {
  auto target = TableModel::random(26, 2, 41, 1.5);
  auto draft = TableModel::derive_draft(*target, 1.3, 0.25, 5);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const std::vector<TokenId> prompt = long_prompt();
  for (const std::string& spec : kDecoders) {
    const Outcome one_call = run(spec, models, prompt, options_with(kOneCall, 16));
    EXPECT_EQ(one_call.records.size(), 16u) << spec;
    for (int chunk : {1, 3, 16, 39, 40}) {
      expect_same(one_call, run(spec, models, prompt, options_with(chunk, 16)), 0.0,
                  spec + " with prefill_chunk " + std::to_string(chunk));
    }
  }
}

TEST(Prefill, EachChunkIsOneModelCall) {
  auto target = TableModel::random(26, 2, 41, 1.5);
  ModelSet models{{"target", target.get()}};
  const std::vector<TokenId> prompt = long_prompt(40);
  for (const auto& [chunk, calls] :
       std::vector<std::pair<int, int>>{{1, 40}, {16, 3}, {20, 2}, {40, 1}, {41, 1}, {kOneCall, 1}}) {
    const Outcome r = run("sample", models, prompt, options_with(chunk, 0));
    EXPECT_EQ(r.stats.target_calls, calls) << "prefill_chunk " << chunk;
    EXPECT_EQ(r.stats.target_nodes, 40) << "prefill_chunk " << chunk;
    EXPECT_EQ(r.stats.stop_reason, "max_tokens");
  }
  EXPECT_EQ(DecodeOptions{}.prefill_chunk, 64);
}

TEST(Prefill, AChunkSizeBelowOneIsRefusedNamingTheOption) {
  auto target = TableModel::random(26, 2, 41, 1.5);
  ModelSet models{{"target", target.get()}};
  const std::vector<TokenId> prompt = long_prompt();
  for (int chunk : {0, -1, -256}) {
    try {
      run("sample", models, prompt, options_with(chunk, 4));
      ADD_FAILURE() << "prefill_chunk " << chunk << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("prefill_chunk"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::to_string(chunk)), std::string::npos) << e.what();
    }
  }
}

// A table model that sets `cancel` while it computes its `trigger`-th row of logits, that is in
// the middle of a prefill chunk: the chunk's call finishes, the next one must not start.
std::shared_ptr<TableModel> cancelling_model(const TableModel& base, std::atomic<bool>& cancel, int trigger) {
  auto rows = std::make_shared<int>(0);
  auto fn = [&base, &cancel, trigger, rows](std::span<const TokenId> context) {
    if (++*rows == trigger) cancel.store(true);
    return base.exact_logits(context);
  };
  return std::make_shared<TableModel>(base.info().name + "+cancel", base.vocab_size(), base.order(), fn);
}

// No sequence is left on `model` (sequence ids are handed out from 0).
void expect_no_sequences(const LanguageModel& model, const std::string& what) {
  for (SeqId s = 0; s < 64; ++s) EXPECT_THROW(model.length(s), Error) << what << ": sequence " << s << " is alive";
}

TEST(Prefill, ACancelDuringTheTargetsPrefillStopsEveryDecoderBeforeTheNextChunk) {
  auto base = TableModel::random(26, 2, 41, 1.5);
  auto draft = TableModel::derive_draft(*base, 1.3, 0.25, 5);
  const std::vector<TokenId> prompt = long_prompt(40);
  for (const std::string& spec : kDecoders) {
    std::atomic<bool> cancel{false};
    // Row 10 falls in the third chunk of 4 tokens: 3 calls, 12 nodes, then the flag is seen.
    auto target = cancelling_model(*base, cancel, 10);
    ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
    DecodeOptions options = options_with(4, 16);
    options.cancel = &cancel;
    const Outcome r = run(spec, models, prompt, options);
    EXPECT_TRUE(cancel.load()) << spec;
    EXPECT_EQ(r.stats.stop_reason, "cancelled") << spec;
    EXPECT_TRUE(r.records.empty()) << spec << " emitted " << r.records.size() << " tokens";
    EXPECT_EQ(r.stats.tokens_generated, 0) << spec;
    EXPECT_EQ(r.stats.target_calls, 3) << spec;
    EXPECT_EQ(r.stats.target_nodes, 12) << spec;
    EXPECT_EQ(r.stats.draft_nodes, 0) << spec << ": the draft's prefill ran after the target's was stopped";
    expect_no_sequences(*target, spec + ", target");
    expect_no_sequences(*draft, spec + ", draft");
  }
}

TEST(Prefill, ACancelDuringTheDraftsPrefillEndsSpeculativeDecodingCleanly) {
  auto target = TableModel::random(26, 2, 41, 1.5);
  auto draft_base = TableModel::derive_draft(*target, 1.3, 0.25, 5);
  const std::vector<TokenId> prompt = long_prompt(40);
  for (const std::string& spec :
       std::vector<std::string>{"sd(L=4)", "spectr(k=3,L=3)", "specinfer(k=3,L=3)", "dyspec(budget=12,width=3)"}) {
    std::atomic<bool> cancel{false};
    auto draft = cancelling_model(*draft_base, cancel, 6);
    ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
    DecodeOptions options = options_with(5, 16);
    options.cancel = &cancel;
    const Outcome r = run(spec, models, prompt, options);  // no "committed tokens do not match" error
    EXPECT_EQ(r.stats.stop_reason, "cancelled") << spec;
    EXPECT_TRUE(r.records.empty()) << spec;
    EXPECT_EQ(r.stats.target_nodes, 39) << spec;  // the target prefills all but the last token first
    EXPECT_EQ(r.stats.draft_nodes, 10) << spec;
    expect_no_sequences(*target, spec + ", target");
    expect_no_sequences(*draft, spec + ", draft");
  }
}

TEST(Prefill, ACancelSetBeforeGenerationStartsCallsNoModel) {
  auto target = TableModel::random(26, 2, 41, 1.5);
  auto draft = TableModel::derive_draft(*target, 1.3, 0.25, 5);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const std::vector<TokenId> prompt = long_prompt();
  const std::atomic<bool> cancel{true};
  for (const std::string& spec : kDecoders) {
    DecodeOptions options = options_with(8, 16);
    options.cancel = &cancel;
    const Outcome r = run(spec, models, prompt, options);
    EXPECT_EQ(r.stats.stop_reason, "cancelled") << spec;
    EXPECT_TRUE(r.records.empty()) << spec;
    EXPECT_EQ(r.stats.target_calls + r.stats.draft_calls, 0) << spec;
  }
}

TEST(Prefill, ChunksGiveTheSameOutputOnSmolLM2) {
  const std::string path = testing::model_path(testing::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << "SmolLM2 is not in the models cache (scripts/fetch-models)";
  // As the golden test runs it: f32 (see golden_outputs_test.cpp), the draft its first 24 blocks.
  auto target = load_model("gguf(path=" + path + ",threads=1,precision=f32)");
  auto draft = load_model("gguf(path=" + path + ",threads=1,precision=f32,layers=24)");
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const std::vector<TokenId> prompt = target->tokenize(
      "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number, computed iteratively so that large n "
      "do not exhaust the stack.\"\"\"\n    a, b = 0, 1\n    for _ in range(n):",
      false);
  ASSERT_GT(prompt.size(), 40u);
  for (const std::string& spec : std::vector<std::string>{"greedy", "sd(L=4,temperature=0.8)", "smc(particles=3)"}) {
    const Outcome one_call = run(spec, models, prompt, options_with(kOneCall, 8, 2));
    for (int chunk : {7, 32}) {
      expect_same(one_call, run(spec, models, prompt, options_with(chunk, 8, 2)), 1e-4,
                  spec + " with prefill_chunk " + std::to_string(chunk));
    }
  }
}

}  // namespace
}  // namespace decodelab
