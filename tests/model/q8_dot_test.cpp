#include "core/model/q8_dot.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/model/gguf.hpp"
#include "core/model/quants.hpp"
#include "decodelab/error.hpp"

namespace decodelab {
namespace {

const std::string kFixture = std::string(DECODELAB_SOURCE_DIR) + "/tests/data/quant_rows.gguf";

std::vector<float> random_activations(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  x[n / 3] = 9.0f;  // an outlier, as real activations have: it sets its block's scale
  return x;
}

// The activations as the integer path sees them: d * q.
std::vector<double> dequantized_activations(GgmlType type, const Q8Activations& xq, std::size_t cols) {
  std::vector<double> out(cols);
  for (std::size_t c = 0; c < cols; ++c) {
    if (type == GgmlType::Q4_K || type == GgmlType::Q6_K) {
      out[c] = double(xq.b256[c / 256].d) * xq.b256[c / 256].q[c % 256];
    } else {
      out[c] = double(xq.b32[c / 32].d) * xq.b32[c / 32].q[c % 32];
    }
  }
  return out;
}

template <typename F>
void for_each_q8_row(F f) {
  GgufFile file(kFixture);
  int types = 0;
  for (const GgufTensor& raw : file.tensors()) {
    if (raw.name.find(".raw") == std::string::npos || !q8_dot_supported(raw.type)) continue;
    const std::size_t cols = raw.row_elems(), stride = ggml_row_bytes(raw.type, cols);
    for (std::size_t r = 0; r < raw.rows(); ++r) f(raw, raw.data + r * stride, cols);
    ++types;
  }
  EXPECT_GE(types, 6);  // Q4_0 Q4_1 Q5_0 Q8_0 Q4_K Q6_K, random and real rows
}

// The integer algebra is exact: the reference equals sum_c w[c] * (d q[c]) with w the
// dequantized weights, up to float rounding.
TEST(Q8Dot, ReferenceEqualsDequantizedProduct) {
  for_each_q8_row([](const GgufTensor& raw, const uint8_t* w, std::size_t cols) {
    const std::vector<float> x = random_activations(cols, 3);
    Q8Activations xq;
    quantize_activations(raw.type, x.data(), cols, xq);
    const std::vector<double> xd = dequantized_activations(raw.type, xq, cols);
    std::vector<float> wf(cols);
    dequantize_row(raw.type, w, wf.data(), cols);
    double want = 0.0, scale = 0.0;
    for (std::size_t c = 0; c < cols; ++c) {
      want += wf[c] * xd[c];
      scale += std::fabs(wf[c] * xd[c]);
    }
    ASSERT_NEAR(q8_dot_reference(raw.type, w, xq, cols), want, 2e-6 * scale + 1e-30) << raw.name;
  });
}

// The SIMD kernels compute the reference's integers; only the float summation order differs.
TEST(Q8Dot, KernelEqualsReference) {
  for_each_q8_row([](const GgufTensor& raw, const uint8_t* w, std::size_t cols) {
    const std::vector<float> x = random_activations(cols, 5);
    Q8Activations xq;
    quantize_activations(raw.type, x.data(), cols, xq);
    const std::vector<double> xd = dequantized_activations(raw.type, xq, cols);
    std::vector<float> wf(cols);
    dequantize_row(raw.type, w, wf.data(), cols);
    double scale = 0.0;
    for (std::size_t c = 0; c < cols; ++c) scale += std::fabs(wf[c] * xd[c]);
    ASSERT_NEAR(q8_dot(raw.type, w, xq, cols), q8_dot_reference(raw.type, w, xq, cols), 2e-6 * scale + 1e-30)
        << raw.name;
  });
}

// The q8 matmul differs from the f32 one by at most the activations' rounding:
// |err| <= sum_c |w[c]| * d(c) / 2 (each activation is off by at most half its block's step).
TEST(Q8Dot, MatmulWithinActivationRoundingOfF32) {
  GgufFile file(kFixture);
  for (const GgufTensor& raw : file.tensors()) {
    if (raw.name.find(".raw") == std::string::npos || !q8_dot_supported(raw.type)) continue;
    const std::size_t rows = raw.rows(), cols = raw.row_elems(), tokens = 3;
    std::vector<float> x;
    for (std::size_t t = 0; t < tokens; ++t) {
      const std::vector<float> xt = random_activations(cols, unsigned(11 + t));
      x.insert(x.end(), xt.begin(), xt.end());
    }
    std::vector<float> y8(tokens * rows), y32(tokens * rows), y8_single(rows);
    matmul(raw.type, raw.data, rows, cols, x.data(), tokens, y8.data(), 2, MatmulPrecision::q8);
    matmul(raw.type, raw.data, rows, cols, x.data(), tokens, y32.data(), 1, MatmulPrecision::f32);
    std::vector<float> wf(cols);
    for (std::size_t t = 0; t < tokens; ++t) {
      Q8Activations xq;
      quantize_activations(raw.type, x.data() + t * cols, cols, xq);
      matmul(raw.type, raw.data, rows, cols, x.data() + t * cols, 1, y8_single.data(), 1, MatmulPrecision::q8);
      for (std::size_t r = 0; r < rows; ++r) {
        dequantize_row(raw.type, raw.data + r * ggml_row_bytes(raw.type, cols), wf.data(), cols);
        double bound = 0.0, scale = 0.0;
        for (std::size_t c = 0; c < cols; ++c) {
          const double d =
              raw.type == GgmlType::Q4_K || raw.type == GgmlType::Q6_K ? xq.b256[c / 256].d : xq.b32[c / 32].d;
          bound += std::fabs(wf[c]) * d / 2;
          scale += std::fabs(wf[c] * x[t * cols + c]);
        }
        EXPECT_NEAR(y8[t * rows + r], y32[t * rows + r], bound + 1e-5 * scale) << raw.name << " r=" << r;
        EXPECT_EQ(y8[t * rows + r], y8_single[r]) << raw.name << ": a T-token product is T single products";
      }
    }
  }
}

// Several vectors at once (blocks unpacked once; groups of 4 and a remainder) equal one at a time.
TEST(Q8Dot, MultiEqualsSingleBitForBit) {
  for_each_q8_row([](const GgufTensor& raw, const uint8_t* w, std::size_t cols) {
    std::vector<Q8Activations> xq(6);
    std::vector<const Q8Activations*> xp;
    for (std::size_t t = 0; t < xq.size(); ++t) {
      const std::vector<float> x = random_activations(cols, unsigned(21 + t));
      quantize_activations(raw.type, x.data(), cols, xq[t]);
      xp.push_back(&xq[t]);
    }
    std::vector<float> out(6);
    q8_dot_multi(raw.type, w, xp.data(), 6, cols, out.data());
    for (std::size_t t = 0; t < 6; ++t)
      ASSERT_EQ(out[t], q8_dot(raw.type, w, xq[t], cols)) << raw.name << " vector " << t;
  });
}

TEST(Q8Dot, BadArgumentsAreErrors) {
  Q8Activations xq;
  std::vector<float> x(64, 1.0f);
  EXPECT_THROW(quantize_activations(GgmlType::F32, x.data(), 64, xq), Error);
  EXPECT_THROW(quantize_activations(GgmlType::Q4_K, x.data(), 64, xq), Error);  // not a multiple of 256
  EXPECT_THROW(quantize_activations(GgmlType::Q8_0, x.data(), 33, xq), Error);
  quantize_activations(GgmlType::Q8_0, x.data(), 64, xq);
  std::vector<uint8_t> w(34 * 4);
  EXPECT_THROW(q8_dot_reference(GgmlType::Q8_0, w.data(), xq, 128), Error);  // columns disagree
  EXPECT_THROW(q8_dot_reference(GgmlType::Q2_K, w.data(), xq, 64), Error);
}

// Found by fuzz/gguf: a corrupt scale upstream makes activations NaN; the product must be NaN
// (which decoders reject), not an undefined NaN-to-int8 conversion.
TEST(Q8Dot, NonFiniteActivationsGiveNaN) {
  for (float bad : {std::nanf(""), INFINITY}) {
    std::vector<float> x(256, 0.5f);
    x[7] = bad;
    Q8Activations xq;
    quantize_activations(GgmlType::Q6_K, x.data(), 256, xq);
    std::vector<uint8_t> w(210, 0x11);
    w[208] = 0x00;
    w[209] = 0x3C;
    EXPECT_TRUE(std::isnan(q8_dot(GgmlType::Q6_K, w.data(), xq, 256)));
    quantize_activations(GgmlType::Q8_0, x.data(), 32, xq);
    std::vector<uint8_t> w8(34, 0x01);
    w8[0] = 0x00;
    w8[1] = 0x3C;
    EXPECT_TRUE(std::isnan(q8_dot(GgmlType::Q8_0, w8.data(), xq, 32)));
  }
}

TEST(Q8Dot, ZeroActivationsGiveZero) {
  std::vector<float> x(256, 0.0f);
  x[3] = 1e-40f;  // subnormal: 127 / amax would overflow to inf
  Q8Activations xq;
  quantize_activations(GgmlType::Q6_K, x.data(), 256, xq);
  EXPECT_EQ(xq.b256[0].d, 0.0f);
  std::vector<uint8_t> w(210, 0x5A);
  w[208] = 0x00;
  w[209] = 0x3C;  // d = 1
  EXPECT_EQ(q8_dot(GgmlType::Q6_K, w.data(), xq, 256), 0.0f);
}

}  // namespace
}  // namespace decodelab
