// Results through the C API (libdecodelab.so) equal the C++ API's bit for bit: chains applied in
// place, their distributions, Philox sampling (token for token the `sample` decoder's run),
// stateful chains across accept / reset / clone, the verification rules and the catalogue.
// The C++ side is this executable's own static copy of the components; the C side is the
// shared library's, so the two share no state.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "decodelab/decodelab.h"
#include "decodelab/decoder.hpp"
#include "decodelab/model_factory.hpp"
#include "decodelab/philox.hpp"
#include "decodelab/random.hpp"
#include "decodelab/sampler.hpp"
#include "decodelab/table_model.hpp"
#include "decodelab/verify.hpp"
#include "tests/model/model_paths.hpp"

namespace decodelab {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Owns a C chain; fails the test with the library's message when creation fails.
struct CChain {
  decodelab_chain* handle = nullptr;
  explicit CChain(const std::string& spec) {
    EXPECT_EQ(decodelab_chain_create(spec.c_str(), &handle), DECODELAB_OK) << decodelab_last_error();
  }
  explicit CChain(decodelab_chain* h) : handle(h) {}
  CChain(const CChain&) = delete;
  CChain& operator=(const CChain&) = delete;
  ~CChain() { decodelab_chain_free(handle); }
};

std::vector<float> random_logits(std::size_t n, uint32_t seed, double excluded_fraction = 0.05) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<float> logits(n);
  for (float& x : logits) x = unit(rng) < excluded_fraction ? kNegInf : normal(rng);
  logits[n / 2] = 4.0f;  // at least one finite logit, and ties with it below
  logits[n / 3] = 4.0f;
  return logits;
}

std::vector<float> random_law(std::size_t n, uint32_t seed, double zero_fraction) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> p(n);
  for (float& x : p) x = unit(rng) < zero_fraction ? 0.0f : unit(rng) * unit(rng);
  p[seed % n] += 0.5f;
  normalize(p);
  return p;
}

bool same_bits(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

// The C++ caller's in-place result: what a chain kept, at its processed logits, -inf elsewhere.
std::vector<float> cpp_apply(SamplerChain& chain, std::span<const float> logits, int32_t& selected) {
  Candidates c = Candidates::from_logits(logits);
  chain.apply(c);
  std::vector<float> out(logits.size(), kNegInf);
  for (const Candidate& k : c.data) out[std::size_t(k.id)] = k.logit;
  selected = c.selected >= 0 ? c.selected_token() : -1;
  return out;
}

const std::vector<std::string> kSpecs = {
    "",
    "top_k(k=5)",
    "top_k(k=0)",
    "top_p(p=0.9),temperature(t=0.7)",
    "min_p(p=0.1)",
    "typical(p=0.9)",
    "top_k(k=40),top_p(p=0.95),min_p(p=0.05),temperature(t=0.8)",
    "temperature(t=0)",
    "greedy",
    "top_k(k=3),dist(seed=7,stream=2)",
    "top_w(gamma=0)",
};

TEST(CapiEquivalence, ChainApplyInPlaceEqualsCpp) {
  for (const std::string& spec : kSpecs) {
    for (uint32_t seed : {1u, 2u, 3u}) {
      const std::vector<float> logits = random_logits(997, seed);
      auto cpp = parse_chain(spec);
      int32_t cpp_selected = -2;
      const std::vector<float> expected = cpp_apply(*cpp, logits, cpp_selected);

      CChain c(spec);
      std::vector<float> inplace = logits;
      int32_t selected = -2;
      ASSERT_EQ(decodelab_chain_apply(c.handle, inplace.data(), inplace.size(), &selected), DECODELAB_OK)
          << spec << ": " << decodelab_last_error();
      EXPECT_TRUE(same_bits(inplace, expected)) << spec;
      EXPECT_EQ(selected, cpp_selected) << spec;
      std::vector<float> again = logits;
      EXPECT_EQ(decodelab_chain_apply(c.handle, again.data(), again.size(), nullptr), DECODELAB_OK) << spec;
    }
  }
}

// The caller's candidate array processed in place (llama_token_data_array's shape): the same kept
// set, processed logits and selected token as the dense in-place apply, with nothing copied.
TEST(CapiEquivalence, ChainApplyCandidatesInPlaceEqualsDenseApply) {
  for (const std::string& spec : kSpecs) {
    for (uint32_t seed : {1u, 2u, 3u}) {
      const std::vector<float> logits = random_logits(997, seed);
      CChain dense_chain(spec), candidates_chain(spec);
      std::vector<float> dense = logits;
      int32_t dense_selected = -2;
      ASSERT_EQ(decodelab_chain_apply(dense_chain.handle, dense.data(), dense.size(), &dense_selected), DECODELAB_OK);

      // Every token, in reverse order, excluded ones included at -inf.
      std::vector<decodelab_token_data> data;
      for (std::size_t i = logits.size(); i-- > 0;) data.push_back({int32_t(i), logits[i], 0.0f});
      decodelab_candidates c{data.data(), data.size(), 123, true};
      ASSERT_EQ(decodelab_chain_apply_candidates(candidates_chain.handle, &c), DECODELAB_OK)
          << spec << ": " << decodelab_last_error();
      EXPECT_EQ(c.data, data.data()) << spec;
      std::vector<float> from_candidates(logits.size(), kNegInf);
      for (std::size_t i = 0; i < c.size; ++i) from_candidates[std::size_t(c.data[i].id)] = c.data[i].logit;
      EXPECT_TRUE(same_bits(from_candidates, dense)) << spec;
      EXPECT_EQ(c.selected >= 0 ? c.data[c.selected].id : -1, dense_selected) << spec;
      if (c.sorted) {
        for (std::size_t i = 1; i < c.size; ++i) EXPECT_GE(c.data[i - 1].logit, c.data[i].logit) << spec;
      }
    }
  }
}

TEST(CapiEquivalence, ChainApplyCandidatesRejectsBadInputBeforeWriting) {
  CChain chain("top_k(k=2)");
  std::vector<decodelab_token_data> data{{0, 1.0f, 0.0f}, {1, std::nanf(""), 0.0f}, {2, 3.0f, 0.0f}};
  decodelab_candidates c{data.data(), data.size(), -1, false};
  EXPECT_EQ(decodelab_chain_apply_candidates(chain.handle, &c), DECODELAB_ERR_NUMERIC);
  EXPECT_NE(std::string(decodelab_last_error()).find("entry 1"), std::string::npos) << decodelab_last_error();
  EXPECT_EQ(c.size, 3u);
  EXPECT_EQ(data[0].id, 0);
  EXPECT_EQ(data[2].id, 2);
  data[1] = {-4, 0.0f, 0.0f};
  EXPECT_EQ(decodelab_chain_apply_candidates(chain.handle, &c), DECODELAB_ERR_INVALID_ARGUMENT);
  decodelab_candidates null_data{nullptr, 2, -1, false};
  EXPECT_EQ(decodelab_chain_apply_candidates(chain.handle, &null_data), DECODELAB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(decodelab_chain_apply_candidates(chain.handle, nullptr), DECODELAB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(decodelab_chain_apply_candidates(nullptr, &c), DECODELAB_ERR_INVALID_ARGUMENT);
}

// Top-W with its geometry (gamma > 0) through a bare C chain: bound to the token embeddings an
// engine passes, it keeps and picks what the C++ sampler bound to a model with the same
// embeddings does.
TEST(CapiEquivalence, TopWBoundToEmbeddingsEqualsTopWBoundToTheModel) {
  auto table = TableModel::random(400, 1, 3, 2.0);
  table->random_embeddings(16, 5);
  const Matrix e = *table->token_embeddings();
  for (const char* spec : {"top_w(gamma=0.6)", "top_w(gamma=1.5,t_sel=0.7),dist(seed=3)"}) {
    for (uint32_t seed : {1u, 2u, 3u}) {
      const std::vector<float> logits = random_logits(400, seed);
      auto cpp = parse_chain(spec);
      SamplerContext context;
      context.model = table.get();
      cpp->bind(context);
      int32_t cpp_selected = -2;
      const std::vector<float> expected = cpp_apply(*cpp, logits, cpp_selected);

      CChain c(spec);
      ASSERT_EQ(decodelab_chain_bind_embeddings(c.handle, e.data.data(), std::size_t(e.rows), std::size_t(e.cols)),
                DECODELAB_OK)
          << decodelab_last_error();
      std::vector<float> inplace = logits;
      int32_t selected = -2;
      ASSERT_EQ(decodelab_chain_apply(c.handle, inplace.data(), inplace.size(), &selected), DECODELAB_OK)
          << spec << ": " << decodelab_last_error();
      EXPECT_TRUE(same_bits(inplace, expected)) << spec;
      EXPECT_EQ(selected, cpp_selected) << spec;
    }
  }
  // A clone keeps the geometry it was bound to.
  CChain bound("top_w(gamma=0.6)");
  ASSERT_EQ(decodelab_chain_bind_embeddings(bound.handle, e.data.data(), 400, 16), DECODELAB_OK);
  decodelab_chain* copy = nullptr;
  ASSERT_EQ(decodelab_chain_clone(bound.handle, &copy), DECODELAB_OK);
  CChain clone(copy);
  std::vector<float> logits = random_logits(400, 9);
  EXPECT_EQ(decodelab_chain_apply(clone.handle, logits.data(), logits.size(), nullptr), DECODELAB_OK)
      << decodelab_last_error();
}

TEST(CapiEquivalence, TopWBoundToALoadedModelUsesItsEmbeddings) {
  // A table model has no embeddings: binding a chain that needs them says so.
  decodelab_model* table = nullptr;
  ASSERT_EQ(decodelab_model_load("table(vocab=50)", nullptr, &table), DECODELAB_OK) << decodelab_last_error();
  CChain geometric("top_w(gamma=0.6)");
  EXPECT_EQ(decodelab_chain_bind_model(geometric.handle, table), DECODELAB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(decodelab_last_error()).find("token embeddings"), std::string::npos) << decodelab_last_error();
  CChain plain("top_w(gamma=0)");
  EXPECT_EQ(decodelab_chain_bind_model(plain.handle, table), DECODELAB_OK);
  decodelab_model_free(table);

  const std::string path = testing::model_path(testing::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << testing::kSmolLM2 << " not found (scripts/fetch-models)";
  const std::string spec = "gguf(path=" + path + ")";
  decodelab_model* model = nullptr;
  ASSERT_EQ(decodelab_model_load(spec.c_str(), nullptr, &model), DECODELAB_OK) << decodelab_last_error();
  auto cpp_model = load_model(spec);
  const std::vector<float> logits = random_logits(std::size_t(cpp_model->vocab_size()), 4);
  auto cpp = parse_chain("top_w(gamma=0.6)");
  SamplerContext context;
  context.model = cpp_model.get();
  cpp->bind(context);
  int32_t cpp_selected = -2;
  const std::vector<float> expected = cpp_apply(*cpp, logits, cpp_selected);
  ASSERT_EQ(decodelab_chain_bind_model(geometric.handle, model), DECODELAB_OK) << decodelab_last_error();
  decodelab_model_free(model);  // the chain keeps what it needs
  std::vector<float> inplace = logits;
  ASSERT_EQ(decodelab_chain_apply(geometric.handle, inplace.data(), inplace.size(), nullptr), DECODELAB_OK)
      << decodelab_last_error();
  EXPECT_TRUE(same_bits(inplace, expected));
}

TEST(CapiEquivalence, BindEmbeddingsRejectsBadMatrices) {
  CChain chain("top_w(gamma=0.6)");
  std::vector<float> e(40, 0.5f);
  EXPECT_EQ(decodelab_chain_bind_embeddings(chain.handle, nullptr, 10, 4), DECODELAB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(decodelab_chain_bind_embeddings(chain.handle, e.data(), 10, 0), DECODELAB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(decodelab_chain_bind_embeddings(chain.handle, e.data(), 0, 4), DECODELAB_ERR_INVALID_ARGUMENT);
  e[13] = std::nanf("");
  EXPECT_EQ(decodelab_chain_bind_embeddings(chain.handle, e.data(), 10, 4), DECODELAB_ERR_NUMERIC);
  EXPECT_NE(std::string(decodelab_last_error()).find("token 3"), std::string::npos) << decodelab_last_error();
}

// A decoder using a role besides target and draft (smc's reward model) runs through the C API
// as it does in C++, token for token.
TEST(CapiEquivalence, GenerateWithARewardModelRoleEqualsCpp) {
  const std::string target_spec = "table(vocab=24,order=2,seed=5,sharpness=1.5)";
  const std::string reward_spec = "table(vocab=24,order=1,seed=8,sharpness=2)";
  const std::string decoder = "smc(particles=6,reward_model_weight=0.7,temperature=0.9)";
  const std::vector<TokenId> prompt{1, 2, 3};

  auto target = load_model(target_spec);
  auto reward = load_model(reward_spec);
  ModelSet models{{"target", target.get()}, {"reward_model", reward.get()}};
  const auto [name, params] = parse_spec(decoder);
  auto cpp = make_decoder(name, params, &models);
  DecodeOptions run;
  run.seed = 21;
  run.max_new_tokens = 20;
  TokenStream stream(prompt);
  cpp->generate(models, run, stream);
  const std::vector<TokenId> expected = stream.generated_tokens();

  decodelab_model *c_target = nullptr, *c_reward = nullptr;
  ASSERT_EQ(decodelab_model_load(target_spec.c_str(), nullptr, &c_target), DECODELAB_OK);
  ASSERT_EQ(decodelab_model_load(reward_spec.c_str(), nullptr, &c_reward), DECODELAB_OK);
  const char* names[] = {"reward_model"};
  decodelab_model* role_models[] = {c_reward};
  decodelab_generate_options options;
  decodelab_generate_options_init(&options);
  options.seed = 21;
  options.max_new_tokens = 20;
  options.role_names = names;
  options.role_models = role_models;
  options.n_roles = 1;
  std::vector<int32_t> tokens(20);
  decodelab_generate_stats stats;
  ASSERT_EQ(decodelab_generate(decoder.c_str(), c_target, nullptr, prompt.data(), prompt.size(), &options,
                               tokens.data(), tokens.size(), &stats),
            DECODELAB_OK)
      << decodelab_last_error();
  tokens.resize(stats.n_tokens);
  EXPECT_EQ(tokens, expected);
  decodelab_model_free(c_target);
  decodelab_model_free(c_reward);
}

TEST(CapiEquivalence, ChainProbsEqualCpp) {
  for (const std::string& spec : kSpecs) {
    const std::vector<float> logits = random_logits(1500, 11);
    const std::vector<float> expected = parse_chain(spec)->probs(logits);
    CChain c(spec);
    std::vector<float> probs(logits.size(), -1.0f);
    ASSERT_EQ(decodelab_chain_probs(c.handle, logits.data(), logits.size(), probs.data()), DECODELAB_OK)
        << spec << ": " << decodelab_last_error();
    EXPECT_TRUE(same_bits(probs, expected)) << spec;
    // probs may be the logits array itself.
    std::vector<float> inplace = logits;
    ASSERT_EQ(decodelab_chain_probs(c.handle, inplace.data(), inplace.size(), inplace.data()), DECODELAB_OK);
    EXPECT_TRUE(same_bits(inplace, expected)) << spec;
  }
}

TEST(CapiEquivalence, FromParamsEqualsChainFromParams) {
  const char* text = "temperature=0.7,top_k=20,top_p=0.9,min_p=0.02";
  const std::vector<ParamSpec> specs = sampling_param_specs();
  auto cpp = chain_from_params(resolve_params("test", specs, parse_assignments(text, "test")));
  decodelab_chain* handle = nullptr;
  ASSERT_EQ(decodelab_chain_from_params(text, &handle), DECODELAB_OK) << decodelab_last_error();
  CChain c(handle);
  char name[256];
  size_t length = 0;
  ASSERT_EQ(decodelab_chain_describe(c.handle, name, sizeof name, &length), DECODELAB_OK);
  EXPECT_EQ(std::string(name), cpp->name());
  EXPECT_EQ(length, cpp->name().size());
  size_t n = 0;
  ASSERT_EQ(decodelab_chain_length(c.handle, &n), DECODELAB_OK);
  EXPECT_EQ(n, cpp->size());
  const std::vector<float> logits = random_logits(800, 5);
  std::vector<float> probs(logits.size());
  ASSERT_EQ(decodelab_chain_probs(c.handle, logits.data(), logits.size(), probs.data()), DECODELAB_OK);
  EXPECT_TRUE(same_bits(probs, cpp->probs(logits)));
}

// decodelab_chain_sample at stream `sample`, step = position, is the `sample` decoder's rule: a
// run through the C API on the model's logits reproduces the decoder's run token for token.
TEST(CapiEquivalence, SampleReproducesTheSampleDecoder) {
  auto model = TableModel::random(50, 2, 9, 1.5);
  ModelSet models{{"target", model.get()}};
  auto decoder = make_decoder("sample", {{"temperature", 0.8}, {"top_k", int64_t(10)}}, &models);
  DecodeOptions options;
  options.seed = 1234;
  options.max_new_tokens = 40;
  options.stop_at_eos = false;
  TokenStream stream(std::vector<TokenId>{3, 4});
  decoder->generate(models, options, stream);
  ASSERT_EQ(stream.size(), 42u);

  decodelab_chain* handle = nullptr;
  ASSERT_EQ(decodelab_chain_from_params("temperature=0.8,top_k=10", &handle), DECODELAB_OK) << decodelab_last_error();
  CChain c(handle);
  std::vector<TokenId> tokens{3, 4};
  while (tokens.size() < stream.size()) {
    const std::vector<float> logits = model->exact_logits(tokens);
    int32_t token = -1;
    ASSERT_EQ(decodelab_chain_sample(c.handle, logits.data(), logits.size(), options.seed, DECODELAB_STREAM_SAMPLE,
                                     tokens.size(), &token),
              DECODELAB_OK)
        << decodelab_last_error();
    ASSERT_EQ(decodelab_chain_accept(c.handle, token), DECODELAB_OK);
    tokens.push_back(token);
  }
  EXPECT_EQ(tokens, stream.tokens());
}

// dist keeps a step counter: accept advances it, reset rewinds it, clone copies it.
TEST(CapiEquivalence, StatefulChainAcrossAcceptResetClone) {
  const std::string spec = "top_p(p=0.95),dist(seed=99)";
  auto cpp = parse_chain(spec);
  CChain c(spec);
  const std::vector<float> logits = random_logits(300, 21, 0.0);
  std::vector<int32_t> first_run;
  for (int step = 0; step < 20; ++step) {
    int32_t expected = -1, got = -1;
    cpp_apply(*cpp, logits, expected);
    std::vector<float> work = logits;
    ASSERT_EQ(decodelab_chain_apply(c.handle, work.data(), work.size(), &got), DECODELAB_OK);
    ASSERT_EQ(got, expected) << "step " << step;
    ASSERT_GE(got, 0);
    first_run.push_back(got);
    cpp->accept(expected);
    ASSERT_EQ(decodelab_chain_accept(c.handle, got), DECODELAB_OK);
  }
  // Not every step drew the same token, or this would check nothing about the counter.
  EXPECT_NE(std::count(first_run.begin(), first_run.end(), first_run[0]), std::ptrdiff_t(first_run.size()));

  decodelab_chain* copy = nullptr;
  ASSERT_EQ(decodelab_chain_clone(c.handle, &copy), DECODELAB_OK);
  CChain clone(copy);
  ASSERT_EQ(decodelab_chain_reset(c.handle), DECODELAB_OK);
  for (int step = 0; step < 20; ++step) {
    std::vector<float> work = logits;
    int32_t got = -1;
    ASSERT_EQ(decodelab_chain_apply(c.handle, work.data(), work.size(), &got), DECODELAB_OK);
    EXPECT_EQ(got, first_run[std::size_t(step)]) << "after reset, step " << step;
    ASSERT_EQ(decodelab_chain_accept(c.handle, got), DECODELAB_OK);
  }
  // The clone continues at step 20, as the C++ chain does.
  for (int step = 20; step < 25; ++step) {
    int32_t expected = -1, got = -1;
    cpp_apply(*cpp, logits, expected);
    std::vector<float> work = logits;
    ASSERT_EQ(decodelab_chain_apply(clone.handle, work.data(), work.size(), &got), DECODELAB_OK);
    EXPECT_EQ(got, expected) << "clone, step " << step;
    cpp->accept(expected);
    ASSERT_EQ(decodelab_chain_accept(clone.handle, got), DECODELAB_OK);
  }
}

TEST(CapiEquivalence, PhiloxUniformsEqualPhiloxStream) {
  for (uint64_t step : {uint64_t(0), uint64_t(1), uint64_t(77), uint64_t(1) << 40}) {
    std::vector<double> got(9);
    ASSERT_EQ(decodelab_philox_uniforms(42, 5, step, got.data(), got.size()), DECODELAB_OK);
    PhiloxStream rng = PhiloxStream::at_step(42, 5, step);
    for (double u : got) EXPECT_EQ(u, rng.uniform_double());
  }
  EXPECT_EQ(decodelab_stream(DECODELAB_STREAM_ACCEPT, 3), uint64_t(RandomStream::accept) + (3u << 8));
  EXPECT_EQ(decodelab_philox_uniforms(1, 2, 3, nullptr, 0), DECODELAB_OK);
}

using CppRule = speculative::VerifyOutcome (*)(std::span<const float>, std::span<const float>, std::span<const TokenId>,
                                               std::span<const double>, double);

TEST(CapiEquivalence, VerifyRulesEqualCpp) {
  const std::size_t n = 64;
  const std::vector<std::pair<decodelab_verify_rule, CppRule>> rules = {
      {DECODELAB_VERIFY_RRS_IID, speculative::verify_rrs_iid},
      {DECODELAB_VERIFY_RRS_WOR, speculative::verify_rrs_wor},
      {DECODELAB_VERIFY_TARGET_ONLY, speculative::verify_target_only},
  };
  int accepted = 0, residual = 0;
  for (uint32_t trial = 0; trial < 200; ++trial) {
    const std::vector<float> p = random_law(n, trial, 0.3), q = random_law(n, trial + 1000, 0.3);
    std::mt19937 rng(trial);
    const std::size_t k = 1 + trial % 4;
    std::vector<TokenId> candidates(k);
    std::vector<double> accept_u(k);
    for (std::size_t i = 0; i < k; ++i) {
      candidates[i] = TokenId(rng() % n);
      accept_u[i] = (rng() + 1.0) / 4294967297.0;
    }
    const double residual_u = (rng() + 1.0) / 4294967297.0;
    for (const auto& [rule, cpp_rule] : rules) {
      const speculative::VerifyOutcome expected =
          cpp_rule(p, rule == DECODELAB_VERIFY_TARGET_ONLY ? std::span<const float>() : std::span<const float>(q),
                   candidates, accept_u, residual_u);
      decodelab_verify_result got{-7, -7};
      ASSERT_EQ(
          decodelab_verify(rule, p.data(), q.data(), n, candidates.data(), k, accept_u.data(), residual_u, 1.0, &got),
          DECODELAB_OK)
          << decodelab_last_error();
      EXPECT_EQ(got.accepted, expected.accepted) << "rule " << rule << ", trial " << trial;
      EXPECT_EQ(got.token, expected.token) << "rule " << rule << ", trial " << trial;
      (got.accepted >= 0 ? accepted : residual) += 1;
    }
    // K-SEQ with its own rho, from both sides.
    const double rho = speculative::kseq_rho(p, q, int(k));
    double c_rho = 0.0;
    ASSERT_EQ(decodelab_kseq_rho(p.data(), q.data(), n, int32_t(k), &c_rho), DECODELAB_OK);
    EXPECT_EQ(c_rho, rho);
    const speculative::VerifyOutcome expected = speculative::verify_kseq(p, q, candidates, accept_u, residual_u, rho);
    decodelab_verify_result got{-7, -7};
    ASSERT_EQ(decodelab_verify(DECODELAB_VERIFY_KSEQ, p.data(), q.data(), n, candidates.data(), k, accept_u.data(),
                               residual_u, rho, &got),
              DECODELAB_OK)
        << decodelab_last_error();
    EXPECT_EQ(got.accepted, expected.accepted);
    EXPECT_EQ(got.token, expected.token);
  }
  // Both outcomes were exercised.
  EXPECT_GT(accepted, 50);
  EXPECT_GT(residual, 50);
}

TEST(CapiEquivalence, SeededVerifyDrawsTheTreeDecodersUniforms) {
  const std::size_t n = 40;
  for (uint64_t position = 0; position < 50; ++position) {
    const std::vector<float> p = random_law(n, uint32_t(position), 0.2), q = random_law(n, uint32_t(position) + 7, 0.2);
    const std::vector<TokenId> candidates{TokenId(position % n), TokenId((position * 7) % n), TokenId(3)};
    std::vector<double> accept_u;
    for (std::size_t i = 0; i < candidates.size(); ++i)
      accept_u.push_back(random_stream(77, RandomStream::accept, position, i).uniform_double());
    const double residual_u = random_stream(77, RandomStream::residual, position).uniform_double();
    const speculative::VerifyOutcome expected = speculative::verify_rrs_iid(p, q, candidates, accept_u, residual_u);
    decodelab_verify_result got{-7, -7};
    ASSERT_EQ(decodelab_verify_seeded(DECODELAB_VERIFY_RRS_IID, p.data(), q.data(), n, candidates.data(),
                                      candidates.size(), 1.0, 77, position, &got),
              DECODELAB_OK)
        << decodelab_last_error();
    EXPECT_EQ(got.accepted, expected.accepted);
    EXPECT_EQ(got.token, expected.token);
  }
}

TEST(CapiEquivalence, ResidualEqualsCpp) {
  const std::vector<float> p = random_law(100, 1, 0.2), q = random_law(100, 2, 0.2);
  std::vector<float> expected(100), got(100);
  const double mass = residual(p, q, expected);
  double c_mass = -1.0;
  ASSERT_EQ(decodelab_residual(p.data(), q.data(), 100, got.data(), &c_mass), DECODELAB_OK);
  EXPECT_EQ(c_mass, mass);
  EXPECT_TRUE(same_bits(got, expected));
}

template <class T>
void expect_catalogue_equals(decodelab_kind kind, const Registry<T>& registry) {
  const auto entries = registry.list();
  size_t count = 0;
  ASSERT_EQ(decodelab_component_count(kind, &count), DECODELAB_OK);
  ASSERT_EQ(count, entries.size());
  ASSERT_GT(count, 0u);
  for (size_t i = 0; i < count; ++i) {
    const RegistryEntry<T>& e = *entries[i];
    decodelab_component_info info{};
    ASSERT_EQ(decodelab_component_get(kind, i, &info), DECODELAB_OK);
    EXPECT_EQ(std::string(info.name), e.name);
    EXPECT_EQ(std::string(info.doc), e.doc);
    std::string roles;
    for (const std::string& r : e.roles) roles += (roles.empty() ? "" : ",") + r;
    EXPECT_EQ(std::string(info.roles), roles);
    ASSERT_EQ(info.n_params, e.params.size());
    size_t found = 99999;
    ASSERT_EQ(decodelab_component_find(kind, e.name.c_str(), &found), DECODELAB_OK);
    EXPECT_EQ(found, i);
    for (size_t j = 0; j < info.n_params; ++j) {
      const ParamSpec& s = e.params[j];
      decodelab_param_info param{};
      ASSERT_EQ(decodelab_component_param(kind, i, j, &param), DECODELAB_OK);
      EXPECT_EQ(std::string(param.name), s.name);
      EXPECT_EQ(std::string(param.type), to_string(s.type));
      EXPECT_EQ(std::string(param.default_value), to_string(s.default_value));
      EXPECT_EQ(param.min, s.min);
      EXPECT_EQ(param.max, s.max);
      EXPECT_EQ(std::string(param.doc), s.doc);
      EXPECT_EQ(std::string(param.description), s.describe());
    }
  }
}

TEST(CapiEquivalence, CatalogueListsTheRegistries) {
  expect_catalogue_equals(DECODELAB_KIND_SAMPLER, SamplerRegistry::instance());
  expect_catalogue_equals(DECODELAB_KIND_DECODER, DecoderRegistry::instance());
}

TEST(CapiEquivalence, Versions) {
  EXPECT_EQ(decodelab_abi_version(), uint32_t(DECODELAB_ABI_VERSION));
  EXPECT_EQ(std::string(decodelab_version()), std::to_string(DECODELAB_VERSION_MAJOR) + "." +
                                                  std::to_string(DECODELAB_VERSION_MINOR) + "." +
                                                  std::to_string(DECODELAB_VERSION_PATCH));
}

}  // namespace
}  // namespace decodelab
