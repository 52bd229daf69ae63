// CI smoke test on the smallest real model (SmolLM2-135M Q4_1, fetched by scripts/fetch-models):
// the perplexity of a fixed text stays within a recorded bound, and the greedy continuation of a
// code prompt equals a recorded one, under both matmul precisions.
//
// The recorded continuation comes from our f32 path, which equals HF transformers on this model
// (smollm2_golden_test.cpp checks 32 greedy tokens and the top logits against HF). The perplexity
// bounds bracket the values measured on 2026-12-01 (71 tokens; f32 2.7743, q8 2.7742) by a few
// percent: a broken layer, tokenizer or quantization path moves perplexity by far more than that.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "core/model/gguf_model.hpp"
#include "decodelab/distribution.hpp"
#include "tests/model/model_paths.hpp"

namespace decodelab {
namespace {

const char* kText =
    "def fibonacci(n):\n"
    "    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
    "    a, b = 0, 1\n"
    "    for _ in range(n):\n"
    "        a, b = b, a + b\n"
    "    return a\n\n"
    "The Fibonacci sequence appears in many places in nature, such as the arrangement of leaves on a stem.";

const char* kRecordedContinuation = " if n == 1:\n        return True\n    if n == 2:";

double perplexity(GgufModel& m, const std::vector<TokenId>& tokens) {
  SeqId s = m.new_sequence();
  std::vector<Matrix> out;
  m.evaluate({{TreeEval{s, chain_nodes(tokens)}}}, out);
  double nll = 0.0;
  for (std::size_t i = 0; i + 1 < tokens.size(); ++i)
    nll -= log_softmax(out[0].row(int(i)))[std::size_t(tokens[i + 1])];
  m.free_sequence(s);
  return std::exp(nll / double(tokens.size() - 1));
}

std::vector<TokenId> greedy(GgufModel& m, const std::vector<TokenId>& prompt, int n) {
  SeqId s = m.new_sequence();
  m.append(s, prompt);
  std::vector<TokenId> out;
  for (int i = 0; i < n; ++i) {
    auto logits = m.next_logits(s);
    const TokenId best = TokenId(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(best);
    m.append(s, std::vector<TokenId>{best});
  }
  m.free_sequence(s);
  return out;
}

void smoke(MatmulPrecision precision, double ppl_low, double ppl_high) {
  const std::string path = testing::model_path(testing::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << testing::kSmolLM2 << " not found (scripts/fetch-models)";
  GgufModel m(path, GgufModelOptions{4096, 2, precision});
  const std::vector<TokenId> text = m.tokenize(kText, false);
  ASSERT_GT(text.size(), 60u);
  const double ppl = perplexity(m, text);
  std::printf("SmolLM2 perplexity of the fixed text (%zu tokens): %.4f\n", text.size(), ppl);
  EXPECT_GT(ppl, ppl_low);
  EXPECT_LT(ppl, ppl_high);

  const std::vector<TokenId> prompt = m.tokenize("def is_prime(n):\n    ", false);
  const std::vector<TokenId> continuation = greedy(m, prompt, 16);
  std::printf("greedy continuation:");
  for (TokenId t : continuation) std::printf(" %d", t);
  std::printf("\n");
  EXPECT_EQ(m.detokenize(continuation), kRecordedContinuation);
}

TEST(SmolLM2Smoke, PerplexityAndGreedyF32) { smoke(MatmulPrecision::f32, 2.70, 2.85); }
TEST(SmolLM2Smoke, PerplexityAndGreedyQ8) { smoke(MatmulPrecision::q8, 2.70, 2.85); }

}  // namespace
}  // namespace decodelab
