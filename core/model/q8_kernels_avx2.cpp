// The quantized row kernels on AVX2 + FMA + F16C (this file alone is compiled with those flags).
// Integer products: maddubs (u8 x s8 -> pairs of int16, which cannot saturate for these value
// ranges) then madd (-> int32 lanes of four elements). See q8_kernels.hpp for the result's
// definition, which the scalar kernels spell out.
#include <immintrin.h>

#include <cstring>

#include "core/model/q8_kernels.hpp"

namespace decodelab {
namespace {

constexpr std::size_t kQ4_0 = 18, kQ4_1 = 20, kQ5_0 = 22, kQ8_0 = 34, kQ4_K = 144, kQ6_K = 210;
constexpr int kTile = 4;  // accumulators of 4 vectors fit the 16 ymm registers beside the weights

float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(s);
}

__m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 16 bytes of packed nibbles -> 32 unsigned bytes in element order (low nibbles, then high).
__m256i unpack_nibbles(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(0x0F));
}

// Byte i is 0xFF where bit i of `bits` is set.
__m256i spread_bits(uint32_t bits) {
  const __m256i pick = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  const __m256i mask = _mm256_set1_epi64x(int64_t(0x8040201008040201));
  const __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(int32_t(bits)), pick), mask);
  return _mm256_cmpeq_epi8(v, mask);
}

// Sum of u[i] * s[i] over 32 unsigned by signed bytes, as eight int32 lanes.
__m256i dot_u8_i8(__m256i u, __m256i s) { return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)); }

void block32(Block32Kind kind, const uint8_t* w, const Q8Block* const* x, int n, std::size_t nb, float* out) {
  __m256 acc[kTile];
  float offset[kTile];
  for (int t = 0; t < n; ++t) {
    acc[t] = _mm256_setzero_ps();
    offset[t] = 0.0f;
  }
  switch (kind) {
    case Block32Kind::q4_0:
      for (std::size_t b = 0; b < nb; ++b, w += kQ4_0) {
        const float d = half(w);
        const __m256i u = unpack_nibbles(w + 2);
        for (int t = 0; t < n; ++t) {
          const Q8Block& xb = x[t][b];
          acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), _mm256_cvtepi32_ps(dot_u8_i8(u, load256(xb.q))), acc[t]);
          offset[t] -= 8.0f * d * xb.s;
        }
      }
      break;
    case Block32Kind::q4_1:
      for (std::size_t b = 0; b < nb; ++b, w += kQ4_1) {
        const float d = half(w), m = half(w + 2);
        const __m256i u = unpack_nibbles(w + 4);
        for (int t = 0; t < n; ++t) {
          const Q8Block& xb = x[t][b];
          acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), _mm256_cvtepi32_ps(dot_u8_i8(u, load256(xb.q))), acc[t]);
          offset[t] += m * xb.s;
        }
      }
      break;
    case Block32Kind::q5_0:
      for (std::size_t b = 0; b < nb; ++b, w += kQ5_0) {
        const float d = half(w);
        uint32_t qh;
        std::memcpy(&qh, w + 2, 4);
        const __m256i u =
            _mm256_or_si256(unpack_nibbles(w + 6), _mm256_and_si256(spread_bits(qh), _mm256_set1_epi8(0x10)));
        for (int t = 0; t < n; ++t) {
          const Q8Block& xb = x[t][b];
          acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), _mm256_cvtepi32_ps(dot_u8_i8(u, load256(xb.q))), acc[t]);
          offset[t] -= 16.0f * d * xb.s;
        }
      }
      break;
    case Block32Kind::q8_0:
      for (std::size_t b = 0; b < nb; ++b, w += kQ8_0) {
        const float d = half(w);
        const __m256i wq = load256(w + 2);
        const __m256i wabs = _mm256_sign_epi8(wq, wq);  // maddubs wants one unsigned operand: |w|, x * sign(w)
        for (int t = 0; t < n; ++t) {
          const Q8Block& xb = x[t][b];
          const __m256i p = dot_u8_i8(wabs, _mm256_sign_epi8(load256(xb.q), wq));
          acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), _mm256_cvtepi32_ps(p), acc[t]);
        }
      }
      break;
  }
  for (int t = 0; t < n; ++t) out[t] = hsum(acc[t]) + offset[t];
}

// Q4_K's scales and minima, 8 bytes each, unpacked from their 12 bytes with word operations.
void q4k_scales(const uint8_t* p, uint32_t sc[2], uint32_t mn[2]) {
  uint32_t u[3];
  std::memcpy(u, p, 12);
  sc[0] = u[0] & 0x3f3f3f3fu;
  mn[0] = u[1] & 0x3f3f3f3fu;
  sc[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
  mn[1] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
}

void q4_k(const uint8_t* w, const Q8KBlock* const* x, int n, std::size_t nb, float* out) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc[kTile], acc_min[kTile];
  for (int t = 0; t < n; ++t) acc[t] = acc_min[t] = _mm256_setzero_ps();
  for (std::size_t b = 0; b < nb; ++b, w += kQ4_K) {
    uint32_t sc32[2], mn32[2];
    q4k_scales(w + 4, sc32, mn32);
    uint8_t sc[8];
    std::memcpy(sc, sc32, 8);
    __m256i scale[8], lo[4], hi[4];
    for (int j = 0; j < 8; ++j) scale[j] = _mm256_set1_epi16(sc[j]);
    for (int c = 0; c < 4; ++c) {
      const __m256i q4 = load256(w + 16 + 32 * c);
      lo[c] = _mm256_and_si256(q4, m4);
      hi[c] = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
    }
    // Minima: lane l = mn[l] * (bsums[2l] + bsums[2l+1]), each mn paired with its two 16-runs.
    const __m128i mn16 = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn32)));
    const __m256i mn_pairs = _mm256_set_m128i(_mm_unpackhi_epi16(mn16, mn16), _mm_unpacklo_epi16(mn16, mn16));
    const float d = half(w), dmin = half(w + 2);
    for (int t = 0; t < n; ++t) {
      const Q8KBlock& xb = x[t][b];
      __m256i sum = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        sum =
            _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(lo[c], load256(xb.q + 64 * c)), scale[2 * c]));
        sum = _mm256_add_epi32(
            sum, _mm256_madd_epi16(_mm256_maddubs_epi16(hi[c], load256(xb.q + 64 * c + 32)), scale[2 * c + 1]));
      }
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), _mm256_cvtepi32_ps(sum), acc[t]);
      const __m256i bs = load256(xb.bsums);
      acc_min[t] =
          _mm256_fmadd_ps(_mm256_set1_ps(dmin * xb.d), _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, mn_pairs)), acc_min[t]);
    }
  }
  for (int t = 0; t < n; ++t) out[t] = hsum(_mm256_sub_ps(acc[t], acc_min[t]));
}

// Q6_K: the 6-bit values of a block, q[4h + i] for half h and quarter i, and the scales of each
// 32-value run's two 16-runs (low lanes, high lanes).
void q6k_unpack(const uint8_t* w, __m256i q[8], __m256i scale[8]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
  const int8_t* sc = reinterpret_cast<const int8_t*>(w + 192);
  for (int h = 0; h < 2; ++h) {
    const __m256i l0 = load256(w + 64 * h), l1 = load256(w + 64 * h + 32), hb = load256(w + 128 + 32 * h);
    q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
    q[4 * h + 1] =
        _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4));
    q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4));
    q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4));
    for (int i = 0; i < 4; ++i) {
      scale[4 * h + i] = _mm256_set_m128i(_mm_set1_epi16(sc[8 * h + 2 * i + 1]), _mm_set1_epi16(sc[8 * h + 2 * i]));
    }
  }
}

void q6_k(const uint8_t* w, const Q8KBlock* const* x, int n, std::size_t nb, float* out) {
  __m256 acc[kTile];
  for (int t = 0; t < n; ++t) acc[t] = _mm256_setzero_ps();
  for (std::size_t b = 0; b < nb; ++b, w += kQ6_K) {
    __m256i q[8], scale[8];
    q6k_unpack(w, q, scale);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192)));
    const float d = half(w + 208);
    for (int t = 0; t < n; ++t) {
      const Q8KBlock& xb = x[t][b];
      __m256i sum = _mm256_setzero_si256();
      for (int k = 0; k < 8; ++k) {
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], load256(xb.q + 32 * k)), scale[k]));
      }
      // The stored values are q + 32: take away 32 * scale * (sum of the run's activations).
      sum = _mm256_sub_epi32(sum, _mm256_slli_epi32(_mm256_madd_epi16(load256(xb.bsums), sc16), 5));
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), _mm256_cvtepi32_ps(sum), acc[t]);
    }
  }
  for (int t = 0; t < n; ++t) out[t] = hsum(acc[t]);
}

const Q8RowKernels kAvx2{kTile, block32, q4_k, q6_k};

}  // namespace

const Q8RowKernels& q8_kernels_avx2() { return kAvx2; }

}  // namespace decodelab
