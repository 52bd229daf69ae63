#include "decodelab/distribution.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "decodelab/error.hpp"

namespace decodelab {

namespace {
void check_same_size(std::size_t a, std::size_t b, const char* what) {
  if (a != b) {
    fail(ErrorCode::invalid_argument,
         std::string(what) + ": sizes differ (" + std::to_string(a) + " vs " + std::to_string(b) + ")");
  }
}
}  // namespace

void check_logits(std::span<const float> logits, std::string_view what) {
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const float x = logits[i];
    if (std::isnan(x) || x == std::numeric_limits<float>::infinity()) {
      fail(ErrorCode::numeric,
           std::string(what) + "[" + std::to_string(i) + "] is " + (std::isnan(x) ? "NaN" : "+inf"));
    }
  }
}

double log_sum_exp(std::span<const float> logits) {
  float max = -std::numeric_limits<float>::infinity();
  for (float x : logits) max = std::max(max, x);
  if (max == -std::numeric_limits<float>::infinity()) return -std::numeric_limits<double>::infinity();
  double sum = 0.0;
  for (float x : logits) sum += std::exp(double(x) - max);
  return max + std::log(sum);
}

void softmax(std::span<const float> logits, std::span<float> probs) {
  check_same_size(logits.size(), probs.size(), "softmax");
  check_logits(logits);
  float max = -std::numeric_limits<float>::infinity();
  for (float x : logits) max = std::max(max, x);
  if (max == -std::numeric_limits<float>::infinity()) fail(ErrorCode::numeric, "softmax: every logit is -inf");
  double sum = 0.0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const float e = std::exp(logits[i] - max);
    probs[i] = e;
    sum += e;
  }
  const double inv = 1.0 / sum;
  for (float& p : probs) p = float(p * inv);
}

std::vector<float> softmax(std::span<const float> logits) {
  std::vector<float> probs(logits.size());
  softmax(logits, probs);
  return probs;
}

void log_softmax(std::span<const float> logits, std::span<float> out) {
  check_same_size(logits.size(), out.size(), "log_softmax");
  check_logits(logits);
  const double lse = log_sum_exp(logits);
  if (!std::isfinite(lse)) fail(ErrorCode::numeric, "log_softmax: every logit is -inf");
  for (std::size_t i = 0; i < logits.size(); ++i) out[i] = float(double(logits[i]) - lse);
}

std::vector<float> log_softmax(std::span<const float> logits) {
  std::vector<float> out(logits.size());
  log_softmax(logits, out);
  return out;
}

void apply_temperature(std::span<float> logits, float temperature) {
  if (!(temperature > 0.0f) || !std::isfinite(temperature)) {
    fail(ErrorCode::invalid_argument, "temperature must be a finite number > 0, got " + std::to_string(temperature));
  }
  const float inv = 1.0f / temperature;
  for (float& x : logits) x *= inv;
}

double normalize(std::span<float> weights) {
  double sum = 0.0;
  for (float w : weights) sum += w;
  if (sum > 0.0) {
    const double inv = 1.0 / sum;
    for (float& w : weights) w = float(w * inv);
  }
  return sum;
}

double entropy(std::span<const float> probs) {
  double h = 0.0;
  for (float p : probs) {
    if (p > 0.0f) h -= double(p) * std::log(double(p));
  }
  return h;
}

TokenId sample_from_weights(std::span<const float> weights, double u) {
  double total = 0.0;
  for (float w : weights) {
    if (std::isnan(w) || w < 0.0f) fail(ErrorCode::numeric, "sample_from_weights: weight is negative or NaN");
    total += w;
  }
  if (!(total > 0.0)) fail(ErrorCode::numeric, "sample_from_weights: the distribution has no mass");
  const double target = u * total;
  double cum = 0.0;
  TokenId last_positive = -1;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] <= 0.0f) continue;
    cum += weights[i];
    last_positive = TokenId(i);
    if (cum >= target) return last_positive;
  }
  return last_positive;  // u * total rounded above the accumulated sum
}

TokenId argmax(std::span<const float> values) {
  if (values.empty()) fail(ErrorCode::invalid_argument, "argmax of an empty vector");
  return TokenId(std::max_element(values.begin(), values.end()) - values.begin());
}

double total_variation(std::span<const float> p, std::span<const float> q) {
  check_same_size(p.size(), q.size(), "total_variation");
  double tv = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i) tv += std::abs(double(p[i]) - double(q[i]));
  return 0.5 * tv;
}

double residual(std::span<const float> p, std::span<const float> q, std::span<float> out) {
  check_same_size(p.size(), q.size(), "residual");
  check_same_size(p.size(), out.size(), "residual");
  double mass = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const float d = p[i] - q[i];
    out[i] = d > 0.0f ? d : 0.0f;
    mass += out[i];
  }
  if (mass > 0.0) {
    const double inv = 1.0 / mass;
    for (float& x : out) x = float(x * inv);
  }
  return mass;
}

}  // namespace decodelab
