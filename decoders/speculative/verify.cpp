// Verification rules; see verify.hpp. Comparisons are u * q(x) <= p(x), never a division, so
// q(x) = 0 or p(x) = 0 need no special case.
#include "decodelab/verify.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "decodelab/error.hpp"

namespace decodelab::speculative {
namespace {

void check_inputs(const char* rule, std::span<const float> p, std::span<const float> q,
                  std::span<const TokenId> candidates, std::span<const double> accept_u) {
  if (p.size() != q.size())
    fail(ErrorCode::invalid_argument, std::string(rule) + ": target and draft distributions differ in size (" +
                                          std::to_string(p.size()) + " vs " + std::to_string(q.size()) + ")");
  if (accept_u.size() < candidates.size())
    fail(ErrorCode::invalid_argument, std::string(rule) + ": fewer accept uniforms than candidates");
  for (TokenId x : candidates)
    if (x < 0 || std::size_t(x) >= p.size())
      fail(ErrorCode::invalid_argument,
           std::string(rule) + ": candidate token " + std::to_string(x) + " outside the vocabulary");
}

bool accepts(double u, float q_x, float p_x) { return u * double(q_x) <= double(p_x) && p_x > 0.0f; }

// P <- norm((P - Q)_+), keeping P when that has no mass (P == Q: a rejection was a rounding event).
void residual_update(std::vector<float>& P, std::span<const float> Q) {
  std::vector<float> next(P.size());
  if (residual(P, Q, next) > 0.0) P.swap(next);
}

}  // namespace

VerifyOutcome verify_rrs_iid(std::span<const float> p, std::span<const float> q, std::span<const TokenId> candidates,
                             std::span<const double> accept_u, double residual_u) {
  check_inputs("verify_rrs_iid", p, q, candidates, accept_u);
  std::vector<float> P(p.begin(), p.end());
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const TokenId x = candidates[i];
    if (accepts(accept_u[i], q[std::size_t(x)], P[std::size_t(x)])) return {int(i), x};
    // Applied after every rejection, duplicates included: the update must not depend on which
    // token was rejected, or the law of what follows would.
    residual_update(P, q);
  }
  return {-1, sample_from_weights(P, residual_u)};
}

VerifyOutcome verify_rrs_wor(std::span<const float> p, std::span<const float> q, std::span<const TokenId> candidates,
                             std::span<const double> accept_u, double residual_u) {
  check_inputs("verify_rrs_wor", p, q, candidates, accept_u);
  std::vector<float> P(p.begin(), p.end());
  std::vector<float> Q(q.begin(), q.end());
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const TokenId x = candidates[i];
    if (accepts(accept_u[i], Q[std::size_t(x)], P[std::size_t(x)])) return {int(i), x};
    residual_update(P, Q);  // with the law x was drawn from, before removing x
    Q[std::size_t(x)] = 0.0f;
    if (normalize(Q) <= 0.0) break;  // nothing left to draw: no later candidate can exist
  }
  return {-1, sample_from_weights(P, residual_u)};
}

double kseq_beta(std::span<const float> p, std::span<const float> q, double rho) {
  double beta = 0.0;
  for (std::size_t x = 0; x < p.size(); ++x) beta += std::min(double(q[x]), double(p[x]) / rho);
  return beta;
}

double kseq_rho(std::span<const float> p, std::span<const float> q, int k) {
  if (k < 1) fail(ErrorCode::invalid_argument, "kseq_rho: k must be >= 1, got " + std::to_string(k));
  const auto g = [&](double rho) {
    const double beta = kseq_beta(p, q, rho);
    return rho * beta - (1.0 - std::pow(1.0 - beta, k));
  };
  if (g(1.0) >= 0.0) return 1.0;
  double lo = 1.0, hi = double(k);
  for (int it = 0; it < 44; ++it) {  // width (k - 1) / 2^44: far below float resolution
    const double mid = 0.5 * (lo + hi);
    (g(mid) >= 0.0 ? hi : lo) = mid;
  }
  return hi;  // the feasible side
}

std::vector<float> kseq_residual(std::span<const float> p, std::span<const float> q, int k, double rho) {
  const double beta = kseq_beta(p, q, rho);
  const double accept_total = 1.0 - std::pow(1.0 - beta, k);
  const double scale = beta > 0.0 ? accept_total / beta : 0.0;
  std::vector<float> out(p.size());
  for (std::size_t x = 0; x < p.size(); ++x) {
    const double r = double(p[x]) - std::min(double(q[x]), double(p[x]) / rho) * scale;
    out[x] = float(std::max(r, 0.0));  // tiny negatives are rounding (rho is on the feasible side)
  }
  if (normalize(out) <= 0.0) out.assign(p.begin(), p.end());
  return out;
}

VerifyOutcome verify_kseq(std::span<const float> p, std::span<const float> q, std::span<const TokenId> candidates,
                          std::span<const double> accept_u, double residual_u, double rho) {
  check_inputs("verify_kseq", p, q, candidates, accept_u);
  if (!(rho >= 1.0)) fail(ErrorCode::invalid_argument, "verify_kseq: rho must be >= 1, got " + std::to_string(rho));
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const TokenId x = candidates[i];
    if (accepts(accept_u[i] * rho, q[std::size_t(x)], p[std::size_t(x)])) return {int(i), x};
  }
  if (candidates.empty()) return {-1, sample_from_weights(p, residual_u)};
  const std::vector<float> res = kseq_residual(p, q, int(candidates.size()), rho);
  return {-1, sample_from_weights(res, residual_u)};
}

VerifyOutcome verify_target_only(std::span<const float> p, std::span<const float> /*q*/,
                                 std::span<const TokenId> candidates, std::span<const double> accept_u,
                                 double residual_u) {
  check_inputs("verify_target_only", p, p, candidates, accept_u);
  std::vector<float> P(p.begin(), p.end());
  double mass = 0.0;
  for (float v : P) mass += v;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const std::size_t x = std::size_t(candidates[i]);
    if (accepts(accept_u[i] * mass, 1.0f, P[x])) return {int(i), candidates[i]};
    mass -= P[x];  // P(x) is now 0: the same token later is rejected for sure
    P[x] = 0.0f;
  }
  return {-1, sample_from_weights(P, residual_u)};
}

}  // namespace decodelab::speculative
