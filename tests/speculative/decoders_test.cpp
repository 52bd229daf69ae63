// The four speculative decoders on analytic TableModel target/draft pairs: the first two
// generated tokens follow the exact target joint law (chi-square + TV at false-alarm rate 1e-3,
// fixed seeds), sd accepts at rate 1 - TV(p, q), temperature 0 reproduces greedy decoding, both
// models' KV state ends on the stream, stop conditions cut a step short, and bad setups fail with
// a clear Error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "decodelab/decoder.hpp"
#include "decodelab/error.hpp"
#include "decodelab/sampler.hpp"
#include "decodelab/table_model.hpp"
#include "decodelab/verify.hpp"
#include "tests/support/seeded_runs.hpp"
#include "tests/support/stats.hpp"

namespace decodelab {
namespace {

struct Config {
  std::string decoder;
  ParamMap params;
  double temperature;
  double draft_temper;  // derive_draft divergence
  double draft_noise;
  int samples;
};

std::string describe(const Config& c) {
  std::string s = c.decoder + "(";
  for (const auto& [k, v] : c.params) s += k + "=" + to_string(v) + ",";
  return s + "temperature=" + std::to_string(c.temperature) + ") draft(temper=" + std::to_string(c.draft_temper) +
         ",noise=" + std::to_string(c.draft_noise) + ")";
}

constexpr int kVocab = 6;

// Exact joint law of the first two generated tokens through the decoders' sampler chain.
std::vector<double> exact_joint(const TableModel& target, const ParamMap& params, double temperature,
                                const std::vector<TokenId>& prompt) {
  ParamMap sampling{{"temperature", temperature}};
  for (const char* name : {"top_k", "top_p", "min_p"})
    if (params.count(name)) sampling[name] = params.at(name);
  auto chain = chain_from_params(resolve_params("test", sampling_param_specs(), sampling));
  const std::vector<float> p1 = chain->probs(target.exact_logits(prompt));
  std::vector<double> joint(kVocab * kVocab, 0.0);
  for (int a = 0; a < kVocab; ++a) {
    std::vector<TokenId> context = prompt;
    context.push_back(a);
    const std::vector<float> p2 = chain->probs(target.exact_logits(context));
    for (int b = 0; b < kVocab; ++b)
      joint[std::size_t(a * kVocab + b)] = double(p1[std::size_t(a)]) * p2[std::size_t(b)];
  }
  return joint;
}

// Enough configurations that every decoder meets k in {1, 2, 4, 8}, L in {1, 3}, temperatures
// 0.3 and 1.0 and several draft divergences, without the full product (the suite stays fast).
const std::vector<Config> kConfigs = {
    {"sd", {{"L", int64_t(1)}}, 1.0, 1.0, 0.3, 100000},
    {"sd", {{"L", int64_t(3)}}, 0.3, 1.6, 0.2, 100000},
    {"specinfer", {{"k", int64_t(1)}, {"L", int64_t(3)}}, 1.0, 0.6, 0.4, 100000},
    {"specinfer", {{"k", int64_t(2)}, {"L", int64_t(1)}}, 0.3, 1.0, 0.5, 100000},
    {"specinfer", {{"k", int64_t(4)}, {"L", int64_t(3)}, {"replacement", false}}, 1.0, 1.6, 0.3, 100000},
    {"specinfer", {{"k", int64_t(8)}, {"L", int64_t(1)}, {"replacement", false}}, 0.3, 0.6, 0.2, 100000},
    {"specinfer", {{"k", int64_t(8)}, {"L", int64_t(3)}}, 1.0, 1.0, 0.6, 100000},
    {"spectr", {{"k", int64_t(1)}, {"L", int64_t(1)}}, 0.3, 1.6, 0.3, 100000},
    {"spectr", {{"k", int64_t(2)}, {"L", int64_t(3)}}, 1.0, 0.6, 0.3, 100000},
    {"spectr", {{"k", int64_t(4)}, {"L", int64_t(1)}}, 1.0, 1.0, 0.7, 100000},
    {"spectr", {{"k", int64_t(8)}, {"L", int64_t(3)}}, 0.3, 1.0, 0.4, 100000},
    {"dyspec", {}, 1.0, 1.0, 0.3, 100000},
    // Truncation: p and q lose different tokens; without replacement, sequences outrun the support.
    {"specinfer",
     {{"k", int64_t(4)}, {"L", int64_t(2)}, {"replacement", false}, {"top_k", int64_t(3)}},
     1.0,
     1.6,
     0.3,
     100000},
    {"spectr", {{"k", int64_t(3)}, {"L", int64_t(2)}, {"top_p", 0.8}}, 1.0, 0.6, 0.3, 100000},
    // Model-free n-gram drafts (the prompt repeats itself, so there are matches to propose).
    {"ngram", {{"L", int64_t(3)}, {"n", int64_t(2)}}, 1.0, 1.0, 0.0, 100000},
    {"ngram", {{"L", int64_t(1)}, {"n", int64_t(1)}, {"top_k", int64_t(4)}}, 0.3, 1.0, 0.0, 100000},
    {"dyspec", {{"min_p", 0.1}}, 0.3, 1.6, 0.3, 100000},
    {"dyspec", {{"budget", int64_t(6)}, {"max_depth", int64_t(3)}, {"width", int64_t(2)}}, 0.3, 1.6, 0.4, 100000},
};

TEST(SpeculativeDecoders, FirstTwoTokensFollowTheExactTargetLaw) {
  const std::vector<TokenId> prompt{1, 2, 3, 1, 2};
  for (std::size_t i = 0; i < kConfigs.size(); ++i) {
    const Config& c = kConfigs[i];
    auto target = TableModel::random(kVocab, 2, 100 + i, 1.5);
    auto draft = TableModel::derive_draft(*target, c.draft_temper, c.draft_noise, 200 + i);
    ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
    ParamMap params = c.params;
    params["temperature"] = c.temperature;
    auto decoder = make_decoder(c.decoder, params, &models);
    std::vector<int64_t> counts(kVocab * kVocab, 0);
    DecodeOptions options;
    options.max_new_tokens = 2;
    for (int n = 0; n < c.samples; ++n) {
      options.seed = uint64_t(n);
      TokenStream s(prompt);
      decoder->generate(models, options, s);
      ASSERT_EQ(s.size(), prompt.size() + 2) << describe(c);
      counts[std::size_t(s.token(prompt.size()) * kVocab + s.token(prompt.size() + 1))]++;
    }
    const std::vector<double> joint = exact_joint(*target, c.params, c.temperature, prompt);
    {
      SCOPED_TRACE(::testing::Message() << describe(c));
      EXPECT_FITS_DISTRIBUTION(counts, std::span<const double>(joint), 1e-3);
    }
  }
}

// With one draft sequence, SpecTr (rho = 1) and SpecInfer (one proposal per node) are chain
// speculative sampling: same drafts, same uniforms, hence the same tokens as sd for every seed.
TEST(SpeculativeDecoders, OneDraftReducesToSd) {
  const std::vector<TokenId> prompt{1, 2, 3};
  auto target = TableModel::random(kVocab, 2, 41, 1.2);
  auto draft = TableModel::derive_draft(*target, 1.4, 0.3, 42);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  for (int64_t L : {1, 3}) {
    auto sd = make_decoder("sd", {{"L", L}, {"temperature", 0.8}}, &models);
    auto spectr = make_decoder("spectr", {{"k", int64_t(1)}, {"L", L}, {"temperature", 0.8}}, &models);
    auto specinfer = make_decoder("specinfer", {{"k", int64_t(1)}, {"L", L}, {"temperature", 0.8}}, &models);
    DecodeOptions options;
    options.max_new_tokens = 12;
    int differing_seeds = 0;
    for (uint64_t seed = 0; seed < 200; ++seed) {
      options.seed = seed;
      TokenStream a(prompt), b(prompt), c(prompt);
      sd->generate(models, options, a);
      spectr->generate(models, options, b);
      specinfer->generate(models, options, c);
      ASSERT_EQ(a.tokens(), b.tokens()) << "spectr(k=1,L=" << L << ") seed " << seed;
      ASSERT_EQ(a.tokens(), c.tokens()) << "specinfer(k=1,L=" << L << ") seed " << seed;
      TokenStream other(prompt);
      options.seed = seed + 1000;
      sd->generate(models, options, other);
      differing_seeds += other.tokens() != a.tokens();
    }
    EXPECT_GT(differing_seeds, 150) << "the seeds must matter, or equality proves nothing";
  }
}

// A chain with a sampler that needs its model (top_w reads the embedding geometry) is bound to
// each model before use, and the output still follows the target's processed law exactly.
TEST(SpeculativeDecoders, ModelBoundSamplersWorkAndStayExact) {
  const std::vector<TokenId> prompt{1, 2, 3, 1, 2};
  auto target = TableModel::random(kVocab, 2, 31, 1.0);
  auto draft = TableModel::derive_draft(*target, 1.3, 0.3, 32);
  target->random_embeddings(8, 33);
  draft->random_embeddings(8, 34);
  const std::string chain_spec = "top_w(gamma=1,beta=4,p0=0.9)";
  auto exact = parse_chain(chain_spec);
  exact->bind({.model = target.get()});
  const std::vector<float> p1 = exact->probs(target->exact_logits(prompt));
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  for (const char* name : {"sd", "spectr", "dyspec"}) {
    auto decoder = make_decoder(name, {{"chain", chain_spec}}, &models);
    DecodeOptions options;
    options.max_new_tokens = 1;
    const std::vector<int64_t> counts =
        testing::seeded_outcome_counts(*decoder, models, prompt, options, 30000, kVocab,
                                       [&](const TokenStream& s) { return std::size_t(s.token(prompt.size())); });
    std::vector<double> want(p1.begin(), p1.end());
    SCOPED_TRACE(name);
    EXPECT_FITS_DISTRIBUTION(counts, std::span<const double>(want), 1e-3);
  }
}

TEST(SpeculativeDecoders, LaterTokensFollowTheExactTargetLawAcrossSteps) {
  // Tokens 3 and 4 are decided after one or more complete steps (commit, rollback and the draft's
  // catch-up all happened), so this checks the state carried between steps.
  const std::vector<TokenId> prompt{0, 5};
  const std::vector<Config> configs = {
      {"sd", {{"L", int64_t(1)}}, 1.0, 1.3, 0.3, 60000},
      {"spectr", {{"k", int64_t(2)}, {"L", int64_t(2)}}, 1.0, 0.7, 0.3, 60000},
      {"specinfer", {{"k", int64_t(3)}, {"L", int64_t(2)}, {"replacement", false}}, 0.3, 1.0, 0.4, 60000},
      {"dyspec", {{"budget", int64_t(5)}, {"max_depth", int64_t(2)}}, 1.0, 1.0, 0.5, 60000},
  };
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const Config& c = configs[i];
    auto target = TableModel::random(kVocab, 2, 300 + i, 1.5);
    auto draft = TableModel::derive_draft(*target, c.draft_temper, c.draft_noise, 400 + i);
    ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
    ParamMap params = c.params;
    params["temperature"] = c.temperature;
    auto decoder = make_decoder(c.decoder, params, &models);
    // Exact law of (x3, x4): sum over (x1, x2) of the chain of exact conditionals.
    ParamMap sampling{{"temperature", c.temperature}};
    auto chain = chain_from_params(resolve_params("test", sampling_param_specs(), sampling));
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
    std::vector<int64_t> counts(kVocab * kVocab, 0);
    DecodeOptions options;
    options.max_new_tokens = 4;
    for (int n = 0; n < c.samples; ++n) {
      options.seed = uint64_t(n);
      TokenStream s(prompt);
      decoder->generate(models, options, s);
      ASSERT_EQ(s.size(), 6u);
      counts[std::size_t(s.token(4) * kVocab + s.token(5))]++;
    }
    SCOPED_TRACE(::testing::Message() << describe(c));
    EXPECT_FITS_DISTRIBUTION(counts, std::span<const double>(joint), 1e-3);
  }
}

TEST(SpeculativeDecoders, SpecTrAcceptanceIsKSeqs) {
  // Order-0 models and L = 1: each step is one K-SEQ decision over k i.i.d. drafts, accepted with
  // probability 1 - (1 - beta(rho*))^k, which beats sd's 1 - TV(p, q).
  auto target = TableModel::random(8, 0, 7, 1.5);
  auto draft = TableModel::derive_draft(*target, 1.5, 0.4, 8);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const std::vector<TokenId> prompt{0};
  const std::vector<float> p = target->exact_probs(prompt), q = draft->exact_probs(prompt);
  for (int k : {2, 4}) {
    const double rho = speculative::kseq_rho(p, q, k);
    const double expected = 1.0 - std::pow(1.0 - speculative::kseq_beta(p, q, rho), k);
    EXPECT_GT(expected, 1.0 - total_variation(p, q));
    DecodeOptions options;
    options.max_new_tokens = 20000;
    TokenStream s(prompt);
    const Stats stats =
        make_decoder("spectr", {{"k", int64_t(k)}, {"L", int64_t(1)}}, &models)->generate(models, options, s);
    EXPECT_LT(std::abs(testing::binomial_z(stats.tokens_accepted, stats.steps, expected)), 4.0)
        << "k=" << k << ": " << stats.tokens_accepted << "/" << stats.steps << " vs " << expected;
  }
}

TEST(SpeculativeDecoders, ChainAcceptanceIsOneMinusTotalVariation) {
  // Order-0 models: p and q are the same at every position, so every step's single draft token
  // is accepted with probability 1 - TV(p, q).
  auto target = TableModel::random(8, 0, 5, 1.5);
  auto draft = TableModel::derive_draft(*target, 1.3, 0.3, 6);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  auto decoder = make_decoder("sd", {{"L", int64_t(1)}}, &models);
  const std::vector<TokenId> prompt{0};
  const double alpha = 1.0 - total_variation(target->exact_probs(prompt), draft->exact_probs(prompt));
  DecodeOptions options;
  options.max_new_tokens = 20000;
  TokenStream s(prompt);
  const Stats stats = decoder->generate(models, options, s);
  EXPECT_EQ(stats.tokens_proposed, stats.steps);
  EXPECT_LT(std::abs(testing::binomial_z(stats.tokens_accepted, stats.tokens_proposed, alpha)), 4.0)
      << stats.tokens_accepted << "/" << stats.tokens_proposed << " vs " << alpha;
  EXPECT_EQ(stats.target_calls, stats.steps);  // a one-token prompt needs no target prefill
}

TEST(SpeculativeDecoders, TemperatureZeroIsGreedyDecoding) {
  auto target = TableModel::random(12, 2, 31, 1.0);
  auto draft = TableModel::derive_draft(*target, 1.5, 0.5, 32);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const std::vector<TokenId> prompt{3, 4};
  DecodeOptions options;
  options.max_new_tokens = 40;
  TokenStream reference(prompt);
  make_decoder("greedy", {}, &models)->generate(models, options, reference);
  const std::vector<std::pair<std::string, ParamMap>> decoders = {
      {"sd", {{"L", int64_t(4)}}},
      {"specinfer", {{"k", int64_t(3)}}},
      {"specinfer", {{"k", int64_t(3)}, {"replacement", false}}},
      {"spectr", {{"k", int64_t(3)}}},
      {"dyspec", {}},
      {"ngram", {}},
  };
  for (const auto& [name, params] : decoders) {
    ParamMap p = params;
    p["temperature"] = 0.0;
    for (uint64_t seed : {1u, 2u, 3u}) {
      options.seed = seed;
      TokenStream s(prompt);
      make_decoder(name, p, &models)->generate(models, options, s);
      EXPECT_EQ(s.tokens(), reference.tokens()) << name;
    }
  }
}

// Delegates to a TableModel and records each sequence's committed tokens when it is freed.
class RecordingModel final : public LanguageModel {
 public:
  explicit RecordingModel(std::shared_ptr<TableModel> inner) : inner_(std::move(inner)) {}
  const ModelInfo& info() const override { return inner_->info(); }
  std::string token_text(TokenId token) const override { return inner_->token_text(token); }
  SeqId new_sequence() override {
    const SeqId seq = inner_->new_sequence();
    created.push_back(seq);
    return seq;
  }
  SeqId fork(SeqId seq) override {
    ++live_forks;
    return inner_->fork(seq);
  }
  void free_sequence(SeqId seq) override {  // forks (draft branches) are counted, not recorded
    if (std::find(created.begin(), created.end(), seq) != created.end()) freed.push_back(inner_->committed_tokens(seq));
    else --live_forks;
    inner_->free_sequence(seq);
  }
  int live_forks = 0;
  std::vector<SeqId> created;
  std::size_t length(SeqId seq) const override { return inner_->length(seq); }
  std::vector<TokenId> committed_tokens(SeqId seq) const override { return inner_->committed_tokens(seq); }
  void commit(SeqId seq, std::span<const int32_t> path) override { inner_->commit(seq, path); }
  void rollback(SeqId seq, std::size_t n) override { inner_->rollback(seq, n); }
  std::span<const float> next_logits(SeqId seq) override { return inner_->next_logits(seq); }
  std::vector<std::vector<TokenId>> freed;

 protected:
  void do_evaluate(std::span<const TreeEval> batch, std::vector<Matrix>& out) override { inner_->evaluate(batch, out); }

 private:
  std::shared_ptr<TableModel> inner_;
};

TEST(SpeculativeDecoders, BothModelsEndCommittedToTheStreamAndStopsCutSteps) {
  auto table = TableModel::random(10, 2, 41, 1.0, /*eos=*/9);
  RecordingModel target(table), draft(TableModel::derive_draft(*table, 1.2, 0.2, 42));
  ModelSet models{{"target", &target}, {"draft", &draft}};
  const std::vector<TokenId> prompt{1, 2, 3};
  for (const std::string name : {"sd", "specinfer", "spectr", "dyspec"}) {
    for (int max_tokens : {1, 2, 7, 30}) {
      DecodeOptions options;
      options.seed = uint64_t(max_tokens);
      options.max_new_tokens = max_tokens;
      options.stop_at_eos = false;
      TokenStream s(prompt);
      target.freed.clear();
      draft.freed.clear();
      const Stats stats = make_decoder(name, {}, &models)->generate(models, options, s);
      ASSERT_EQ(s.size(), prompt.size() + std::size_t(max_tokens)) << name;
      EXPECT_EQ(stats.stop_reason, "max_tokens");
      EXPECT_EQ(stats.target_calls, stats.steps + 1) << "one target pass per step, plus the prefill";
      ASSERT_EQ(target.freed.size(), 1u);
      ASSERT_EQ(draft.freed.size(), 1u);
      // Committed = the stream, except possibly the last token (never evaluated by the target).
      const std::vector<TokenId> tokens = s.tokens();
      for (const auto* committed : {&target.freed[0], &draft.freed[0]}) {
        ASSERT_GE(committed->size() + 1, tokens.size()) << name;
        EXPECT_TRUE(std::equal(committed->begin(), committed->end(), tokens.begin())) << name;
      }
      EXPECT_EQ(target.freed[0], draft.freed[0]) << name;
      EXPECT_EQ(draft.live_forks, 0) << name << ": draft branches leaked";
      EXPECT_EQ(int64_t(stats.accepted_per_step.size()) > 0, true);
    }
    // A stop token ends generation right after it, even mid-step.
    DecodeOptions options;
    options.seed = 5;
    options.max_new_tokens = 50;
    options.stop_at_eos = false;
    TokenStream free_run(prompt);
    make_decoder(name, {}, &models)->generate(models, options, free_run);
    options.stop_tokens = {free_run.token(prompt.size() + 4)};
    TokenStream stopped(prompt);
    const Stats stats = make_decoder(name, {}, &models)->generate(models, options, stopped);
    EXPECT_EQ(stats.stop_reason, "stop_token") << name;
    EXPECT_EQ(stopped.back(), options.stop_tokens[0]) << name;
    EXPECT_LE(stopped.size(), prompt.size() + 5) << name;
  }
}

TEST(SpeculativeDecoders, ReproducibleAndCountsWork) {
  auto target = TableModel::random(16, 2, 51, 1.0);
  auto draft = TableModel::derive_draft(*target, 1.2, 0.2, 52);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  for (const std::string name : {"sd", "specinfer", "spectr", "dyspec"}) {
    DecodeOptions options;
    options.seed = 77;
    options.max_new_tokens = 40;
    TokenStream a(std::vector<TokenId>{1}), b(std::vector<TokenId>{1});
    auto decoder = make_decoder(name, {}, &models);
    const Stats sa = decoder->generate(models, options, a);
    decoder->generate(models, options, b);
    EXPECT_EQ(a.tokens(), b.tokens()) << name;
    EXPECT_GT(sa.tokens_accepted, 0) << name;
    EXPECT_LE(sa.tokens_accepted, sa.tokens_proposed) << name;
    EXPECT_EQ(sa.tokens_generated, 40);
    EXPECT_GT(sa.draft_calls, 0);
    EXPECT_GE(sa.target_nodes, sa.tokens_proposed);
    EXPECT_GT(sa.seconds.count("draft") + sa.seconds.count("verify"), 1u);
    EXPECT_GT(sa.metrics.at("mean_accepted_length"), 0.0) << name;
    // Tree shapes respect their parameters (defaults: k = 2 and L = 3; budget 16, depth uncapped).
    const double max_size = name == "sd" ? 4 : name == "dyspec" ? 16 : 6;
    const double max_depth = name == "sd" ? 4 : name == "dyspec" ? 16 : 3;
    EXPECT_LE(sa.metrics.at("mean_tree_size"), max_size) << name;
    EXPECT_LE(sa.metrics.at("mean_tree_depth"), max_depth) << name;
    EXPECT_GT(sa.metrics.at("mean_tree_depth"), 1.0) << name;
    if (name == "sd") {  // chains are drafted incrementally: at most L + 1 draft nodes per step
      EXPECT_LE(sa.draft_nodes, 1 + sa.steps * 5) << sa.draft_nodes << " draft nodes in " << sa.steps << " steps";
    }
    // logprobs are the raw target's
    const auto lp = log_softmax(target->exact_logits(std::vector<TokenId>{1}));
    EXPECT_NEAR(a.at(1).logprob, lp[std::size_t(a.token(1))], 1e-5) << name;
  }
}

TEST(SpeculativeDecoders, NgramNeedsNoDraftAndAcceptsRepeats) {
  // A peaked order-1 target repeats itself, so lookups find matches; only the target is needed.
  auto table = TableModel::random(10, 1, 61, 3.0);
  RecordingModel target(table);
  ModelSet models{{"target", &target}};
  auto decoder = make_decoder("ngram", {{"L", int64_t(4)}}, &models);
  DecodeOptions options;
  options.seed = 3;
  options.max_new_tokens = 200;
  const std::vector<TokenId> prompt{1, 2, 3};
  TokenStream s(prompt);
  const Stats stats = decoder->generate(models, options, s);
  EXPECT_EQ(s.size(), prompt.size() + 200);
  EXPECT_GT(stats.tokens_accepted, 50) << "repetitive text should be drafted for free";
  EXPECT_LT(stats.target_calls, 150);
  EXPECT_EQ(stats.draft_calls, 0);
  ASSERT_EQ(target.freed.size(), 1u);
  EXPECT_TRUE(std::equal(target.freed[0].begin(), target.freed[0].end(), s.tokens().begin()));
  EXPECT_GE(target.freed[0].size() + 1, s.size());
}

TEST(SpeculativeDecoders, BadSetupsFailClearly) {
  auto target = TableModel::random(8, 1, 1, 1.0);
  auto other = TableModel::random(9, 1, 2, 1.0);
  ModelSet mismatched{{"target", target.get()}, {"draft", other.get()}};
  DecodeOptions options;
  TokenStream s(std::vector<TokenId>{1});
  EXPECT_THROW(make_decoder("sd", {}, &mismatched)->generate(mismatched, options, s), Error);
  ModelSet models{{"target", target.get()}, {"draft", target.get()}};
  TokenStream empty(std::vector<TokenId>{});
  EXPECT_THROW(make_decoder("spectr", {}, &models)->generate(models, options, empty), Error);
  EXPECT_THROW(make_decoder("sd", {{"L", int64_t(0)}}, &models), Error);
  EXPECT_THROW(make_decoder("specinfer", {{"k", int64_t(65)}}, &models), Error);
  EXPECT_THROW(make_decoder("dyspec", {{"budget", int64_t(0)}}, &models), Error);
  ModelSet no_draft{{"target", target.get()}};
  EXPECT_THROW(make_decoder("dyspec", {}, &no_draft), Error);
}

}  // namespace
}  // namespace decodelab
