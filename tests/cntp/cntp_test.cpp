// cntp (spec section 2.3): the trial count at every threshold; the exact selection law of the
// lowest-perplexity rule on toy models, computed by enumerating the segments (chi-square + TV at
// false-alarm rate 1e-3, fixed seeds), with and without exact perplexity ties; trial termination;
// the reductions to the `sample` and `greedy` decoders; forward-pass accounting; the committed KV
// cache against a fresh evaluation (table model and a tiny GGUF Llama); parameter errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>

#include "core/model/gguf_model.hpp"
#include "decodelab/decoder.hpp"
#include "decodelab/error.hpp"
#include "decodelab/sampler.hpp"
#include "decodelab/table_model.hpp"
#include "decoders/branching/cntp.hpp"
#include "tests/support/stats.hpp"

namespace decodelab {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// ---------------------------------------------------------------------------------------------
// Trial count, entropy, selection.

TEST(CntpSchedule, DefaultThresholdsAreTheSpecsAndExactOnBothSides) {
  const CntpSchedule s;  // 0.01, 1.5, 10
  // The spec's thresholds, rounded to 4 decimals: t_1 is H_low (where x leaves 0), then t_2..t_10.
  const double spec[] = {0.01, 0.1756, 0.3411, 0.5067, 0.6722, 0.8378, 1.0033, 1.1689, 1.3344, 1.5};
  for (int k = 2; k <= 10; ++k) {
    const double t = s.threshold(k);
    EXPECT_NEAR(t, spec[k - 1], 5e-5) << "k=" << k;
    EXPECT_EQ(s.trial_count(std::nextafter(t, -kInf)), k - 1) << "just below t_" << k << " = " << t;
    EXPECT_EQ(s.trial_count(t), k) << "at t_" << k;
    EXPECT_EQ(s.trial_count(std::nextafter(t, kInf)), k) << "just above t_" << k;
  }
  // The literal values of the spec's text: N = 2 needs H >= 0.1756 (0.17556 exactly), N = 10 needs 1.5.
  EXPECT_EQ(s.trial_count(0.1755), 1);
  EXPECT_EQ(s.trial_count(0.1756), 2);
  EXPECT_EQ(s.trial_count(1.4999), 9);
  EXPECT_EQ(s.trial_count(1.5), 10);
  // N = 1 all the way up to t_2, not just up to H_low (int() truncates).
  EXPECT_EQ(s.trial_count(-1.0), 1);
  EXPECT_EQ(s.trial_count(0.0), 1);
  EXPECT_EQ(s.trial_count(0.01), 1);
  EXPECT_EQ(s.trial_count(0.17), 1);
  EXPECT_EQ(s.trial_count(1e9), 10);
  EXPECT_EQ(s.trial_count(std::nan("")), 1);
}

TEST(CntpSchedule, MatchesTheReferenceFormulaAndIsMonotone) {
  const CntpSchedule schedules[] = {{0.01, 1.5, 10}, {0.0, 1.0, 2}, {0.3, 2.7, 7}, {0.01, 1.5, 40}, {0.5, 0.6, 3}};
  for (const CntpSchedule& s : schedules) {
    int previous = 1;
    for (int i = -100; i <= 4000; ++i) {
      const double h = 0.001 * i + 1e-7;  // off the thresholds, where rounding cannot matter
      const double x = std::clamp((h - s.entropy_low) / (s.entropy_high - s.entropy_low), 0.0, 1.0);
      const int reference = int(1 + (s.max_trials - 1) * x);
      const int n = s.trial_count(h);
      ASSERT_EQ(n, reference) << "H=" << h << " max_trials=" << s.max_trials;
      ASSERT_GE(n, previous);
      previous = n;
      ASSERT_EQ(n == s.max_trials, h >= s.entropy_high) << "N = N_max iff H >= H_high";
    }
  }
  // N_max = 1 never branches; N_max = 2 branches exactly from H_high on.
  const CntpSchedule one{0.01, 1.5, 1}, two{0.01, 1.5, 2};
  EXPECT_EQ(one.trial_count(100.0), 1);
  EXPECT_EQ(two.trial_count(std::nextafter(1.5, 0.0)), 1);
  EXPECT_EQ(two.trial_count(1.5), 2);
}

TEST(CntpSchedule, InvalidSchedulesAreErrors) {
  EXPECT_THROW((CntpSchedule{0.01, 1.5, 0}).validate(), Error);
  EXPECT_THROW((CntpSchedule{1.5, 1.5, 10}).validate(), Error);
  EXPECT_THROW((CntpSchedule{2.0, 1.5, 10}).validate(), Error);
  EXPECT_THROW((CntpSchedule{0.01, kInf, 10}).validate(), Error);
  EXPECT_NO_THROW((CntpSchedule{0.01, 1.5, 10}).validate());
  EXPECT_THROW((CntpSchedule{}).threshold(11), Error);
}

TEST(CntpEntropy, IsTheReferenceFormula) {
  const std::vector<float> uniform(4, 0.25f);
  EXPECT_NEAR(cntp_entropy(uniform), -std::log(0.25 + 1e-10), 1e-12);
  const std::vector<float> point{0.0f, 1.0f, 0.0f};
  EXPECT_NEAR(cntp_entropy(point), 0.0, 1e-9);
  const std::vector<float> q{0.5f, 0.3f, 0.2f};
  double h = 0.0;
  for (float p : q) h -= double(p) * std::log(double(p) + 1e-10);
  EXPECT_DOUBLE_EQ(cntp_entropy(q), h);
}

TEST(CntpSelection, LowestPerplexityFirstOnTies) {
  const TrialScore a{std::log(0.5) * 2, 2}, b{std::log(0.5), 1}, c{std::log(0.6) + std::log(0.9), 2},
      d{std::log(0.1), 1};
  EXPECT_NEAR(a.perplexity(), 2.0, 1e-12);
  EXPECT_EQ(lowest_perplexity(std::vector<TrialScore>{a, b}), 0u);  // equal perplexity 2: the first
  EXPECT_EQ(lowest_perplexity(std::vector<TrialScore>{b, a}), 0u);
  EXPECT_EQ(lowest_perplexity(std::vector<TrialScore>{d, a, c, b}), 2u);
  EXPECT_THROW(lowest_perplexity(std::vector<TrialScore>{}), Error);
}

TEST(CntpPunctuation, FaithfulFirstTokenRuleAndTextVariant) {
  auto m = TableModel::random(8, 1, 3, 1.0);
  m->set_token_texts({"a", "b", ".", " .", ".\n", "),", ")", "\n"});
  // Faithful: the first token of tokenize(ch) for each character; merged tokens do not count, and
  // ',' (no token spells it alone) is skipped.
  const std::vector<bool> faithful = punctuation_mask(*m, PunctuationRule::first_token);
  EXPECT_EQ(faithful, (std::vector<bool>{false, false, true, false, false, false, true, true}));
  const std::vector<bool> text = punctuation_mask(*m, PunctuationRule::text_suffix);
  EXPECT_EQ(text, (std::vector<bool>{false, false, true, true, true, true, true, true}));
  EXPECT_EQ(parse_punctuation_rule("token"), PunctuationRule::first_token);
  EXPECT_THROW(parse_punctuation_rule("comma"), Error);
}

// ---------------------------------------------------------------------------------------------
// The exact selection law on toy models.

struct Segment {
  std::vector<TokenId> tokens;
  double p = 1.0;          // probability under the processed distribution
  double sum_log_q = 0.0;  // accumulated exactly as the decoder does
};

// Every segment from `context` under `chain`: tokens up to and including the first one in
// `ends`, or `budget` tokens.
void enumerate(const TableModel& m, const std::string& chain, std::vector<TokenId> context,
               const std::vector<bool>& ends, std::size_t budget, Segment current, std::vector<Segment>& out) {
  const std::vector<float> q = parse_chain(chain)->probs(m.exact_logits(context));
  double z = 0.0;  // the fp32 q sums to 1 only up to rounding; sampling normalizes by the sum
  for (float p : q) z += double(p);
  for (TokenId x = 0; x < m.vocab_size(); ++x) {
    if (q[std::size_t(x)] <= 0.0f) continue;
    Segment s = current;
    s.tokens.push_back(x);
    s.p *= double(q[std::size_t(x)]) / z;
    s.sum_log_q += std::log(double(q[std::size_t(x)]));
    if (ends[std::size_t(x)] || s.tokens.size() >= budget) {
      out.push_back(std::move(s));
    } else {
      std::vector<TokenId> next = context;
      next.push_back(x);
      enumerate(m, chain, next, ends, budget, std::move(s), out);
    }
  }
}

// Pr[select s] = [G>=(s)^N - G>(s)^N] P(s) / P(tie class of s), tie classes by equal perplexity.
std::vector<double> selection_law(const std::vector<Segment>& segs, int n) {
  std::vector<double> nll(segs.size()), law(segs.size());
  for (std::size_t i = 0; i < segs.size(); ++i) nll[i] = -segs[i].sum_log_q / double(segs[i].tokens.size());
  for (std::size_t i = 0; i < segs.size(); ++i) {
    double ge = 0.0, gt = 0.0, tie = 0.0;
    for (std::size_t j = 0; j < segs.size(); ++j) {
      if (nll[j] >= nll[i]) ge += segs[j].p;
      if (nll[j] > nll[i]) gt += segs[j].p;
      if (nll[j] == nll[i]) tie += segs[j].p;
    }
    law[i] = (std::pow(ge, n) - std::pow(gt, n)) * segs[i].p / tie;
  }
  return law;
}

// The first committed segment of a generation: its tokens up to the first trial end.
std::vector<TokenId> first_segment(const TokenStream& s, const std::vector<bool>& ends, std::size_t budget) {
  std::vector<TokenId> out;
  for (TokenId t : s.generated_tokens()) {
    out.push_back(t);
    if (ends[std::size_t(t)] || out.size() >= budget) break;
  }
  return out;
}

struct LawCase {
  std::shared_ptr<TableModel> model;
  std::vector<TokenId> prompt;
  std::string chain;
  int trials;
};

// Counts the first segments of `runs` generations and fits them to the exact law; returns the
// fit against the base sampler's law P(s) too (to show the test has power).
void check_selection_law(const LawCase& c, int runs, uint64_t seed0, bool expect_ties) {
  const std::size_t budget = 3;
  const std::vector<bool> ends = punctuation_mask(*c.model, PunctuationRule::first_token);
  std::vector<Segment> segs;
  enumerate(*c.model, c.chain, c.prompt, ends, budget, {}, segs);
  // The schedule below must give exactly c.trials trials at the prompt.
  const CntpSchedule schedule{0.0, 0.05, c.trials};
  ASSERT_EQ(schedule.trial_count(cntp_entropy(parse_chain(c.chain)->probs(c.model->exact_logits(c.prompt)))), c.trials);
  const std::vector<double> law = selection_law(segs, c.trials);
  std::vector<double> base;
  double total = 0.0;
  bool ties = false;
  std::map<std::vector<TokenId>, std::size_t> index;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    index[segs[i].tokens] = i;
    base.push_back(segs[i].p);
    total += law[i];
    for (std::size_t j = 0; j < i; ++j) {
      const double a = segs[i].sum_log_q / double(segs[i].tokens.size()),
                   b = segs[j].sum_log_q / double(segs[j].tokens.size());
      if (a == b) {
        ties = true;
      } else {  // distinct perplexities are far apart, so float rounding in the decoder cannot reorder them
        ASSERT_GT(std::fabs(a - b), 1e-6) << "near-tie between segments " << i << " and " << j;
      }
    }
  }
  ASSERT_NEAR(total, 1.0, 1e-9);
  ASSERT_EQ(ties, expect_ties);

  ModelSet models{{"target", c.model.get()}};
  ParamMap params{{"max_trials", int64_t(c.trials)},
                  {"entropy_threshold_low", 0.0},
                  {"entropy_threshold_high", 0.05},
                  {"chain", c.chain}};
  auto decoder = make_decoder("cntp", params, &models);
  DecodeOptions options;
  options.max_new_tokens = int(budget);
  std::vector<int64_t> counts(segs.size(), 0);
  for (int r = 0; r < runs; ++r) {
    options.seed = seed0 + uint64_t(r);
    TokenStream s(c.prompt);
    decoder->generate(models, options, s);
    auto it = index.find(first_segment(s, ends, budget));
    ASSERT_NE(it, index.end()) << "a committed segment that is not a trial segment";
    counts[it->second] += 1;
  }
  EXPECT_FITS_DISTRIBUTION(counts, std::span<const double>(law), 1e-3);
  const testing::FitResult against_base = testing::goodness_of_fit(counts, std::span<const double>(base), 1e-3);
  EXPECT_LT(against_base.p_value, 1e-3) << "the base sampler's law should be rejected: " << against_base.describe();
  // It also tells N - 1 trials from N.
  const testing::FitResult against_fewer =
      testing::goodness_of_fit(counts, std::span<const double>(selection_law(segs, c.trials - 1)), 1e-3);
  EXPECT_LT(against_fewer.p_value, 1e-3) << "the law of N - 1 trials should be rejected: " << against_fewer.describe();
  std::printf("%zu segments, N=%d: vs the selection law %s; vs the base law p=%.3g, vs N - 1 trials p=%.3g\n",
              segs.size(), c.trials,
              testing::goodness_of_fit(counts, std::span<const double>(law), 1e-3).describe().c_str(),
              against_base.p_value, against_fewer.p_value);
}

TEST(CntpLaw, LowestPerplexityOfThreeTrialsOnAnOrderOneModel) {
  // Vocabulary a, b, '.'; the next token depends on the last one; the chain tempers it.
  auto m = TableModel::from_table(
      3, 1, {{{0}, {0.22f, 0.43f, 0.35f}}, {{1}, {0.51f, 0.17f, 0.32f}}, {{2}, {0.46f, 0.31f, 0.23f}}},
      {0.3f, 0.3f, 0.4f});
  m->set_token_texts({"a", "b", "."});
  check_selection_law({m, {2}, "temperature(t=0.8)", 3}, 20000, 1, /*expect_ties=*/false);
}

TEST(CntpLaw, ExactPerplexityTiesSplitByProbability) {
  // a and b equally likely everywhere: segments of the same shape tie exactly, and the tie class's
  // share is split in proportion to P(s) (here: evenly).
  auto m = TableModel::from_table(3, 0, {}, {0.3f, 0.3f, 0.4f});
  m->set_token_texts({"a", "b", "."});
  check_selection_law({m, {2}, "", 4}, 20000, 50000, /*expect_ties=*/true);
}

// ---------------------------------------------------------------------------------------------
// Behaviour on a larger random model.

std::shared_ptr<TableModel> text_model(uint64_t seed = 11) {
  auto m = TableModel::random(24, 2, seed, 0.8, /*eos=*/23);
  std::vector<std::string> texts;
  for (int i = 0; i < 24; ++i) texts.push_back(" w" + std::to_string(i));
  texts[3] = ".";
  texts[7] = ",";
  texts[9] = " (x),";  // ends in punctuation, but only the text rule ends a trial there
  texts[12] = "!";
  texts[23] = "</s>";
  m->set_token_texts(texts);
  return m;
}

TEST(CntpTrials, EveryCommittedSegmentEndsAtPunctuationAndNowhereElse) {
  auto m = text_model();
  ModelSet models{{"target", m.get()}};
  for (const std::string rule : {"token", "text"}) {
    const std::vector<bool> ends = punctuation_mask(*m, parse_punctuation_rule(rule));
    EXPECT_EQ(ends[9], rule == "text");
    auto d = make_decoder("cntp", {{"punctuation", rule}, {"temperature", 1.3}}, &models);
    DecodeOptions options;
    options.max_new_tokens = 40;
    int64_t branching = 0, multi = 0;
    for (uint64_t seed = 0; seed < 40; ++seed) {
      options.seed = seed;
      TokenStream s(std::vector<TokenId>{0, 1});
      const Stats st = d->generate(models, options, s);
      branching += int64_t(st.metrics.at("branching_steps"));
      // Tokens committed by one step share its step number.
      const std::vector<TokenRecord> r = s.records();
      for (std::size_t i = s.prompt_size(); i < r.size();) {
        std::size_t j = i;
        while (j + 1 < r.size() && r[j + 1].step == r[i].step) ++j;
        for (std::size_t k = i; k < j; ++k)
          ASSERT_FALSE(ends[std::size_t(r[k].id)] || r[k].id == 23) << "interior end token, seed " << seed;
        if (j + 1 < r.size()) {
          ASSERT_TRUE(ends[std::size_t(r[j].id)]) << "a non-final segment must end at punctuation, seed " << seed;
        }
        multi += j > i;
        i = j + 1;
      }
      EXPECT_EQ(st.tokens_generated, int64_t(s.generated_size()));
      EXPECT_EQ(st.metrics.at("tokens_committed"), double(st.tokens_generated));
      EXPECT_GE(st.metrics.at("tokens_sampled"), double(st.tokens_generated));
    }
    EXPECT_GT(branching, 40) << rule;
    EXPECT_GT(multi, 20) << rule;
  }
}

TEST(CntpTrials, ReproducibleForASeed) {
  auto m = text_model();
  ModelSet models{{"target", m.get()}};
  auto d = make_decoder("cntp", {{"temperature", 1.2}, {"top_k", int64_t(10)}}, &models);
  DecodeOptions options;
  options.max_new_tokens = 30;
  options.seed = 9;
  TokenStream a(std::vector<TokenId>{0}), b(std::vector<TokenId>{0}), c(std::vector<TokenId>{0});
  d->generate(models, options, a);
  d->generate(models, options, b);
  EXPECT_EQ(a.tokens(), b.tokens());
  options.seed = 10;
  d->generate(models, options, c);
  EXPECT_NE(a.tokens(), c.tokens());
}

// ---------------------------------------------------------------------------------------------
// Reductions.

void expect_same_as(const std::string& other, const ParamMap& other_params, const ParamMap& cntp_params) {
  auto m = TableModel::random(30, 2, 3, 1.0, /*eos=*/29);
  ModelSet models{{"target", m.get()}};
  auto base = make_decoder(other, other_params, &models);
  auto cntp = make_decoder("cntp", cntp_params, &models);
  DecodeOptions options;
  options.max_new_tokens = 40;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    options.seed = seed;
    TokenStream a(std::vector<TokenId>{4, 5}), b(std::vector<TokenId>{4, 5});
    const Stats sa = base->generate(models, options, a);
    const Stats sb = cntp->generate(models, options, b);
    ASSERT_EQ(a.tokens(), b.tokens()) << other << " seed " << seed;
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a.at(i).logprob, b.at(i).logprob);
    EXPECT_EQ(sa.target_calls, sb.target_calls);
    EXPECT_EQ(sa.stop_reason, sb.stop_reason);
    EXPECT_EQ(sb.metrics.at("branching_steps"), 0.0);
  }
}

TEST(CntpReductions, OneTrialIsTheSampleDecoder) {
  expect_same_as("sample", {}, {{"max_trials", int64_t(1)}});
  expect_same_as("sample", {{"top_k", int64_t(5)}, {"temperature", 0.8}},
                 {{"max_trials", int64_t(1)}, {"top_k", int64_t(5)}, {"temperature", 0.8}});
  expect_same_as("sample", {{"chain", std::string("top_p(p=0.9),temperature(t=1.5)")}},
                 {{"max_trials", int64_t(1)}, {"chain", std::string("top_p(p=0.9),temperature(t=1.5)")}});
}

TEST(CntpReductions, UnreachableThresholdIsTheSampleDecoder) {
  // H <= log|V| always, so H_low >= log|V| never branches.
  expect_same_as("sample", {},
                 {{"entropy_threshold_low", std::log(30.0)}, {"entropy_threshold_high", std::log(30.0) + 1.0}});
}

TEST(CntpReductions, TemperatureZeroIsGreedy) {
  // The processed distribution is a point mass (entropy 0): CNTP never branches and is greedy.
  expect_same_as("greedy", {}, {{"temperature", 0.0}});
}

TEST(CntpReductions, DefaultsDoBranchOnThisModel) {
  auto m = TableModel::random(30, 2, 3, 1.0, /*eos=*/29);
  ModelSet models{{"target", m.get()}};
  auto d = make_decoder("cntp", {}, &models);
  DecodeOptions options;
  options.max_new_tokens = 20;
  TokenStream s(std::vector<TokenId>{4, 5});
  const Stats st = d->generate(models, options, s);
  EXPECT_GT(st.metrics.at("branching_steps"), 0.0);  // so the reductions above are not vacuous
  EXPECT_EQ(st.metrics.at("max_trials_used"), 10.0);
}

// ---------------------------------------------------------------------------------------------
// Forward-pass accounting (spec oracle 7).

TEST(CntpCost, TrialsShareTheStepsLogitsAndRunAsOneBatch) {
  // After '.', a and b are equally likely (H = ln 2 -> 5 trials with the defaults); after a or b
  // the next token is '.', so every trial is two tokens long.
  auto m = TableModel::from_table(
      3, 1, {{{0}, {0.0f, 0.0f, 1.0f}}, {{1}, {0.0f, 0.0f, 1.0f}}, {{2}, {0.5f, 0.5f, 0.0f}}}, {0.0f, 0.0f, 1.0f});
  m->set_token_texts({"a", "b", "."});
  ModelSet models{{"target", m.get()}};
  auto d = make_decoder("cntp", {}, &models);
  DecodeOptions options;
  options.max_new_tokens = 4;
  options.seed = 3;
  TokenStream s(std::vector<TokenId>{2});
  m->reset_counters();
  const Stats st = d->generate(models, options, s);
  ASSERT_EQ(s.generated_size(), 4u);
  EXPECT_EQ(s.token(2), 2);
  EXPECT_EQ(s.token(4), 2);
  EXPECT_EQ(st.metrics.at("branching_steps"), 2.0);
  EXPECT_EQ(st.metrics.at("trials"), 10.0);
  EXPECT_EQ(st.metrics.at("tokens_sampled"), 20.0);
  EXPECT_EQ(st.metrics.at("tokens_committed"), 4.0);
  // prefill; per step one batched call for the 5 trials' second positions (first positions reuse
  // the step's logits); the first winner's '.' to continue; the second step ends generation.
  EXPECT_EQ(st.target_calls, 1 + (1 + 1) + 1);
  EXPECT_EQ(st.target_nodes, 1 + (5 + 1) + 5);
  EXPECT_EQ(m->counters().evaluate_calls, st.target_calls);
  EXPECT_EQ(m->counters().nodes_evaluated, st.target_nodes);
  EXPECT_EQ(st.accepted_per_step, (std::vector<int64_t>{0, 0, 2}));
}

TEST(CntpCost, ConstantTrialsAblationRunsNMaxWheneverItBranches) {
  // The reference's same_num_trials: the entropy decides whether to branch, N_max how wide.
  CntpSchedule s{0.01, 1.5, 10};
  s.constant = true;
  for (double h : {0.0, 0.01, 0.1, 0.17, 0.2, 0.693, 1.4, 1.5, 9.0}) {
    EXPECT_EQ(s.trials(h), s.trial_count(h) > 1 ? 10 : 1) << "H=" << h;
  }
  EXPECT_EQ(s.trials(0.0), 1);
  EXPECT_EQ(s.trials(0.693), 10);
  // The toy of the test above: two branching steps at H = ln 2, now 10 trials each, not 5.
  auto m = TableModel::from_table(
      3, 1, {{{0}, {0.0f, 0.0f, 1.0f}}, {{1}, {0.0f, 0.0f, 1.0f}}, {{2}, {0.5f, 0.5f, 0.0f}}}, {0.0f, 0.0f, 1.0f});
  m->set_token_texts({"a", "b", "."});
  ModelSet models{{"target", m.get()}};
  DecodeOptions options;
  options.max_new_tokens = 4;
  options.seed = 3;
  TokenStream adaptive(std::vector<TokenId>{2}), constant(std::vector<TokenId>{2});
  const Stats a = make_decoder("cntp", {}, &models)->generate(models, options, adaptive);
  const Stats c =
      make_decoder("cntp", {{"trials", std::string("constant")}}, &models)->generate(models, options, constant);
  EXPECT_EQ(a.metrics.at("trials"), 10.0);
  EXPECT_EQ(c.metrics.at("trials"), 20.0);
  EXPECT_EQ(c.metrics.at("branching_steps"), 2.0);
  EXPECT_THROW(make_decoder("cntp", {{"trials", std::string("sometimes")}}, &models), Error);
}

// ---------------------------------------------------------------------------------------------
// Cache integrity (spec oracle 6): a model wrapper that records every sequence's committed tokens
// and next-token logits when the decoder frees it. The main sequence is freed last.

class WatchedModel final : public LanguageModel {
 public:
  struct Freed {
    std::vector<TokenId> tokens;
    std::vector<float> next;
  };
  WatchedModel(LanguageModel& inner, std::function<std::string(TokenId)> text)
      : inner_(inner), text_(std::move(text)) {}

  const ModelInfo& info() const override { return inner_.info(); }
  std::string token_text(TokenId t) const override { return text_(t); }
  SeqId new_sequence() override {
    live += 1;
    return inner_.new_sequence();
  }
  SeqId fork(SeqId seq) override {
    live += 1;
    return inner_.fork(seq);
  }
  void free_sequence(SeqId seq) override {
    live -= 1;
    const std::span<const float> next = inner_.next_logits(seq);
    freed.push_back({inner_.committed_tokens(seq), std::vector<float>(next.begin(), next.end())});
    inner_.free_sequence(seq);
  }
  std::size_t length(SeqId seq) const override { return inner_.length(seq); }
  std::vector<TokenId> committed_tokens(SeqId seq) const override { return inner_.committed_tokens(seq); }
  void commit(SeqId seq, std::span<const int32_t> path) override { inner_.commit(seq, path); }
  void rollback(SeqId seq, std::size_t n) override { inner_.rollback(seq, n); }
  std::span<const float> next_logits(SeqId seq) override { return inner_.next_logits(seq); }

  std::vector<Freed> freed;
  std::vector<std::size_t> batch_sizes;
  int live = 0;            // sequences created and not freed
  int fail_at_batch = -1;  // evaluate() number that throws, as a model error would (-1: none)

 protected:
  void do_evaluate(std::span<const TreeEval> batch, std::vector<Matrix>& out) override {
    if (int(batch_sizes.size()) == fail_at_batch) fail(ErrorCode::numeric, "watched model: injected failure");
    batch_sizes.push_back(batch.size());
    inner_.evaluate(batch, out);
  }

 private:
  LanguageModel& inner_;
  std::function<std::string(TokenId)> text_;
};

// Runs CNTP for several lengths and checks the main sequence's cache against a fresh evaluation
// of the committed text; returns the largest relative logit difference seen.
double check_cache(LanguageModel& inner, std::function<std::string(TokenId)> text, const std::vector<TokenId>& prompt,
                   int max_trials) {
  WatchedModel watched(inner, std::move(text));
  ModelSet models{{"target", &watched}};
  auto d = make_decoder("cntp", {{"punctuation", std::string("text")}, {"max_trials", int64_t(max_trials)}}, &models);
  double worst = 0.0;
  int64_t branching = 0;
  for (int length : {3, 8, 14}) {
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      watched.freed.clear();
      watched.batch_sizes.clear();
      DecodeOptions options;
      options.seed = seed;
      options.max_new_tokens = length;
      options.stop_at_eos = false;
      TokenStream s(prompt);
      const Stats st = d->generate(models, options, s);
      branching += int64_t(st.metrics.at("branching_steps"));
      EXPECT_EQ(st.stop_reason, "max_tokens");
      for (std::size_t b : watched.batch_sizes) EXPECT_LE(b, std::size_t(max_trials));
      // The main sequence holds the stream but its last token (the decoder stopped right after it).
      EXPECT_FALSE(watched.freed.empty());
      if (watched.freed.empty()) continue;
      const WatchedModel::Freed& main = watched.freed.back();
      std::vector<TokenId> want = s.tokens();
      want.pop_back();
      EXPECT_EQ(main.tokens, want) << "committed cache != committed text (seed " << seed << ", length " << length
                                   << ")";
      const SeqId fresh = inner.new_sequence();
      const std::span<const float> ref = inner.append(fresh, want);
      double diff = 0.0, scale = 0.0;
      for (std::size_t v = 0; v < ref.size(); ++v) {
        diff = std::max(diff, double(std::fabs(ref[v] - main.next[v])));
        scale = std::max(scale, double(std::fabs(ref[v])));
      }
      inner.free_sequence(fresh);
      worst = std::max(worst, diff / scale);
    }
  }
  EXPECT_GT(branching, 5);
  return worst;
}

TEST(CntpCache, CommittedCacheEqualsAFreshEvaluationOnATableModel) {
  auto m = text_model();
  const double err = check_cache(
      *m, [&](TokenId t) { return m->token_text(t); }, {0, 1}, 10);
  EXPECT_EQ(err, 0.0);
}

TEST(CntpCache, CommittedCacheEqualsAFreshEvaluationOnATinyLlama) {
  GgufModel m(std::string(DECODELAB_SOURCE_DIR) + "/tests/data/tiny-llama.gguf", GgufModelOptions{256, 2});
  // Give one token in five a punctuation text, so trials end after a few tokens.
  const double err = check_cache(
      m, [&](TokenId t) { return m.token_text(t) + (t % 5 == 0 ? "." : ""); }, {1, 7, 42, 99}, 6);
  std::printf("tiny llama: committed-cache logits vs a fresh evaluation, max relative difference %.3g\n", err);
  EXPECT_LE(err, 1e-4);
}

TEST(CntpCache, AModelErrorMidStepFreesEveryFork) {
  auto m = text_model();
  WatchedModel watched(*m, [&](TokenId t) { return m->token_text(t); });
  ModelSet models{{"target", &watched}};
  auto d = make_decoder("cntp", {{"punctuation", std::string("text")}}, &models);
  DecodeOptions options;
  options.max_new_tokens = 30;
  int64_t thrown = 0;
  for (int at = 1; at < 6; ++at) {
    watched.fail_at_batch = at;
    watched.batch_sizes.clear();
    TokenStream s(std::vector<TokenId>{0, 1});
    try {
      d->generate(models, options, s);
    } catch (const Error&) {
      thrown += 1;
    }
    EXPECT_EQ(watched.live, 0) << "failure at evaluate " << at;
  }
  EXPECT_EQ(thrown, 5);
}

// ---------------------------------------------------------------------------------------------
// Errors.

TEST(CntpParams, BadParametersAreClearErrors) {
  auto m = text_model();
  ModelSet models{{"target", m.get()}};
  auto message = [&](const ParamMap& p) -> std::string {
    try {
      make_decoder("cntp", p, &models);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << e.what();
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
  };
  EXPECT_NE(message({{"max_trials", int64_t(0)}}).find("max_trials"), std::string::npos);
  EXPECT_NE(message({{"max_trials", 2.5}}).find("max_trials"), std::string::npos);
  EXPECT_NE(message({{"entropy_threshold_low", 2.0}}).find("entropy_threshold_high"), std::string::npos);
  EXPECT_NE(message({{"entropy_threshold_high", 0.01}}).find("entropy_threshold_low"), std::string::npos);
  EXPECT_NE(message({{"entropy_threshold_low", -0.5}}).find("entropy_threshold_low"), std::string::npos);
  EXPECT_NE(message({{"punctuation", std::string("comma")}}).find("punctuation"), std::string::npos);
  EXPECT_NE(message({{"temperature", -1.0}}).find("temperature"), std::string::npos);
  EXPECT_NE(message({{"trials", int64_t(3)}}).find("trials"), std::string::npos);
  EXPECT_THROW(make_decoder("cntp", {{"chain", std::string("top_k(k=abc)")}}, &models), Error);
  // An empty prompt has no context for the first token.
  auto d = make_decoder("cntp", {}, &models);
  TokenStream empty;
  EXPECT_THROW(d->generate(models, {}, empty), Error);
  // The entry documents its parameters with the spec's defaults.
  const auto& entry = DecoderRegistry::instance().get("cntp");
  std::map<std::string, ParamValue> defaults;
  for (const ParamSpec& p : entry.params) defaults[p.name] = p.default_value;
  EXPECT_EQ(std::get<double>(defaults.at("entropy_threshold_low")), 0.01);
  EXPECT_EQ(std::get<double>(defaults.at("entropy_threshold_high")), 1.5);
  EXPECT_EQ(std::get<int64_t>(defaults.at("max_trials")), 10);
  EXPECT_EQ(std::get<std::string>(defaults.at("punctuation")), "token");
  EXPECT_TRUE(defaults.count("temperature") && defaults.count("top_p") && defaults.count("chain"));
}

}  // namespace
}  // namespace decodelab
