#pragma once
// The decode loop shared by the constrained decoders (masking, awrs): process the target's logits
// with the sampler chain, let the decoder pick an allowed token, append it, feed the constraint.
// Stops like every decoder (eos, stop tokens, max tokens, cancel) and additionally with
// stop_reason "constraint_dead_end" when no token with mass can continue the text, or
// "constraint_complete" when the text is complete and nothing else may follow.

#include <functional>
#include <string>

#include "decodelab/decoder.hpp"
#include "decodelab/sampler.hpp"
#include "samplers/constraints/constraint.hpp"

namespace decodelab {

struct ConstrainedPick {
  TokenId token = -1;       // -1: dead end
  double log_weight = 0.0;  // this step's log weight (awrs), 0 for masking
};

// Called once per step with the processed distribution, the constraint state, and the position
// being decided (the stream size), which keys the step's random numbers.
using PickFn =
    std::function<ConstrainedPick(std::span<const float> probs, Constraint& constraint, std::size_t position)>;

Stats run_constrained(const ModelSet& models, const DecodeOptions& options, TokenStream& stream,
                      const SamplerChain& chain, const std::string& constraint_spec, const PickFn& pick);

}  // namespace decodelab
