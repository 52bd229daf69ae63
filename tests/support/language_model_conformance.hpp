#pragma once
// The LanguageModel conformance suite: what decoders rely on from every backend, checked the same
// way on each. A backend passes it by adding one instantiation in its test folder:
//
//   #include "tests/support/language_model_conformance.hpp"
//   INSTANTIATE_TEST_SUITE_P(Table, LanguageModelConformance,
//                            ::testing::Values(ConformanceCase{"order3", [] { return TableModel::random(40, 3, 7, 1.5);
//                            }}), conformance_case_name);
//
// Include this header in one source file per test executable (it defines the tests).
//
// It checks that
//   - a tree's node logits equal each root-to-node path evaluated as a chain on a fresh sequence;
//   - fork, commit (of a path of a tree with a dropped sibling), rollback (into a prefix shared
//     with a fork), freeing a fork's parent, and re-evaluating next logits after a rollback leave
//     the logits and tokens a fresh evaluation of the same tokens gives;
//   - a batch of trees over several sequences equals evaluating each tree alone;
//   - last_logits_only gives the last node's row alone, and commits keep or recompute next logits;
//   - an evaluation replaces the pending tree (an empty tree too), and the counters count one call
//     and every node per evaluate();
//   - malformed trees (a parent index out of range, a parent after its child), unknown or freed
//     sequence ids, a sequence twice in a batch, tokens outside the vocabulary, context overflow,
//     bad commit paths and rollbacks past the end are Error(invalid_argument) whose message names
//     the node, sequence, token, path entry or length, and leave the model usable.
//
// Agreement: where a backend's arithmetic does not depend on batch shape or cache layout the
// comparisons are exact (tolerance 0: the floats compared with ==). Where it does, a case states
// the bound and why, as the largest |a - b| over the largest |b| in a row of logits.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "decodelab/error.hpp"
#include "decodelab/language_model.hpp"
#include "decodelab/philox.hpp"

namespace decodelab::testing {

// How closely two evaluations of the same tokens must agree when they were computed in another
// batch shape, tree layout or cache state.
struct Agreement {
  double tolerance = 0.0;  // max |a - b| / max |b| over a row of logits; 0: bit for bit
  std::string why;         // why this bound (printed with a failure)
};

struct ConformanceCase {
  std::string name;  // the test name suffix: letters, digits and '_'
  // A fresh model, or nullptr when it is not available here (skip_reason says why).
  std::function<std::shared_ptr<LanguageModel>()> make;
  Agreement tree;   // a tree node against its path evaluated as a chain
  Agreement cache;  // fork / commit / rollback against a fresh evaluation
  Agreement batch;  // a batch of trees against one tree per evaluation
  std::string skip_reason = "the model is not available";
};

inline std::string conformance_case_name(const ::testing::TestParamInfo<ConformanceCase>& info) {
  return info.param.name;
}
// How GoogleTest prints a case (in failures and test listings): its name, not its bytes.
inline void PrintTo(const ConformanceCase& c, std::ostream* os) { *os << c.name; }

// Largest |got - want| over the largest |want| (|got - want| when want is all zeros); infinite
// when got has a non-finite value where want has a finite one.
inline double relative_error(std::span<const float> got, std::span<const float> want) {
  double err = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (got[i] == want[i]) continue;  // equal infinities too
    if (!std::isfinite(got[i]) || !std::isfinite(want[i])) return INFINITY;
    err = std::max(err, std::fabs(double(got[i]) - double(want[i])));
  }
  for (float w : want) {
    if (std::isfinite(w)) scale = std::max(scale, std::fabs(double(w)));
  }
  return scale > 0.0 ? err / scale : err;
}

class LanguageModelConformance : public ::testing::TestWithParam<ConformanceCase> {
 protected:
  void SetUp() override {
    model_ = GetParam().make();
    if (!model_) GTEST_SKIP() << GetParam().skip_reason;
    vocab_ = model_->vocab_size();
    ASSERT_GE(vocab_, 8) << "the suite needs a vocabulary of at least 8 tokens";
  }

  LanguageModel& model() { return *model_; }

  // `n` tokens drawn from the vocabulary, the same for the same salt.
  std::vector<TokenId> tokens(int n, uint64_t salt) const {
    PhiloxStream rng(0x636f6e66ull, salt);  // "conf"
    std::vector<TokenId> out;
    for (int i = 0; i < n; ++i) out.push_back(TokenId(rng.next_u32() % uint32_t(vocab_)));
    return out;
  }
  static std::vector<TokenId> cat(std::vector<TokenId> a, std::span<const TokenId> b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }
  static std::vector<int32_t> iota_path(std::size_t n) {
    std::vector<int32_t> path(n);
    for (std::size_t i = 0; i < n; ++i) path[i] = int32_t(i);
    return path;
  }

  // Next-token logits after `context`, from a fresh sequence that evaluates it as one chain.
  std::vector<float> fresh(std::span<const TokenId> context) {
    const SeqId s = model_->new_sequence();
    const std::span<const float> next = model_->append(s, context);
    std::vector<float> out(next.begin(), next.end());
    model_->free_sequence(s);
    return out;
  }

  static void expect_agree(std::span<const float> got, std::span<const float> want, const Agreement& a,
                           const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    if (a.tolerance == 0.0) {
      // Bit for bit: the first differing entry, rather than two long vectors.
      const auto diff = std::mismatch(got.begin(), got.end(), want.begin());
      EXPECT_TRUE(diff.first == got.end())
          << what << ": logit " << (diff.first - got.begin()) << " is " << *diff.first << ", expected exactly "
          << *diff.second << " (relative error " << relative_error(got, want) << ")";
    } else {
      EXPECT_LE(relative_error(got, want), a.tolerance) << what << " (bound: " << a.why << ")";
    }
  }

  // Runs f, expecting Error(invalid_argument) whose message contains every one of `names`.
  static void expect_invalid(const std::function<void()>& f, std::initializer_list<std::string> names,
                             const std::string& what) {
    try {
      f();
      ADD_FAILURE() << what << ": no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << what << ": " << e.what();
      for (const std::string& n : names)
        EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << what << ": '" << n << "' not in: " << e.what();
    }
  }

  std::shared_ptr<LanguageModel> model_;
  int vocab_ = 0;
};

// Node i of a tree evaluated against a prefix has the logits of prefix + path(root .. i) evaluated
// as a chain; the tree has two roots, a branch point and nodes deeper than their siblings.
TEST_P(LanguageModelConformance, TreeEqualsEachPathAsAChain) {
  const std::vector<TokenId> prefix = tokens(6, 1);
  const std::vector<int32_t> parents = {-1, 0, 0, 1, -1, 4, 2, 6};
  const std::vector<TokenId> toks = tokens(int(parents.size()), 2);
  std::vector<TreeNode> tree;
  for (std::size_t i = 0; i < parents.size(); ++i) tree.push_back({toks[i], parents[i]});
  const SeqId s = model().new_sequence();
  model().append(s, prefix);
  const ModelCounters before = model().counters();
  std::vector<Matrix> out;
  model().evaluate({{TreeEval{s, tree}}}, out);
  EXPECT_EQ(model().counters().evaluate_calls, before.evaluate_calls + 1);
  EXPECT_EQ(model().counters().nodes_evaluated, before.nodes_evaluated + int64_t(tree.size()));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].rows, int(tree.size()));
  ASSERT_EQ(out[0].cols, vocab_);
  for (std::size_t i = 0; i < tree.size(); ++i) {
    std::vector<TokenId> path;
    for (int32_t j = int32_t(i); j >= 0; j = parents[std::size_t(j)]) path.insert(path.begin(), toks[std::size_t(j)]);
    expect_agree(out[0].row(int(i)), fresh(cat(prefix, path)), GetParam().tree, "tree node " + std::to_string(i));
  }
  EXPECT_EQ(model().length(s), prefix.size()) << "evaluate must not commit";
}

// fork / commit / rollback / free leave what a fresh evaluation of the committed tokens gives.
TEST_P(LanguageModelConformance, ForkCommitRollbackEqualAFreshEvaluation) {
  const Agreement& agree = GetParam().cache;
  const std::vector<TokenId> prefix = tokens(7, 3), a = tokens(4, 4), b = tokens(3, 5), c = tokens(2, 6);
  const SeqId s = model().new_sequence();
  model().append(s, prefix);
  const std::vector<float> after_prefix(model().next_logits(s).begin(), model().next_logits(s).end());
  const SeqId child = model().fork(s);
  EXPECT_EQ(model().committed_tokens(child), prefix);
  EXPECT_EQ(model().length(child), prefix.size());
  expect_agree(model().next_logits(child), after_prefix, Agreement{}, "a fork's next logits are its parent's");

  // The parent commits a path of a tree (its sibling is dropped); the child appends other tokens.
  std::vector<TreeNode> tree = chain_nodes(a);
  tree.push_back({b[0], -1});
  tree.push_back({b[1], 1});
  std::vector<Matrix> out;
  model().evaluate({{TreeEval{s, tree}}}, out);
  model().commit(s, iota_path(a.size()));
  model().append(child, b);
  EXPECT_EQ(model().committed_tokens(s), cat(prefix, a));
  EXPECT_EQ(model().committed_tokens(child), cat(prefix, b));
  expect_agree(model().next_logits(s), fresh(cat(prefix, a)), agree, "after commit");
  expect_agree(model().next_logits(s), out[0].row(int(a.size()) - 1), Agreement{},
               "next logits after commit are the committed node's row");
  expect_agree(model().next_logits(child), fresh(cat(prefix, b)), agree, "the fork after append");

  // The child rolls back into the prefix it shares with the parent, then grows again.
  const std::vector<TokenId> head(prefix.begin(), prefix.begin() + 3);
  model().rollback(child, head.size());
  EXPECT_EQ(model().committed_tokens(child), head);
  expect_agree(model().next_logits(child), fresh(head), agree, "after rollback into the shared prefix");
  model().append(child, c);
  expect_agree(model().next_logits(child), fresh(cat(head, c)), agree, "after rollback and append");
  // The parent is untouched by its fork's rollback and rewrite.
  EXPECT_EQ(model().committed_tokens(s), cat(prefix, a));
  expect_agree(model().next_logits(s), fresh(cat(prefix, a)), agree, "the parent after its fork's rollback");

  // A fork of the fork outlives it; rolling back to the same length changes nothing.
  const SeqId grandchild = model().fork(child);
  model().free_sequence(child);
  model().rollback(grandchild, head.size() + c.size());
  model().append(grandchild, a);
  EXPECT_EQ(model().committed_tokens(grandchild), cat(cat(head, c), a));
  expect_agree(model().next_logits(grandchild), fresh(cat(cat(head, c), a)), agree, "a fork of a freed fork");

  // Rollback inside the parent's own tokens, then a commit of a one-node path.
  model().rollback(s, prefix.size() + 1);
  model().evaluate({{TreeEval{s, {{c[0], -1}, {c[1], -1}}}}}, out);
  model().commit(s, std::vector<int32_t>{1});
  const std::vector<TokenId> want =
      cat(cat(prefix, std::span<const TokenId>(a).first(1)), std::span<const TokenId>(c).subspan(1));
  EXPECT_EQ(model().committed_tokens(s), want);
  expect_agree(model().next_logits(s), fresh(want), agree, "after rollback into own tokens and commit");
  model().free_sequence(grandchild);
  model().free_sequence(s);
}

// last_logits_only (a prefill): one row, the full evaluation's last row bit for bit; committing
// the whole chain keeps it as next logits, committing a shorter path computes them again; in a
// batch beside a full tree, each tree gets what it asked for.
TEST_P(LanguageModelConformance, LastLogitsOnlyIsTheLastRow) {
  const std::vector<TokenId> prefix = tokens(5, 11), chunk = tokens(6, 12);
  const SeqId s = model().new_sequence(), t = model().new_sequence();
  model().append(s, prefix);
  model().append(t, prefix);
  std::vector<Matrix> full, last;
  model().evaluate({{TreeEval{s, chain_nodes(chunk)}}}, full);
  ASSERT_EQ(full[0].rows, int(chunk.size()));
  const ModelCounters before = model().counters();
  model().evaluate({{TreeEval{t, chain_nodes(chunk), true}}}, last);
  EXPECT_EQ(model().counters().nodes_evaluated, before.nodes_evaluated + int64_t(chunk.size()))
      << "every node is evaluated (its keys and values are needed), only the logits are spared";
  ASSERT_EQ(last.size(), 1u);
  ASSERT_EQ(last[0].rows, 1);
  ASSERT_EQ(last[0].cols, vocab_);
  expect_agree(last[0].row(0), full[0].row(int(chunk.size()) - 1), GetParam().batch, "the one row");
  model().commit(t, iota_path(chunk.size()));
  expect_agree(model().next_logits(t), last[0].row(0), Agreement{}, "next logits after committing the chain");

  // A shorter path: its end's logits were not computed, so next_logits computes them.
  model().rollback(t, prefix.size());
  model().evaluate({{TreeEval{t, chain_nodes(chunk), true}}}, last);
  model().commit(t, iota_path(3));
  expect_agree(model().next_logits(t), full[0].row(2), GetParam().cache, "next logits after a shorter path");
  EXPECT_EQ(model().committed_tokens(t), cat(prefix, std::span<const TokenId>(chunk).first(3)));

  // Mixed in one batch.
  model().rollback(s, prefix.size());
  model().rollback(t, prefix.size());
  std::vector<Matrix> mixed;
  model().evaluate({{TreeEval{s, chain_nodes(chunk), true}, TreeEval{t, chain_nodes(chunk)}}}, mixed);
  ASSERT_EQ(mixed.size(), 2u);
  ASSERT_EQ(mixed[0].rows, 1);
  ASSERT_EQ(mixed[1].rows, int(chunk.size()));
  expect_agree(mixed[0].row(0), full[0].row(int(chunk.size()) - 1), GetParam().batch, "last-only tree in a batch");
  for (std::size_t i = 0; i < chunk.size(); ++i)
    expect_agree(mixed[1].row(int(i)), full[0].row(int(i)), GetParam().batch, "full tree beside a last-only one");
  model().free_sequence(s);
  model().free_sequence(t);
}

// Several trees on several sequences in one evaluate() equal one tree per evaluate().
TEST_P(LanguageModelConformance, BatchOfTreesEqualsSeparateEvaluations) {
  const SeqId s1 = model().new_sequence(), s2 = model().new_sequence(), s3 = model().new_sequence();
  model().append(s1, tokens(3, 7));
  model().append(s2, tokens(9, 8));
  model().append(s3, tokens(1, 9));
  const std::vector<TokenId> t = tokens(4, 10);
  const std::vector<TreeEval> batch = {TreeEval{s1, chain_nodes(tokens(4, 11))},
                                       TreeEval{s2, {{t[0], -1}, {t[1], -1}, {t[2], 0}, {t[3], 2}}}, TreeEval{s3, {}}};
  std::vector<Matrix> together;
  model().evaluate(batch, together);
  ASSERT_EQ(together.size(), batch.size());
  EXPECT_EQ(together[2].rows, 0);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    std::vector<Matrix> alone;
    model().evaluate({{batch[i]}}, alone);
    ASSERT_EQ(alone[0].rows, together[i].rows);
    for (int r = 0; r < alone[0].rows; ++r) {
      expect_agree(together[i].row(r), alone[0].row(r), GetParam().batch,
                   "tree " + std::to_string(i) + " node " + std::to_string(r));
    }
  }
  // Each sequence's pending tree is its own: commit on one leaves the others' committable.
  model().evaluate(batch, together);
  model().commit(s2, std::vector<int32_t>{0, 2, 3});
  model().commit(s1, iota_path(4));
  EXPECT_EQ(model().length(s1), 7u);
  EXPECT_EQ(model().length(s2), 12u);
  EXPECT_EQ(model().length(s3), 1u);
}

// A new evaluation replaces the pending tree, an empty one too; commit drops it.
TEST_P(LanguageModelConformance, AnEvaluationReplacesThePendingTree) {
  const SeqId s = model().new_sequence();
  model().append(s, tokens(4, 12));
  const std::vector<TreeEval> tree = {TreeEval{s, chain_nodes(tokens(3, 13))}};
  const std::vector<int32_t> path = {0, 1};
  std::vector<Matrix> out;
  model().evaluate(tree, out);
  model().evaluate({{TreeEval{s, {}}}}, out);
  EXPECT_EQ(out[0].rows, 0);
  expect_invalid([&] { model().commit(s, path); }, {"path[0]", "pending tree of 0 nodes"},
                 "commit after an empty evaluation");
  model().evaluate(tree, out);
  model().commit(s, path);
  EXPECT_EQ(model().length(s), 6u);
  expect_invalid([&] { model().commit(s, path); }, {"path[0]"}, "a second commit of the same tree");
  model().evaluate(tree, out);
  model().commit(s, {});  // an empty path keeps nothing, and drops the tree
  EXPECT_EQ(model().length(s), 6u);
  expect_invalid([&] { model().commit(s, path); }, {"path[0]"}, "commit after an empty commit");
}

// Bad input is Error(invalid_argument) naming what was wrong, and leaves the model usable.
TEST_P(LanguageModelConformance, InvalidInputIsAClearError) {
  const std::vector<TokenId> prefix = tokens(3, 14);
  const SeqId s = model().new_sequence();
  model().append(s, prefix);
  std::vector<Matrix> out;
  auto eval = [&](std::vector<TreeEval> batch) { return [this, batch, &out] { model().evaluate(batch, out); }; };
  const TokenId t = tokens(1, 15)[0];

  expect_invalid(eval({TreeEval{s, {{t, -1}, {t, 5}}}}), {"tree node 1", "parent 5"}, "a parent index past the tree");
  expect_invalid(eval({TreeEval{s, {{t, 1}, {t, -1}}}}), {"tree node 0", "parent 1"}, "a parent after its child");
  expect_invalid(eval({TreeEval{s, {{t, -1}, {t, 1}}}}), {"tree node 1", "parent 1"}, "a node its own parent");
  expect_invalid(eval({TreeEval{s, {{t, -2}}}}), {"tree node 0", "parent -2"}, "a parent below -1");
  expect_invalid(eval({TreeEval{s, {{TokenId(vocab_), -1}}}}), {"token " + std::to_string(vocab_), "vocabulary"},
                 "a token past the vocabulary");
  expect_invalid(eval({TreeEval{s, {{t, -1}, {-1, 0}}}}), {"tree node 1", "token -1", "vocabulary"},
                 "a negative token");
  expect_invalid(eval({TreeEval{s, {{t, -1}}}, TreeEval{s, {{t, -1}}}}), {"sequence " + std::to_string(s), "twice"},
                 "a sequence twice in a batch");

  const SeqId unknown = s + 1000;
  const std::string named = "sequence " + std::to_string(unknown);
  expect_invalid(eval({TreeEval{unknown, {{t, -1}}}}), {named}, "evaluate on an unknown sequence");
  expect_invalid([&] { model().length(unknown); }, {named}, "length of an unknown sequence");
  expect_invalid([&] { model().committed_tokens(unknown); }, {named}, "committed_tokens of an unknown sequence");
  expect_invalid([&] { model().fork(unknown); }, {named}, "fork of an unknown sequence");
  expect_invalid([&] { model().commit(unknown, {}); }, {named}, "commit on an unknown sequence");
  expect_invalid([&] { model().rollback(unknown, 0); }, {named}, "rollback of an unknown sequence");
  expect_invalid([&] { model().next_logits(unknown); }, {named}, "next_logits of an unknown sequence");
  expect_invalid([&] { model().free_sequence(unknown); }, {named}, "free of an unknown sequence");
  const SeqId freed = model().fork(s);
  model().free_sequence(freed);
  expect_invalid(eval({TreeEval{freed, {{t, -1}}}}), {"sequence " + std::to_string(freed)},
                 "evaluate on a freed sequence");
  expect_invalid([&] { model().free_sequence(freed); }, {"sequence " + std::to_string(freed)}, "a second free");

  // A tree of three nodes: 0 -> 1, and 2 a second root.
  model().evaluate({{TreeEval{s, {{t, -1}, {t, 0}, {t, -1}}}}}, out);
  expect_invalid([&] { model().commit(s, std::vector<int32_t>{3}); },
                 {"sequence " + std::to_string(s), "path[0] = 3", "3 nodes"}, "a path node past the tree");
  expect_invalid([&] { model().commit(s, std::vector<int32_t>{1}); }, {"path[0]", "node 1"},
                 "a path not starting at a root");
  expect_invalid(
      [&] {
        model().commit(s, std::vector<int32_t>{0, 2});
      },
      {"path[1]", "node 2", "node 0"}, "a path through a non-child");
  expect_invalid([&] { model().commit(s, std::vector<int32_t>{-1}); }, {"path[0] = -1"}, "a negative path node");
  expect_invalid([&] { model().rollback(s, prefix.size() + 1); },
                 {"sequence " + std::to_string(s), std::to_string(prefix.size() + 1)}, "a rollback past the end");

  // Nothing of that changed the sequence: it still evaluates as a fresh one would.
  EXPECT_EQ(model().committed_tokens(s), prefix);
  const std::vector<TokenId> more = tokens(2, 16);
  const std::span<const float> got = model().append(s, more);
  expect_agree(got, fresh(cat(prefix, more)), GetParam().cache, "after the errors");
}

// More committed + pending tokens than the context length is an error before any work is done;
// exactly the context length is fine.
TEST_P(LanguageModelConformance, ContextOverflowIsAClearError) {
  const int context = model().info().context_length;
  if (context == 0) GTEST_SKIP() << "the model has no context limit";
  ASSERT_LE(context, 4096) << "instantiate the suite with a small context: the boundary test evaluates a full context";
  const SeqId s = model().new_sequence();
  std::vector<Matrix> out;
  const std::string limit = "context length " + std::to_string(context);
  expect_invalid(
      [&] {
        model().evaluate({{TreeEval{s, chain_nodes(tokens(context + 1, 17))}}}, out);
      },
      {"sequence " + std::to_string(s), limit}, "one tree past the context");
  model().append(s, tokens(2, 18));
  expect_invalid(
      [&] {
        model().evaluate({{TreeEval{s, chain_nodes(tokens(context - 1, 19))}}}, out);
      },
      {"2 committed", limit}, "committed + pending past the context");
  EXPECT_EQ(model().length(s), 2u);
  model().evaluate({{TreeEval{s, chain_nodes(tokens(context - 2, 19))}}}, out);
  EXPECT_EQ(out[0].rows, context - 2);
  model().commit(s, iota_path(std::size_t(context - 2)));
  EXPECT_EQ(model().length(s), std::size_t(context));
  expect_invalid([&] { model().evaluate({{TreeEval{s, {{0, -1}}}}}, out); }, {limit}, "one token past a full context");
}

}  // namespace decodelab::testing
