#include "core/model/quants.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/model/gguf.hpp"
#include "decodelab/error.hpp"

namespace decodelab {
namespace {

const std::string kFixture = std::string(DECODELAB_SOURCE_DIR) + "/tests/data/quant_rows.gguf";

// Every quantized row in the fixture (real model rows and seeded random rows) must dequantize to
// what the PyPI gguf package computes. Both sides evaluate the same float32 expressions, so the
// tolerance only absorbs a possible fused multiply-add.
TEST(Quants, DequantizeMatchesGgufPackage) {
  GgufFile f(kFixture);
  int cases = 0;
  std::vector<std::string> types_seen;
  for (const GgufTensor& raw : f.tensors()) {
    const std::string suffix = ".raw";
    if (raw.name.size() < suffix.size() || raw.name.compare(raw.name.size() - 4, 4, suffix) != 0) continue;
    const std::string name = raw.name.substr(0, raw.name.size() - 4);
    const GgufTensor& expected = f.tensor(name + ".expected");
    ASSERT_EQ(expected.type, GgmlType::F32) << name;
    ASSERT_EQ(expected.elements(), raw.elements()) << name;
    const std::size_t cols = raw.row_elems();
    const std::size_t stride = ggml_row_bytes(raw.type, cols);
    std::vector<float> row(cols);
    for (std::size_t r = 0; r < raw.rows(); ++r) {
      dequantize_row(raw.type, raw.data + r * stride, row.data(), cols);
      const float* want = reinterpret_cast<const float*>(expected.data) + r * cols;
      for (std::size_t c = 0; c < cols; ++c) {
        ASSERT_NEAR(row[c], want[c], 1e-6f * std::fabs(want[c]) + 1e-30f) << name << " row " << r << " col " << c;
      }
    }
    types_seen.push_back(ggml_type_name(raw.type));
    ++cases;
  }
  for (const char* t : {"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q8_0", "Q4_K", "Q6_K"}) {
    EXPECT_NE(std::find(types_seen.begin(), types_seen.end(), t), types_seen.end()) << "no fixture for " << t;
  }
  EXPECT_GE(cases, 8);
}

TEST(Quants, Fp16Conversions) {
  EXPECT_EQ(fp16_to_float(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_float(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_float(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_float(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_TRUE(std::isinf(fp16_to_float(0x7C00)));
  EXPECT_TRUE(std::isnan(fp16_to_float(0x7E00)));
  EXPECT_EQ(std::signbit(fp16_to_float(0x8000)), true);
  EXPECT_EQ(bf16_to_float(0x3F80), 1.0f);
  // Every finite half matches the compiler's conversion.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if (((h >> 10) & 0x1F) == 0x1F) continue;
    _Float16 v;
    uint16_t bits = uint16_t(h);
    std::memcpy(&v, &bits, 2);
    ASSERT_EQ(fp16_to_float(bits), float(v)) << std::hex << h;
  }
}

TEST(Quants, UnsupportedTypesAreErrors) {
  std::vector<uint8_t> block(256);
  std::vector<float> out(256);
  EXPECT_THROW(dequantize_row(GgmlType::Q2_K, block.data(), out.data(), 256), Error);
  EXPECT_THROW(dequantize_row(GgmlType::Q8_0, block.data(), out.data(), 31), Error);
  EXPECT_THROW(matmul(GgmlType::Q5_K, block.data(), 1, 256, out.data(), 1, out.data()), Error);
}

// matmul over T tokens equals T separate dot products with the dequantized rows.
TEST(Quants, MatmulMatchesDequantizedDotProducts) {
  GgufFile f(kFixture);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const GgufTensor& raw : f.tensors()) {
    if (raw.name.find(".raw") == std::string::npos) continue;
    const std::size_t rows = raw.rows(), cols = raw.row_elems();
    for (std::size_t tokens : {1u, 3u}) {
      std::vector<float> x(tokens * cols);
      for (float& v : x) v = normal(rng);
      for (int threads : {1, 2}) {
        std::vector<float> y(tokens * rows, NAN);
        matmul(raw.type, raw.data, rows, cols, x.data(), tokens, y.data(), threads);
        std::vector<float> w(cols);
        for (std::size_t r = 0; r < rows; ++r) {
          dequantize_row(raw.type, raw.data + r * ggml_row_bytes(raw.type, cols), w.data(), cols);
          for (std::size_t t = 0; t < tokens; ++t) {
            double want = 0.0, scale = 0.0;
            for (std::size_t c = 0; c < cols; ++c) {
              want += double(w[c]) * x[t * cols + c];
              scale += std::fabs(double(w[c]) * x[t * cols + c]);
            }
            EXPECT_NEAR(y[t * rows + r], want, 1e-5 * scale + 1e-30) << raw.name << " r=" << r << " t=" << t;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace decodelab

namespace decodelab {
namespace {

// Large enough for the OpenMP path: the threaded result equals the single-threaded one exactly
// (rows are independent; each row's dot product is computed the same way on every thread).
TEST(Quants, ThreadedMatmulEqualsSingleThreaded) {
  const std::size_t rows = 96, cols = 1024, tokens = 5;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(rows * cols), x(tokens * cols);
  for (float& v : w) v = normal(rng);
  for (float& v : x) v = normal(rng);
  const uint8_t* wb = reinterpret_cast<const uint8_t*>(w.data());
  std::vector<float> y1(tokens * rows), y2(tokens * rows);
  matmul(GgmlType::F32, wb, rows, cols, x.data(), tokens, y1.data(), 1);
  matmul(GgmlType::F32, wb, rows, cols, x.data(), tokens, y2.data(), 2);
  EXPECT_EQ(y1, y2);
  // Token t of a T-token product equals the single-token product of x[t].
  std::vector<float> single(rows);
  matmul(GgmlType::F32, wb, rows, cols, x.data() + 3 * cols, 1, single.data(), 2);
  for (std::size_t r = 0; r < rows; ++r) EXPECT_EQ(single[r], y1[3 * rows + r]) << r;
}

}  // namespace
}  // namespace decodelab
