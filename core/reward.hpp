#pragma once
// External rewards: a function, supplied by whoever runs the decoder (a test, an experiment
// script, or the daemon forwarding to its client), that scores generated texts. Decoders that
// steer by a reward (the "smc" decoder) implement RewardSettable, so a host can plug one in
// without depending on the decoder's library.

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "decodelab/decoder.hpp"
#include "decodelab/error.hpp"

namespace decodelab {

// Given every live candidate's generated text, returns one log-potential per text (the
// cumulative log Psi of the whole text, not an increment; -inf rules a candidate out). Called on
// the decoding thread, once per scoring point with all candidates batched.
using RewardFn = std::function<std::vector<double>(std::span<const std::string> texts)>;

// Decoders whose external reward can be set directly.
class RewardSettable {
 public:
  virtual ~RewardSettable() = default;
  virtual void set_reward(RewardFn fn) = 0;
};

inline bool takes_reward(const Decoder& decoder) { return dynamic_cast<const RewardSettable*>(&decoder) != nullptr; }

// Sets the external reward; Error(invalid_argument) for a decoder that takes none.
inline void set_reward(Decoder& decoder, RewardFn fn) {
  auto* settable = dynamic_cast<RewardSettable*>(&decoder);
  if (!settable) fail(ErrorCode::invalid_argument, "set_reward: this decoder takes no external reward");
  settable->set_reward(std::move(fn));
}

}  // namespace decodelab
