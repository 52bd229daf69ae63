#include "core/model/gguf.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "decodelab/error.hpp"
#include "tests/model/gguf_writer.hpp"
#include "tests/model/model_paths.hpp"

namespace decodelab {
namespace {

using testing::RawTensor;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("decodelab_gguf_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::vector<RawTensor> two_tensors() {
  RawTensor a{"a.weight", {4, 2}, 0, std::vector<uint8_t>(32)};
  for (int i = 0; i < 8; ++i) {
    float v = float(i) - 3.5f;
    std::memcpy(a.data.data() + 4 * i, &v, 4);
  }
  RawTensor b{"b.weight", {32}, 8, std::vector<uint8_t>(34, 1)};  // one Q8_0 block
  return {a, b};
}

// Opening must throw decodelab::Error whose message names the file (and `fragment`, if given).
void expect_error(const std::vector<uint8_t>& bytes, const std::string& fragment, const std::string& tag) {
  std::string path = temp_path(tag);
  testing::write_file(path, bytes);
  try {
    GgufFile f(path);
    ADD_FAILURE() << tag << ": opened without error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << tag << ": " << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << tag << ": expected '" << fragment << "' in: " << msg;
  }
  std::filesystem::remove(path);
}

TEST(Gguf, ReadsMetadataAndTensors) {
  std::string path = temp_path("valid");
  testing::write_file(path, testing::make_gguf(two_tensors()));
  GgufFile f(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_uint("general.alignment"), 32u);
  EXPECT_FLOAT_EQ(float(f.get_float("test.f32")), 1.5f);
  EXPECT_EQ(f.get_int("test.i16", 0), -7);
  EXPECT_TRUE(f.get_bool("test.bool", false));
  EXPECT_EQ(f.get_strings("test.strings"), (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(f.get_floats("test.f64s"), (std::vector<float>{0.25f, -2.0f}));
  EXPECT_EQ(f.get_uint("absent", 9), 9u);
  EXPECT_THROW(f.get_string("test.f32"), Error);
  EXPECT_THROW(f.get("absent"), Error);
  ASSERT_EQ(f.tensors().size(), 2u);
  const GgufTensor& a = f.tensor("a.weight");
  EXPECT_EQ(a.type, GgmlType::F32);
  EXPECT_EQ(a.rows(), 2u);
  EXPECT_EQ(a.row_elems(), 4u);
  EXPECT_EQ(a.bytes, 32u);
  float last;
  std::memcpy(&last, a.data + 28, 4);
  EXPECT_EQ(last, 3.5f);
  const GgufTensor& b = f.tensor("b.weight");
  EXPECT_EQ(b.type, GgmlType::Q8_0);
  EXPECT_EQ(b.bytes, 34u);
  EXPECT_EQ(b.data - a.data, 32);
  EXPECT_THROW(f.tensor("c.weight"), Error);
  std::filesystem::remove(path);
}

TEST(Gguf, EveryTruncationIsAnError) {
  std::vector<uint8_t> full = testing::make_gguf(two_tensors());
  // The last tensor's padding is not data; cutting only padding still leaves a valid file.
  std::size_t needed = full.size() - (32 - 34 % 32);
  for (std::size_t n = 0; n < needed; ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + n);
    expect_error(cut, "", "trunc" + std::to_string(n));
  }
}

TEST(Gguf, BadMagicVersionAndTypes) {
  std::vector<uint8_t> full = testing::make_gguf(two_tensors());
  auto bad = full;
  bad[0] = 'X';
  expect_error(bad, "bad magic", "magic");
  bad = full;
  bad[4] = 1;  // version 1
  expect_error(bad, "version", "version");

  // Unknown ggml type id in a tensor info.
  auto t = two_tensors();
  t[0].type = 99;
  expect_error(testing::make_gguf(t), "'a.weight'", "type");
  // A row that is not a whole number of blocks.
  t = two_tensors();
  t[1].dims = {33};
  expect_error(testing::make_gguf(t), "'b.weight'", "blocks");
  // A shape whose byte size runs into the next tensor.
  t = two_tensors();
  t[0].dims = {4, 3};
  expect_error(testing::make_gguf(t), "'a.weight'", "overlap");
  // A shape whose byte size runs past the end of the file.
  t = two_tensors();
  t[1].dims = {64};
  expect_error(testing::make_gguf(t), "'b.weight'", "outside");
  // Duplicate tensor names.
  t = two_tensors();
  t[1].name = "a.weight";
  expect_error(testing::make_gguf(t), "duplicate", "dup");
  // Five dimensions.
  t = two_tensors();
  t[0].dims = {4, 2, 1, 1, 1};
  expect_error(testing::make_gguf(t), "dimensions", "dims");
}

TEST(Gguf, BadMetadataValues) {
  std::vector<uint8_t> full = testing::make_gguf({});
  // The first value type follows magic(4) version(4) counts(16) key(8 + 20 chars).
  std::size_t type_at = 4 + 4 + 8 + 8 + 8 + std::string("general.architecture").size();
  auto bad = full;
  bad[type_at] = 13;
  expect_error(bad, "general.architecture", "valtype");
  // An array count far beyond the file.
  testing::GgufBytes g;
  g.put<uint32_t>(0x46554747);
  g.put<uint32_t>(3);
  g.put<uint64_t>(0);
  g.put<uint64_t>(1);
  g.str("big");
  g.put<uint32_t>(9);
  g.put<uint32_t>(4);
  g.put<uint64_t>(uint64_t(1) << 60);
  expect_error(g.b, "'big'", "bigarray");
  // A bool that is not 0/1.
  testing::GgufBytes h;
  h.put<uint32_t>(0x46554747);
  h.put<uint32_t>(3);
  h.put<uint64_t>(0);
  h.put<uint64_t>(1);
  h.str("flag");
  h.put<uint32_t>(7);
  h.put<uint8_t>(2);
  expect_error(h.b, "'flag'", "bool");
  // Alignment that is not a power of two.
  testing::GgufBytes k;
  k.put<uint32_t>(0x46554747);
  k.put<uint32_t>(3);
  k.put<uint64_t>(0);
  k.put<uint64_t>(1);
  k.str("general.alignment");
  k.put<uint32_t>(4);
  k.put<uint32_t>(24);
  expect_error(k.b, "power of two", "align");
}

TEST(Gguf, MissingFileIsAnError) { EXPECT_THROW(GgufFile("/nonexistent/model.gguf"), Error); }

TEST(Gguf, RealModelOpensAndTruncationsFail) {
  std::string path = testing::model_path(testing::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << testing::kSmolLM2 << " not found";
  GgufFile f(path);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_uint("llama.embedding_length"), 576u);
  EXPECT_EQ(f.get_strings("tokenizer.ggml.tokens").size(), 49152u);
  const GgufTensor& emb = f.tensor("token_embd.weight");
  EXPECT_EQ(emb.row_elems(), 576u);
  EXPECT_EQ(emb.rows(), 49152u);

  // Cut the real file inside the header, the tensor infos and the data: each cut must fail cleanly.
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> head(std::min<std::size_t>(f.file_size(), 4u << 20));
  in.read(reinterpret_cast<char*>(head.data()), std::streamsize(head.size()));
  std::vector<std::size_t> cuts = {0, 3, 4, 7, 8, 15, 23, 24, 100, 1000, 10000, 100000, 1000000, head.size() - 1};
  for (std::size_t n : cuts) {
    expect_error(std::vector<uint8_t>(head.begin(), head.begin() + n), "", "real" + std::to_string(n));
  }
}

}  // namespace
}  // namespace decodelab
