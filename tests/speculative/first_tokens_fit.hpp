#pragma once
// The exactness check the speculative decoder suites share: run a decoder once per seed on an
// analytic target/draft pair and test the joint law of the first two generated tokens against the
// target's exact law through the same sampler chain (chi-square + TV at a false-alarm rate).
// Returning the fit (rather than asserting) lets negative controls require the same check to fail.
#include <gtest/gtest.h>

#include <span>
#include <string>
#include <vector>

#include "decodelab/decoder.hpp"
#include "decodelab/sampler.hpp"
#include "decodelab/table_model.hpp"
#include "tests/support/seeded_runs.hpp"
#include "tests/support/stats.hpp"

namespace decodelab::testing {

// Exact joint law of the first two generated tokens after `prompt`, through the chain that the
// sampling parameters in `sampling` (temperature, top_k, top_p, min_p) describe.
inline std::vector<double> exact_first_two(const TableModel& target, const ParamMap& sampling,
                                           std::span<const TokenId> prompt) {
  ParamMap chosen;
  for (const char* name : {"temperature", "top_k", "top_p", "min_p"})
    if (sampling.count(name)) chosen[name] = sampling.at(name);
  auto chain = chain_from_params(resolve_params("test", sampling_param_specs(), chosen));
  const int V = target.vocab_size();
  const std::vector<float> p1 = chain->probs(target.exact_logits(prompt));
  std::vector<double> joint(std::size_t(V * V), 0.0);
  for (int a = 0; a < V; ++a) {
    std::vector<TokenId> context(prompt.begin(), prompt.end());
    context.push_back(a);
    const std::vector<float> p2 = chain->probs(target.exact_logits(context));
    for (int b = 0; b < V; ++b) joint[std::size_t(a * V + b)] = double(p1[std::size_t(a)]) * p2[std::size_t(b)];
  }
  return joint;
}

// Runs seeds 0..runs-1 and fits the first two generated tokens.
inline FitResult first_two_fit(Decoder& decoder, const ModelSet& models, const TableModel& target,
                               const ParamMap& sampling, std::span<const TokenId> prompt, int runs,
                               double alpha = 1e-3) {
  DecodeOptions options;
  options.max_new_tokens = 2;
  const std::size_t V = std::size_t(target.vocab_size()), n = prompt.size();
  const std::vector<int64_t> counts = seeded_outcome_counts(
      decoder, models, prompt, options, runs, V * V,
      [&](const TokenStream& s) { return std::size_t(s.token(n)) * V + std::size_t(s.token(n + 1)); });
  const std::vector<double> joint = exact_first_two(target, sampling, prompt);
  return goodness_of_fit(counts, std::span<const double>(joint), alpha);
}

inline bool fits(const FitResult& fit, double alpha = 1e-3) { return fit.p_value >= alpha && fit.tv <= fit.tv_bound; }

// A draft-model decoder on a random TableModel target and a draft derived from it.
struct DraftPairConfig {
  std::string decoder;
  ParamMap params;  // decoder and sampling parameters (temperature included)
  double draft_temper, draft_noise;
};

inline std::string describe(const DraftPairConfig& c) {
  std::string s = c.decoder + "(";
  for (const auto& [k, v] : c.params) s += k + "=" + to_string(v) + ",";
  return s + ") draft(temper=" + std::to_string(c.draft_temper) + ",noise=" + std::to_string(c.draft_noise) + ")";
}

// For each config i: target TableModel::random(vocab, 2, seed_base + i, 1.5), draft derived with
// seed seed_base + 100 + i; the first two tokens after `prompt` must fit the exact target law
// over `runs` seeds.
inline void expect_first_two_exact(const std::vector<DraftPairConfig>& configs, int vocab, uint64_t seed_base,
                                   std::span<const TokenId> prompt, int runs = 60000) {
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const DraftPairConfig& c = configs[i];
    auto target = TableModel::random(vocab, 2, seed_base + i, 1.5);
    auto draft = TableModel::derive_draft(*target, c.draft_temper, c.draft_noise, seed_base + 100 + i);
    ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
    auto decoder = make_decoder(c.decoder, c.params, &models);
    const FitResult fit = first_two_fit(*decoder, models, *target, c.params, prompt, runs);
    SCOPED_TRACE(describe(c));
    EXPECT_TRUE(fits(fit)) << fit.describe();
  }
}

}  // namespace decodelab::testing
