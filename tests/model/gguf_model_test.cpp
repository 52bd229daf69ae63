#include "core/model/gguf_model.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "decodelab/error.hpp"
#include "decodelab/model_factory.hpp"
#include "tests/model/model_paths.hpp"

namespace decodelab {
namespace {

float max_abs_diff(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0.0f;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// Logits after `tokens`, from a fresh sequence evaluated as one chain.
std::vector<float> fresh_logits(GgufModel& m, const std::vector<TokenId>& tokens) {
  SeqId s = m.new_sequence();
  auto l = m.append(s, tokens);
  std::vector<float> out(l.begin(), l.end());
  m.free_sequence(s);
  return out;
}

std::unique_ptr<GgufModel> smollm(int threads = 2) {
  std::string path = testing::model_path(testing::kSmolLM2);
  if (path.empty()) return nullptr;
  // f32: these tests check KV-cache state, which must reproduce a fresh evaluation up to fp32
  // summation order; 8-bit activations would turn that order noise into rounding flips.
  return std::make_unique<GgufModel>(path, GgufModelOptions{4096, threads, MatmulPrecision::f32});
}

// Batched fp32 sums differ from chain sums only in rounding; logits are O(10).
constexpr float kTol = 2e-3f;

TEST(GgufModel, SmolLM2ConfigAndGreedyContinuation) {
  auto m = smollm();
  if (!m) GTEST_SKIP() << testing::kSmolLM2 << " not found";
  EXPECT_EQ(m->config().arch, "llama");
  EXPECT_EQ(m->config().dim, 576);
  EXPECT_EQ(m->config().n_layers, 30);
  EXPECT_EQ(m->config().n_kv_heads, 3);
  EXPECT_EQ(m->vocab_size(), 49152);
  ASSERT_TRUE(m->has_tokenizer());
  std::vector<TokenId> prompt = m->tokenize("The capital of France is", false);
  SeqId s = m->new_sequence();
  auto logits = m->append(s, prompt);
  std::string text;
  for (int i = 0; i < 4; ++i) {
    TokenId best = TokenId(std::max_element(logits.begin(), logits.end()) - logits.begin());
    text += m->token_text(best);
    logits = m->append(s, std::vector<TokenId>{best});
  }
  const std::vector<TokenId> all = m->committed_tokens(s);
  const std::vector<TokenId> gen(all.begin() + std::ptrdiff_t(prompt.size()), all.end());
  EXPECT_NE(m->detokenize(gen).find("Paris"), std::string::npos) << m->detokenize(gen);
}

// A tree's node logits equal evaluating each root-to-node path as its own chain.
TEST(GgufModel, TreeEqualsSeparatePaths) {
  auto m = smollm();
  if (!m) GTEST_SKIP() << testing::kSmolLM2 << " not found";
  const std::vector<TokenId> prefix = {1, 504, 3575, 282};
  SeqId s = m->new_sequence();
  m->append(s, prefix);
  // Node 0 (token 100) has children 1 and 2; node 1 has child 3; node 2 has children 4 and 5.
  std::vector<TreeNode> tree = {{100, -1}, {200, 0}, {300, 0}, {400, 1}, {500, 2}, {600, 2}};
  std::vector<Matrix> out;
  m->evaluate({{TreeEval{s, tree}}}, out);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].rows, 6);
  for (int i = 0; i < 6; ++i) {
    std::vector<TokenId> path;
    for (int j = i; j >= 0; j = tree[j].parent) path.push_back(tree[j].token);
    std::reverse(path.begin(), path.end());
    std::vector<TokenId> full = prefix;
    full.insert(full.end(), path.begin(), path.end());
    EXPECT_LT(max_abs_diff(out[0].row(i), fresh_logits(*m, full)), kTol) << "node " << i;
  }
  // Committing a path leaves the logits a fresh evaluation of the committed sequence gives.
  std::vector<int32_t> path = {0, 2, 5};
  m->commit(s, path);
  EXPECT_EQ(m->committed_tokens(s), (std::vector<TokenId>{1, 504, 3575, 282, 100, 300, 600}));
  auto next = m->next_logits(s);
  EXPECT_LT(max_abs_diff(next, fresh_logits(*m, m->committed_tokens(s))), kTol);
}

// fork shares the prefix; both sequences then diverge, roll back and stay exact.
TEST(GgufModel, ForkCommitRollback) {
  auto m = smollm();
  if (!m) GTEST_SKIP() << testing::kSmolLM2 << " not found";
  SeqId a = m->new_sequence();
  m->append(a, std::vector<TokenId>{1, 42, 43, 44});
  SeqId b = m->fork(a);
  EXPECT_EQ(m->committed_tokens(b), m->committed_tokens(a));
  m->append(a, std::vector<TokenId>{7, 8});
  m->append(b, std::vector<TokenId>{9});
  EXPECT_EQ(m->committed_tokens(a), (std::vector<TokenId>{1, 42, 43, 44, 7, 8}));
  EXPECT_EQ(m->committed_tokens(b), (std::vector<TokenId>{1, 42, 43, 44, 9}));
  EXPECT_LT(max_abs_diff(m->next_logits(b), fresh_logits(*m, {1, 42, 43, 44, 9})), kTol);
  // Roll b back into the shared segment, then grow it again.
  m->rollback(b, 2);
  EXPECT_LT(max_abs_diff(m->next_logits(b), fresh_logits(*m, {1, 42})), kTol);
  m->append(b, std::vector<TokenId>{5, 6});
  EXPECT_LT(max_abs_diff(m->next_logits(b), fresh_logits(*m, {1, 42, 5, 6})), kTol);
  // a is untouched by b's rollback.
  EXPECT_LT(max_abs_diff(m->next_logits(a), fresh_logits(*m, {1, 42, 43, 44, 7, 8})), kTol);
  // Fork of a fork, then free the middle one.
  SeqId c = m->fork(b);
  m->free_sequence(b);
  m->append(c, std::vector<TokenId>{11});
  EXPECT_LT(max_abs_diff(m->next_logits(c), fresh_logits(*m, {1, 42, 5, 6, 11})), kTol);
  // Two trees on two sequences in one batch.
  std::vector<Matrix> out;
  m->evaluate({{TreeEval{a, {{3, -1}}}, TreeEval{c, {{4, -1}, {5, 0}}}}}, out);
  EXPECT_LT(max_abs_diff(out[0].row(0), fresh_logits(*m, {1, 42, 43, 44, 7, 8, 3})), kTol);
  EXPECT_LT(max_abs_diff(out[1].row(1), fresh_logits(*m, {1, 42, 5, 6, 11, 4, 5})), kTol);
  EXPECT_THROW(m->commit(a, std::vector<int32_t>{1}), Error);
}

// kv_bytes_in_use counts every row a sequence holds, rows shared by forks once, pending tree rows
// until they are committed or dropped, and nothing once every sequence is freed.
TEST(GgufModel, KvBytesInUseFollowsTheSequences) {
  auto m = smollm(1);
  if (!m) GTEST_SKIP() << testing::kSmolLM2 << " not found";
  const std::size_t row = m->kv_bytes_per_token();
  EXPECT_EQ(row, 2u * 30 * 3 * 64 * sizeof(float));  // layers x kv heads x head dim, keys and values
  EXPECT_EQ(m->kv_bytes_in_use(), 0u);
  const std::vector<TokenId> prompt{1, 2, 3, 4, 5};
  SeqId s = m->new_sequence();
  m->append(s, prompt);
  EXPECT_EQ(m->kv_bytes_in_use(), 5 * row);
  SeqId f = m->fork(s);
  EXPECT_EQ(m->kv_bytes_in_use(), 5 * row) << "a fork shares its parent's rows";
  // A tree of 3 nodes on the fork: pending rows count until the commit keeps a path of 2.
  std::vector<TreeEval> tree{TreeEval{f, {{7, -1}, {8, 0}, {9, -1}}}};
  std::vector<Matrix> out;
  m->evaluate(tree, out);
  EXPECT_EQ(m->kv_bytes_in_use(), 8 * row);
  const std::vector<int32_t> path{0, 1};
  m->commit(f, path);
  EXPECT_EQ(m->kv_bytes_in_use(), 7 * row);
  m->rollback(f, 6);  // drops one of the fork's own rows
  EXPECT_EQ(m->kv_bytes_in_use(), 6 * row);
  m->free_sequence(s);
  EXPECT_EQ(m->kv_bytes_in_use(), 6 * row) << "the fork still holds the shared rows";
  m->free_sequence(f);
  EXPECT_EQ(m->kv_bytes_in_use(), 0u);
}

TEST(GgufModel, KvBudgetRefusesAnEvaluationThatDoesNotFit) {
  auto m = smollm(1);
  if (!m) GTEST_SKIP() << testing::kSmolLM2 << " not found";
  const std::size_t row = m->kv_bytes_per_token();
  m->set_kv_budget(8 * row);
  SeqId s = m->new_sequence();
  m->append(s, std::vector<TokenId>{1, 2, 3, 4, 5, 6});
  std::vector<TreeEval> too_wide{TreeEval{s, {{7, -1}, {8, -1}, {9, -1}}}};
  std::vector<Matrix> out;
  try {
    m->evaluate(too_wide, out);
    FAIL() << "an evaluation past the KV budget must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::resource_exhausted);
    EXPECT_NE(std::string(e.what()).find("KV budget"), std::string::npos) << e.what();
  }
  EXPECT_EQ(m->kv_bytes_in_use(), 6 * row) << "a refused evaluation holds nothing";
  std::vector<TreeEval> fits{TreeEval{s, {{7, -1}, {8, -1}}}};
  EXPECT_NO_THROW(m->evaluate(fits, out));
  m->commit(s, std::vector<int32_t>{0});
  EXPECT_EQ(m->length(s), 7u);
}

TEST(GgufModel, LoaderErrors) {
  EXPECT_THROW(load_model("gguf(path=/nonexistent.gguf)"), Error);
  try {
    load_model("gguf(path=x.gguf,backend=cuda)");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
  }
  std::string path = testing::model_path(testing::kSmolLM2);
  if (path.empty()) return;
  auto m = load_model("gguf(path=" + path + ",threads=2,context=64)");
  EXPECT_EQ(m->info().context_length, 64);
}

}  // namespace
}  // namespace decodelab

namespace decodelab {
namespace {

// An architecture other than llama/qwen2 is Error(unsupported) naming it.
TEST(GgufModel, UnsupportedArchitectureIsNamed) {
  const std::string src = std::string(DECODELAB_SOURCE_DIR) + "/tests/data/tiny-llama.gguf";
  std::ifstream in(src, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t key = bytes.find("general.architecture");
  ASSERT_NE(key, std::string::npos);
  const std::size_t value = bytes.find("llama", key + 20);
  bytes.replace(value, 5, "mamba");
  const std::string path =
      (std::filesystem::temp_directory_path() / ("decodelab_arch_" + std::to_string(::getpid()) + ".gguf")).string();
  std::ofstream(path, std::ios::binary) << bytes;
  try {
    GgufModel m(path);
    ADD_FAILURE() << "loaded an unsupported architecture";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("mamba"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace decodelab

namespace decodelab {
namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// layers=N runs the first N blocks and then the output head: the same logits as the file whose
// metadata says it has N blocks (its later blocks' tensors are then never read).
TEST(GgufModel, EarlyExitEqualsAFileWithFewerBlocks) {
  const std::string src = std::string(DECODELAB_SOURCE_DIR) + "/tests/data/tiny-llama.gguf";
  GgufModel full(src);
  const int blocks = full.config().n_layers;
  ASSERT_GE(blocks, 2);
  std::string bytes = read_bytes(src);
  const std::string key = "llama.block_count";
  const std::size_t at = bytes.find(key);
  ASSERT_NE(at, std::string::npos);
  uint32_t type = 0;
  std::memcpy(&type, bytes.data() + at + key.size(), 4);
  ASSERT_TRUE(type == 4 || type == 10) << "block_count of GGUF type " << type;  // uint32 or uint64
  const uint64_t one = 1;
  std::memcpy(bytes.data() + at + key.size() + 4, &one, type == 4 ? 4 : 8);
  const std::string cut =
      (std::filesystem::temp_directory_path() / ("decodelab_blocks_" + std::to_string(::getpid()) + ".gguf")).string();
  std::ofstream(cut, std::ios::binary) << bytes;

  GgufModelOptions first_block;
  first_block.layers = 1;
  GgufModel early(src, first_block), truncated(cut);
  EXPECT_EQ(early.config().n_layers, 1);
  const std::vector<TokenId> tokens = {1, 5, 9, 2, 7};
  const std::vector<float> a = fresh_logits(early, tokens), b = fresh_logits(truncated, tokens),
                           c = fresh_logits(full, tokens);
  EXPECT_EQ(a, b) << "layers=1 differs from the file cut to one block";
  EXPECT_GT(max_abs_diff(a, c), 1e-3f) << "layers=1 gives the full model's logits";
  GgufModelOptions all_blocks;
  all_blocks.layers = blocks;
  GgufModel every(src, all_blocks);
  EXPECT_EQ(fresh_logits(every, tokens), c) << "layers=<all blocks> differs from the full model";
  EXPECT_NE(early.info().name.find("first 1 blocks"), std::string::npos) << early.info().name;
  std::filesystem::remove(cut);
}

TEST(GgufModel, EarlyExitBeyondTheModelIsAClearError) {
  const std::string src = std::string(DECODELAB_SOURCE_DIR) + "/tests/data/tiny-llama.gguf";
  try {
    load_model("gguf(path=" + src + ",layers=999)");
    ADD_FAILURE() << "layers=999 loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("layers=999"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("blocks"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace decodelab
