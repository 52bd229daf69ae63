// Logits of tiny random Llama / Qwen2 models against HF transformers (tests/data/make_golden.py).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "core/model/gguf.hpp"
#include "core/model/gguf_model.hpp"

namespace decodelab {
namespace {

void check_golden(const std::string& file) {
  const std::string path = std::string(DECODELAB_SOURCE_DIR) + "/tests/data/" + file;
  GgufFile golden(path);
  const std::vector<int64_t> tokens = golden.get_ints("golden.tokens");
  const std::vector<int64_t> lengths = golden.get_ints("golden.lengths");
  const GgufTensor& ref = golden.tensor("golden.logits");
  const float* want = reinterpret_cast<const float*>(ref.data);

  GgufModel m(path, GgufModelOptions{4096, 2});
  const int V = m.vocab_size();
  ASSERT_EQ(ref.row_elems(), uint64_t(V));
  std::size_t offset = 0;
  for (int64_t len : lengths) {
    std::vector<TokenId> seq(tokens.begin() + std::ptrdiff_t(offset), tokens.begin() + std::ptrdiff_t(offset + len));
    // Prefill the whole sequence as one chain: every position's logits are checked.
    SeqId s = m.new_sequence();
    std::vector<Matrix> out;
    m.evaluate({{TreeEval{s, chain_nodes(seq)}}}, out);
    float max_err = 0.0f, max_ref = 0.0f;
    for (int64_t p = 0; p < len; ++p) {
      for (int v = 0; v < V; ++v) {
        const float w = want[(offset + std::size_t(p)) * V + v];
        max_err = std::max(max_err, std::fabs(out[0].row(int(p))[v] - w));
        max_ref = std::max(max_ref, std::fabs(w));
      }
    }
    std::printf("%s: sequence of %lld, max relative error %.3g\n", file.c_str(), (long long)len,
                double(max_err / max_ref));
    EXPECT_LE(max_err / max_ref, 1e-4f) << file << " sequence at " << offset << ": max error " << max_err << " of "
                                        << max_ref;
    // Token-by-token decoding reaches the same last-position logits.
    SeqId t = m.new_sequence();
    std::span<const float> last;
    for (TokenId tok : seq) last = m.append(t, std::vector<TokenId>{tok});
    float step_err = 0.0f;
    for (int v = 0; v < V; ++v)
      step_err = std::max(step_err, std::fabs(last[v] - want[(offset + std::size_t(len) - 1) * V + v]));
    EXPECT_LE(step_err / max_ref, 1e-4f) << file;
    offset += std::size_t(len);
  }
}

TEST(Golden, TinyLlamaMatchesTransformers) { check_golden("tiny-llama.gguf"); }
TEST(Golden, TinyQwen2MatchesTransformers) { check_golden("tiny-qwen2.gguf"); }

}  // namespace
}  // namespace decodelab
