// Sequence-level rules (decoders/speculative/sequence_verify.hpp) and deterministic drafts, by
// exact enumeration on random autoregressive target/draft laws over V = 3 or 4 tokens:
//   - every draft tree k sequences of length L can be (i.i.d., first tokens without replacement,
//     or the most probable tokens), with its probability;
//   - for each tree, every way Traversal Verification can end (exact_traversal), completed to
//     L + 1 tokens with the target's laws;
// the joint law of the first L + 1 tokens must equal the target's to 1e-12. The same check must
// catch the broken pairings (a tree verified as if its children had been drawn another way), and
// the deterministic trees verified token by token with the target-only rule (exact) against the
// q-based rule without replacement (biased). Block verification agrees with traversal draw for
// draw on chains, and malformed inputs fail with a clear Error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>

#include "decodelab/error.hpp"
#include "decodelab/random.hpp"
#include "decodelab/verify.hpp"
#include "decoders/speculative/oracle.hpp"
#include "decoders/speculative/sequence_verify.hpp"
#include "tests/speculative/exact_laws.hpp"

namespace decodelab::speculative {
namespace {

using namespace exact;

// Every draft the sequence drafters can produce, as WorSequencesDrafter and IidSequencesDrafter
// draw them (without replacement: distinct first tokens in draw order, fewer when q's support is
// smaller than k; most probable: the top-k of q at the root, then argmax chains).
std::vector<Draft> all_drafts(Laws& laws, DrawKind kind, int k, int L) {
  std::vector<Draft> out;
  const std::vector<float> root(laws.q({}).begin(), laws.q({}).end());
  if (kind == DrawKind::iid) {
    extend_chains(laws, Draft{std::vector<std::vector<TokenId>>(std::size_t(k)), 1.0}, 0, L, out);
  } else if (kind == DrawKind::without_replacement) {
    for (const DraftTuple& t : wor_draft_law(root, k)) {
      Draft d{{}, t.prob};
      for (TokenId x : t.tokens) d.sequences.push_back({x});
      extend_chains(laws, std::move(d), 0, L, out);
    }
  } else {
    std::vector<float> r = root;
    Draft d;
    for (int j = 0; j < k; ++j) {
      if (*std::max_element(r.begin(), r.end()) <= 0.0f) break;
      const TokenId x = TokenId(std::max_element(r.begin(), r.end()) - r.begin());
      r[std::size_t(x)] = 0.0f;
      std::vector<TokenId> s{x};
      while (int(s.size()) < L) {
        const std::span<const float> q = laws.q(s);
        s.push_back(TokenId(std::max_element(q.begin(), q.end()) - q.begin()));
      }
      d.sequences.push_back(s);
    }
    out.push_back(d);
  }
  return out;
}

// Exact joint law of L + 1 tokens after one traversal step over drafts drawn as `drawn` and
// verified as if drawn as `assumed`; also the expected number of tokens the step emits.
std::map<std::vector<TokenId>, double> traversal_joint(Laws& laws, DrawKind drawn, DrawKind assumed, View view, int k,
                                                       int L, double* tokens_per_step = nullptr) {
  std::map<std::vector<TokenId>, double> joint;
  double tokens = 0.0;
  for (const Draft& d : all_drafts(laws, drawn, k, L)) {
    const SequenceTree tree = tree_of(laws, d, assumed, view);
    for (const TraversalEnding& e : exact_traversal(tree)) {
      std::vector<TokenId> path;
      for (int n = e.node; n > 0; n = tree.parent[std::size_t(n)])
        path.insert(path.begin(), tree.token[std::size_t(n)]);
      tokens += d.prob * e.prob * double(path.size() + 1);
      for (int y = 0; y < laws.vocab(); ++y) {
        std::vector<TokenId> emitted = path;
        emitted.push_back(y);
        complete(laws, emitted, d.prob * e.prob * e.final_law[std::size_t(y)], std::size_t(L) + 1, joint);
      }
    }
  }
  if (tokens_per_step) *tokens_per_step = tokens;
  return joint;
}

struct Shape {
  int k, L;
};
const std::vector<Shape> kShapes = {{1, 1}, {1, 3}, {2, 2}, {3, 2}, {2, 3}};
const std::vector<Divergence> kDivergences = {{1.0, 0.3}, {1.6, 0.2}, {0.6, 0.5}, {1.0, 1.0}};

// How each drafter's trees are verified: the draws, the tree, the law the rule is told.
struct Pairing {
  DrawKind drawn;
  View view;
  DrawKind assumed;
};
std::string describe(const Pairing& c) {
  return std::string(to_string(c.drawn)) + " drafts, " +
         (c.view == View::chains ? "one branch per sequence" : "merged") + ", verified as " + to_string(c.assumed);
}

TEST(SequenceVerification, TraversalIsExactForEveryDrawKind) {
  const std::vector<Pairing> valid = {
      {DrawKind::iid, View::chains, DrawKind::iid},
      {DrawKind::iid, View::merged, DrawKind::without_replacement},  // what the traversal decoder does
      {DrawKind::without_replacement, View::merged, DrawKind::without_replacement},
      {DrawKind::most_probable, View::merged, DrawKind::most_probable},
  };
  int instances = 0;
  double worst = 0.0;
  for (const Pairing& c : valid)
    for (double T : {1.0, 0.5})
      for (std::size_t di = 0; di < kDivergences.size(); ++di)
        for (const Shape& s : kShapes) {
          const int V = s.k * s.L <= 4 ? 4 : 3;
          Laws laws(V, 7000 + uint64_t(instances), T, kDivergences[di]);
          const auto want = target_joint(laws, std::size_t(s.L) + 1);
          const double diff = max_difference(traversal_joint(laws, c.drawn, c.assumed, c.view, s.k, s.L), want);
          EXPECT_LT(diff, 1e-12) << describe(c) << " T=" << T << " divergence " << di << " k=" << s.k << " L=" << s.L;
          worst = std::max(worst, diff);
          ++instances;
        }
  EXPECT_EQ(instances, 4 * 2 * 4 * 5);
  std::printf("traversal, %d instances: worst |law - target| %.3g\n", instances, worst);
}

// Deliberately broken variants: the right algorithm told the wrong law of the children. The same
// check must see the bias.
TEST(SequenceVerification, BrokenPairingsAreCaught) {
  const std::vector<Pairing> broken = {
      {DrawKind::without_replacement, View::merged, DrawKind::iid},  // residual keeps drawn tokens' mass
      {DrawKind::most_probable, View::merged, DrawKind::iid},        // argmax drafts weighted by p/q
      {DrawKind::iid, View::merged, DrawKind::iid},                  // distinct children taken as i.i.d.
      {DrawKind::iid, View::chains, DrawKind::without_replacement},  // duplicates given a law they lack
  };
  for (const Pairing& c : broken) {
    double worst = 0.0;
    int instance = 0;
    for (double T : {1.0, 0.5})
      for (const Divergence& d : kDivergences) {
        Laws laws(3, 9100 + uint64_t(instance++), T, d);
        const double diff =
            max_difference(traversal_joint(laws, c.drawn, c.assumed, c.view, 2, 2), target_joint(laws, 3));
        worst = std::max(worst, diff);
      }
    EXPECT_GT(worst, 1e-3) << describe(c);
    std::printf("%s: worst |law - target| %.3g\n", describe(c).c_str(), worst);
  }
}

TEST(SequenceVerification, DeterministicTreesNeedARuleExactForAnyCandidates) {
  // The k most probable draft tokens (argmax chains below) were not drawn from q: the target-only
  // rule is exact for them, while the SpecInfer/Sequoia rule without replacement, which would treat
  // them as draws from q, is biased.
  double worst_target_only = 0.0, worst_wor = 0.0;
  int instance = 0;
  for (double T : {1.0, 0.5})
    for (const Divergence& d : kDivergences)
      for (const Shape& s : kShapes) {
        Laws laws(4, 8200 + uint64_t(instance++), T, d);
        const Draft draft = all_drafts(laws, DrawKind::most_probable, s.k, s.L).front();
        std::map<std::vector<TokenId>, std::vector<TokenId>> children;
        for (const auto& seq : draft.sequences)
          for (std::size_t i = 0; i < seq.size(); ++i) {
            std::vector<TokenId>& c = children[std::vector<TokenId>(seq.begin(), seq.begin() + std::ptrdiff_t(i))];
            if (std::find(c.begin(), c.end(), seq[i]) == c.end()) c.push_back(seq[i]);
          }
        const auto want = target_joint(laws, std::size_t(s.L) + 1);
        for (Rule rule : {Rule::target_only, Rule::rrs_wor}) {
          std::map<std::vector<TokenId>, double> joint;
          token_level_walk(laws, rule, {}, children, 1.0, std::size_t(s.L) + 1, joint);
          (rule == Rule::target_only ? worst_target_only : worst_wor) =
              std::max(rule == Rule::target_only ? worst_target_only : worst_wor, max_difference(joint, want));
        }
      }
  EXPECT_LT(worst_target_only, 1e-12);
  EXPECT_GT(worst_wor, 1e-2);
  std::printf("most probable drafts: target-only worst %.3g, rrs_wor worst %.3g\n", worst_target_only, worst_wor);
}

TEST(SequenceVerification, TraversalAcceptsAtLeastAsMuchAsTokenLevelOnChains) {
  // On one chain traversal is block verification, the optimal chain verifier: its expected tokens
  // per step are at least sd's, sum over i of the probability that the first i tokens are accepted
  // token by token, plus one.
  for (int instance = 0; instance < 20; ++instance) {
    Laws laws(4, 8800 + uint64_t(instance), instance % 2 ? 1.0 : 0.5, kDivergences[std::size_t(instance) % 4]);
    const int L = 3;
    double traversal = 0.0;
    traversal_joint(laws, DrawKind::iid, DrawKind::iid, View::chains, 1, L, &traversal);
    // sd: E[tokens] = 1 + sum_i P(x_1..x_i accepted) with P = prod min(q, p) along the chain.
    double sd = 1.0;
    std::function<void(std::vector<TokenId>, double)> walk = [&](std::vector<TokenId> prefix, double reach) {
      if (int(prefix.size()) == L) return;
      const std::span<const float> p = laws.p(prefix), q = laws.q(prefix);
      for (int x = 0; x < laws.vocab(); ++x) {
        const double a = reach * std::min(double(p[std::size_t(x)]), double(q[std::size_t(x)]));
        if (a <= 0.0) continue;
        sd += a;
        std::vector<TokenId> next = prefix;
        next.push_back(x);
        walk(next, a);
      }
    };
    walk({}, 1.0);
    EXPECT_GE(traversal, sd - 1e-12) << "instance " << instance;
  }
}

// Expected tokens per step of a token-level rule on the merged prefix tree of a draft, exactly:
// the proposals at a node are the next tokens of the sequences through it, in sequence order.
double token_level_tokens(Laws& laws, Rule rule, const Draft& d, const std::vector<TokenId>& prefix,
                          const std::vector<std::size_t>& through) {
  const std::size_t depth = prefix.size();
  std::vector<TokenId> candidates;
  for (std::size_t j : through)
    if (d.sequences[j].size() > depth) candidates.push_back(d.sequences[j][depth]);
  if (candidates.empty()) return double(depth) + 1.0;
  const std::span<const float> p = laws.p(prefix), q = laws.q(prefix);
  const double rho = rule == Rule::kseq ? kseq_rho(p, q, int(candidates.size())) : 1.0;
  const ExactVerification e = exact_verification(rule, p, q, fixed_draft_law(candidates), rho);
  double tokens = (1.0 - e.acceptance) * (double(depth) + 1.0);
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (e.accepted_at[i] <= 0.0) continue;
    std::vector<std::size_t> next_through;
    for (std::size_t j : through)
      if (d.sequences[j].size() > depth && d.sequences[j][depth] == candidates[i]) next_through.push_back(j);
    std::vector<TokenId> next = prefix;
    next.push_back(candidates[i]);
    tokens += e.accepted_at[i] * token_level_tokens(laws, rule, d, next, next_through);
  }
  return tokens;
}

TEST(SequenceVerification, TraversalVersusTokenLevelAtEqualTrees) {
  // The same draft trees, verified by traversal (as the decoder does) and by the token-level rule
  // of their draw kind: exact expected tokens per step, averaged over random instances (V = 4,
  // k = 3, L = 2), two temperatures and the four divergences.
  struct Row {
    Pairing traversal;
    Rule rule;
    double traversal_tokens = 0.0, token_level_tokens = 0.0;
  };
  std::vector<Row> rows = {
      {{DrawKind::iid, View::merged, DrawKind::without_replacement}, Rule::rrs_iid},
      {{DrawKind::iid, View::merged, DrawKind::without_replacement}, Rule::kseq},
      {{DrawKind::iid, View::chains, DrawKind::iid}, Rule::rrs_iid},
      {{DrawKind::without_replacement, View::merged, DrawKind::without_replacement}, Rule::rrs_wor},
      {{DrawKind::most_probable, View::merged, DrawKind::most_probable}, Rule::target_only},
  };
  const int n = 16, k = 3, L = 2;
  for (Row& row : rows)
    for (int instance = 0; instance < n; ++instance) {
      Laws laws(4, 9900 + uint64_t(instance), instance % 2 ? 1.0 : 0.5, kDivergences[std::size_t(instance) % 4]);
      double traversal = 0.0, token_level = 0.0;
      traversal_joint(laws, row.traversal.drawn, row.traversal.assumed, row.traversal.view, k, L, &traversal);
      for (const Draft& d : all_drafts(laws, row.traversal.drawn, k, L))
        token_level += d.prob * token_level_tokens(laws, row.rule, d, {}, {0, 1, 2});
      row.traversal_tokens += traversal / n;
      row.token_level_tokens += token_level / n;
    }
  for (const Row& row : rows)
    std::printf("k=%d L=%d %s: %.4f tokens/step; %s on the same trees %.4f (%+.1f%%)\n", k, L,
                describe(row.traversal).c_str(), row.traversal_tokens, to_string(row.rule), row.token_level_tokens,
                100.0 * (row.traversal_tokens / row.token_level_tokens - 1.0));
  // What the decoders use: traversal beats the token-level rules of its draw kind on average.
  EXPECT_GT(rows[0].traversal_tokens, rows[0].token_level_tokens);
  EXPECT_GT(rows[3].traversal_tokens, rows[3].token_level_tokens);
  // Deterministic candidates: every exact rule emits the candidates' path with the same
  // probability (the emitted law is p either way), so the two agree.
  EXPECT_NEAR(rows[4].traversal_tokens, rows[4].token_level_tokens, 1e-12);
}

TEST(SequenceVerification, BlockEqualsTraversalDrawForDrawOnChains) {
  int differing = 0, accepted_some = 0;
  for (int c = 0; c < 3000; ++c) {
    PhiloxStream rng = random_stream(31, RandomStream::user, uint64_t(c));
    const int V = 3 + int(rng.next_u32() % 4u), L = 1 + int(rng.next_u32() % 4u);
    Laws laws(V, 5000 + uint64_t(c), 1.0, kDivergences[std::size_t(c) % 4]);
    const DrawKind kind = c % 5 == 0 ? DrawKind::most_probable : DrawKind::iid;
    std::vector<TokenId> chain;
    while (int(chain.size()) < L) {
      const std::span<const float> q = laws.q(chain);
      chain.push_back(kind == DrawKind::iid ? sample_from_weights(q, rng.uniform_double())
                                            : TokenId(std::max_element(q.begin(), q.end()) - q.begin()));
    }
    Draft d{{chain}, 1.0};
    const SequenceTree tree = tree_of(laws, d, kind, View::chains);
    std::vector<double> accept_u, residual_u;
    for (int i = 0; i <= L; ++i) {
      accept_u.push_back(rng.uniform_double());
      residual_u.push_back(rng.uniform_double());
    }
    const SequenceOutcome a = verify_traversal(tree, accept_u, residual_u);
    const SequenceOutcome b = verify_block(tree, accept_u, residual_u);
    differing += a.accepted != b.accepted || a.token != b.token || a.bonus != b.bonus;
    accepted_some += a.accepted > 0;
  }
  EXPECT_EQ(differing, 0);
  EXPECT_GT(accepted_some, 1000);
}

TEST(SequenceVerification, EmptyTreeSamplesTheTargetAndBadInputsFail) {
  const std::vector<float> p{0.5f, 0.25f, 0.25f}, q{0.25f, 0.5f, 0.25f}, short_q{0.5f, 0.5f};
  const std::vector<double> u{0.1, 0.2, 0.3}, r{0.6, 0.7, 0.8};
  SequenceTree empty(p, q, DrawKind::iid);
  const SequenceOutcome o = verify_traversal(empty, u, r);
  EXPECT_EQ(o.accepted, 0);
  EXPECT_EQ(o.token, 1);  // u = 0.6 falls in token 1's interval [0.5, 0.75)
  EXPECT_TRUE(o.bonus);
  SequenceTree bad_token(p, q, DrawKind::iid);
  bad_token.add(0, 3, p, q);
  EXPECT_THROW(verify_traversal(bad_token, u, r), Error);
  SequenceTree bad_q(p, short_q, DrawKind::iid);
  bad_q.add(0, 1, p, q);
  EXPECT_THROW(verify_traversal(bad_q, u, r), Error);
  SequenceTree tree(p, q, DrawKind::iid);
  tree.add(0, 1, p, q);
  tree.add(1, 2, p, q);
  EXPECT_THROW(verify_traversal(tree, std::span(u).first(1), r), Error);  // one accept uniform per node
  EXPECT_THROW(verify_traversal(tree, u, std::span(r).first(2)), Error);  // one residual uniform per depth
  SequenceTree branching(p, q, DrawKind::iid);
  branching.add(0, 1, p, q);
  branching.add(0, 2, p, q);
  EXPECT_THROW(verify_block(branching, u, r), Error);  // block verification needs a chain
  try {
    verify_traversal(bad_token, u, r);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace decodelab::speculative
