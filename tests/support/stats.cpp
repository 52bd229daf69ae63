#include "tests/support/stats.hpp"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace decodelab::testing {

namespace {
// P(a, x) by its power series; converges fast for x < a + 1.
double gamma_p_series(double a, double x) {
  double term = 1.0 / a;
  double sum = term;
  for (int n = 1; n < 10000; ++n) {
    term *= x / (a + n);
    sum += term;
    if (std::abs(term) < std::abs(sum) * 1e-15) break;
  }
  return sum * std::exp(-x + a * std::log(x) - std::lgamma(a));
}

// Q(a, x) by Lentz's continued fraction; converges fast for x >= a + 1.
double gamma_q_fraction(double a, double x) {
  const double tiny = 1e-300;
  double b = x + 1.0 - a;
  double c = 1.0 / tiny;
  double d = 1.0 / b;
  double h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1.0) < 1e-15) break;
  }
  return std::exp(-x + a * std::log(x) - std::lgamma(a)) * h;
}
}  // namespace

double gamma_q(double a, double x) {
  if (a <= 0.0) throw std::invalid_argument("gamma_q: a must be > 0");
  if (x <= 0.0) return 1.0;
  return x < a + 1.0 ? 1.0 - gamma_p_series(a, x) : gamma_q_fraction(a, x);
}

double chi_square_sf(double x, double dof) { return gamma_q(dof / 2.0, x / 2.0); }

double tv_bound(int64_t n, int k, double alpha) {
  return 0.5 * std::sqrt(2.0 / double(n) * (double(k) * std::log(2.0) + std::log(1.0 / alpha)));
}

double binomial_z(int64_t successes, int64_t trials, double p) {
  const double sd = std::sqrt(double(trials) * p * (1.0 - p));
  const double diff = double(successes) - double(trials) * p;
  if (sd == 0.0) return diff == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  return diff / sd;
}

std::string FitResult::describe() const {
  std::ostringstream s;
  s << "n=" << n << " chi2=" << chi_square << " dof=" << dof << " p=" << p_value << " TV=" << tv << " (bound "
    << tv_bound << ")";
  return s.str();
}

FitResult goodness_of_fit(std::span<const int64_t> counts, std::span<const double> probs, double alpha) {
  if (counts.size() != probs.size()) throw std::invalid_argument("goodness_of_fit: sizes differ");
  FitResult r;
  for (int64_t c : counts) r.n += c;
  if (r.n == 0) throw std::invalid_argument("goodness_of_fit: no samples");
  const double n = double(r.n);
  double tv = 0.0;
  bool impossible = false;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    tv += std::abs(double(counts[i]) / n - probs[i]);
    if (probs[i] <= 0.0 && counts[i] > 0) impossible = true;
  }
  r.tv = 0.5 * tv;
  int support = 0;
  for (double p : probs) support += p > 0.0 ? 1 : 0;
  r.tv_bound = tv_bound(r.n, support, alpha);
  // Pearson chi-square, merging the smallest-expectation bins until each has expectation >= 5.
  double chi = 0.0, pooled_obs = 0.0, pooled_exp = 0.0;
  int bins = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const double e = probs[i] * n;
    if (e <= 0.0) continue;
    if (e < 5.0) {
      pooled_obs += double(counts[i]);
      pooled_exp += e;
      if (pooled_exp >= 5.0) {
        chi += (pooled_obs - pooled_exp) * (pooled_obs - pooled_exp) / pooled_exp;
        ++bins;
        pooled_obs = pooled_exp = 0.0;
      }
      continue;
    }
    chi += (double(counts[i]) - e) * (double(counts[i]) - e) / e;
    ++bins;
  }
  if (pooled_exp > 0.0) {
    chi += (pooled_obs - pooled_exp) * (pooled_obs - pooled_exp) / pooled_exp;
    ++bins;
  }
  r.chi_square = chi;
  r.dof = std::max(1, bins - 1);
  r.p_value = impossible ? 0.0 : (bins <= 1 ? 1.0 : chi_square_sf(chi, r.dof));
  return r;
}

FitResult goodness_of_fit(std::span<const int64_t> counts, std::span<const float> probs, double alpha) {
  std::vector<double> p(probs.begin(), probs.end());
  double sum = 0.0;
  for (double x : p) sum += x;
  for (double& x : p) x /= sum;  // float probabilities sum to 1 only up to rounding
  return goodness_of_fit(counts, std::span<const double>(p), alpha);
}

}  // namespace decodelab::testing
