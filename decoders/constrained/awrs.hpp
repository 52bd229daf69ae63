#pragma once
// Adaptive weighted rejection sampling (Lipkin et al., COLM 2025), one decoding step.
//
// Given a processed next-token distribution p and a constraint, the locally constrained target is
// pi(x) = p(x) 1[x allowed] / Z with Z = sum of the allowed mass. AWRS walks the vocabulary in the
// order of Gumbel keys log p(x) + G(x) (sampling without replacement from p, lazily: a heap, so
// only the tokens actually tested are ordered) and returns the first allowed token, which is an
// exact draw from pi. Only tested tokens cost constraint evaluations: about 1/Z of them.
//
// The weight is the recursive estimator of Z (docs/awrs.md): with M = 1 and the remaining
// mass r = 1, every rejected token k multiplies M by (1 - p_k / r) and removes p_k from r; at the
// first acceptance x (q_x = p_x / r) exactly one more token is drawn and tested, and
// Z-hat = M * (1 if it is allowed (or no token is left) else q_x). E[Z-hat] = Z, and more strongly
// E[Z-hat 1{X = a}] = p_a 1[a allowed] (proper weighting), which is what SMC needs to target
// p(x) 1[x in L] exactly.

#include <cstdint>
#include <span>

#include "decodelab/philox.hpp"
#include "samplers/constraints/constraint.hpp"

namespace decodelab {

struct AwrsDraw {
  TokenId token = -1;       // -1: every token with mass was rejected (dead end)
  double log_weight = 0.0;  // log Z-hat; -inf on a dead end; 0 without proper weights
  int64_t evaluations = 0;  // constraint checks this draw paid for
  int64_t rejections = 0;   // tokens rejected before the first acceptance
};

// `probs`: nonnegative weights over the vocabulary (normalized or not; Z-hat estimates the allowed
// fraction of their total). The Gumbel keys come from `rng`. With proper_weights = false the extra
// check after the acceptance is skipped and log_weight is 0 (plain LCD sampling).
AwrsDraw awrs_sample(std::span<const float> probs, Constraint& constraint, PhiloxStream& rng,
                     bool proper_weights = true);

}  // namespace decodelab
