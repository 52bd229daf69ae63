// sequoia: static draft trees from Sequoia's dynamic program (decoders/speculative/static_tree.hpp).
//   - the dynamic program returns a shape whose expected accepted length is the maximum over every
//     shape with at most `budget` nodes and depth at most the cap, found by enumerating them all;
//   - exact enumeration: every draft of a dynamic-program shape (children without replacement at
//     every node) verified with RRS without replacement, followed exactly, gives the target's joint
//     law of depth + 1 tokens to 1e-12 (random laws over 3-4 tokens, two temperatures, four
//     divergences); the same drafts verified with the with-replacement rule do not (negative control);
//   - the decoder on analytic TableModel pairs: the first two tokens fit the exact target law
//     (chi-square + TV at false-alarm rate 1e-3 per configuration, fixed seeds) over several budgets,
//     acceptance vectors, depth caps, divergences, temperatures 1.0 and 0.3, truncation and
//     deterministic children; the same check catches the decoder given the with-replacement rule;
//   - the same fillings as whole trees under Traversal Verification: exact too (told i.i.d.: caught);
//   - the measured acceptance by rank matches its exact value, temperature 0 is greedy decoding,
//     and bad parameters fail with a clear Error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "decodelab/error.hpp"
#include "decoders/speculative/static_tree.hpp"
#include "decoders/speculative/tree_speculation.hpp"
#include "tests/speculative/exact_laws.hpp"
#include "tests/speculative/first_tokens_fit.hpp"

namespace decodelab::speculative {
namespace {

using namespace exact;

// --- the dynamic program against every shape ----------------------------------------------------

// A plane tree: a node's children in rank order.
struct Plane {
  std::vector<Plane> children;
};

// Every forest of exactly n nodes and depth at most d (children ranked by position).
std::vector<std::vector<Plane>> forests_of_size(int n, int d) {
  if (n == 0) return {{}};
  std::vector<std::vector<Plane>> out;
  if (d == 0) return out;
  // First tree of m nodes, then a forest of the rest.
  for (int m = 1; m <= n; ++m)
    for (const std::vector<Plane>& below : forests_of_size(m - 1, d - 1))
      for (const std::vector<Plane>& rest : forests_of_size(n - m, d)) {
        std::vector<Plane> f{Plane{below}};
        f.insert(f.end(), rest.begin(), rest.end());
        out.push_back(std::move(f));
      }
  return out;
}

std::vector<std::vector<Plane>> all_forests(int n, int d) {
  std::vector<std::vector<Plane>> out;
  for (int m = 0; m <= n; ++m)
    for (auto& f : forests_of_size(m, d)) out.push_back(std::move(f));
  return out;
}

int count_nodes(const std::vector<Plane>& f) {
  int n = 0;
  for (const Plane& t : f) n += 1 + count_nodes(t.children);
  return n;
}

// The model's value computed on the nested form, independently of expected_accepted_length.
double forest_value(const std::vector<Plane>& f, std::span<const double> a) {
  double v = 0.0;
  for (std::size_t i = 0; i < f.size(); ++i) v += (i < a.size() ? a[i] : 0.0) * (1.0 + forest_value(f[i].children, a));
  return v;
}

std::vector<double> random_vector(PhiloxStream& rng, int K) {
  std::vector<double> a(static_cast<std::size_t>(K));
  double total = 0.0;
  for (double& x : a) total += x = rng.uniform_double();
  const double scale = (0.3 + 0.7 * rng.uniform_double()) / total;  // sums to 0.3..1
  for (double& x : a) x *= scale;
  return a;
}

TEST(SequoiaTree, DynamicProgramMaximizesExpectedAcceptedLength) {
  PhiloxStream rng = random_stream(11, RandomStream::user, 0);
  std::map<std::pair<int, int>, std::vector<std::vector<Plane>>> forests;
  int checked = 0;
  for (int instance = 0; instance < 40; ++instance) {
    const std::vector<double> a = random_vector(rng, 1 + int(rng.next_u32() % 4u));  // not sorted: any order
    for (int budget = 1; budget <= 7; ++budget)
      for (int cap : {0, 1, 2, 3}) {
        const int d = cap == 0 ? budget : cap;
        auto& all = forests[{budget, d}];
        if (all.empty()) all = all_forests(budget, d);
        double best = 0.0;
        for (const auto& f : all) best = std::max(best, forest_value(f, a));
        const OptimalTree t = optimal_static_tree(a, budget, cap);
        SCOPED_TRACE(::testing::Message() << "budget " << budget << " cap " << cap << " shape " << t.shape.describe());
        EXPECT_NEAR(t.value, best, 1e-12);
        EXPECT_NEAR(expected_accepted_length(t.shape, a), t.value, 1e-12);
        EXPECT_LE(t.shape.size(), budget);
        if (cap > 0) {
          EXPECT_LE(t.shape.max_depth(), cap);
        }
        // Breadth first, parents first, ranks 1, 2, ... among siblings.
        for (int i = 0; i < t.shape.size(); ++i) {
          const int p = t.shape.parent[std::size_t(i)];
          EXPECT_LT(p, i);
          if (i > 0) {
            EXPECT_GE(t.shape.depth(i), t.shape.depth(i - 1));
          }
          int earlier = 0;
          for (int j = 0; j < i; ++j) earlier += t.shape.parent[std::size_t(j)] == p;
          EXPECT_EQ(t.shape.rank[std::size_t(i)], earlier + 1);
        }
        ++checked;
      }
  }
  EXPECT_EQ(checked, 40 * 7 * 4);
  EXPECT_EQ(forests[std::make_pair(7, 7)].size(),
            1u + 1 + 2 + 5 + 14 + 42 + 132 + 429);  // plane forests: Catalan numbers
  // Closed cases: a sure first child makes a chain as deep as allowed; k equal children and depth 1
  // make a star.
  const std::vector<double> sure{1.0};
  EXPECT_DOUBLE_EQ(optimal_static_tree(sure, 9, 0).value, 9.0);
  EXPECT_DOUBLE_EQ(optimal_static_tree(sure, 9, 4).value, 4.0);
  const std::vector<double> flat{0.2, 0.2, 0.2};
  EXPECT_EQ(optimal_static_tree(flat, 5, 1).shape.describe(), "1:3");
}

TEST(SequoiaTree, BadInputsFailClearly) {
  const std::vector<double> ok{0.5, 0.2}, over{0.7, 0.4}, negative{0.5, -0.1}, none{};
  EXPECT_THROW(optimal_static_tree(ok, 0, 0), Error);
  EXPECT_THROW(optimal_static_tree(ok, 257, 0), Error);
  EXPECT_THROW(optimal_static_tree(ok, 4, -1), Error);
  EXPECT_THROW(optimal_static_tree(over, 4, 0), Error);
  EXPECT_THROW(optimal_static_tree(negative, 4, 0), Error);
  EXPECT_THROW(optimal_static_tree(none, 4, 0), Error);
  EXPECT_EQ(parse_acceptance_vector("0.5, 0.25,0.125"), (std::vector<double>{0.5, 0.25, 0.125}));
  EXPECT_EQ(parse_acceptance_vector("0.5/0.25/0.125"), (std::vector<double>{0.5, 0.25, 0.125}));
  EXPECT_THROW(parse_acceptance_vector("0.5,x"), Error);
  EXPECT_THROW(parse_acceptance_vector(""), Error);
  auto target = TableModel::random(6, 1, 1, 1.0);
  ModelSet models{{"target", target.get()}, {"draft", target.get()}};
  EXPECT_THROW(make_decoder("sequoia", {{"acceptance", std::string("0.9,0.3")}}, &models), Error);
  EXPECT_THROW(make_decoder("sequoia", {{"acceptance", std::string("half")}}, &models), Error);
  EXPECT_THROW(make_decoder("sequoia", {{"budget", int64_t(0)}}, &models), Error);
  ModelSet no_draft{{"target", target.get()}};
  EXPECT_THROW(make_decoder("sequoia", {}, &no_draft), Error);
  // The form bench spec --acceptance-vector prints fits inside a spec.
  const auto [name, params] = parse_spec("sequoia(budget=5,acceptance=0.5/0.2/0.1)");
  EXPECT_NO_THROW(make_decoder(name, params, &models));
}

// --- exact enumeration ------------------------------------------------------------------------

// One way the drafter can fill a shape: each existing node's proposals (children in draw order).
struct FilledShape {
  std::map<std::vector<TokenId>, std::vector<TokenId>> children;
  double prob = 1.0;
};

// Every filling of `shape` as StaticTreeDrafter draws it: breadth first, each child from its
// parent's draft law without the children drawn before it; no child once that law has no mass, and
// nothing below a node that was not drawn.
void all_fillings(Laws& laws, const TreeShape& shape, std::size_t s, std::vector<std::vector<TokenId>> prefix_of,
                  FilledShape f, std::vector<FilledShape>& out) {
  if (s == std::size_t(shape.size())) return out.push_back(std::move(f));
  const int p = shape.parent[s];
  const bool parent_exists = p < 0 || !prefix_of[std::size_t(p)].empty();
  const std::vector<TokenId> parent_prefix = p < 0 ? std::vector<TokenId>{} : prefix_of[std::size_t(p)];
  std::vector<double> r;
  double mass = 0.0;
  if (parent_exists) {
    const std::span<const float> q = laws.q(parent_prefix);
    r.assign(q.begin(), q.end());
    if (const auto it = f.children.find(parent_prefix); it != f.children.end())
      for (TokenId x : it->second) r[std::size_t(x)] = 0.0;
    for (double v : r) mass += v;
  }
  if (mass <= 0.0) return all_fillings(laws, shape, s + 1, std::move(prefix_of), std::move(f), out);
  for (int x = 0; x < laws.vocab(); ++x) {
    if (r[std::size_t(x)] <= 0.0) continue;
    FilledShape g = f;
    g.children[parent_prefix].push_back(x);
    g.prob *= r[std::size_t(x)] / mass;
    std::vector<std::vector<TokenId>> next = prefix_of;
    next[s] = parent_prefix;
    next[s].push_back(x);
    all_fillings(laws, shape, s + 1, std::move(next), std::move(g), out);
  }
}

// Exact joint law of depth + 1 tokens after one step: every filling, walked with `rule`.
std::map<std::vector<TokenId>, double> static_tree_joint(Laws& laws, const TreeShape& shape, Rule rule) {
  std::vector<FilledShape> fillings;
  all_fillings(laws, shape, 0, std::vector<std::vector<TokenId>>(std::size_t(shape.size())), {}, fillings);
  const std::size_t length = std::size_t(shape.max_depth()) + 1;
  std::map<std::vector<TokenId>, double> joint;
  for (const FilledShape& f : fillings) token_level_walk(laws, rule, {}, f.children, f.prob, length, joint);
  return joint;
}

// The same fillings as one tree for Traversal Verification (children in draw order, drawn without
// replacement, or told `told`): the exact joint law of depth + 1 tokens.
std::map<std::vector<TokenId>, double> static_tree_traversal_joint(Laws& laws, const TreeShape& shape, DrawKind told) {
  std::vector<FilledShape> fillings;
  all_fillings(laws, shape, 0, std::vector<std::vector<TokenId>>(std::size_t(shape.size())), {}, fillings);
  const std::size_t length = std::size_t(shape.max_depth()) + 1;
  std::map<std::vector<TokenId>, double> joint;
  for (const FilledShape& f : fillings) {
    SequenceTree tree(laws.p({}), laws.q({}), told);
    std::vector<std::pair<std::vector<TokenId>, int>> queue{{{}, 0}};  // breadth first: parents first
    for (std::size_t at = 0; at < queue.size(); ++at) {
      const auto it = f.children.find(queue[at].first);
      if (it == f.children.end()) continue;
      for (TokenId x : it->second) {
        std::vector<TokenId> prefix = queue[at].first;
        prefix.push_back(x);
        queue.push_back({prefix, tree.add(queue[at].second, x, laws.p(prefix), laws.q(prefix))});
      }
    }
    for (const TraversalEnding& e : exact_traversal(tree)) {
      std::vector<TokenId> path;
      for (int n = e.node; n > 0; n = tree.parent[std::size_t(n)])
        path.insert(path.begin(), tree.token[std::size_t(n)]);
      for (int y = 0; y < laws.vocab(); ++y) {
        std::vector<TokenId> emitted = path;
        emitted.push_back(y);
        complete(laws, emitted, f.prob * e.prob * e.final_law[std::size_t(y)], length, joint);
      }
    }
  }
  return joint;
}

const std::vector<Divergence> kDivergences = {{1.0, 0.3}, {1.6, 0.2}, {0.6, 0.5}, {1.0, 1.0}};

struct ShapeCase {
  std::vector<double> acceptance;
  int budget, cap, vocab;
};
const std::vector<ShapeCase> kShapes = {
    {{0.6, 0.2, 0.1}, 4, 0, 4},  // a wide root
    {{0.8, 0.1}, 4, 0, 4},       // mostly a chain
    {{0.5, 0.25}, 6, 3, 3},      // a bushy tree under a depth cap
    {{0.4, 0.3, 0.2}, 5, 2, 4},
};

TEST(SequoiaExact, EveryFillingVerifiedWithoutReplacementGivesTheTargetLaw) {
  int instances = 0;
  double worst = 0.0, worst_with_replacement = 0.0;
  for (const ShapeCase& c : kShapes) {
    const TreeShape shape = optimal_static_tree(c.acceptance, c.budget, c.cap).shape;
    for (double T : {1.0, 0.5})
      for (std::size_t di = 0; di < kDivergences.size(); ++di) {
        Laws laws(c.vocab, 5100 + uint64_t(instances), T, kDivergences[di]);
        const auto want = target_joint(laws, std::size_t(shape.max_depth()) + 1);
        const double diff = max_difference(static_tree_joint(laws, shape, Rule::rrs_wor), want);
        EXPECT_LT(diff, 1e-12) << "shape " << shape.describe() << " T=" << T << " divergence " << di;
        worst = std::max(worst, diff);
        // Negative control: the same drafts with the with-replacement rule (the residual keeps the
        // drawn children's draft mass).
        worst_with_replacement =
            std::max(worst_with_replacement, max_difference(static_tree_joint(laws, shape, Rule::rrs_iid), want));
        ++instances;
      }
  }
  EXPECT_EQ(instances, int(kShapes.size()) * 2 * 4);
  EXPECT_GT(worst_with_replacement, 1e-2);
  std::printf("sequoia trees, %d instances: worst |law - target| %.3g; with-replacement rule: %.3g\n", instances, worst,
              worst_with_replacement);
}

TEST(SequoiaExact, TraversalVerificationOfEveryFillingGivesTheTargetLaw) {
  int instances = 0;
  double worst = 0.0, worst_told_iid = 0.0;
  for (const ShapeCase& c : kShapes) {
    const TreeShape shape = optimal_static_tree(c.acceptance, c.budget, c.cap).shape;
    for (double T : {1.0, 0.5})
      for (std::size_t di = 0; di < kDivergences.size(); ++di) {
        Laws laws(c.vocab, 5300 + uint64_t(instances), T, kDivergences[di]);
        const auto want = target_joint(laws, std::size_t(shape.max_depth()) + 1);
        const double diff =
            max_difference(static_tree_traversal_joint(laws, shape, DrawKind::without_replacement), want);
        EXPECT_LT(diff, 1e-12) << "shape " << shape.describe() << " T=" << T << " divergence " << di;
        worst = std::max(worst, diff);
        worst_told_iid =
            std::max(worst_told_iid, max_difference(static_tree_traversal_joint(laws, shape, DrawKind::iid), want));
        ++instances;
      }
  }
  EXPECT_GT(worst_told_iid, 1e-2);
  std::printf("sequoia trees, traversal, %d instances: worst |law - target| %.3g; told i.i.d.: %.3g\n", instances,
              worst, worst_told_iid);
}

TEST(SequoiaExact, MeasuredAcceptanceByRankMatchesItsExactValue) {
  Laws laws(5, 77, 1.0, {1.3, 0.3});
  const std::span<const float> p = laws.p({}), q = laws.q({});
  const int k = 3;
  const ExactVerification e = exact_verification(Rule::rrs_wor, p, q, wor_draft_law(q, k));
  const int draws = 40000;
  const std::vector<double> measured = sampled_acceptance_by_rank(p, q, k, draws, 5);
  ASSERT_EQ(measured.size(), std::size_t(k));
  for (int b = 0; b < k; ++b) {
    const double want = e.accepted_at[std::size_t(b)];
    EXPECT_LT(std::abs(testing::binomial_z(int64_t(std::llround(measured[std::size_t(b)] * draws)), draws, want)), 4.0)
        << "rank " << b + 1 << ": " << measured[std::size_t(b)] << " vs " << want;
  }
  EXPECT_THROW(sampled_acceptance_by_rank(p, q, 0, 10, 1), Error);
}

// --- the decoder on TableModel pairs ------------------------------------------------------------

constexpr int kVocab = 6;
using Config = testing::DraftPairConfig;

const std::vector<Config> kConfigs = {
    {"sequoia", {{"budget", int64_t(4)}, {"temperature", 1.0}}, 1.0, 0.3},
    {"sequoia", {{"budget", int64_t(8)}, {"temperature", 0.3}}, 1.6, 0.2},
    {"sequoia", {{"budget", int64_t(10)}, {"acceptance", std::string("0.4,0.3,0.2")}, {"temperature", 1.0}}, 0.6, 0.5},
    {"sequoia",
     {{"budget", int64_t(12)},
      {"max_depth", int64_t(2)},
      {"acceptance", std::string("0.5,0.3,0.1")},
      {"temperature", 0.3}},
     1.0,
     0.7},
    {"sequoia", {{"budget", int64_t(6)}, {"acceptance", std::string("0.9")}, {"temperature", 1.0}}, 1.3, 0.3},
    {"sequoia", {{"budget", int64_t(8)}, {"top_k", int64_t(3)}, {"temperature", 1.0}}, 1.0, 0.4},
    {"sequoia", {{"budget", int64_t(8)}, {"deterministic", true}, {"temperature", 1.0}}, 1.6, 0.3},
    {"sequoia", {{"budget", int64_t(8)}, {"draft_temperature", 1.5}, {"temperature", 0.3}}, 1.0, 0.3},
    {"sequoia",
     {{"budget", int64_t(10)},
      {"acceptance", std::string("0.5/0.2/0.1")},
      {"verify", std::string("traversal")},
      {"temperature", 1.0}},
     0.6,
     0.4},
    {"sequoia",
     {{"budget", int64_t(8)}, {"verify", std::string("traversal")}, {"top_k", int64_t(4)}, {"temperature", 0.3}},
     1.3,
     0.3},
    {"sequoia",
     {{"budget", int64_t(8)}, {"verify", std::string("traversal")}, {"deterministic", true}, {"temperature", 1.0}},
     1.0,
     0.5},
};

TEST(SequoiaDecoder, FirstTwoTokensFollowTheExactTargetLaw) {
  const std::vector<TokenId> prompt{1, 2, 3, 1, 2};
  testing::expect_first_two_exact(kConfigs, kVocab, 1300, prompt);
}

TEST(SequoiaDecoder, TheSameCheckCatchesTheWithReplacementRule) {
  const std::vector<TokenId> prompt{1, 2, 3, 1, 2};
  auto target = TableModel::random(kVocab, 2, 1320, 1.5);
  auto draft = TableModel::derive_draft(*target, 0.6, 0.1, 1420);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const ParamMap sampling{{"temperature", 1.0}};
  const std::vector<double> acceptance{0.25, 0.25, 0.25, 0.25};  // a star of four children at the root
  TreeSpeculationMethod method{
      std::make_unique<StaticTreeDrafter>(optimal_static_tree(acceptance, 4, 1).shape, DraftDraw::sample),
      verify_rrs_iid};
  TreeSpeculativeDecoder decoder(chain_from_params(resolve_params("test", sampling_param_specs(), sampling)),
                                 std::move(method));
  const testing::FitResult fit = testing::first_two_fit(decoder, models, *target, sampling, prompt, 60000);
  EXPECT_FALSE(testing::fits(fit)) << fit.describe();
  EXPECT_LT(fit.p_value, 1e-3);
  std::printf("sequoia tree verified with replacement: %s\n", fit.describe().c_str());
}

TEST(SequoiaDecoder, TemperatureZeroIsGreedyAndTreesHaveTheirShape) {
  auto target = TableModel::random(12, 2, 31, 1.0);
  auto draft = TableModel::derive_draft(*target, 1.5, 0.5, 32);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const std::vector<TokenId> prompt{3, 4};
  DecodeOptions options;
  options.max_new_tokens = 40;
  TokenStream reference(prompt);
  make_decoder("greedy", {}, &models)->generate(models, options, reference);
  for (const ParamMap& params :
       std::vector<ParamMap>{{{"draft_temperature", 1.0}},
                             {{"draft_temperature", 1.0}, {"verify", std::string("traversal")}},
                             {{"deterministic", true}},
                             {}}) {
    ParamMap p = params;
    p["temperature"] = 0.0;
    for (uint64_t seed : {1u, 2u}) {
      options.seed = seed;
      TokenStream s(prompt);
      make_decoder("sequoia", p, &models)->generate(models, options, s);
      EXPECT_EQ(s.tokens(), reference.tokens());
    }
  }
  // At temperature 1 with a full-support draft every node of the shape is drawn.
  const std::vector<double> acceptance{0.5, 0.2, 0.1};
  const TreeShape shape = optimal_static_tree(acceptance, 10, 0).shape;
  options.max_new_tokens = 30;
  options.seed = 9;
  TokenStream s(prompt);
  const Stats stats =
      make_decoder("sequoia", {{"budget", int64_t(10)}, {"acceptance", std::string("0.5,0.2,0.1")}}, &models)
          ->generate(models, options, s);
  EXPECT_DOUBLE_EQ(stats.metrics.at("mean_tree_size"), 10.0);
  EXPECT_DOUBLE_EQ(stats.metrics.at("mean_tree_depth"), double(shape.max_depth()));
  EXPECT_EQ(stats.target_calls, stats.steps + 1);
  EXPECT_EQ(s.size(), prompt.size() + 30);
}

}  // namespace
}  // namespace decodelab::speculative
