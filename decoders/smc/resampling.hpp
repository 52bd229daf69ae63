#pragma once
// Particle resampling: given normalized weights W_1..W_N, choose N ancestors so that particle i
// has N W_i offspring in expectation. Systematic and stratified use one / N uniforms on a
// stratified grid and have lower offspring variance than multinomial (N independent draws), which
// is kept for comparison.

#include <span>
#include <string>
#include <vector>

#include "decodelab/philox.hpp"

namespace decodelab {

enum class ResamplingScheme { systematic, stratified, multinomial };
ResamplingScheme parse_resampling_scheme(const std::string& name);  // throws invalid_argument

// Ancestor indices (sorted ascending) for `n` offspring from normalized `weights`.
std::vector<int> resample(std::span<const double> weights, int n, ResamplingScheme scheme, PhiloxStream& rng);

// Effective sample size exp(2 LSE(logw) - LSE(2 logw)) = 1 / sum W_i^2; 0 when every weight is 0.
double effective_sample_size(std::span<const double> log_weights);

// log sum exp with -inf entries allowed (-inf when all are).
double log_sum_exp(std::span<const double> values);

}  // namespace decodelab
