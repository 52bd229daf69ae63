#include "decoders/smc/resampling.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "decodelab/error.hpp"

namespace decodelab {

ResamplingScheme parse_resampling_scheme(const std::string& name) {
  if (name == "systematic") return ResamplingScheme::systematic;
  if (name == "stratified") return ResamplingScheme::stratified;
  if (name == "multinomial") return ResamplingScheme::multinomial;
  fail(ErrorCode::invalid_argument,
       "unknown resampling scheme '" + name + "'; known: systematic stratified multinomial");
}

std::vector<int> resample(std::span<const double> weights, int n, ResamplingScheme scheme, PhiloxStream& rng) {
  if (weights.empty() || n <= 0) fail(ErrorCode::invalid_argument, "resample: no weights or no offspring");
  // Sorted points u_1 < ... < u_n in (0, 1), then one pass over the cumulative weights.
  std::vector<double> points(static_cast<std::size_t>(n));
  if (scheme == ResamplingScheme::systematic) {
    const double u = rng.uniform_double();
    for (int k = 0; k < n; ++k) points[std::size_t(k)] = (k + u) / n;
  } else if (scheme == ResamplingScheme::stratified) {
    for (int k = 0; k < n; ++k) points[std::size_t(k)] = (k + rng.uniform_double()) / n;
  } else {
    for (auto& p : points) p = rng.uniform_double();
    std::sort(points.begin(), points.end());
  }
  double total = 0.0;
  for (double w : weights) total += w;
  if (!(total > 0.0)) fail(ErrorCode::numeric, "resample: weights have no mass");
  std::vector<int> ancestors;
  ancestors.reserve(std::size_t(n));
  std::size_t i = 0;
  double cumulative = weights[0] / total;
  for (double p : points) {
    while (p > cumulative && i + 1 < weights.size()) cumulative += weights[++i] / total;
    // Rounding can leave the cumulative sum a hair below 1: the last points go to the last
    // particle with mass, never to a zero-weight one.
    std::size_t j = i;
    while (weights[j] == 0.0 && j > 0) --j;
    ancestors.push_back(int(j));
  }
  return ancestors;
}

double log_sum_exp(std::span<const double> values) {
  double m = -std::numeric_limits<double>::infinity();
  for (double v : values) m = std::max(m, v);
  if (std::isinf(m)) return m;
  double s = 0.0;
  for (double v : values) s += std::exp(v - m);
  return m + std::log(s);
}

double effective_sample_size(std::span<const double> log_weights) {
  const double a = log_sum_exp(log_weights);
  if (std::isinf(a)) return 0.0;
  std::vector<double> twice(log_weights.begin(), log_weights.end());
  for (double& v : twice) v *= 2;
  return std::exp(2 * a - log_sum_exp(twice));
}

}  // namespace decodelab
