#pragma once
// Named random streams. Every random number a decoder draws is PhiloxStream(seed, stream, step)
// with `step` the stream position (index of the token being decided) and `stream` saying what the
// number is for, so that two decoders deciding the same position with the same purpose share
// their numbers (common random numbers for A/B arms), and drafting never reuses verification's.

#include <cstdint>

#include "decodelab/philox.hpp"

namespace decodelab {

enum class RandomStream : uint64_t {
  sample = 0,    // plain sampling of the next token
  draft = 1,     // draft-model sampling (tree construction)
  accept = 2,    // accept / reject uniforms in verification
  residual = 3,  // sampling from a residual or from the target after rejection
  resample = 4,  // particle resampling (SMC)
  proposal = 5,  // decoder-specific proposals (trials, rejection loops)
  user = 16,     // first id free for decoders' own purposes
};

inline PhiloxStream random_stream(uint64_t seed, RandomStream stream, uint64_t step, uint64_t substream = 0) {
  // Sub-streams (a particle, a draft branch, a node) get their own subsequence above the purpose id.
  return PhiloxStream::at_step(seed, uint64_t(stream) + (substream << 8), step);
}

}  // namespace decodelab
