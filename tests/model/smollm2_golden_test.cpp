// SmolLM2-135M (Q4_1) and Qwen2.5-Coder-0.5B against HF transformers loading the same GGUF in fp32
// (tests/data/make_smollm2_golden.py): top-10 logits at every prompt position, 32 greedy tokens.
// precision=f32 computes what transformers computes (relative error 1e-4, same greedy tokens);
// precision=q8 (the default: 8-bit activations, as llama.cpp) stays within its rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/model/gguf.hpp"
#include "core/model/gguf_model.hpp"
#include "tests/model/model_paths.hpp"

namespace decodelab {
namespace {

struct Bounds {
  float rel_logit_error;      // max |ours - HF| over the top-k logits, relative to max |logit|
  std::size_t greedy_prefix;  // greedy tokens that must equal HF's
};

void check_against_transformers(const std::string& path, const std::string& fixture, MatmulPrecision precision,
                                Bounds bounds) {
  GgufFile golden(std::string(DECODELAB_SOURCE_DIR) + "/tests/data/" + fixture);
  std::vector<TokenId> prompt, greedy;
  for (int64_t t : golden.get_ints("golden.prompt")) prompt.push_back(TokenId(t));
  for (int64_t t : golden.get_ints("golden.greedy")) greedy.push_back(TokenId(t));
  const GgufTensor& ids = golden.tensor("golden.top_ids");
  const GgufTensor& vals = golden.tensor("golden.top_logits");
  const std::size_t k = ids.row_elems();
  ASSERT_EQ(ids.rows(), prompt.size());

  GgufModel m(path, GgufModelOptions{4096, 2, precision});
  SeqId s = m.new_sequence();
  std::vector<Matrix> out;
  m.evaluate({{TreeEval{s, chain_nodes(prompt)}}}, out);
  float max_err = 0.0f, max_ref = 0.0f;
  for (std::size_t p = 0; p < prompt.size(); ++p) {
    for (std::size_t j = 0; j < k; ++j) {
      const int32_t id = reinterpret_cast<const int32_t*>(ids.data)[p * k + j];
      const float want = reinterpret_cast<const float*>(vals.data)[p * k + j];
      max_err = std::max(max_err, std::fabs(out[0].row(int(p))[id] - want));
      max_ref = std::max(max_ref, std::fabs(want));
    }
  }
  const char* name = precision == MatmulPrecision::f32 ? "f32" : "q8";
  std::printf("%s %s top-%zu logits: max abs error %.3g (max |logit| %.3g)\n", fixture.c_str(), name, k,
              double(max_err), double(max_ref));
  EXPECT_LE(max_err, bounds.rel_logit_error * max_ref);

  std::vector<int32_t> path_all(prompt.size());
  for (std::size_t i = 0; i < path_all.size(); ++i) path_all[i] = int32_t(i);
  m.commit(s, path_all);
  std::vector<TokenId> ours;
  for (std::size_t i = 0; i < greedy.size(); ++i) {
    auto logits = m.next_logits(s);
    const TokenId best = TokenId(std::max_element(logits.begin(), logits.end()) - logits.begin());
    ours.push_back(best);
    m.append(s, std::vector<TokenId>{best});
  }
  std::size_t same = 0;
  while (same < ours.size() && ours[same] == greedy[same]) ++same;
  std::printf("%s %s: first %zu of %zu greedy tokens equal transformers'\n", fixture.c_str(), name, same,
              greedy.size());
  EXPECT_GE(same, bounds.greedy_prefix);
}

constexpr Bounds kExact{1e-4f, 32};
// Measured 2026-12-01: SmolLM2 0.96 on 32.3 (3.0%), Qwen 0.5B 2.37 on 24.8 (9.6%; its activations
// have large outliers, which coarsen their 8-bit blocks), 32 of 32 greedy tokens for both.
constexpr Bounds kQ8{0.15f, 16};

TEST(SmolLM2Golden, TopLogitsAndGreedyMatchTransformers) {
  const std::string path = testing::model_path(testing::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << testing::kSmolLM2 << " not found";
  check_against_transformers(path, "smollm2-golden.gguf", MatmulPrecision::f32, kExact);
  check_against_transformers(path, "smollm2-golden.gguf", MatmulPrecision::q8, kQ8);
}

// Qwen2 path on real weights: Q5_0, Q8_0, Q4_K, Q6_K tensors, QKV biases, neox RoPE, tied output.
TEST(Qwen05Golden, TopLogitsAndGreedyMatchTransformers) {
  const std::string path = testing::model_path(testing::kQwen05);
  if (path.empty()) GTEST_SKIP() << testing::kQwen05 << " not found";
  check_against_transformers(path, "qwen05-golden.gguf", MatmulPrecision::f32, kExact);
  check_against_transformers(path, "qwen05-golden.gguf", MatmulPrecision::q8, kQ8);
}

}  // namespace
}  // namespace decodelab
