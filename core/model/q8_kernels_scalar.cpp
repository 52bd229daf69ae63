// The quantized row kernels in plain C++: the definition every vector path equals bit for bit
// (q8_kernels.hpp states it). Slow on purpose: lanes, scales and rounding steps are spelled out.
#include <cmath>
#include <cstring>

#include "core/model/q8_kernels.hpp"
#include "core/model/quants.hpp"

namespace decodelab {
namespace {

constexpr std::size_t kQ4_0 = 18, kQ4_1 = 20, kQ5_0 = 22, kQ8_0 = 34, kQ4_K = 144, kQ6_K = 210;

float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_float(h);
}

// Eight float lanes, accumulated as the vector kernels do.
struct Lanes {
  float v[8] = {};
  void fma(float scale, const int32_t lane[8]) {
    for (int l = 0; l < 8; ++l) v[l] = std::fma(scale, float(lane[l]), v[l]);
  }
  float sum() const {
    const float s0 = v[0] + v[4], s1 = v[1] + v[5], s2 = v[2] + v[6], s3 = v[3] + v[7];
    return (s0 + s1) + (s2 + s3);
  }
};

// lane[l] = sum over j in 4l..4l+3 of u[j] * q[j].
void lane_dot(const int u[32], const int8_t q[32], int32_t lane[8]) {
  for (int l = 0; l < 8; ++l) {
    lane[l] = 0;
    for (int j = 4 * l; j < 4 * l + 4; ++j) lane[l] += u[j] * q[j];
  }
}

void nibbles(const uint8_t* qs, int v[32]) {
  for (int j = 0; j < 16; ++j) {
    v[j] = qs[j] & 0x0F;
    v[j + 16] = qs[j] >> 4;
  }
}

void block32(Block32Kind kind, const uint8_t* w, const Q8Block* const* x, int n, std::size_t nb, float* out) {
  const std::size_t bytes = kind == Block32Kind::q4_0   ? kQ4_0
                            : kind == Block32Kind::q4_1 ? kQ4_1
                            : kind == Block32Kind::q5_0 ? kQ5_0
                                                        : kQ8_0;
  for (int t = 0; t < n; ++t) {
    Lanes acc;
    float offset = 0.0f;
    const uint8_t* wb = w;
    for (std::size_t b = 0; b < nb; ++b, wb += bytes) {
      const Q8Block& xb = x[t][b];
      int u[32];
      int32_t lane[8];
      switch (kind) {
        case Block32Kind::q4_0: {
          const float d = half(wb);
          nibbles(wb + 2, u);
          lane_dot(u, xb.q, lane);
          acc.fma(d * xb.d, lane);
          offset -= 8.0f * d * xb.s;
          break;
        }
        case Block32Kind::q4_1:
          nibbles(wb + 4, u);
          lane_dot(u, xb.q, lane);
          acc.fma(half(wb) * xb.d, lane);
          offset += half(wb + 2) * xb.s;
          break;
        case Block32Kind::q5_0: {
          const float d = half(wb);
          uint32_t qh;
          std::memcpy(&qh, wb + 2, 4);
          nibbles(wb + 6, u);
          for (int j = 0; j < 32; ++j) u[j] |= int((qh >> j) & 1u) << 4;
          lane_dot(u, xb.q, lane);
          acc.fma(d * xb.d, lane);
          offset -= 16.0f * d * xb.s;
          break;
        }
        case Block32Kind::q8_0:
          for (int j = 0; j < 32; ++j) u[j] = int8_t(wb[2 + j]);
          lane_dot(u, xb.q, lane);
          acc.fma(half(wb) * xb.d, lane);
          break;
      }
    }
    out[t] = acc.sum() + offset;
  }
}

void q4_k(const uint8_t* w, const Q8KBlock* const* x, int n, std::size_t nb, float* out) {
  for (int t = 0; t < n; ++t) {
    Lanes acc, acc_min;
    const uint8_t* wb = w;
    for (std::size_t b = 0; b < nb; ++b, wb += kQ4_K) {
      const Q8KBlock& xb = x[t][b];
      const uint8_t* p = wb + 4;
      uint8_t sc[8], mn[8];
      for (int j = 0; j < 4; ++j) {
        sc[j] = p[j] & 63;
        mn[j] = p[j + 4] & 63;
        sc[j + 4] = uint8_t((p[j + 8] & 0x0F) | ((p[j] >> 6) << 4));
        mn[j + 4] = uint8_t((p[j + 8] >> 4) | ((p[j + 4] >> 6) << 4));
      }
      int32_t sum[8] = {}, lane[8];
      for (int c = 0; c < 4; ++c) {
        int lo[32], hi[32];
        for (int j = 0; j < 32; ++j) {
          lo[j] = wb[16 + 32 * c + j] & 0x0F;
          hi[j] = wb[16 + 32 * c + j] >> 4;
        }
        lane_dot(lo, xb.q + 64 * c, lane);
        for (int l = 0; l < 8; ++l) sum[l] += sc[2 * c] * lane[l];
        lane_dot(hi, xb.q + 64 * c + 32, lane);
        for (int l = 0; l < 8; ++l) sum[l] += sc[2 * c + 1] * lane[l];
      }
      int32_t mins[8];
      for (int l = 0; l < 8; ++l) mins[l] = mn[l] * (xb.bsums[2 * l] + xb.bsums[2 * l + 1]);
      acc.fma(half(wb) * xb.d, sum);
      acc_min.fma(half(wb + 2) * xb.d, mins);
    }
    Lanes diff;
    for (int l = 0; l < 8; ++l) diff.v[l] = acc.v[l] - acc_min.v[l];
    out[t] = diff.sum();
  }
}

void q6_k(const uint8_t* w, const Q8KBlock* const* x, int n, std::size_t nb, float* out) {
  for (int t = 0; t < n; ++t) {
    Lanes acc;
    const uint8_t* wb = w;
    for (std::size_t b = 0; b < nb; ++b, wb += kQ6_K) {
      const Q8KBlock& xb = x[t][b];
      const int8_t* sc = reinterpret_cast<const int8_t*>(wb + 192);
      int32_t sum[8] = {}, lane[8];
      for (int h = 0; h < 2; ++h) {
        const uint8_t* ql = wb + 64 * h;
        const uint8_t* qh = wb + 128 + 32 * h;
        for (int i = 0; i < 4; ++i) {
          int q[32];
          for (int j = 0; j < 32; ++j) {
            const int low = i == 0 ? ql[j] & 0x0F : i == 1 ? ql[32 + j] & 0x0F : i == 2 ? ql[j] >> 4 : ql[32 + j] >> 4;
            q[j] = low | (((qh[j] >> (2 * i)) & 3) << 4);
          }
          const int k = 4 * h + i;
          lane_dot(q, xb.q + 32 * k, lane);
          // The first 16 values (lanes 0-3) belong to one 16-run and scale, the next 16 to the next.
          for (int l = 0; l < 8; ++l) sum[l] += sc[8 * h + 2 * i + (l >= 4)] * lane[l];
        }
      }
      // The stored values are q + 32: take away 32 * scale * (sum of the run's activations).
      for (int l = 0; l < 8; ++l) sum[l] -= (xb.bsums[2 * l] * sc[2 * l] + xb.bsums[2 * l + 1] * sc[2 * l + 1]) * 32;
      acc.fma(half(wb + 208) * xb.d, sum);
    }
    out[t] = acc.sum();
  }
}

const Q8RowKernels kScalar{8, block32, q4_k, q6_k};

}  // namespace

const Q8RowKernels& q8_kernels_scalar() { return kScalar; }

}  // namespace decodelab
