#include "core/model/q8_dot.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "core/cpu_features.hpp"
#include "core/model/q8_kernels.hpp"
#include "core/model/quants.hpp"
#include "decodelab/error.hpp"

namespace decodelab {

namespace {

// Block sizes in bytes (ggml layouts, see quants.cpp and docs/runtime.md).
constexpr std::size_t kQ4_0 = 18, kQ4_1 = 20, kQ5_0 = 22, kQ8_0 = 34, kQ4_K = 144, kQ6_K = 210;

float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_float(h);
}

bool is_k_quant(GgmlType type) { return type == GgmlType::Q4_K || type == GgmlType::Q6_K; }

Block32Kind block32_kind(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return Block32Kind::q4_0;
    case GgmlType::Q4_1: return Block32Kind::q4_1;
    case GgmlType::Q5_0: return Block32Kind::q5_0;
    case GgmlType::Q8_0: return Block32Kind::q8_0;
    default:
      fail(ErrorCode::internal, std::string("q8_dot: ") + ggml_type_name(type) + " is not a 32-element block type");
  }
}

// Symmetric 8-bit quantization of n values with one scale: returns d, writes q.
float quantize_run(const float* x, int n, int8_t* q) {
  float amax = 0.0f, probe = 0.0f;  // probe turns NaN when any x is NaN or infinite
  for (int i = 0; i < n; ++i) {
    amax = std::max(amax, std::fabs(x[i]));
    probe += x[i] * 0.0f;
  }
  if (!std::isfinite(probe)) {
    // Corrupt weights upstream: carry the NaN through the scale so the logits show it (decoders
    // reject NaN logits with an error) instead of converting NaN to int8 (undefined).
    std::fill(q, q + n, int8_t(0));
    return std::numeric_limits<float>::quiet_NaN();
  }
  if (amax < 1e-30f) {  // zero, or so small that 127 / amax would overflow (found by fuzz/gguf)
    std::fill(q, q + n, int8_t(0));
    return 0.0f;
  }
  const float inv = 127.0f / amax;
  for (int i = 0; i < n; ++i) q[i] = int8_t(std::nearbyint(x[i] * inv));
  return amax / 127.0f;
}

// Q4_K's eight 6-bit scales and mins, unpacked from their 12 bytes.
void q4k_scales(const uint8_t* p, uint8_t sc[8], uint8_t mn[8]) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = p[j] & 63;
    mn[j] = p[j + 4] & 63;
    sc[j + 4] = uint8_t((p[j + 8] & 0x0F) | ((p[j] >> 6) << 4));
    mn[j + 4] = uint8_t((p[j + 8] >> 4) | ((p[j + 4] >> 6) << 4));
  }
}

// --- scalar reference ---

// Unsigned 4/5-bit values of a 32-element block, in element order.
void nibbles(const uint8_t* qs, int v[32]) {
  for (int j = 0; j < 16; ++j) {
    v[j] = qs[j] & 0x0F;
    v[j + 16] = qs[j] >> 4;
  }
}

float ref_block32(GgmlType type, const uint8_t* b, const Q8Block& x) {
  int v[32];
  int dot = 0;
  switch (type) {
    case GgmlType::Q4_0:
      nibbles(b + 2, v);
      for (int j = 0; j < 32; ++j) dot += v[j] * x.q[j];
      return half(b) * (x.d * float(dot) - 8.0f * x.s);
    case GgmlType::Q4_1:
      nibbles(b + 4, v);
      for (int j = 0; j < 32; ++j) dot += v[j] * x.q[j];
      return half(b) * x.d * float(dot) + half(b + 2) * x.s;
    case GgmlType::Q5_0: {
      uint32_t qh;
      std::memcpy(&qh, b + 2, 4);
      nibbles(b + 6, v);
      for (int j = 0; j < 32; ++j) dot += (v[j] | int(((qh >> j) & 1u) << 4)) * x.q[j];
      return half(b) * (x.d * float(dot) - 16.0f * x.s);
    }
    case GgmlType::Q8_0: {
      const int8_t* w = reinterpret_cast<const int8_t*>(b + 2);
      for (int j = 0; j < 32; ++j) dot += int(w[j]) * x.q[j];
      return half(b) * x.d * float(dot);
    }
    default: fail(ErrorCode::internal, "q8_dot: not a 32-element block type");
  }
}

float ref_q4k(const uint8_t* b, const Q8KBlock& x) {
  uint8_t sc[8], mn[8];
  q4k_scales(b + 4, sc, mn);
  const uint8_t* qs = b + 16;
  int sum = 0, sum_min = 0;
  for (int c = 0; c < 4; ++c) {
    int lo = 0, hi = 0;
    for (int l = 0; l < 32; ++l) {
      lo += (qs[32 * c + l] & 0x0F) * x.q[64 * c + l];
      hi += (qs[32 * c + l] >> 4) * x.q[64 * c + 32 + l];
    }
    sum += sc[2 * c] * lo + sc[2 * c + 1] * hi;
  }
  for (int j = 0; j < 8; ++j) sum_min += mn[j] * (x.bsums[2 * j] + x.bsums[2 * j + 1]);
  return half(b) * x.d * float(sum) - half(b + 2) * x.d * float(sum_min);
}

float ref_q6k(const uint8_t* b, const Q8KBlock& x) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  int sum = 0;
  for (int half_ = 0; half_ < 2; ++half_) {
    const int8_t* q8 = x.q + 128 * half_;
    for (int l = 0; l < 32; ++l) {
      const int s = l / 16;
      const int q1 = (ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4);
      const int q2 = (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4);
      const int q3 = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
      const int q4 = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
      sum += sc[s] * (q1 - 32) * q8[l] + sc[s + 2] * (q2 - 32) * q8[l + 32] + sc[s + 4] * (q3 - 32) * q8[l + 64] +
             sc[s + 6] * (q4 - 32) * q8[l + 96];
    }
    ql += 64;
    qh += 32;
    sc += 8;
  }
  return half(b + 208) * x.d * float(sum);
}

void check_args(GgmlType type, std::size_t cols, const Q8Activations& x) {
  const std::size_t block = is_k_quant(type) ? 256 : 32;
  if (!q8_dot_supported(type))
    fail(ErrorCode::unsupported, std::string("q8_dot: tensor type ") + ggml_type_name(type) + " has no integer path");
  if (cols % block != 0 || (is_k_quant(type) ? x.b256.size() : x.b32.size()) != cols / block) {
    fail(ErrorCode::invalid_argument,
         "q8_dot: " + std::to_string(cols) + " columns do not match the quantized activations");
  }
}

}  // namespace

bool q8_dot_supported(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q8_0:
    case GgmlType::Q4_K:
    case GgmlType::Q6_K: return true;
    default: return false;
  }
}

void quantize_activations(GgmlType type, const float* x, std::size_t cols, Q8Activations& out) {
  if (!q8_dot_supported(type))
    fail(ErrorCode::unsupported,
         std::string("quantize_activations: tensor type ") + ggml_type_name(type) + " has no integer path");
  if (is_k_quant(type)) {
    if (cols % 256 != 0)
      fail(ErrorCode::invalid_argument, "quantize_activations: " + std::to_string(cols) + " is not a multiple of 256");
    out.b32.clear();
    out.b256.resize(cols / 256);
    for (std::size_t b = 0; b < out.b256.size(); ++b) {
      Q8KBlock& k = out.b256[b];
      k.d = quantize_run(x + 256 * b, 256, k.q);
      for (int j = 0; j < 16; ++j) {
        int s = 0;
        for (int i = 0; i < 16; ++i) s += k.q[16 * j + i];
        k.bsums[j] = int16_t(s);
      }
    }
  } else {
    if (cols % 32 != 0)
      fail(ErrorCode::invalid_argument, "quantize_activations: " + std::to_string(cols) + " is not a multiple of 32");
    out.b256.clear();
    out.b32.resize(cols / 32);
    for (std::size_t b = 0; b < out.b32.size(); ++b) {
      Q8Block& k = out.b32[b];
      k.d = quantize_run(x + 32 * b, 32, k.q);
      int s = 0;
      for (int i = 0; i < 32; ++i) s += k.q[i];
      k.s = k.d * float(s);
    }
  }
}

float q8_dot_reference(GgmlType type, const uint8_t* w, const Q8Activations& x, std::size_t cols) {
  check_args(type, cols, x);
  float sum = 0.0f;
  switch (type) {
    case GgmlType::Q4_K:
      for (std::size_t b = 0; b < x.b256.size(); ++b) sum += ref_q4k(w + b * kQ4_K, x.b256[b]);
      return sum;
    case GgmlType::Q6_K:
      for (std::size_t b = 0; b < x.b256.size(); ++b) sum += ref_q6k(w + b * kQ6_K, x.b256[b]);
      return sum;
    default: {
      const std::size_t bytes = ggml_type_traits(uint32_t(type)).block_bytes;
      for (std::size_t b = 0; b < x.b32.size(); ++b) sum += ref_block32(type, w + b * bytes, x.b32[b]);
      return sum;
    }
  }
}

const Q8RowKernels& active_kernels() {
  switch (active_cpu_path()) {
#ifdef DECODELAB_X86_KERNELS
    case CpuPath::avx512vnni: return q8_kernels_avx512vnni();
    case CpuPath::avx2: return q8_kernels_avx2();
#endif
    default: return q8_kernels_scalar();
  }
}

void q8_dot_multi(GgmlType type, const uint8_t* w, const Q8Activations* const* x, int n, std::size_t cols, float* out) {
  // The hot path trusts its caller (matmul checks the shapes once per product).
  (void)cols;
  const Q8RowKernels& k = active_kernels();
  for (int t0 = 0; t0 < n; t0 += k.tile) {
    const int m = std::min(k.tile, n - t0);
    if (is_k_quant(type)) {
      const Q8KBlock* blocks[16];
      for (int t = 0; t < m; ++t) blocks[t] = x[t0 + t]->b256.data();
      const std::size_t nb = x[t0]->b256.size();
      (type == GgmlType::Q4_K ? k.q4_k : k.q6_k)(w, blocks, m, nb, out + t0);
    } else {
      const Q8Block* blocks[16];
      for (int t = 0; t < m; ++t) blocks[t] = x[t0 + t]->b32.data();
      k.block32(block32_kind(type), w, blocks, m, x[t0]->b32.size(), out + t0);
    }
  }
}

void q8_dot_rows(GgmlType type, const uint8_t* w, std::size_t row_stride, std::size_t row_begin, std::size_t row_end,
                 const Q8Activations* const* x, int n, std::size_t cols, float* y, std::size_t y_stride) {
  const Q8RowKernels& k = active_kernels();
  // Rows per group: their weights fit in about 32 KiB (half of a typical L2 slice's share is
  // plenty; more rows gain nothing once a tile's activations are reused a few times).
  const std::size_t group = std::clamp<std::size_t>((32u << 10) / std::max<std::size_t>(row_stride, 1), 1, 64);
  float dots[16];
  for (std::size_t g = row_begin; g < row_end; g += group) {
    const std::size_t g_end = std::min(row_end, g + group);
    for (int t0 = 0; t0 < n; t0 += k.tile) {
      const int m = std::min(k.tile, n - t0);
      for (std::size_t r = g; r < g_end; ++r) {
        q8_dot_multi(type, w + r * row_stride, x + t0, m, cols, dots);
        for (int t = 0; t < m; ++t) y[std::size_t(t0 + t) * y_stride + r] = dots[t];
      }
    }
  }
}

float q8_dot(GgmlType type, const uint8_t* w, const Q8Activations& x, std::size_t cols) {
  const Q8Activations* one = &x;
  float out = 0.0f;
  q8_dot_multi(type, w, &one, 1, cols, &out);
  return out;
}

}  // namespace decodelab
