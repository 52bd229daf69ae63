#include "decodelab/philox.hpp"

#include <cmath>

namespace decodelab {

namespace {
constexpr uint32_t kMul0 = 0xD2511F53u;
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1

inline void round_once(PhiloxCounter& c, const PhiloxKey& k) {
  const uint64_t p0 = uint64_t(kMul0) * c[0];
  const uint64_t p1 = uint64_t(kMul1) * c[2];
  c = {uint32_t(p1 >> 32) ^ c[1] ^ k[0], uint32_t(p1), uint32_t(p0 >> 32) ^ c[3] ^ k[1], uint32_t(p0)};
}

// 128-bit add of n (in units of one counter step) to the counter.
inline void add_to_counter(PhiloxCounter& c, uint64_t n) {
  const uint64_t low = (uint64_t(c[1]) << 32 | c[0]);
  const uint64_t sum = low + n;
  c[0] = uint32_t(sum);
  c[1] = uint32_t(sum >> 32);
  if (sum < low) {  // carry into the high half
    if (++c[2] == 0) ++c[3];
  }
}

constexpr double k2Pow32Inv = 2.3283064e-10;  // CURAND_2POW32_INV, as cuRAND spells it (a float)
constexpr double k2Pow53Inv = 1.1102230246251565e-16;
}  // namespace

PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key) {
  for (int r = 0; r < 9; ++r) {
    round_once(counter, key);
    key[0] += kWeyl0;
    key[1] += kWeyl1;
  }
  round_once(counter, key);
  return counter;
}

PhiloxStream::PhiloxStream(uint64_t seed, uint64_t subsequence, uint64_t offset) {
  key_ = {uint32_t(seed), uint32_t(seed >> 32)};
  counter_ = {0, 0, uint32_t(subsequence), uint32_t(subsequence >> 32)};
  index_ = 0;
  skip(offset);
}

void PhiloxStream::refill() { output_ = philox4x32_10(counter_, key_); }

void PhiloxStream::skip(uint64_t n) {
  // cuRAND: STATE += n & 3; n /= 4; if STATE > 3 { n++; STATE -= 4 }; ctr += n; output = philox(ctr).
  index_ += uint32_t(n & 3);
  n >>= 2;
  if (index_ > 3) {
    n += 1;
    index_ -= 4;
  }
  add_to_counter(counter_, n);
  refill();
}

uint32_t PhiloxStream::next_u32() {
  const uint32_t word = output_[index_];
  if (++index_ == 4) {
    add_to_counter(counter_, 1);
    refill();
    index_ = 0;
  }
  return word;
}

float PhiloxStream::uniform() {
  // _curand_uniform: x * 2^-32 + 2^-33, computed in float.
  // nvcc contracts cuRAND's x * 2^-32 + 2^-33 into one fused multiply-add; do the same.
  const float inv = float(k2Pow32Inv);
  return std::fma(float(next_u32()), inv, inv / 2.0f);
}

double PhiloxStream::uniform_double() {
  // _curand_uniform_double_hq(x, y) of two consecutive words: 53 random bits. (cuRAND's own
  // curand_uniform_double for Philox uses only 32 bits; GPU code calls the hq form on two curand().)
  const uint32_t x = next_u32();
  const uint32_t y = next_u32();
  const uint64_t z = uint64_t(x) ^ (uint64_t(y) << (53 - 32));
  return double(z) * k2Pow53Inv + k2Pow53Inv / 2.0;
}

double PhiloxStream::exponential() { return -std::log(uniform_double()); }

double PhiloxStream::gumbel() { return -std::log(exponential()); }

double PhiloxStream::normal() {
  const double u1 = uniform_double();
  const double u2 = uniform_double();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.14159265358979323846 * u2);
}

}  // namespace decodelab
