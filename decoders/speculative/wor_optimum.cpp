// The without-replacement optimum at any vocabulary size; see oracle.hpp and docs/speculative.md
// ("Oracles").
//
// Q(all k draws in H) by an exponential race: give token x a clock that rings at an Exp(q(x))
// time; the first k clocks to ring are k draws without replacement, in draw order. All k land in
// H iff at least k of H's clocks ring before the first clock outside H, which rings at an Exp(c)
// time, c = q(V \ H):
//
//   Q(H) = integral over t > 0 of c e^{-ct} P(N_H(t) >= k) dt,
//   N_H(t) = number of x in H with their clock rung by t, a sum of Bernoulli(1 - e^{-q(x) t}).
//
// P(N_H(t) >= k) is a Poisson-binomial tail, O(|H| k) by dynamic programming, and adding a token to
// H updates it in O(k): along the prefixes of a fixed token order every prefix costs O(k) per
// quadrature node. The integral is taken in s = ln t by the trapezoid rule with step 0.2: the
// integrand is analytic in a strip around the real axis and decays at both ends, where that rule
// converges geometrically (about e^{-2 pi d / h} for a strip of half-width d; d = pi/4 gives
// e^{-25}; the tests measure 1e-14 against enumeration). The range ln t in
// [ln 1e-8, ln(40 / c_min)] leaves out less than 1e-16 at the low end (the integrand is below t^2
// there) and e^{-40} at the high end.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "decodelab/error.hpp"
#include "decoders/speculative/oracle.hpp"

namespace decodelab::speculative {
namespace {

constexpr double kStep = 0.2;  // in ln t

std::vector<double> normalized_law(std::span<const float> v, const char* what) {
  std::vector<double> out(v.begin(), v.end());
  double s = 0.0;
  for (double x : out) {
    if (!(x >= 0.0)) fail(ErrorCode::invalid_argument, std::string(what) + ": a negative or NaN probability");
    s += x;
  }
  if (!(s > 0.0)) fail(ErrorCode::invalid_argument, std::string(what) + ": distribution has no mass");
  for (double& x : out) x /= s;
  return out;
}

// P(N >= k) at every quadrature node t_j, for the tokens added so far.
class RaceTail {
 public:
  RaceTail(double c_min, int k) : k_(k) {
    const double lo = std::log(1e-8), hi = std::max(lo, std::log(40.0 / c_min));
    for (double s = lo; s <= hi + kStep; s += kStep) t_.push_back(std::exp(s));
    counts_.assign(t_.size() * std::size_t(k + 1), 0.0);
    for (std::size_t j = 0; j < t_.size(); ++j) counts_[j * std::size_t(k + 1)] = 1.0;
  }

  // A token of draft mass q joins H.
  void add(double q) {
    const std::size_t K = std::size_t(k_);
    for (std::size_t j = 0; j < t_.size(); ++j) {
      const double rung = -std::expm1(-q * t_[j]), silent = 1.0 - rung;
      double* d = &counts_[j * (K + 1)];
      d[K] += d[K - 1] * rung;  // k or more: absorbing
      for (std::size_t i = K - 1; i > 0; --i) d[i] = d[i] * silent + d[i - 1] * rung;
      d[0] *= silent;
    }
  }

  // Q(all k draws in H) given c = q(V \ H) > 0.
  double all_in(double c) const {
    double total = 0.0;
    for (std::size_t j = 0; j < t_.size(); ++j)
      total += kStep * t_[j] * c * std::exp(-c * t_[j]) * counts_[j * std::size_t(k_ + 1) + std::size_t(k_)];
    return std::clamp(total, 0.0, 1.0);
  }

 private:
  int k_;
  std::vector<double> t_;
  std::vector<double> counts_;  // per node: P(N = 0..k-1), then P(N >= k)
};

}  // namespace

double wor_all_in_probability(std::span<const float> q, std::span<const char> in_h, int k) {
  if (k < 1) fail(ErrorCode::invalid_argument, "wor_all_in_probability: k must be >= 1, got " + std::to_string(k));
  if (in_h.size() != q.size())
    fail(ErrorCode::invalid_argument, "wor_all_in_probability: the set has " + std::to_string(in_h.size()) +
                                          " entries but q has " + std::to_string(q.size()));
  const std::vector<double> qn = normalized_law(q, "wor_all_in_probability (q)");
  double c = 0.0;
  int support = 0, inside = 0;
  for (std::size_t x = 0; x < qn.size(); ++x) {
    if (qn[x] <= 0.0) continue;
    ++support;
    if (in_h[x]) ++inside;
    else c += qn[x];
  }
  if (c <= 0.0) return 1.0;                // every token with mass is in H
  const int draws = std::min(k, support);  // a tuple ends when the draft mass is used up
  if (inside < draws) return 0.0;          // some draw must fall outside H
  RaceTail race(c, draws);
  for (std::size_t x = 0; x < qn.size(); ++x)
    if (qn[x] > 0.0 && in_h[x]) race.add(qn[x]);
  return race.all_in(c);
}

double optimal_acceptance_wor(std::span<const float> p, std::span<const float> q, int k) {
  if (p.size() != q.size())
    fail(ErrorCode::invalid_argument, "optimal_acceptance_wor: target and draft distributions differ in size (" +
                                          std::to_string(p.size()) + " vs " + std::to_string(q.size()) + ")");
  if (k < 1) fail(ErrorCode::invalid_argument, "optimal_acceptance_wor: k must be >= 1, got " + std::to_string(k));
  const std::vector<double> pn = normalized_law(p, "optimal_acceptance_wor (p)");
  const std::vector<double> qn = normalized_law(q, "optimal_acceptance_wor (q)");
  // Tokens without draft mass only raise p(H): left out, as in optimal_acceptance_iid.
  std::vector<std::pair<double, std::size_t>> order;
  for (std::size_t x = 0; x < qn.size(); ++x)
    if (qn[x] > 0.0) order.emplace_back(pn[x] > 0.0 ? qn[x] / pn[x] : std::numeric_limits<double>::infinity(), x);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  const std::size_t n = order.size();
  const int draws = std::min<int>(k, int(n));
  // tail[m] = q of the tokens after the first m, summed from the end (no cancellation near 1).
  std::vector<double> tail(n + 1, 0.0);
  for (std::size_t m = n; m-- > 0;) tail[m] = tail[m + 1] + qn[order[m].second];
  RaceTail race(qn[order[n - 1].second], draws);  // the smallest positive tail
  double best = 0.0, sp = 0.0;                    // best of Q(H) - p(H); the empty prefix gives 0
  for (std::size_t m = 1; m <= n; ++m) {
    const std::size_t x = order[m - 1].second;
    race.add(qn[x]);
    sp += pn[x];
    const double all_in = m == n ? 1.0 : int(m) < draws ? 0.0 : race.all_in(tail[m]);
    best = std::max(best, all_in - sp);
  }
  return std::clamp(1.0 - best, 0.0, 1.0);
}

}  // namespace decodelab::speculative
