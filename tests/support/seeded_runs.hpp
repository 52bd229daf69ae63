#pragma once
// Statistical tests of a decoder's output law: run it once per seed 0..runs-1 from the same
// prompt and count an outcome of each run (the first token, a pair of tokens, ...).

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "decodelab/decoder.hpp"
#include "decodelab/token_stream.hpp"

namespace decodelab::testing {

// counts[outcome(stream)] over `runs` generations with options.seed = 0, 1, ...; `options` gives
// everything else (max_new_tokens, ...). outcome() must return an index below `outcomes`.
inline std::vector<int64_t> seeded_outcome_counts(Decoder& decoder, const ModelSet& models,
                                                  std::span<const TokenId> prompt, DecodeOptions options, int runs,
                                                  std::size_t outcomes,
                                                  const std::function<std::size_t(const TokenStream&)>& outcome) {
  std::vector<int64_t> counts(outcomes, 0);
  for (int n = 0; n < runs; ++n) {
    options.seed = uint64_t(n);
    TokenStream s(prompt);
    decoder.generate(models, options, s);
    counts.at(outcome(s))++;
  }
  return counts;
}

}  // namespace decodelab::testing
