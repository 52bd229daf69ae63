#include "decoders/constrained/awrs.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "decodelab/error.hpp"

namespace decodelab {

AwrsDraw awrs_sample(std::span<const float> probs, Constraint& constraint, PhiloxStream& rng, bool proper_weights) {
  // Keys for every token with mass, drawn in token order so the draw is a function of the stream.
  std::vector<std::pair<double, TokenId>> heap;
  double total = 0.0;
  for (std::size_t i = 0; i < probs.size(); ++i) {
    const float p = probs[i];
    if (!(p >= 0.0f)) fail(ErrorCode::numeric, "awrs: weight of token " + std::to_string(i) + " is negative or NaN");
    if (p == 0.0f) continue;
    total += p;
    heap.emplace_back(std::log(double(p)) + rng.gumbel(), TokenId(i));
  }
  if (heap.empty()) fail(ErrorCode::numeric, "awrs: the distribution has no mass");
  std::make_heap(heap.begin(), heap.end());
  auto pop = [&]() {
    std::pop_heap(heap.begin(), heap.end());
    const TokenId t = heap.back().second;
    heap.pop_back();
    return t;
  };

  AwrsDraw draw;
  const int64_t evaluations_before = constraint.evaluations();
  double remaining = total;  // mass not yet rejected (tracked absolutely, to avoid 1 - rho drift)
  double log_m = 0.0;
  while (!heap.empty()) {
    const TokenId t = pop();
    const double p = probs[std::size_t(t)];
    const double q = std::min(1.0, p / remaining);
    if (constraint.allows(t)) {
      draw.token = t;
      if (proper_weights) {
        double factor = 1.0;
        if (!heap.empty() && !constraint.allows(pop())) factor = q;
        draw.log_weight = log_m + std::log(factor);
      }
      break;
    }
    draw.rejections += 1;
    log_m += std::log1p(-q);  // q = 1 only for the last token: then the loop ends with a dead end
    remaining -= p;
  }
  if (draw.token < 0) draw.log_weight = -std::numeric_limits<double>::infinity();
  draw.evaluations = constraint.evaluations() - evaluations_before;
  return draw;
}

}  // namespace decodelab
