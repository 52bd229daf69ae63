#pragma once
// Distributions over a vocabulary as dense fp32 vectors, with fp64 accumulation where sums
// over ~150k entries would otherwise lose precision. -inf logits mean "excluded"; a NaN logit is an
// error (it would otherwise turn into a silent, wrong sample).

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace decodelab {

using TokenId = int32_t;

// Throws Error(numeric) naming `what` and the first NaN index; +inf is also rejected.
void check_logits(std::span<const float> logits, std::string_view what = "logits");

// log sum exp(logits); -inf when every logit is -inf.
double log_sum_exp(std::span<const float> logits);

// probs = softmax(logits). Throws Error(numeric) when no logit is finite.
void softmax(std::span<const float> logits, std::span<float> probs);
std::vector<float> softmax(std::span<const float> logits);

// out = logits - log_sum_exp(logits).
void log_softmax(std::span<const float> logits, std::span<float> out);
std::vector<float> log_softmax(std::span<const float> logits);

// logits /= temperature. temperature must be > 0 (greedy is a sampler of its own).
void apply_temperature(std::span<float> logits, float temperature);

// Normalizes nonnegative weights in place; returns their sum before normalizing (0: left as is).
double normalize(std::span<float> weights);

// Shannon entropy in nats of a normalized distribution.
double entropy(std::span<const float> probs);

// Inverse-CDF sampling from nonnegative (not necessarily normalized) weights with one uniform
// u in (0, 1]: the first index whose cumulative weight reaches u * total. Zero-weight entries are
// never returned. Throws Error(numeric) when the total weight is 0.
TokenId sample_from_weights(std::span<const float> weights, double u);

// argmax with ties to the lowest index (llama.cpp's greedy convention).
TokenId argmax(std::span<const float> values);

// TV(p, q) = 1/2 sum |p - q| = sum (p - q)_+ for normalized p, q.
double total_variation(std::span<const float> p, std::span<const float> q);

// out = norm((p - q)_+). Returns the mass sum (p - q)_+ before normalizing. When that mass is 0
// (p == q up to rounding), out is left all-zero and the caller must fall back (to p).
double residual(std::span<const float> p, std::span<const float> q, std::span<float> out);

}  // namespace decodelab
