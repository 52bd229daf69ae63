#include "decodelab/table_model.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <span>

#include "decodelab/error.hpp"
#include "decodelab/model_factory.hpp"
#include "decodelab/philox.hpp"

namespace decodelab {
namespace {

TEST(TableModel, DistributionDependsOnlyOnTheLastOrderTokens) {
  auto m = TableModel::random(16, 2, 7, 2.0);
  const std::vector<TokenId> a{1, 2, 3}, b{9, 2, 3}, c{1, 3, 3};
  EXPECT_EQ(m->exact_logits(a), m->exact_logits(b));
  EXPECT_NE(m->exact_logits(a), m->exact_logits(c));
  const auto p = m->exact_probs(a);
  double sum = 0.0;
  for (float x : p) sum += x;
  EXPECT_NEAR(sum, 1.0, 1e-6);
}

TEST(TableModel, SharpnessControlsEntropy) {
  const std::vector<TokenId> ctx{4, 5};
  auto flat = TableModel::random(64, 2, 3, 0.0);
  auto mild = TableModel::random(64, 2, 3, 1.0);
  auto sharp = TableModel::random(64, 2, 3, 4.0);
  EXPECT_NEAR(entropy(flat->exact_probs(ctx)), std::log(64.0), 1e-5);
  EXPECT_GT(entropy(mild->exact_probs(ctx)), entropy(sharp->exact_probs(ctx)));
}

TEST(TableModel, TreeEvaluationEqualsPathEvaluation) {
  auto m = TableModel::random(12, 3, 11, 1.5);
  const SeqId s = m->new_sequence();
  const std::vector<TokenId> prompt{1, 2, 3, 4};
  m->append(s, prompt);
  // Tree: 0:a, 1:b (child of 0), 2:c (child of 0), 3:d (root), 4:e (child of 2)
  const std::vector<TreeNode> nodes{{5, -1}, {6, 0}, {7, 0}, {8, -1}, {9, 2}};
  std::vector<Matrix> out;
  m->evaluate(std::vector<TreeEval>{{s, nodes}}, out);
  ASSERT_EQ(out[0].rows, 5);
  auto path_logits = [&](std::vector<TokenId> path) {
    std::vector<TokenId> ctx = prompt;
    ctx.insert(ctx.end(), path.begin(), path.end());
    return m->exact_logits(ctx);
  };
  auto row = [&](int i) { return std::vector<float>(out[0].row(i).begin(), out[0].row(i).end()); };
  EXPECT_EQ(row(0), path_logits({5}));
  EXPECT_EQ(row(1), path_logits({5, 6}));
  EXPECT_EQ(row(2), path_logits({5, 7}));
  EXPECT_EQ(row(3), path_logits({8}));
  EXPECT_EQ(row(4), path_logits({5, 7, 9}));
  EXPECT_EQ(m->counters().evaluate_calls, 2);
}

// Each node's context is built from its parent's last `order` tokens (a prefill is linear in its
// length): a long prompt's rows, and the logits after it, are still exactly exact_logits of the
// whole context, for every prefix of it.
TEST(TableModel, LongPromptIsExact) {
  auto m = TableModel::random(50, 3, 21, 1.5);
  std::vector<TokenId> prompt(60000);
  PhiloxStream rng(5, 6);
  for (TokenId& t : prompt) t = TokenId(rng.next_u32() % 50u);
  const SeqId s = m->new_sequence();
  std::vector<Matrix> out;
  m->evaluate(std::vector<TreeEval>{{s, chain_nodes(prompt)}}, out);
  ASSERT_EQ(out[0].rows, int(prompt.size()));
  std::size_t mismatches = 0, first_mismatch = 0;
  for (std::size_t i = 0; i < prompt.size(); ++i) {
    const std::vector<float> want = m->exact_logits(std::span<const TokenId>(prompt).first(i + 1));
    if (!std::equal(want.begin(), want.end(), out[0].row(int(i)).begin()) && mismatches++ == 0) first_mismatch = i;
  }
  EXPECT_EQ(mismatches, 0u) << "first at row " << first_mismatch;
  m->commit(s, [&] {
    std::vector<int32_t> path(prompt.size());
    for (std::size_t i = 0; i < path.size(); ++i) path[i] = int32_t(i);
    return path;
  }());
  EXPECT_EQ(m->committed_tokens(s), prompt);
  const std::vector<float> want = m->exact_logits(prompt);
  EXPECT_EQ(std::vector<float>(m->next_logits(s).begin(), m->next_logits(s).end()), want);
  // Appending in pieces, and a rollback that forgets the cached logits, agree too.
  const SeqId t = m->new_sequence();
  for (std::size_t i = 0; i < prompt.size(); i += 7000) {
    m->append(t, std::span<const TokenId>(prompt).subspan(i, std::min<std::size_t>(7000, prompt.size() - i)));
  }
  m->rollback(t, prompt.size() - 1);
  m->append(t, std::span<const TokenId>(prompt).last(1));
  EXPECT_EQ(std::vector<float>(m->next_logits(t).begin(), m->next_logits(t).end()), want);
}

// Contexts shorter than the order (a short prefix, shallow nodes) are passed whole.
TEST(TableModel, ContextsShorterThanTheOrderArePassedWhole) {
  std::vector<std::size_t> seen;
  auto m = std::make_shared<TableModel>("probe", 6, 5, [&seen](std::span<const TokenId> context) {
    seen.push_back(context.size());
    std::vector<float> logits(6, 0.0f);
    for (std::size_t i = 0; i < context.size(); ++i) logits[std::size_t(context[i])] += float(i + 1);
    return logits;
  });
  const SeqId s = m->new_sequence();
  m->append(s, std::vector<TokenId>{1});
  const std::vector<TreeNode> nodes{{2, -1}, {3, 0}, {4, 1}, {5, 2}, {0, 3}, {1, 4}, {2, -1}};
  std::vector<Matrix> out;
  seen.clear();
  m->evaluate(std::vector<TreeEval>{{s, nodes}}, out);
  EXPECT_EQ(seen, (std::vector<std::size_t>{2, 3, 4, 5, 5, 5, 2}));
  auto row = [&](int i) { return std::vector<float>(out[0].row(i).begin(), out[0].row(i).end()); };
  EXPECT_EQ(row(2), m->exact_logits(std::vector<TokenId>{1, 2, 3, 4}));
  EXPECT_EQ(row(5), m->exact_logits(std::vector<TokenId>{1, 2, 3, 4, 5, 0, 1}));
  EXPECT_EQ(row(6), m->exact_logits(std::vector<TokenId>{1, 2}));
}

TEST(TableModel, CommitForkRollback) {
  auto m = TableModel::random(10, 2, 1, 1.0);
  const SeqId s = m->new_sequence();
  m->append(s, std::vector<TokenId>{1, 2});
  std::vector<Matrix> out;
  m->evaluate(std::vector<TreeEval>{{s, {{3, -1}, {4, 0}, {5, -1}}}}, out);
  const std::vector<int32_t> bad{1};
  EXPECT_THROW(m->commit(s, bad), Error);  // node 1 is not a root
  const std::vector<int32_t> path{0, 1};
  m->commit(s, path);
  EXPECT_EQ(m->committed_tokens(s), (std::vector<TokenId>{1, 2, 3, 4}));
  const std::vector<float> after34(m->next_logits(s).begin(), m->next_logits(s).end());
  EXPECT_EQ(after34, std::vector<float>(out[0].row(1).begin(), out[0].row(1).end()));

  const SeqId f = m->fork(s);
  m->append(f, std::vector<TokenId>{7});
  EXPECT_EQ(m->length(s), 4u);
  EXPECT_EQ(m->length(f), 5u);
  m->rollback(f, 3);
  EXPECT_EQ(m->committed_tokens(f), (std::vector<TokenId>{1, 2, 3}));
  EXPECT_EQ(std::vector<float>(m->next_logits(f).begin(), m->next_logits(f).end()),
            m->exact_logits(std::vector<TokenId>{1, 2, 3}));
  EXPECT_THROW(m->rollback(f, 9), Error);
  m->free_sequence(f);
  EXPECT_THROW(m->length(f), Error);
}

TEST(TableModel, BadInputIsAClearError) {
  auto m = TableModel::random(10, 2, 1, 1.0);
  const SeqId s = m->new_sequence();
  std::vector<Matrix> out;
  EXPECT_THROW(m->evaluate(std::vector<TreeEval>{{s, {{10, -1}}}}, out), Error);     // token out of range
  EXPECT_THROW(m->evaluate(std::vector<TreeEval>{{s, {{1, 0}}}}, out), Error);       // parent not earlier
  EXPECT_THROW(m->evaluate(std::vector<TreeEval>{{s + 5, {{1, -1}}}}, out), Error);  // unknown sequence
  EXPECT_THROW(TableModel::random(1, 2, 1, 1.0), Error);
  EXPECT_THROW(m->tokenize("a zz", false), Error);
  EXPECT_EQ(m->tokenize("a c #9", false), (std::vector<TokenId>{0, 2, 9}));
}

TEST(TableModel, CustomTextsAndEmbeddings) {
  auto m = TableModel::random(4, 1, 2, 1.0);
  EXPECT_FALSE(m->token_embeddings().has_value());
  m->set_token_texts({" x", ".", " yz", ","});
  EXPECT_EQ(m->token_text(1), ".");
  EXPECT_EQ(m->tokenize("x. yz,", false), (std::vector<TokenId>{0, 1, 2, 3}));
  EXPECT_THROW(m->set_token_texts({"a", "a", "b", "c"}), Error);
  m->random_embeddings(8, 5);
  ASSERT_TRUE(m->token_embeddings().has_value());
  EXPECT_EQ(m->token_embeddings()->rows, 4);
  EXPECT_EQ(m->token_embeddings()->cols, 8);
}

TEST(TableModel, DerivedDraftHasControllableDivergence) {
  auto p = TableModel::random(20, 1, 5, 2.0);
  const std::vector<TokenId> ctx{3};
  auto same = TableModel::derive_draft(*p, 1.0, 0.0, 9);
  EXPECT_NEAR(total_variation(p->exact_probs(ctx), same->exact_probs(ctx)), 0.0, 1e-6);
  auto near = TableModel::derive_draft(*p, 1.2, 0.1, 9);
  auto far = TableModel::derive_draft(*p, 2.0, 0.5, 9);
  const double tv_near = total_variation(p->exact_probs(ctx), near->exact_probs(ctx));
  const double tv_far = total_variation(p->exact_probs(ctx), far->exact_probs(ctx));
  EXPECT_GT(tv_near, 0.0);
  EXPECT_GT(tv_far, tv_near);
}

TEST(ModelFactory, SpecsLoadAndBadSpecsFailClearly) {
  auto t = load_model("table(vocab=8,order=1,seed=3,sharpness=1)");
  EXPECT_EQ(t->vocab_size(), 8);
  auto d = load_model("draft(temper=1.5,noise=0.1)", t.get());
  EXPECT_EQ(d->vocab_size(), 8);
  EXPECT_THROW(load_model("draft(temper=1.5)"), Error);  // no target
  EXPECT_THROW(load_model("table(vocab=1)"), Error);
  EXPECT_THROW(load_model("nosuch(x=1)"), Error);
  try {
    load_model("table(vocb=8)");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'vocab'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace decodelab
