#pragma once
// Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3", SC'11), laid out exactly as cuRAND's curandStatePhilox4_32_10_t so that a CPU
// stream and a GPU curand_init(seed, subsequence, offset) stream give bit-identical numbers.
//
//   key     = seed (low word, high word)
//   counter = (offset / 4 as a 64-bit little-endian pair, subsequence as a 64-bit pair)
//   output  = the (offset % 4)-th word of Philox(counter, key), then onward.
//
// decodelab keys every random number by (seed, stream, step): stream is the cuRAND subsequence and
// step selects a block of 2^32 numbers inside it (offset = step << 32). A decoder that draws its
// numbers for decode step t from PhiloxStream(seed, stream, t) is reproducible, independent of how
// many numbers earlier steps used, and can share its numbers with another decoder (A/B arms).

#include <array>
#include <cstdint>

namespace decodelab {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

// One Philox4x32-10 block: 10 rounds of the bijection on (counter, key).
PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key);

class PhiloxStream {
 public:
  // Same arguments as curand_init(seed, subsequence, offset, &state).
  PhiloxStream(uint64_t seed, uint64_t subsequence, uint64_t offset = 0);

  // The stream for decode step `step` of stream `stream`: offset = step << 32.
  static PhiloxStream at_step(uint64_t seed, uint64_t stream, uint64_t step) {
    return PhiloxStream(seed, stream, step << 32);
  }

  // curand(): the next 32-bit word.
  uint32_t next_u32();
  // curand_uniform(): a float in (0, 1], never 0 (so log(u) is finite).
  float uniform();
  // _curand_uniform_double_hq(curand(), curand()): 53 random bits from two words, in (0, 1).
  double uniform_double();
  // An Exp(1) variate, -log(u) with u = uniform_double().
  double exponential();
  // A standard Gumbel variate, -log(Exp(1)).
  double gumbel();
  // curand_normal_double-independent Box-Muller N(0, 1) from two doubles (not cuRAND-matched).
  double normal();

  // skipahead(n): advances by n words.
  void skip(uint64_t n);

 private:
  void refill();
  PhiloxKey key_{};
  PhiloxCounter counter_{};
  PhiloxCounter output_{};
  uint32_t index_ = 0;  // which word of output_ comes next (cuRAND's STATE)
};

}  // namespace decodelab
