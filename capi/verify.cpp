// Speculative verification rules behind the C API (include/decodelab/verify.hpp). Arguments
// are checked here, where the C++ functions trust their callers (laws finite and >= 0, uniforms
// in (0, 1], rho >= 1), so that bad input from another engine is an error, never a wrong token.
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "capi/guard.hpp"
#include "decodelab/random.hpp"
#include "decodelab/verify.hpp"

using namespace decodelab;

namespace decodelab::capi {
namespace {

// `index` < 0: the residual's uniform; otherwise accept_u[index]. The name is built only on failure,
// so a valid call allocates nothing here.
void require_uniform(double u, long index) {
  if (u > 0.0 && u <= 1.0) return;
  const std::string name = index < 0 ? std::string("residual_u") : "accept_u[" + std::to_string(index) + "]";
  fail(ErrorCode::invalid_argument, name + " = " + std::to_string(u) + " is not a uniform in (0, 1]");
}

struct Laws {
  std::span<const float> p;
  std::span<const float> q;
};

// Checks p (and q unless the rule ignores it) and returns them as spans.
Laws check_laws(decodelab_verify_rule rule, const float* p, const float* q, std::size_t n_vocab) {
  require_ptr(p, "p");
  require_vocab(n_vocab, "n_vocab");
  require_probabilities(p, n_vocab, "p");
  if (rule == DECODELAB_VERIFY_TARGET_ONLY) return {std::span(p, n_vocab), std::span(p, n_vocab)};
  require_ptr(q, "q");
  require_probabilities(q, n_vocab, "q");
  return {std::span(p, n_vocab), std::span(q, n_vocab)};
}

std::span<const TokenId> check_candidates(const int32_t* candidates, std::size_t n_candidates, std::size_t n_vocab) {
  if (n_candidates == 0) return {};
  require_ptr(candidates, "candidates");
  for (std::size_t i = 0; i < n_candidates; ++i) {
    if (candidates[i] < 0 || std::size_t(candidates[i]) >= n_vocab)
      fail(ErrorCode::invalid_argument, "candidates[" + std::to_string(i) + "] = " + std::to_string(candidates[i]) +
                                            " is outside the vocabulary [0, " + std::to_string(n_vocab) + ")");
  }
  return std::span(candidates, n_candidates);
}

speculative::VerifyOutcome run_rule(decodelab_verify_rule rule, const Laws& laws, std::span<const TokenId> candidates,
                                    std::span<const double> accept_u, double residual_u, double rho) {
  switch (rule) {
    case DECODELAB_VERIFY_RRS_IID: return speculative::verify_rrs_iid(laws.p, laws.q, candidates, accept_u, residual_u);
    case DECODELAB_VERIFY_RRS_WOR: return speculative::verify_rrs_wor(laws.p, laws.q, candidates, accept_u, residual_u);
    case DECODELAB_VERIFY_KSEQ: return speculative::verify_kseq(laws.p, laws.q, candidates, accept_u, residual_u, rho);
    case DECODELAB_VERIFY_TARGET_ONLY:
      return speculative::verify_target_only(laws.p, {}, candidates, accept_u, residual_u);
    case DECODELAB_VERIFY_MAX_ENUM: break;  // check_rule rejected it
  }
  fail(ErrorCode::internal, "unreachable verify rule");
}

void check_rule(decodelab_verify_rule rule, double rho) {
  switch (rule) {
    case DECODELAB_VERIFY_RRS_IID:
    case DECODELAB_VERIFY_RRS_WOR:
    case DECODELAB_VERIFY_TARGET_ONLY: return;
    case DECODELAB_VERIFY_KSEQ:
      if (!(std::isfinite(rho) && rho >= 1.0))
        fail(ErrorCode::invalid_argument, "rho = " + std::to_string(rho) + " must be finite and >= 1 for K-SEQ");
      return;
    case DECODELAB_VERIFY_MAX_ENUM: break;  // not a rule
  }
  fail(ErrorCode::invalid_argument, "rule = " + std::to_string(int(rule)) + " is not a decodelab_verify_rule");
}

void write(const speculative::VerifyOutcome& outcome, decodelab_verify_result* out) {
  out->accepted = outcome.accepted;
  out->token = outcome.token;
}

}  // namespace
}  // namespace decodelab::capi

extern "C" {

decodelab_status decodelab_verify(decodelab_verify_rule rule, const float* p, const float* q, size_t n_vocab,
                                  const int32_t* candidates, size_t n_candidates, const double* accept_u,
                                  double residual_u, double rho, decodelab_verify_result* out) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(out, "out");
    capi::check_rule(rule, rho);
    const capi::Laws laws = capi::check_laws(rule, p, q, n_vocab);
    const std::span<const TokenId> cands = capi::check_candidates(candidates, n_candidates, n_vocab);
    if (n_candidates > 0) capi::require_ptr(accept_u, "accept_u");
    for (size_t i = 0; i < n_candidates; ++i) capi::require_uniform(accept_u[i], long(i));
    capi::require_uniform(residual_u, -1);
    capi::write(capi::run_rule(rule, laws, cands, std::span(accept_u, n_candidates), residual_u, rho), out);
  });
}

decodelab_status decodelab_verify_seeded(decodelab_verify_rule rule, const float* p, const float* q, size_t n_vocab,
                                         const int32_t* candidates, size_t n_candidates, double rho, uint64_t seed,
                                         uint64_t position, decodelab_verify_result* out) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(out, "out");
    capi::check_rule(rule, rho);
    const capi::Laws laws = capi::check_laws(rule, p, q, n_vocab);
    const std::span<const TokenId> cands = capi::check_candidates(candidates, n_candidates, n_vocab);
    // The uniforms decoders/speculative/tree_speculation.cpp draws for a node at this position.
    const double residual_u = random_stream(seed, RandomStream::residual, position).uniform_double();
    std::vector<double> accept_u(n_candidates);
    for (size_t i = 0; i < n_candidates; ++i)
      accept_u[i] = random_stream(seed, RandomStream::accept, position, i).uniform_double();
    capi::write(capi::run_rule(rule, laws, cands, accept_u, residual_u, rho), out);
  });
}

decodelab_status decodelab_kseq_rho(const float* p, const float* q, size_t n_vocab, int32_t k, double* rho) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(rho, "rho");
    const capi::Laws laws = capi::check_laws(DECODELAB_VERIFY_KSEQ, p, q, n_vocab);
    if (k < 1) fail(ErrorCode::invalid_argument, "k = " + std::to_string(k) + " must be >= 1");
    *rho = speculative::kseq_rho(laws.p, laws.q, k);
  });
}

decodelab_status decodelab_residual(const float* p, const float* q, size_t n_vocab, float* out, double* mass) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(out, "out");
    const capi::Laws laws = capi::check_laws(DECODELAB_VERIFY_RRS_IID, p, q, n_vocab);
    std::vector<float> r(n_vocab);
    const double m = residual(laws.p, laws.q, r);
    std::copy(r.begin(), r.end(), out);
    if (mass) *mass = m;
  });
}

}  // extern "C"
