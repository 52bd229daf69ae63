// encode_prompt: bos exactly once when the model asks for one, whoever adds it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/model/gguf_model.hpp"
#include "core/prompt.hpp"
#include "decodelab/table_model.hpp"
#include "tests/model/model_paths.hpp"

namespace decodelab {
namespace {

std::size_t count_of(const std::vector<TokenId>& tokens, TokenId t) {
  return std::size_t(std::count(tokens.begin(), tokens.end(), t));
}

// SmolLM2 with tokenizer.ggml.add_bos_token flipped to true (what `gguf-set-metadata` does): its
// tokenizer now adds bos itself, and the CLI, benchmarks and daemon used to add a second one.
TEST(EncodePrompt, OneBosWhenTheGgufAsksForOne) {
  const std::string path = testing::model_path(testing::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << "SmolLM2 is not in the models cache (scripts/fetch-models)";
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string key = "tokenizer.ggml.add_bos_token";
  const std::size_t at = bytes.find(key);
  ASSERT_NE(at, std::string::npos);
  uint32_t type = 0;
  std::memcpy(&type, bytes.data() + at + key.size(), 4);
  ASSERT_EQ(type, 7u) << "the key's value is a bool";
  bytes[at + key.size() + 4] = 1;
  const std::string copy = (std::filesystem::temp_directory_path() / "decodelab_smollm2_add_bos.gguf").string();
  std::ofstream(copy, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  GgufModel model(copy);
  std::filesystem::remove(copy);
  ASSERT_TRUE(model.info().add_bos);
  const TokenId bos = model.info().bos;
  const std::vector<TokenId> tokens = encode_prompt(model, "Hello world");
  ASSERT_FALSE(tokens.empty());
  EXPECT_EQ(tokens.front(), bos);
  EXPECT_EQ(count_of(tokens, bos), 1u);
  EXPECT_EQ(std::vector<TokenId>(tokens.begin() + 1, tokens.end()), model.tokenize("Hello world", false));
}

TEST(EncodePrompt, BosPrependedWhenTokenizeDoesNotAddIt) {
  auto model = TableModel::random(8, 1, 3, 1.0, /*eos=*/-1);
  EXPECT_EQ(encode_prompt(*model, "a b"), (std::vector<TokenId>{0, 1}));  // no bos asked for
}

}  // namespace
}  // namespace decodelab
