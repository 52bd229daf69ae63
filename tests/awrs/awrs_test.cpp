// masking and awrs: both decoders' sequence laws equal the exact locally constrained law
// prod_t pi(x_t | x_<t) (chi-square + TV at alpha = 1e-3, fixed seeds); the AWRS weight is an
// unbiased, properly weighted estimate of the step normalizer Z; AWRS pays far fewer constraint
// checks than masking when few tokens are rejected.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "decodelab/decoder.hpp"
#include "decodelab/random.hpp"
#include "decodelab/table_model.hpp"
#include "decoders/constrained/awrs.hpp"
#include "samplers/constraints/constraint.hpp"
#include "samplers/constraints/json_recognizer.hpp"
#include "tests/support/stats.hpp"

namespace decodelab {
namespace {

constexpr double kAlpha = 1e-3;
const std::vector<std::string> kTexts = {"a", "b", "c", "ab", "ba", "<eos>"};
constexpr TokenId kEos = 5;
const char* kPattern = "regex(pattern=a+b?)";

std::shared_ptr<TableModel> text_model() {
  auto m = TableModel::random(int(kTexts.size()), 2, 11, 1.0, kEos);
  m->set_token_texts(kTexts);
  return m;
}

// Exact locally constrained law of the generated tokens (up to `depth` tokens or eos).
void lcd_law(const TableModel& model, Constraint& c, std::vector<TokenId> context, std::vector<TokenId> generated,
             double mass, int depth, std::map<std::vector<TokenId>, double>& law) {
  if (depth == 0) {
    law[generated] += mass;
    return;
  }
  const std::vector<float> p = model.exact_probs(context);
  double z = 0.0;
  for (TokenId t = 0; t < TokenId(p.size()); ++t)
    if (c.allows(t)) z += p[std::size_t(t)];
  ASSERT_GT(z, 0.0);
  for (TokenId t = 0; t < TokenId(p.size()); ++t) {
    if (!c.allows(t)) continue;
    auto next = c.clone();
    next->extend(t);
    auto g = generated;
    g.push_back(t);
    auto ctx = context;
    ctx.push_back(t);
    const double m = mass * p[std::size_t(t)] / z;
    if (t == kEos) law[g] += m;
    else lcd_law(model, *next, ctx, g, m, depth - 1, law);
  }
}

void check_decoder_law(const std::string& name, uint64_t seed_base) {
  auto model = text_model();
  ModelSet models{{"target", model.get()}};
  auto decoder = make_decoder(name, {{"constraint", std::string(kPattern)}}, &models);
  const std::vector<TokenId> prompt = {2};
  std::map<std::vector<TokenId>, double> law;
  auto c = make_constraint(kPattern, *model);
  lcd_law(*model, *c, prompt, {}, 1.0, 3, law);
  std::map<std::vector<TokenId>, int64_t> index;
  for (const auto& [seq, p] : law) index.emplace(seq, int64_t(index.size()));
  std::vector<int64_t> counts(law.size(), 0);
  const int n = 20000;
  DecodeOptions options;
  options.max_new_tokens = 3;
  for (int i = 0; i < n; ++i) {
    options.seed = seed_base + uint64_t(i);
    TokenStream stream(prompt);
    decoder->generate(models, options, stream);
    auto it = index.find(stream.generated_tokens());
    ASSERT_NE(it, index.end()) << name << ": generated a sequence the constraint forbids";
    counts[std::size_t(it->second)] += 1;
  }
  std::vector<double> probs;
  for (const auto& [seq, p] : law) probs.push_back(p);
  EXPECT_FITS_DISTRIBUTION(counts, probs, kAlpha);
}

TEST(Masking, SequenceLawIsTheLocallyConstrainedLaw) { check_decoder_law("masking", 1000); }
TEST(Awrs, SequenceLawIsTheLocallyConstrainedLaw) { check_decoder_law("awrs", 500000); }

// One-step model: single-letter tokens a..h, the constraint allows those in `allowed_class`.
struct Step {
  std::shared_ptr<TableModel> model;
  std::vector<float> p;
  std::unique_ptr<Constraint> constraint;
};
Step one_step(const std::string& allowed_class, double sharpness, uint64_t seed) {
  Step s;
  s.model = TableModel::random(8, 1, seed, sharpness);
  s.model->set_token_texts({"a", "b", "c", "d", "e", "f", "g", "h"});
  s.p = s.model->exact_probs(std::vector<TokenId>{0});
  s.constraint = make_constraint("regex(pattern=" + allowed_class + ")", *s.model);
  return s;
}

TEST(Awrs, WeightIsUnbiasedAndProper) {
  for (const auto& [cls, seed] :
       std::vector<std::pair<std::string, uint64_t>>{{"[ceh]", 3}, {"[b]", 4}, {"[a-g]", 5}, {"[ah]", 6}}) {
    Step s = one_step(cls, 1.5, seed);
    const int n = 200000;
    std::vector<double> sum(8, 0.0), sum_sq(8, 0.0);
    double z_sum = 0.0, z_sq = 0.0;
    for (int i = 0; i < n; ++i) {
      PhiloxStream rng = random_stream(seed, RandomStream::proposal, uint64_t(i));
      const AwrsDraw d = awrs_sample(s.p, *s.constraint, rng);
      ASSERT_GE(d.token, 0);
      ASSERT_TRUE(s.constraint->viable_text(std::string(1, char('a' + d.token))));
      const double w = std::exp(d.log_weight);
      sum[std::size_t(d.token)] += w;
      sum_sq[std::size_t(d.token)] += w * w;
      z_sum += w;
      z_sq += w * w;
    }
    double z = 0.0;
    for (TokenId t = 0; t < 8; ++t) {
      const bool allowed = s.constraint->viable_text(std::string(1, char('a' + t)));
      const double exact = allowed ? s.p[std::size_t(t)] : 0.0;
      z += exact;
      const double mean = sum[std::size_t(t)] / n;
      const double sd = std::sqrt(std::max(sum_sq[std::size_t(t)] / n - mean * mean, 0.0) / n);
      EXPECT_NEAR(mean, exact, 4 * sd + 1e-12) << cls << " token " << t;  // E[w 1{X=a}] = p_a 1[a allowed]
    }
    const double mean = z_sum / n;
    const double sd = std::sqrt(std::max(z_sq / n - mean * mean, 0.0) / n);
    EXPECT_NEAR(mean, z, 4 * sd + 1e-12) << cls << ": E[Z-hat] must be Z = " << z;
  }
}

TEST(Awrs, DegenerateCases) {
  {
    Step s = one_step("[a-h]", 1.0, 9);  // everything allowed: Z-hat = 1 exactly, two checks
    for (int i = 0; i < 100; ++i) {
      PhiloxStream rng = random_stream(1, RandomStream::proposal, uint64_t(i));
      const AwrsDraw d = awrs_sample(s.p, *s.constraint, rng);
      EXPECT_EQ(d.log_weight, 0.0);
      EXPECT_EQ(d.evaluations, 2);
      EXPECT_EQ(d.rejections, 0);
    }
  }
  {
    Step s = one_step("[d]", 1.0, 9);  // a single allowed token: always it
    for (int i = 0; i < 100; ++i) {
      PhiloxStream rng = random_stream(2, RandomStream::proposal, uint64_t(i));
      EXPECT_EQ(awrs_sample(s.p, *s.constraint, rng).token, 3);
    }
  }
  {
    Step s = one_step("[xyz]", 1.0, 9);  // nothing allowed: a dead end after testing every token once
    PhiloxStream rng = random_stream(3, RandomStream::proposal, 0);
    const AwrsDraw d = awrs_sample(s.p, *s.constraint, rng);
    EXPECT_EQ(d.token, -1);
    EXPECT_TRUE(std::isinf(d.log_weight) && d.log_weight < 0);
    EXPECT_EQ(d.evaluations, 8);
  }
}

TEST(Awrs, FarFewerChecksThanMaskingOnALowRejectionConstraint) {
  auto model = TableModel::random(2000, 2, 21, 2.0);  // texts " a" .. " z", " t26", ...
  ModelSet models{{"target", model.get()}};
  const std::string spec = "regex(pattern=[^z]*)";  // rejects only " z"
  DecodeOptions options;
  options.seed = 5;
  options.max_new_tokens = 20;
  const std::vector<TokenId> prompt = {1};
  TokenStream a(prompt), m(prompt);
  const Stats awrs = make_decoder("awrs", {{"constraint", spec}}, &models)->generate(models, options, a);
  const Stats masking = make_decoder("masking", {{"constraint", spec}}, &models)->generate(models, options, m);
  EXPECT_EQ(awrs.tokens_generated, 20);
  EXPECT_EQ(masking.tokens_generated, 20);
  EXPECT_GE(masking.metrics.at("constraint_evaluations"), 20.0 * 1900);
  EXPECT_LE(awrs.metrics.at("constraint_evaluations"), 20.0 * 3);  // one accept + one weight check, rarely a rejection
  for (std::size_t i = 0; i < a.generated_size(); ++i) EXPECT_NE(a.generated_tokens()[i], 25);
}

TEST(Awrs, JsonConstrainedOutputsAreJson) {
  auto model = TableModel::random(11, 2, 17, 0.5, 10);
  model->set_token_texts({"{", "}", "[", "]", "\"k\"", ":", ",", "1", "true", " ", "<eos>"});
  ModelSet models{{"target", model.get()}};
  const std::vector<TokenId> prompt = {9};
  int complete = 0;
  for (const std::string name : {"awrs", "masking"}) {
    auto decoder = make_decoder(name, {{"constraint", std::string("json")}}, &models);
    for (int i = 0; i < 100; ++i) {
      DecodeOptions options;
      options.seed = uint64_t(i);
      options.max_new_tokens = 40;
      TokenStream stream(prompt);
      const Stats s = decoder->generate(models, options, stream);
      std::string text;
      for (TokenId t : stream.generated_tokens())
        if (t != 10) text += model->token_text(t);
      JsonRecognizer r;
      ASSERT_TRUE(r.feed(text)) << name << ": '" << text << "'";
      if (s.stop_reason == "eos") {
        EXPECT_TRUE(r.complete()) << name << ": '" << text << "'";
        complete += 1;
      }
    }
  }
  EXPECT_GT(complete, 20);
}

TEST(Awrs, ReproducibleAndReportsDeadEnds) {
  auto model = text_model();
  ModelSet models{{"target", model.get()}};
  DecodeOptions options;
  options.seed = 77;
  options.max_new_tokens = 6;
  auto decoder = make_decoder("awrs", {{"constraint", std::string("regex(pattern=ab)")}}, &models);
  const std::vector<TokenId> prompt = {2};
  TokenStream s1(prompt), s2(prompt);
  const Stats st1 = decoder->generate(models, options, s1);
  const Stats st2 = decoder->generate(models, options, s2);
  EXPECT_EQ(s1.generated_tokens(), s2.generated_tokens());
  EXPECT_EQ(st1.metrics.at("log_weight"), st2.metrics.at("log_weight"));
  auto c = make_constraint("regex(pattern=ab)", *model);
  for (TokenId t : s1.generated_tokens()) c->extend(t);
  EXPECT_TRUE(st1.stop_reason == "eos" || st1.stop_reason == "constraint_complete") << st1.stop_reason;

  // A model with no eos and a constraint that must end: the decoder stops when nothing may follow.
  auto no_eos = TableModel::random(4, 1, 3, 1.0);
  no_eos->set_token_texts({"a", "b", "c", "d"});
  ModelSet m2{{"target", no_eos.get()}};
  const std::vector<TokenId> prompt0 = {0};
  TokenStream s3(prompt0);
  const Stats st3 =
      make_decoder("masking", {{"constraint", std::string("regex(pattern=ab)")}}, &m2)->generate(m2, options, s3);
  EXPECT_EQ(st3.stop_reason, "constraint_complete");
  EXPECT_EQ(s3.generated_tokens(), (std::vector<TokenId>{0, 1}));
  EXPECT_THROW(make_decoder("awrs", {}, &models), Error);
}

}  // namespace
}  // namespace decodelab
