// smc on a table model whose sequences (vocabulary 3, 3 tokens) can be enumerated: the evidence
// estimate is unbiased for Z = sum_x m(x) Psi(x) for every potential (mean of Z-hat over many
// seeds within 4 standard errors), the returned sequence follows the exact target for many
// particles (chi-square + TV, alpha = 1e-3), constraint potentials only return satisfying
// sequences, and runs are reproducible.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "decodelab/decoder.hpp"
#include "decodelab/error.hpp"
#include "decodelab/table_model.hpp"
#include "decoders/smc/potential.hpp"
#include "samplers/constraints/constraint.hpp"
#include "tests/support/stats.hpp"

namespace decodelab {
namespace {

constexpr int kVocab = 3;
constexpr int kLength = 3;
const std::vector<TokenId> kPrompt = {0};

std::shared_ptr<TableModel> model(uint64_t seed = 5) {
  auto m = TableModel::random(kVocab, 2, seed, 1.2);
  m->set_token_texts({"a", "b", "c"});
  return m;
}

// All sequences of kLength tokens with m(x) and a log-potential.
std::map<std::vector<TokenId>, double> exact_target(
    const TableModel& m, const std::function<double(const std::vector<TokenId>&, double)>& log_psi, double* z_out) {
  std::map<std::vector<TokenId>, double> law;
  double z = 0.0;
  const int count = int(std::pow(kVocab, kLength));
  for (int code = 0; code < count; ++code) {
    std::vector<TokenId> x;
    for (int k = 0, c = code; k < kLength; ++k, c /= kVocab) x.push_back(TokenId(c % kVocab));
    std::vector<TokenId> ctx = kPrompt;
    double log_m = 0.0;
    for (TokenId t : x) {
      log_m += std::log(double(m.exact_probs(ctx)[std::size_t(t)]));
      ctx.push_back(t);
    }
    const double g = std::exp(log_m + log_psi(x, log_m));
    law[x] = g;
    z += g;
  }
  for (auto& [x, g] : law) g /= z;
  *z_out = z;
  return law;
}

struct Runs {
  std::map<std::vector<TokenId>, int64_t> counts;
  double z_mean = 0.0, z_se = 0.0;
  int64_t resamples = 0;
};

Runs run_many(Decoder& decoder, const ModelSet& models, int runs, uint64_t seed0) {
  Runs r;
  double sum = 0.0, sum_sq = 0.0;
  DecodeOptions options;
  options.max_new_tokens = kLength;
  for (int i = 0; i < runs; ++i) {
    options.seed = seed0 + uint64_t(i);
    TokenStream stream(kPrompt);
    const Stats s = decoder.generate(models, options, stream);
    r.counts[stream.generated_tokens()] += 1;
    const double z = std::exp(s.metrics.at("log_evidence"));
    sum += z;
    sum_sq += z * z;
    r.resamples += int64_t(s.metrics.at("resamples"));
  }
  r.z_mean = sum / runs;
  r.z_se = std::sqrt(std::max(sum_sq / runs - r.z_mean * r.z_mean, 0.0) / runs);
  return r;
}

void expect_law(const Runs& r, const std::map<std::vector<TokenId>, double>& law, int runs) {
  std::vector<int64_t> counts;
  std::vector<double> probs;
  int64_t seen = 0;
  for (const auto& [x, p] : law) {
    auto it = r.counts.find(x);
    counts.push_back(it == r.counts.end() ? 0 : it->second);
    probs.push_back(p);
    seen += counts.back();
  }
  ASSERT_EQ(seen, runs) << "every returned sequence has kLength tokens";
  EXPECT_FITS_DISTRIBUTION(counts, probs, 1e-3);
}

TEST(Smc, EvidenceIsUnbiasedForPowerTempering) {
  auto m = model();
  ModelSet models{{"target", m.get()}};
  double z = 0.0;
  exact_target(
      *m, [](const std::vector<TokenId>&, double log_m) { return 2.0 * log_m; }, &z);
  for (const std::string scheme : {"systematic", "multinomial"}) {
    for (int64_t mh : {0, 1}) {
      auto d = make_decoder(
          "smc", {{"particles", int64_t(4)}, {"alpha", 3.0}, {"resampling", scheme}, {"mh_steps", mh}}, &models);
      const Runs r = run_many(*d, models, 3000, 100);
      EXPECT_GT(r.resamples, 0);
      EXPECT_NEAR(r.z_mean, z, 4 * r.z_se) << scheme << " mh_steps=" << mh << " Z=" << z;
    }
  }
}

TEST(Smc, ManyParticlesSampleThePowerTarget) {
  auto m = model();
  ModelSet models{{"target", m.get()}};
  double z = 0.0;
  const auto law = exact_target(
      *m, [](const std::vector<TokenId>&, double log_m) { return 2.0 * log_m; }, &z);
  auto d = make_decoder("smc", {{"particles", int64_t(128)}, {"alpha", 3.0}, {"mh_steps", int64_t(1)}}, &models);
  const int runs = 3000;
  expect_law(run_many(*d, models, runs, 7000), law, runs);

  // The check has power: one particle is plain ancestral sampling from m, which it rejects.
  auto single = make_decoder("smc", {{"particles", int64_t(1)}, {"alpha", 3.0}}, &models);
  const Runs r1 = run_many(*single, models, runs, 7000);
  std::vector<int64_t> counts;
  std::vector<double> probs;
  for (const auto& [x, p] : law) {
    counts.push_back(r1.counts.count(x) ? r1.counts.at(x) : 0);
    probs.push_back(p);
  }
  EXPECT_LT(testing::goodness_of_fit(counts, probs, 1e-3).p_value, 1e-3);
}

TEST(Smc, LookaheadIsExactToo) {
  auto m = model();
  ModelSet models{{"target", m.get()}};
  double z = 0.0;
  const auto law = exact_target(
      *m, [](const std::vector<TokenId>&, double log_m) { return 2.0 * log_m; }, &z);
  auto d = make_decoder(
      "smc", {{"particles", int64_t(4)}, {"alpha", 3.0}, {"lookahead", int64_t(2)}, {"mh_steps", int64_t(1)}}, &models);
  const Runs r = run_many(*d, models, 3000, 4000);
  EXPECT_NEAR(r.z_mean, z, 4 * r.z_se) << "lookahead evidence, Z=" << z;
  auto many = make_decoder("smc", {{"particles", int64_t(64)}, {"alpha", 3.0}, {"lookahead", int64_t(2)}}, &models);
  expect_law(run_many(*many, models, 2000, 8000), law, 2000);
}

TEST(Smc, WithoutPotentialsItIsTheBaseSampler) {
  auto m = model();
  ModelSet models{{"target", m.get()}};
  double z = 0.0;
  const auto law = exact_target(
      *m, [](const std::vector<TokenId>&, double) { return 0.0; }, &z);
  auto d = make_decoder("smc", {{"particles", int64_t(4)}}, &models);
  const int runs = 6000;
  const Runs r = run_many(*d, models, runs, 1);
  EXPECT_EQ(r.resamples, 0);         // uniform weights: ESS = N throughout
  EXPECT_NEAR(r.z_mean, 1.0, 1e-6);  // log m - log q rounded through floats
  expect_law(r, law, runs);
}

TEST(Smc, ExternalRewardAndRewardModelPotentials) {
  auto m = model();
  auto reward_model = model(99);
  ModelSet models{{"target", m.get()}, {"reward_model", reward_model.get()}};
  // Telescoping external reward: log Psi = 1.5 * (number of 'a' in the text).
  register_reward_provider("count_a", [](std::span<const std::string> texts) {
    std::vector<double> out;
    for (const auto& t : texts) out.push_back(1.5 * double(std::count(t.begin(), t.end(), 'a')));
    return out;
  });
  double z = 0.0;
  exact_target(
      *m, [](const std::vector<TokenId>& x, double) { return 1.5 * double(std::count(x.begin(), x.end(), 0)); }, &z);
  auto d = make_decoder("smc", {{"particles", int64_t(4)}, {"reward", std::string("count_a")}}, &models);
  Runs r = run_many(*d, models, 3000, 300);
  EXPECT_NEAR(r.z_mean, z, 4 * r.z_se) << "reward provider";

  // The same reward set on the decoder object.
  auto d2 = make_decoder("smc", {{"particles", int64_t(4)}}, &models);
  set_reward(*d2, [](std::span<const std::string> texts) {
    std::vector<double> out;
    for (const auto& t : texts) out.push_back(1.5 * double(std::count(t.begin(), t.end(), 'a')));
    return out;
  });
  r = run_many(*d2, models, 3000, 300);
  EXPECT_NEAR(r.z_mean, z, 4 * r.z_se) << "set_reward";
  unregister_reward_provider("count_a");
  EXPECT_THROW(make_decoder("smc", {{"reward", std::string("count_a")}}, &models)
                   ->generate(models, {}, *std::make_unique<TokenStream>(kPrompt)),
               Error);

  // Reward model: Psi = m_reward(x), so Z = sum_x m(x) m_reward(x).
  exact_target(
      *m,
      [&](const std::vector<TokenId>& x, double) {
        std::vector<TokenId> ctx = kPrompt;
        double l = 0.0;
        for (TokenId t : x) {
          l += std::log(double(reward_model->exact_probs(ctx)[std::size_t(t)]));
          ctx.push_back(t);
        }
        return l;
      },
      &z);
  auto d3 = make_decoder("smc", {{"particles", int64_t(4)}, {"reward_model_weight", 1.0}}, &models);
  r = run_many(*d3, models, 2000, 900);
  EXPECT_NEAR(r.z_mean, z, 4 * r.z_se) << "reward model";
}

TEST(Smc, ConstraintPotentialOnlyReturnsSatisfyingSequences) {
  auto m = TableModel::random(4, 1, 8, 1.0, 3);
  m->set_token_texts({"a", "b", "c", "<eos>"});
  ModelSet models{{"target", m.get()}};
  const std::string spec = "regex(pattern=(ab)+)";
  auto d = make_decoder("smc", {{"particles", int64_t(16)}, {"constraint", spec}, {"mh_steps", int64_t(1)}}, &models);
  DecodeOptions options;
  options.max_new_tokens = 5;
  int finished = 0;
  for (int i = 0; i < 200; ++i) {
    options.seed = uint64_t(i);
    TokenStream stream(kPrompt);
    const Stats s = d->generate(models, options, stream);
    if (s.stop_reason == "all_particles_dead") {
      EXPECT_TRUE(std::isinf(s.metrics.at("log_evidence")));
      EXPECT_EQ(stream.generated_size(), 0u);
      continue;
    }
    auto c = make_constraint(spec, *m);
    for (TokenId t : stream.generated_tokens()) {
      ASSERT_TRUE(c->allows(t)) << "seed " << i;
      c->extend(t);
    }
    if (s.stop_reason == "eos") finished += 1;
    else EXPECT_TRUE(c->is_complete()) << "seed " << i << " " << c->text();
  }
  EXPECT_GT(finished, 50);
}

TEST(Smc, AwrsProposalTargetsTheGlobalConstrainedLaw) {
  auto m = model();
  ModelSet models{{"target", m.get()}};
  const std::string spec = "regex(pattern=a.*|bc.)";
  auto in_language = [](const std::vector<TokenId>& x) { return x[0] == 0 || (x[0] == 1 && x[1] == 2); };
  double z = 0.0;
  const auto law = exact_target(
      *m, [&](const std::vector<TokenId>& x, double) { return in_language(x) ? 0.0 : -INFINITY; }, &z);
  auto d = make_decoder("smc", {{"particles", int64_t(4)}, {"proposal", std::string("awrs")}, {"constraint", spec}},
                        &models);
  const Runs r = run_many(*d, models, 3000, 11000);
  EXPECT_NEAR(r.z_mean, z, 4 * r.z_se) << "AWRS-SMC evidence, Z = P(x in L) = " << z;
  for (const auto& [x, n] : r.counts) EXPECT_TRUE(in_language(x));
  auto many = make_decoder(
      "smc",
      {{"particles", int64_t(64)}, {"proposal", std::string("awrs")}, {"constraint", spec}, {"mh_steps", int64_t(1)}},
      &models);
  expect_law(run_many(*many, models, 3000, 12000), law, 3000);
  EXPECT_THROW(make_decoder("smc", {{"proposal", std::string("awrs")}}, &models), Error);
}

TEST(Smc, StopStringsFinishParticles) {
  // Stop string "bc": no particle the reward sees, and not the output, runs past its first "bc".
  auto m = model();
  ModelSet models{{"target", m.get()}};
  std::size_t seen = 0, stopped = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    auto d = make_decoder("smc", {{"particles", int64_t(6)}, {"block", int64_t(2)}}, &models);
    set_reward(*d, [&](std::span<const std::string> texts) {
      for (const std::string& t : texts) {
        const std::size_t at = t.find("bc");
        ++seen;
        if (at != std::string::npos) {
          ++stopped;
          EXPECT_EQ(at + 2, t.size()) << t;
        }
      }
      return std::vector<double>(texts.size(), 0.0);
    });
    DecodeOptions options;
    options.seed = seed;
    options.max_new_tokens = 12;
    options.stop_at_eos = false;
    options.stop_strings = {"bc"};
    TokenStream s(kPrompt);
    d->generate(models, options, s);
    std::string text;
    for (TokenId t : s.generated_tokens()) text += m->token_text(t);
    const std::size_t at = text.find("bc");
    EXPECT_TRUE(at == std::string::npos || at + 2 == text.size()) << text;
    EXPECT_TRUE(at != std::string::npos || s.generated_size() == 12u) << text;
  }
  EXPECT_GT(stopped, 0u);
  EXPECT_GT(seen, stopped);
}

TEST(Smc, ReproducibleWithASeed) {
  auto m = model();
  ModelSet models{{"target", m.get()}};
  auto d = make_decoder("smc",
                        {{"particles", int64_t(8)},
                         {"alpha", 4.0},
                         {"block", int64_t(2)},
                         {"mh_steps", int64_t(2)},
                         {"resampling", std::string("stratified")}},
                        &models);
  DecodeOptions options;
  options.seed = 12;
  options.max_new_tokens = 9;
  TokenStream a(kPrompt), b(kPrompt);
  const Stats sa = d->generate(models, options, a);
  const Stats sb = d->generate(models, options, b);
  EXPECT_EQ(a.generated_tokens(), b.generated_tokens());
  EXPECT_EQ(sa.metrics.at("log_evidence"), sb.metrics.at("log_evidence"));
  EXPECT_EQ(a.generated_size(), 9u);
  EXPECT_THROW(make_decoder("smc", {{"resampling", std::string("residual")}}, &models), Error);
  EXPECT_THROW(make_decoder("smc", {{"particles", int64_t(0)}}, &models), Error);
}

}  // namespace
}  // namespace decodelab
