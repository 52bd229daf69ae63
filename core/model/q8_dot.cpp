#include "core/model/q8_dot.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "core/error.hpp"
#include "core/model/quants.hpp"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define DECODELAB_Q8_AVX2 1
#endif

namespace decodelab {

namespace {

// Block sizes in bytes (ggml layouts, see quants.cpp and docs/runtime.md).
constexpr std::size_t kQ4_0 = 18, kQ4_1 = 20, kQ5_0 = 22, kQ8_0 = 34, kQ4_K = 144, kQ6_K = 210;

float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
#ifdef DECODELAB_Q8_AVX2
  return _cvtsh_ss(h);
#else
  return fp16_to_float(h);
#endif
}

bool is_k_quant(GgmlType type) { return type == GgmlType::Q4_K || type == GgmlType::Q6_K; }

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

#ifdef DECODELAB_Q8_AVX2

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

// Sum of u[i] * s[i] over 32 unsigned (< 128) by signed bytes, as eight int32 lanes.
__m256i dot_u8_i8(__m256i u, __m256i s) { return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)); }

float avx2_block32(GgmlType type, const uint8_t* w, const Q8Block* x, std::size_t nb) {
  __m256 acc = _mm256_setzero_ps();
  float offset = 0.0f;  // the part carried by x.s: offsets (Q4_0, Q5_0) and minima (Q4_1)
  switch (type) {
    case GgmlType::Q4_0:
      for (std::size_t b = 0; b < nb; ++b, w += kQ4_0) {
        const float d = half(w);
        const __m256i p = dot_u8_i8(unpack_nibbles(w + 2), load256(x[b].q));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * x[b].d), _mm256_cvtepi32_ps(p), acc);
        offset -= 8.0f * d * x[b].s;
      }
      break;
    case GgmlType::Q4_1:
      for (std::size_t b = 0; b < nb; ++b, w += kQ4_1) {
        const __m256i p = dot_u8_i8(unpack_nibbles(w + 4), load256(x[b].q));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half(w) * x[b].d), _mm256_cvtepi32_ps(p), acc);
        offset += half(w + 2) * x[b].s;
      }
      break;
    case GgmlType::Q5_0:
      for (std::size_t b = 0; b < nb; ++b, w += kQ5_0) {
        const float d = half(w);
        uint32_t qh;
        std::memcpy(&qh, w + 2, 4);
        const __m256i v =
            _mm256_or_si256(unpack_nibbles(w + 6), _mm256_and_si256(spread_bits(qh), _mm256_set1_epi8(0x10)));
        const __m256i p = dot_u8_i8(v, load256(x[b].q));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * x[b].d), _mm256_cvtepi32_ps(p), acc);
        offset -= 16.0f * d * x[b].s;
      }
      break;
    case GgmlType::Q8_0:
      for (std::size_t b = 0; b < nb; ++b, w += kQ8_0) {
        const __m256i wq = load256(w + 2);
        const __m256i xq = load256(x[b].q);
        // maddubs wants one unsigned operand: |w| times x with w's sign.
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq)),
                                            _mm256_set1_epi16(1));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half(w) * x[b].d), _mm256_cvtepi32_ps(p), acc);
      }
      break;
    default: fail(ErrorCode::internal, "q8_dot: not a 32-element block type");
  }
  return hsum(acc) + offset;
}

// Q4_K's scales and minima, 8 bytes each, unpacked from their 12 bytes with word operations
// (the byte loop of q4k_scales costs as much as the block's dot product).
void q4k_scales_fast(const uint8_t* p, uint32_t sc[2], uint32_t mn[2]) {
  uint32_t u[3];
  std::memcpy(u, p, 12);
  sc[0] = u[0] & 0x3f3f3f3fu;
  mn[0] = u[1] & 0x3f3f3f3fu;
  sc[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
  mn[1] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
}

float avx2_q4k(const uint8_t* w, const Q8KBlock* x, std::size_t nb) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (std::size_t b = 0; b < nb; ++b, w += kQ4_K) {
    uint32_t sc32[2], mn32[2];
    q4k_scales_fast(w + 4, sc32, mn32);
    uint8_t sc[8];
    std::memcpy(sc, sc32, 8);
    const uint8_t* qs = w + 16;
    const int8_t* q8 = x[b].q;
    __m256i sum = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q4 = load256(qs + 32 * c);
      const __m256i lo = _mm256_maddubs_epi16(_mm256_and_si256(q4, m4), load256(q8 + 64 * c));
      const __m256i hi =
          _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q4, 4), m4), load256(q8 + 64 * c + 32));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(lo, _mm256_set1_epi16(sc[2 * c])));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(hi, _mm256_set1_epi16(sc[2 * c + 1])));
    }
    const float dx = x[b].d;
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half(w) * dx), _mm256_cvtepi32_ps(sum), acc);
    // Minima: sum_j mn[j] * (bsums[2j] + bsums[2j+1]), with each mn[j] paired to its two 16-runs.
    const __m128i mn16 = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn32)));
    const __m256i mn_pairs = _mm256_set_m128i(_mm_unpackhi_epi16(mn16, mn16), _mm_unpacklo_epi16(mn16, mn16));
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].bsums));
    acc_min =
        _mm256_fmadd_ps(_mm256_set1_ps(half(w + 2) * dx), _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, mn_pairs)), acc_min);
  }
  return hsum(_mm256_sub_ps(acc, acc_min));
}

// One Q4_K row against up to 4 activation vectors: each block's nibbles, scales and minima are
// unpacked once and reused for every vector (tree nodes, prompt tokens). Per vector the integer
// sums and float accumulation run in avx2_q4k's order, so results equal it bit for bit.
void avx2_q4k_multi(const uint8_t* w, const Q8KBlock* const* x, int n, std::size_t nb, float* out) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc[4], acc_min[4];
  for (int t = 0; t < n; ++t) acc[t] = acc_min[t] = _mm256_setzero_ps();
  for (std::size_t b = 0; b < nb; ++b, w += kQ4_K) {
    uint32_t sc32[2], mn32[2];
    q4k_scales_fast(w + 4, sc32, mn32);
    uint8_t sc[8];
    std::memcpy(sc, sc32, 8);
    __m256i scale[8], lo[4], hi[4];
    for (int j = 0; j < 8; ++j) scale[j] = _mm256_set1_epi16(sc[j]);
    for (int c = 0; c < 4; ++c) {
      const __m256i q4 = load256(w + 16 + 32 * c);
      lo[c] = _mm256_and_si256(q4, m4);
      hi[c] = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
    }
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
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums));
      acc_min[t] =
          _mm256_fmadd_ps(_mm256_set1_ps(dmin * xb.d), _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, mn_pairs)), acc_min[t]);
    }
  }
  for (int t = 0; t < n; ++t) out[t] = hsum(_mm256_sub_ps(acc[t], acc_min[t]));
}

float avx2_q6k(const uint8_t* w, const Q8KBlock* x, std::size_t nb) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
  __m256 acc = _mm256_setzero_ps();
  for (std::size_t b = 0; b < nb; ++b, w += kQ6_K) {
    const uint8_t* ql = w;
    const uint8_t* qh = w + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(w + 192);
    const int8_t* q8 = x[b].q;
    // Two 16-lane scales: sub-block a for the low 128 bits of a maddubs result, b for the high.
    auto scales = [&](int a, int bb) { return _mm256_set_m128i(_mm_set1_epi16(sc[bb]), _mm_set1_epi16(sc[a])); };
    __m256i sum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i l0 = load256(ql), l1 = load256(ql + 32), hb = load256(qh);
      const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
      const __m256i q2 = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4));
      const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4));
      const __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(q1, load256(q8)), scales(0, 1)));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(q2, load256(q8 + 32)), scales(2, 3)));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(q3, load256(q8 + 64)), scales(4, 5)));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(q4, load256(q8 + 96)), scales(6, 7)));
      ql += 64;
      qh += 32;
      sc += 8;
      q8 += 128;
    }
    // The stored values are q - 32: subtract 32 * sum_s scale_s * bsum_s.
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192)));
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].bsums));
    sum = _mm256_sub_epi32(sum, _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half(w + 208) * x[b].d), _mm256_cvtepi32_ps(sum), acc);
  }
  return hsum(acc);
}

// One Q6_K row against up to 4 activation vectors, as avx2_q4k_multi: the 6-bit values and the
// scales are unpacked once per block; per vector the sums run in avx2_q6k's order (bit-identical).
void avx2_q6k_multi(const uint8_t* w, const Q8KBlock* const* x, int n, std::size_t nb, float* out) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
  __m256 acc[4];
  for (int t = 0; t < n; ++t) acc[t] = _mm256_setzero_ps();
  for (std::size_t b = 0; b < nb; ++b, w += kQ6_K) {
    const int8_t* sc = reinterpret_cast<const int8_t*>(w + 192);
    __m256i q[8], scale[8];  // q[4h + i]: values i of half h, with the scales of its two 16-runs
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = w + 64 * h;
      const uint8_t* qh = w + 128 + 32 * h;
      const __m256i l0 = load256(ql), l1 = load256(ql + 32), hb = load256(qh);
      q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
      q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                     _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4));
      q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                     _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4));
      q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                     _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4));
      for (int i = 0; i < 4; ++i) {
        scale[4 * h + i] = _mm256_set_m128i(_mm_set1_epi16(sc[8 * h + 2 * i + 1]), _mm_set1_epi16(sc[8 * h + 2 * i]));
      }
    }
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192)));
    const float d = half(w + 208);
    for (int t = 0; t < n; ++t) {
      const Q8KBlock& xb = x[t][b];
      __m256i sum = _mm256_setzero_si256();
      for (int k = 0; k < 8; ++k) {
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], load256(xb.q + 32 * k)), scale[k]));
      }
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums));
      sum = _mm256_sub_epi32(sum, _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5));
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), _mm256_cvtepi32_ps(sum), acc[t]);
    }
  }
  for (int t = 0; t < n; ++t) out[t] = hsum(acc[t]);
}

#endif  // DECODELAB_Q8_AVX2

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

void q8_dot_multi(GgmlType type, const uint8_t* w, const Q8Activations* const* x, int n, std::size_t cols, float* out) {
#ifdef DECODELAB_Q8_AVX2
  if ((type == GgmlType::Q4_K || type == GgmlType::Q6_K) && n > 1) {
    const auto kernel = type == GgmlType::Q4_K ? avx2_q4k_multi : avx2_q6k_multi;
    for (int t0 = 0; t0 < n; t0 += 4) {
      const Q8KBlock* blocks[4];
      const int m = std::min(4, n - t0);
      for (int t = 0; t < m; ++t) blocks[t] = x[t0 + t]->b256.data();
      kernel(w, blocks, m, cols / 256, out + t0);
    }
    return;
  }
#endif
  for (int t = 0; t < n; ++t) out[t] = q8_dot(type, w, *x[t], cols);
}

float q8_dot(GgmlType type, const uint8_t* w, const Q8Activations& x, std::size_t cols) {
#ifdef DECODELAB_Q8_AVX2
  (void)cols;  // the hot path trusts its caller (matmul checks the shapes once)
  switch (type) {
    case GgmlType::Q4_K: return avx2_q4k(w, x.b256.data(), x.b256.size());
    case GgmlType::Q6_K: return avx2_q6k(w, x.b256.data(), x.b256.size());
    default: return avx2_block32(type, w, x.b32.data(), x.b32.size());
  }
#else
  return q8_dot_reference(type, w, x, cols);
#endif
}

}  // namespace decodelab
