// delayed: delayed tree expansion (DelayedSequencesDrafter in decoders/speculative/sequence_drafters.hpp).
//   - exact enumeration: every draft (a trunk, its branch point fixed or chosen by the draft's
//     confidence, then k i.i.d. rollouts) verified node by node with RRS with replacement, and as a
//     merged tree with Traversal Verification, followed exactly, gives the target's joint law of
//     L + 1 tokens to 1e-12 (random laws over 3-4 tokens, two temperatures, four divergences); the
//     merged tree told its children are i.i.d. does not (negative control);
//   - the decoder on analytic TableModel pairs: the first two tokens fit the exact target law
//     (chi-square + TV at false-alarm rate 1e-3 per configuration, fixed seeds) over several
//     shapes, both rules, the confidence selector, divergences and temperatures 1.0 and 0.3; the
//     same check catches the traversal told the wrong law of the children;
//   - temperature 0 is greedy decoding, one target pass per step, and bad parameters fail.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "decodelab/error.hpp"
#include "decoders/speculative/sequence_drafters.hpp"
#include "decoders/speculative/tree_speculation.hpp"
#include "tests/speculative/exact_laws.hpp"
#include "tests/speculative/first_tokens_fit.hpp"

namespace decodelab::speculative {
namespace {

using namespace exact;

struct DelayedShape {
  int k, L, delay;
  double threshold;
};

// A draft and the length of its trunk.
struct DelayedDraft {
  Draft draft;
  std::size_t trunk = 0;
};

// Every draft DelayedSequencesDrafter can make: the trunk token by token, stopping at depth
// min(delay, L) or, with a threshold, at the first node whose draft law has collision probability
// below it; then k i.i.d. rollouts from the trunk's end to depth L.
void delayed_drafts(Laws& laws, const DelayedShape& s, std::vector<TokenId> trunk, double prob,
                    std::vector<DelayedDraft>& out) {
  const int depth = int(trunk.size());
  const bool stop =
      depth == std::min(s.delay, s.L) || (s.threshold > 0.0 && collision_probability(laws.q(trunk)) < s.threshold);
  if (stop) {
    std::vector<Draft> rollouts;
    extend_chains(laws, Draft{std::vector<std::vector<TokenId>>(std::size_t(s.k), trunk), prob}, 0, s.L, rollouts);
    for (Draft& d : rollouts) out.push_back({std::move(d), trunk.size()});
    return;
  }
  const std::vector<float> q(laws.q(trunk).begin(), laws.q(trunk).end());
  for (int x = 0; x < laws.vocab(); ++x) {
    if (q[std::size_t(x)] <= 0.0f) continue;
    std::vector<TokenId> next = trunk;
    next.push_back(x);
    delayed_drafts(laws, s, std::move(next), prob * q[std::size_t(x)], out);
  }
}

// Exact joint law of L + 1 tokens after one step: node by node with RRS with replacement (trunk
// nodes propose their one child, rollout nodes one child per rollout through them), or the merged
// tree with Traversal Verification told its children were drawn as `told`.
enum class Verifier { specinfer, traversal };
std::map<std::vector<TokenId>, double> delayed_joint(Laws& laws, const DelayedShape& s, Verifier verifier,
                                                     DrawKind told = DrawKind::without_replacement) {
  std::vector<DelayedDraft> drafts;
  delayed_drafts(laws, s, {}, 1.0, drafts);
  const std::size_t length = std::size_t(s.L) + 1;
  std::map<std::vector<TokenId>, double> joint;
  for (const DelayedDraft& dd : drafts) {
    const Draft& d = dd.draft;
    if (verifier == Verifier::specinfer) {
      std::map<std::vector<TokenId>, std::vector<TokenId>> children;
      const std::vector<TokenId>& first = d.sequences.front();
      for (std::size_t i = 0; i < dd.trunk; ++i)
        children[std::vector<TokenId>(first.begin(), first.begin() + std::ptrdiff_t(i))].push_back(first[i]);
      for (const auto& seq : d.sequences)
        for (std::size_t i = dd.trunk; i < seq.size(); ++i)
          children[std::vector<TokenId>(seq.begin(), seq.begin() + std::ptrdiff_t(i))].push_back(seq[i]);
      token_level_walk(laws, Rule::rrs_iid, {}, children, d.prob, length, joint);
      continue;
    }
    const SequenceTree tree = tree_of(laws, d, told, View::merged);
    for (const TraversalEnding& e : exact_traversal(tree)) {
      std::vector<TokenId> path;
      for (int n = e.node; n > 0; n = tree.parent[std::size_t(n)])
        path.insert(path.begin(), tree.token[std::size_t(n)]);
      for (int y = 0; y < laws.vocab(); ++y) {
        std::vector<TokenId> emitted = path;
        emitted.push_back(y);
        complete(laws, emitted, d.prob * e.prob * e.final_law[std::size_t(y)], length, joint);
      }
    }
  }
  return joint;
}

const std::vector<Divergence> kDivergences = {{1.0, 0.3}, {1.6, 0.2}, {0.6, 0.5}, {1.0, 1.0}};
const std::vector<DelayedShape> kShapes = {
    {2, 3, 1, 0.0},  {3, 3, 2, 0.0}, {3, 2, 1, 0.0}, {2, 2, 2, 0.0},  // the last: no room to branch
    {2, 3, 2, 0.45}, {3, 3, 3, 0.6},                                  // confidence selector
};

TEST(DelayedExact, BothRulesGiveTheTargetLawForEveryDraft) {
  int instances = 0;
  double worst = 0.0, worst_told_iid = 0.0;
  for (const DelayedShape& s : kShapes)
    for (double T : {1.0, 0.5})
      for (std::size_t di = 0; di < kDivergences.size(); ++di) {
        Laws laws(s.k * (s.L - 1) <= 4 ? 4 : 3, 6100 + uint64_t(instances), T, kDivergences[di]);
        const auto want = target_joint(laws, std::size_t(s.L) + 1);
        for (Verifier v : {Verifier::specinfer, Verifier::traversal}) {
          const double diff = max_difference(delayed_joint(laws, s, v), want);
          EXPECT_LT(diff, 1e-12) << (v == Verifier::specinfer ? "specinfer" : "traversal") << " k=" << s.k
                                 << " L=" << s.L << " delay=" << s.delay << " threshold=" << s.threshold << " T=" << T
                                 << " divergence " << di;
          worst = std::max(worst, diff);
        }
        // Negative control: the merged tree's distinct children treated as i.i.d. draws.
        if (s.delay < s.L)
          worst_told_iid = std::max(worst_told_iid,
                                    max_difference(delayed_joint(laws, s, Verifier::traversal, DrawKind::iid), want));
        ++instances;
      }
  EXPECT_EQ(instances, int(kShapes.size()) * 2 * 4);
  EXPECT_GT(worst_told_iid, 1e-2);
  std::printf("delayed trees, %d instances x 2 rules: worst |law - target| %.3g; told i.i.d.: %.3g\n", instances, worst,
              worst_told_iid);
}

// --- the decoder on TableModel pairs ------------------------------------------------------------

constexpr int kVocab = 6;
using Config = testing::DraftPairConfig;

const std::vector<Config> kConfigs = {
    {"delayed", {{"temperature", 1.0}}, 1.0, 0.3},
    {"delayed", {{"k", int64_t(3)}, {"L", int64_t(3)}, {"delay", int64_t(2)}, {"temperature", 0.3}}, 1.6, 0.2},
    {"delayed",
     {{"k", int64_t(4)}, {"L", int64_t(3)}, {"verify", std::string("traversal")}, {"temperature", 1.0}},
     0.6,
     0.5},
    {"delayed",
     {{"k", int64_t(3)},
      {"L", int64_t(4)},
      {"delay", int64_t(2)},
      {"verify", std::string("traversal")},
      {"temperature", 0.3}},
     1.0,
     0.7},
    {"delayed",
     {{"k", int64_t(3)}, {"L", int64_t(4)}, {"delay", int64_t(3)}, {"threshold", 0.4}, {"temperature", 1.0}},
     1.3,
     0.3},
    {"delayed",
     {{"k", int64_t(2)},
      {"L", int64_t(3)},
      {"delay", int64_t(2)},
      {"threshold", 0.3},
      {"verify", std::string("traversal")},
      {"temperature", 0.3}},
     1.0,
     0.4},
    {"delayed",
     {{"k", int64_t(3)}, {"L", int64_t(2)}, {"delay", int64_t(0)}, {"top_k", int64_t(3)}, {"temperature", 1.0}},
     1.6,
     0.3},
};

TEST(DelayedDecoder, FirstTwoTokensFollowTheExactTargetLaw) {
  const std::vector<TokenId> prompt{1, 2, 3, 1, 2};
  testing::expect_first_two_exact(kConfigs, kVocab, 1500, prompt);
}

// Negative control: the rollouts' proposals at a node tried in order of draft probability instead
// of rollout order (an order that depends on the tokens: the classic sorted-i.i.d. bug).
TEST(DelayedDecoder, TheSameCheckCatchesProposalsSortedByDraftProbability) {
  const std::vector<TokenId> prompt{1, 2, 3, 1, 2};
  auto target = TableModel::random(kVocab, 2, 1520, 1.5);
  auto draft = TableModel::derive_draft(*target, 1.0, 0.4, 1620);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const ParamMap sampling{{"temperature", 1.0}};
  const VerifyRule sorted_rrs = [](std::span<const float> p, std::span<const float> q,
                                   std::span<const TokenId> candidates, std::span<const double> accept_u,
                                   double residual_u) {
    std::vector<std::size_t> order(candidates.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return q[std::size_t(candidates[a])] > q[std::size_t(candidates[b])];
    });
    std::vector<TokenId> sorted;
    for (std::size_t i : order) sorted.push_back(candidates[i]);
    VerifyOutcome o = verify_rrs_iid(p, q, sorted, accept_u, residual_u);
    if (o.accepted >= 0) o.accepted = int(order[std::size_t(o.accepted)]);
    return o;
  };
  TreeSpeculationMethod method{std::make_unique<DelayedSequencesDrafter>(4, 2, 0, 0.0), sorted_rrs};
  TreeSpeculativeDecoder decoder(chain_from_params(resolve_params("test", sampling_param_specs(), sampling)),
                                 std::move(method));
  const testing::FitResult fit = testing::first_two_fit(decoder, models, *target, sampling, prompt, 60000);
  EXPECT_FALSE(testing::fits(fit)) << fit.describe();
  EXPECT_LT(fit.p_value, 1e-3);
  std::printf("delayed rollouts, proposals sorted by draft probability: %s\n", fit.describe().c_str());
}

// The two ends of the range reduce to existing decoders draw for draw: no delay is specinfer's (or
// traversal's) i.i.d. tree, a delay of L is sd's chain.
TEST(DelayedDecoder, NoDelayIsSpecInferAndFullDelayIsSd) {
  auto target = TableModel::random(kVocab, 2, 41, 1.2);
  auto draft = TableModel::derive_draft(*target, 1.4, 0.3, 42);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const std::vector<TokenId> prompt{1, 2, 3};
  const std::vector<std::pair<ParamMap, std::pair<std::string, ParamMap>>> pairs = {
      {{{"k", int64_t(3)}, {"L", int64_t(3)}, {"delay", int64_t(0)}},
       {"specinfer", {{"k", int64_t(3)}, {"L", int64_t(3)}}}},
      {{{"k", int64_t(3)}, {"L", int64_t(2)}, {"delay", int64_t(0)}, {"verify", std::string("traversal")}},
       {"traversal", {{"k", int64_t(3)}, {"L", int64_t(2)}}}},
      {{{"k", int64_t(4)}, {"L", int64_t(3)}, {"delay", int64_t(3)}}, {"sd", {{"L", int64_t(3)}}}},
  };
  DecodeOptions options;
  options.max_new_tokens = 12;
  for (const auto& [delayed_params, other] : pairs) {
    ParamMap a = delayed_params, b = other.second;
    a["temperature"] = 0.8;
    b["temperature"] = 0.8;
    auto delayed = make_decoder("delayed", a, &models);
    auto reference = make_decoder(other.first, b, &models);
    for (uint64_t seed = 0; seed < 100; ++seed) {
      options.seed = seed;
      TokenStream x(prompt), y(prompt);
      delayed->generate(models, options, x);
      reference->generate(models, options, y);
      ASSERT_EQ(x.tokens(), y.tokens()) << other.first << " seed " << seed;
    }
  }
}

TEST(DelayedDecoder, TemperatureZeroIsGreedyAndShapesHoldTheirParameters) {
  auto target = TableModel::random(12, 2, 31, 1.0);
  auto draft = TableModel::derive_draft(*target, 1.5, 0.5, 32);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const std::vector<TokenId> prompt{3, 4};
  DecodeOptions options;
  options.max_new_tokens = 40;
  TokenStream reference(prompt);
  make_decoder("greedy", {}, &models)->generate(models, options, reference);
  for (const std::string verify : {"specinfer", "traversal"}) {
    options.seed = 3;
    TokenStream s(prompt);
    make_decoder("delayed", {{"temperature", 0.0}, {"draft_temperature", 1.0}, {"verify", verify}}, &models)
        ->generate(models, options, s);
    EXPECT_EQ(s.tokens(), reference.tokens()) << verify;
  }
  // k rollouts of L - delay tokens below a trunk of `delay`: at most delay + k (L - delay) nodes,
  // depth exactly L (the draft's laws have full support).
  for (const std::string verify : {"specinfer", "traversal"}) {
    options.seed = 4;
    options.max_new_tokens = 30;
    TokenStream s(prompt);
    const Stats stats =
        make_decoder("delayed", {{"k", int64_t(3)}, {"L", int64_t(4)}, {"delay", int64_t(2)}, {"verify", verify}},
                     &models)
            ->generate(models, options, s);
    EXPECT_EQ(s.size(), prompt.size() + 30);
    EXPECT_LE(stats.metrics.at("mean_tree_size"), 2.0 + 3 * 2);
    EXPECT_GE(stats.metrics.at("mean_tree_size"), 4.0);
    EXPECT_DOUBLE_EQ(stats.metrics.at("mean_tree_depth"), 4.0);
    EXPECT_EQ(stats.target_calls, stats.steps + 1);
  }
  EXPECT_THROW(make_decoder("delayed", {{"verify", std::string("kseq")}}, &models), Error);
  EXPECT_THROW(make_decoder("delayed", {{"threshold", 1.5}}, &models), Error);
  EXPECT_THROW(make_decoder("delayed", {{"k", int64_t(0)}}, &models), Error);
}

}  // namespace
}  // namespace decodelab::speculative
