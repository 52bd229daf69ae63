#include "core/model/quants.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core/model/q8_dot.hpp"
#include "core/thread_team.hpp"
#include "decodelab/error.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace decodelab {

namespace {

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);  // blocks are only 2-byte aligned; memcpy keeps the load legal
  return v;
}

// Each decoder writes one block (32 or 256 elements) to `y`.

void block_q8_0(const uint8_t* b, float* y) {
  const float d = fp16_to_float(load_u16(b));
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = d * float(qs[j]);
}

void block_q4_0(const uint8_t* b, float* y) {
  const float d = fp16_to_float(load_u16(b));
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * float(int(qs[j] & 0x0F) - 8);
    y[j + 16] = d * float(int(qs[j] >> 4) - 8);
  }
}

void block_q4_1(const uint8_t* b, float* y) {
  const float d = fp16_to_float(load_u16(b));
  const float m = fp16_to_float(load_u16(b + 2));
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * float(qs[j] & 0x0F) + m;
    y[j + 16] = d * float(qs[j] >> 4) + m;
  }
}

void block_q5_0(const uint8_t* b, float* y) {
  const float d = fp16_to_float(load_u16(b));
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    int lo = (qs[j] & 0x0F) | int(((qh >> j) & 1u) << 4);
    int hi = (qs[j] >> 4) | int(((qh >> (j + 16)) & 1u) << 4);
    y[j] = d * float(lo - 16);
    y[j + 16] = d * float(hi - 16);
  }
}

// Q4_K packs eight 6-bit scales and eight 6-bit mins into 12 bytes.
void q4k_scale_min(int j, const uint8_t* q, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void block_q4_k(const uint8_t* b, float* y) {
  const float d = fp16_to_float(load_u16(b));
  const float dmin = fp16_to_float(load_u16(b + 2));
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (int c = 0; c < 4; ++c) {  // four 32-byte chunks, each two sub-blocks of 32
    int sc0, m0, sc1, m1;
    q4k_scale_min(2 * c, scales, sc0, m0);
    q4k_scale_min(2 * c + 1, scales, sc1, m1);
    const float d0 = d * float(sc0), min0 = dmin * float(m0);
    const float d1 = d * float(sc1), min1 = dmin * float(m1);
    const uint8_t* q = qs + 32 * c;
    float* out = y + 64 * c;
    for (int l = 0; l < 32; ++l) {
      out[l] = d0 * float(q[l] & 0x0F) - min0;
      out[l + 32] = d1 * float(q[l] >> 4) - min1;
    }
  }
}

void block_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = fp16_to_float(load_u16(b + 208));
  for (int half = 0; half < 2; ++half) {  // two halves of 128 elements
    // Split at l = 16 so each inner loop has constant scales and vectorizes.
    for (int g = 0; g < 2; ++g) {
      const float s1 = d * float(sc[g + 0]), s2 = d * float(sc[g + 2]);
      const float s3 = d * float(sc[g + 4]), s4 = d * float(sc[g + 6]);
      for (int l = 16 * g; l < 16 * g + 16; ++l) {
        const int q1 = int((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = int((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = s1 * float(q1);
        y[l + 32] = s2 * float(q2);
        y[l + 64] = s3 * float(q3);
        y[l + 96] = s4 * float(q4);
      }
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

}  // namespace

float fp16_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalize into an fp32 normal
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | (uint32_t(127 - 15 - e) << 23) | ((mant & 0x3FF) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

bool quant_supported(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q8_0:
    case GgmlType::Q4_K:
    case GgmlType::Q6_K: return true;
    default: return false;
  }
}

void dequantize_row(GgmlType type, const uint8_t* src, float* dst, std::size_t n) {
  const GgmlTypeTraits t = ggml_type_traits(uint32_t(type));
  if (!quant_supported(type))
    fail(ErrorCode::unsupported, std::string("dequantize: tensor type ") + ggml_type_name(type) + " is not supported");
  if (n % t.block_elems != 0) {
    fail(ErrorCode::invalid_argument,
         "dequantize: " + std::to_string(n) + " elements is not a whole number of " + t.name + " blocks");
  }
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, n * 4); return;
    case GgmlType::F16:
      for (std::size_t i = 0; i < n; ++i) dst[i] = fp16_to_float(load_u16(src + 2 * i));
      return;
    case GgmlType::BF16:
      for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_to_float(load_u16(src + 2 * i));
      return;
    default: break;
  }
  void (*block)(const uint8_t*, float*) = nullptr;
  switch (type) {
    case GgmlType::Q8_0: block = block_q8_0; break;
    case GgmlType::Q4_0: block = block_q4_0; break;
    case GgmlType::Q4_1: block = block_q4_1; break;
    case GgmlType::Q5_0: block = block_q5_0; break;
    case GgmlType::Q4_K: block = block_q4_k; break;
    case GgmlType::Q6_K: block = block_q6_k; break;
    default: fail(ErrorCode::internal, "dequantize: unreachable type");
  }
  for (std::size_t k = 0; k < n / t.block_elems; ++k) block(src + k * t.block_bytes, dst + k * t.block_elems);
}

void matmul(GgmlType type, const uint8_t* W, std::size_t rows, std::size_t cols, const float* x, std::size_t tokens,
            float* y, ThreadTeam& team, MatmulPrecision precision) {
  if (!quant_supported(type))
    fail(ErrorCode::unsupported, std::string("matmul: tensor type ") + ggml_type_name(type) + " is not supported");
  const std::size_t stride = ggml_row_bytes(type, cols);
  // Chunks of rows: small enough that a member the OS deschedules holds up little (the others
  // take the rest), large enough to pay for claiming them. Small products run on the caller.
  const std::size_t grain =
      rows * cols * tokens < 32768 ? rows : std::max<std::size_t>(8, rows / (std::size_t(team.size()) * 8));
  if (precision == MatmulPrecision::q8 && q8_dot_supported(type)) {
    std::vector<Q8Activations> xq(tokens);
    std::vector<const Q8Activations*> xp(tokens);
    team.parallel_for(tokens, tokens * cols < 65536 ? tokens : 1, [&](std::size_t begin, std::size_t end) {
      for (std::size_t t = begin; t < end; ++t) quantize_activations(type, x + t * cols, cols, xq[t]);
    });
    for (std::size_t t = 0; t < tokens; ++t) xp[t] = &xq[t];
    team.parallel_for(rows, grain, [&](std::size_t begin, std::size_t end) {
      q8_dot_rows(type, W, stride, begin, end, xp.data(), int(tokens), cols, y, rows);
    });
    return;
  }
  team.parallel_for(rows, grain, [&](std::size_t begin, std::size_t end) {
    std::vector<float> row(cols);
    for (std::size_t r = begin; r < end; ++r) {
      dequantize_row(type, W + r * stride, row.data(), cols);
      for (std::size_t t = 0; t < tokens; ++t) {
        const float* xt = x + t * cols;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (std::size_t c = 0; c < cols; ++c) acc += row[c] * xt[c];
        y[t * rows + r] = acc;
      }
    }
  });
}

void matmul(GgmlType type, const uint8_t* W, std::size_t rows, std::size_t cols, const float* x, std::size_t tokens,
            float* y, int threads, MatmulPrecision precision) {
  matmul(type, W, rows, cols, x, tokens, y, shared_thread_team(threads), precision);
}

}  // namespace decodelab
