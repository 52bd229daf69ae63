// CudaModel against the CPU GgufModel and HF transformers on the golden tiny models
// (tests/data/make_golden.py): logits, greedy decoding, tree == paths, fork / commit / rollback ==
// fresh evaluation, the graph path == the eager path, long contexts (attention splits, many pages).
// Needs a GPU; skips without one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <vector>

#include "core/cuda/cuda_model.hpp"
#include "core/model/gguf.hpp"
#include "core/model/gguf_model.hpp"
#include "decodelab/error.hpp"
#include "decodelab/philox.hpp"
#include "tests/cuda/cuda_test_support.hpp"

namespace decodelab {
namespace {

using testing::golden_path;
using testing::max_rel_error;

// Relative-error budgets against the CPU and HF: fp32 weights differ only by summation order and
// fast exp; fp16 weights and KV by their rounding (the issue's bound, 1e-2); bf16 keeps 8 bits of
// mantissa, so its bound is wider.
double budget(const std::string& dtype) { return dtype == "f32" ? 1e-4 : dtype == "f16" ? 1e-2 : 5e-2; }
// GPU against GPU with different batch shapes (cuBLAS may pick other kernels, and a different
// fp32 sum rounds to a different fp16 input): fp32 is tight, the 16-bit types get their budget.
double same(const std::string& dtype) { return dtype == "f32" ? 1e-4 : budget(dtype); }

CudaModelOptions opts(const std::string& dtype, int page_tokens = 64, bool graphs = true, int split_tokens = 256) {
  CudaModelOptions o;
  o.split_tokens = split_tokens;
  o.dtype = dtype;
  o.page_tokens = page_tokens;
  o.graphs = graphs;
  return o;
}

std::vector<TokenId> random_tokens(int n, int vocab, uint64_t seed) {
  PhiloxStream r(seed, 99);
  std::vector<TokenId> t;
  for (int i = 0; i < n; ++i) t.push_back(TokenId(r.next_u32() % uint32_t(vocab)));
  return t;
}

class Parity : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
 protected:
  void SetUp() override {
    DECODELAB_REQUIRE_GPU();
    file = golden_path(std::get<0>(GetParam()));
    dtype = std::get<1>(GetParam());
  }
  std::string file, dtype;
};

TEST_P(Parity, PrefillLogitsMatchTransformersAndCpu) {
  GgufFile golden(file);
  const std::vector<int64_t> tokens = golden.get_ints("golden.tokens");
  const std::vector<int64_t> lengths = golden.get_ints("golden.lengths");
  const float* want = reinterpret_cast<const float*>(golden.tensor("golden.logits").data);
  CudaModel gpu(file, opts(dtype));
  GgufModel cpu(file, GgufModelOptions{4096, 2});
  const int V = gpu.vocab_size();
  std::size_t offset = 0;
  for (int64_t len : lengths) {
    std::vector<TokenId> seq(tokens.begin() + std::ptrdiff_t(offset), tokens.begin() + std::ptrdiff_t(offset + len));
    std::vector<Matrix> g, c;
    gpu.evaluate({{TreeEval{gpu.new_sequence(), chain_nodes(seq)}}}, g);
    cpu.evaluate({{TreeEval{cpu.new_sequence(), chain_nodes(seq)}}}, c);
    const double vs_hf = max_rel_error(g[0].data, std::span<const float>(want + offset * V, std::size_t(len) * V));
    const double vs_cpu = max_rel_error(g[0].data, c[0].data);
    std::printf("%s %s: %lld tokens, relative error vs HF %.3g, vs CPU %.3g\n", file.c_str(), dtype.c_str(),
                (long long)len, vs_hf, vs_cpu);
    EXPECT_LE(vs_hf, budget(dtype));
    EXPECT_LE(vs_cpu, budget(dtype));
    offset += std::size_t(len);
  }
}

TEST_P(Parity, GreedyDecodingMatchesCpuFor64Steps) {
  if (dtype == "bf16")
    GTEST_SKIP()
        << "bf16 (3 significant digits) is not expected to keep near-tied argmaxes; its logits are checked by prefill";
  CudaModel gpu(file, opts(dtype));
  GgufModel cpu(file, GgufModelOptions{4096, 2});
  const std::vector<TokenId> prompt = random_tokens(5, gpu.vocab_size(), 1);
  const SeqId gs = gpu.new_sequence(), cs = cpu.new_sequence();
  std::span<const float> gl = gpu.append(gs, prompt), cl = cpu.append(cs, prompt);
  for (int step = 0; step < 64; ++step) {
    const TokenId gt = argmax(gl), ct = argmax(cl);
    if (gt != ct) {
      // Only a near tie on the CPU side excuses a different token; say how near it was.
      std::vector<float> sorted(cl.begin(), cl.end());
      std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
      const float scale = std::max(std::fabs(sorted[0]), 1.0f);
      ADD_FAILURE() << dtype << " step " << step << ": cuda " << gt << " cpu " << ct << " (cpu top-2 gap "
                    << (sorted[0] - sorted[1]) / scale << " of the top logit)";
      return;
    }
    gl = gpu.append(gs, std::vector<TokenId>{gt});
    cl = cpu.append(cs, std::vector<TokenId>{ct});
  }
  EXPECT_GT(gpu.graph_replays(), 0);  // single-token steps went through the captured graph
}

TEST_P(Parity, TreeEqualsPathByPath) {
  CudaModel gpu(file, opts(dtype, 4));
  const int V = gpu.vocab_size();
  const std::vector<TokenId> prefix = random_tokens(9, V, 2);
  // Two branches from the prefix, one splitting again: parents -1 0 1 1 -1 4 2.
  const std::vector<int32_t> parents = {-1, 0, 1, 1, -1, 4, 2};
  const std::vector<TokenId> toks = random_tokens(int(parents.size()), V, 3);
  std::vector<TreeNode> tree;
  for (std::size_t i = 0; i < parents.size(); ++i) tree.push_back({toks[i], parents[i]});
  const SeqId s = gpu.new_sequence();
  gpu.append(s, prefix);
  std::vector<Matrix> out;
  gpu.evaluate({{TreeEval{s, tree}}}, out);
  for (std::size_t i = 0; i < tree.size(); ++i) {
    std::vector<TokenId> path;
    for (int32_t j = int32_t(i); j >= 0; j = parents[std::size_t(j)]) path.insert(path.begin(), toks[std::size_t(j)]);
    const SeqId f = gpu.new_sequence();
    gpu.append(f, prefix);
    const std::span<const float> want = gpu.append(f, path);
    EXPECT_LE(max_rel_error(out[0].row(int(i)), want), same(dtype)) << dtype << " node " << i;
    gpu.free_sequence(f);
  }
}

TEST_P(Parity, ForkCommitRollbackEqualFreshEvaluation) {
  // Pages of 4 tokens: forks share partly filled pages, so commits copy them on write.
  CudaModel gpu(file, opts(dtype, 4));
  const int V = gpu.vocab_size();
  const std::vector<TokenId> prefix = random_tokens(10, V, 4), a = random_tokens(6, V, 5), b = random_tokens(3, V, 6);
  auto fresh = [&](std::vector<TokenId> tokens) {
    const SeqId f = gpu.new_sequence();
    const std::span<const float> next = gpu.append(f, tokens);
    std::vector<float> l(next.begin(), next.end());
    gpu.free_sequence(f);
    return l;
  };
  auto cat = [](std::vector<TokenId> x, const std::vector<TokenId>& y) {
    x.insert(x.end(), y.begin(), y.end());
    return x;
  };
  const SeqId s = gpu.new_sequence();
  gpu.append(s, prefix);
  const SeqId child = gpu.fork(s);
  EXPECT_EQ(gpu.committed_tokens(child), prefix);
  // The parent takes branch a through a tree (commit keeps one path), the child branch b.
  std::vector<TreeNode> tree = chain_nodes(a);
  tree.push_back({b[0], -1});  // a sibling that must be dropped
  std::vector<Matrix> out;
  gpu.evaluate({{TreeEval{s, tree}}}, out);
  std::vector<int32_t> path(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) path[i] = int32_t(i);
  gpu.commit(s, path);
  gpu.append(child, b);
  const std::vector<float> want_s = fresh(cat(prefix, a)), want_c = fresh(cat(prefix, b));
  EXPECT_LE(max_rel_error(gpu.next_logits(s), want_s), same(dtype));
  EXPECT_LE(max_rel_error(gpu.next_logits(child), want_c), same(dtype));
  // Rollback into the shared prefix, then grow again: equals a fresh run of the new tokens.
  gpu.rollback(s, 7);
  EXPECT_EQ(gpu.length(s), 7u);
  EXPECT_LE(max_rel_error(gpu.next_logits(s), fresh(std::vector<TokenId>(prefix.begin(), prefix.begin() + 7))),
            same(dtype));
  gpu.append(s, b);
  EXPECT_LE(max_rel_error(gpu.next_logits(s), fresh(cat(std::vector<TokenId>(prefix.begin(), prefix.begin() + 7), b))),
            same(dtype));
  // The child is untouched by the parent's rollback and rewrite.
  EXPECT_LE(max_rel_error(gpu.next_logits(child), want_c), same(dtype));
  gpu.free_sequence(child);
  EXPECT_LE(max_rel_error(gpu.next_logits(s), fresh(cat(std::vector<TokenId>(prefix.begin(), prefix.begin() + 7), b))),
            same(dtype));
}

TEST_P(Parity, AnEvaluationReplacesThePendingTreeAsOnTheCpu) {
  // evaluate(T), then evaluate(empty): the empty tree is now the pending one, so committing a path
  // of T is an error on both backends (the GPU used to keep T, whose K/V rows it may overwrite).
  CudaModel gpu(file, opts(dtype));
  GgufModel cpu(file, GgufModelOptions{4096, 2});
  const int V = gpu.vocab_size();
  const std::vector<TokenId> prefix = random_tokens(5, V, 21);
  const std::vector<TreeNode> tree = chain_nodes(random_tokens(3, V, 22));
  const std::vector<int32_t> path = {0, 1};
  for (LanguageModel* m : std::initializer_list<LanguageModel*>{&gpu, &cpu}) {
    const SeqId s = m->new_sequence();
    m->append(s, prefix);
    std::vector<Matrix> out;
    m->evaluate({{TreeEval{s, tree}}}, out);
    m->evaluate({{TreeEval{s, {}}}}, out);
    EXPECT_EQ(out[0].rows, 0);
    EXPECT_THROW(m->commit(s, path), Error) << (m == &gpu ? "gpu" : "cpu");
    // The sequence itself is intact: a fresh tree commits and the logits follow.
    m->evaluate({{TreeEval{s, tree}}}, out);
    m->commit(s, path);
    EXPECT_EQ(m->length(s), prefix.size() + 2);
  }
}

TEST_P(Parity, BatchOfTreesEqualsSeparateEvaluations) {
  CudaModel gpu(file, opts(dtype));
  const int V = gpu.vocab_size();
  const SeqId s1 = gpu.new_sequence(), s2 = gpu.new_sequence();
  gpu.append(s1, random_tokens(3, V, 7));
  gpu.append(s2, random_tokens(12, V, 8));
  const std::vector<TreeNode> t1 = chain_nodes(random_tokens(4, V, 9)), t2 = {{5, -1}, {6, -1}, {7, 0}};
  std::vector<Matrix> both, one, two;
  gpu.evaluate({{TreeEval{s1, t1}, TreeEval{s2, t2}}}, both);
  gpu.evaluate({{TreeEval{s1, t1}}}, one);
  gpu.evaluate({{TreeEval{s2, t2}}}, two);
  EXPECT_LE(max_rel_error(both[0].data, one[0].data), same(dtype));
  EXPECT_LE(max_rel_error(both[1].data, two[0].data), same(dtype));
}

TEST_P(Parity, LongContextMatchesCpu) {
  // The golden models' whole context (256 tokens): 16-token pages, 16-key splits (16 splits), and
  // the same again with the graph path for the last token.
  CudaModel gpu(file, opts(dtype, 16, true, 16));
  GgufModel cpu(file, GgufModelOptions{4096, 2});
  const int n = gpu.info().context_length;
  ASSERT_GE(n, 64);
  const std::vector<TokenId> tokens = random_tokens(n, gpu.vocab_size(), 10);
  const SeqId gs = gpu.new_sequence(), cs = cpu.new_sequence();
  gpu.append(gs, std::span<const TokenId>(tokens).first(std::size_t(n - 1)));
  cpu.append(cs, std::span<const TokenId>(tokens).first(std::size_t(n - 1)));
  const std::span<const float> g = gpu.append(gs, std::span<const TokenId>(tokens).last(1));
  const std::span<const float> c = cpu.append(cs, std::span<const TokenId>(tokens).last(1));
  EXPECT_LE(max_rel_error(g, c), budget(dtype));
}

TEST_P(Parity, GraphReplayEqualsEagerEvaluation) {
  CudaModel graphed(file, opts(dtype, 64, true)), eager(file, opts(dtype, 64, false));
  const std::vector<TokenId> tokens = random_tokens(40, graphed.vocab_size(), 11);
  const SeqId a = graphed.new_sequence(), b = eager.new_sequence();
  for (TokenId t : tokens) {
    const std::span<const float> x = graphed.append(a, std::vector<TokenId>{t});
    const std::span<const float> y = eager.append(b, std::vector<TokenId>{t});
    ASSERT_LE(max_rel_error(x, y), same(dtype));
  }
  EXPECT_EQ(graphed.graph_replays(), 40);
  EXPECT_LE(graphed.graph_captures(), 2);
  EXPECT_EQ(eager.graph_replays(), 0);
}

INSTANTIATE_TEST_SUITE_P(Golden, Parity,
                         ::testing::Combine(::testing::Values("tiny-llama.gguf", "tiny-qwen2.gguf"),
                                            ::testing::Values("f32", "f16", "bf16")),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param).substr(5, 5) + "_" + std::get<1>(info.param);
                           for (char& ch : n)
                             if (ch == '.' || ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace decodelab
