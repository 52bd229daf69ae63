#pragma once
// Verification rules of speculative decoding as pure functions over distributions.
//
// Each rule decides one position: given the target law p and the draft law q at a tree node, and
// the candidate tokens x_1..x_k proposed there (in the order the verifier must consume them), it
// either accepts one candidate or produces a token from the final residual. Every rule here keeps
// the output exactly p-distributed provided the candidates were drawn the way the rule assumes:
//
//   verify_rrs_iid:  x_i i.i.d. from q (k = 1 is Leviathan/Chen speculative sampling; k > 1 is
//                    SpecInfer's multi-step speculative sampling, "recursive rejection sampling").
//   verify_rrs_wor:  x_i drawn from q without replacement, in draw order (Sequoia's verifier).
//   verify_kseq:     x_i i.i.d. from q, SpecTr's K-SEQ with division factor rho (kseq_rho).
//   verify_target_only: x_i chosen by any rule independent of the uniforms (n-gram lookup, top-k):
//                    accept x_i with probability P(x_i), else remove it from P (EAGLE, vLLM n-gram).
//
// Uniforms are inputs, one accept uniform per candidate and one for the residual draw, all in
// (0, 1), so these functions are deterministic and can be checked exactly. Residuals with no mass
// (p == q up to rounding) fall back to p.
#include <span>
#include <vector>

#include "decodelab/distribution.hpp"

namespace decodelab::speculative {

struct VerifyOutcome {
  int accepted = -1;  // index of the accepted candidate, -1 when the token came from the residual
  TokenId token = 0;  // the decided token (the candidate's when accepted)
};

VerifyOutcome verify_rrs_iid(std::span<const float> p, std::span<const float> q, std::span<const TokenId> candidates,
                             std::span<const double> accept_u, double residual_u);

VerifyOutcome verify_rrs_wor(std::span<const float> p, std::span<const float> q, std::span<const TokenId> candidates,
                             std::span<const double> accept_u, double residual_u);

// K-SEQ acceptance per draft: beta(rho) = sum_x min(q(x), p(x) / rho).
double kseq_beta(std::span<const float> p, std::span<const float> q, double rho);
// The smallest rho in [1, k] for which the K-SEQ residual is nonnegative (bisection on the
// nondecreasing g(rho) = sum min(rho q, p) - (1 - (1 - beta(rho))^k); g(k) >= 0 always).
double kseq_rho(std::span<const float> p, std::span<const float> q, int k);
// The K-SEQ residual law norm(p - min(q, p / rho) * A / beta), A = 1 - (1 - beta)^k; p when it
// has no mass.
std::vector<float> kseq_residual(std::span<const float> p, std::span<const float> q, int k, double rho);
// K-SEQ over k = candidates.size() i.i.d. drafts with the given rho (use kseq_rho).
VerifyOutcome verify_kseq(std::span<const float> p, std::span<const float> q, std::span<const TokenId> candidates,
                          std::span<const double> accept_u, double residual_u, double rho);

// Deterministic candidates: q is not used (may be empty). Acceptance is p(candidates), the best
// possible when the candidates carry no draft law.
VerifyOutcome verify_target_only(std::span<const float> p, std::span<const float> q,
                                 std::span<const TokenId> candidates, std::span<const double> accept_u,
                                 double residual_u);

}  // namespace decodelab::speculative
