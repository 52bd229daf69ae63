#pragma once
// Oracles for speculative verification: exact laws and acceptance rates without sampling noise,
// and the optimal multi-draft acceptance rate they are measured against.
//
// Optimum (Hu et al., ICLR 2025, arXiv 2502.18779; docs/speculative.md, "Oracles"). For drafts
// X = (x_1..x_k) with joint law Q and target p, the best acceptance P(Y in X) of any verifier
// whose output Y is exactly p-distributed is a max-flow / min-cut:
//
//   alpha*(p, Q) = min over subsets H of V of  p(H) + 1 - Q(every draft lies in H).
//
// For k i.i.d. drafts Q(X inside H) = q(H)^k, and the minimum is attained at a prefix of the tokens
// sorted by q/p descending, so it costs one sort (optimal_acceptance_iid, any vocabulary size).
// For other draft laws (without replacement, deterministic) the small-vocabulary oracles below
// take the law as an explicit list of tuples: a minimum over all 2^V subsets, and independently
// the primal transport problem as a max-flow (Boost.Graph).
//
// Exact verification (exact_verification). For one node with its draft law enumerated tuple by
// tuple, each rule of verify.hpp is followed analytically: its accept decision is a threshold on
// one uniform (u * q(x) <= P(x) accepts with probability min(1, P(x) / q(x))), its residual law
// is known, so the output law and the acceptance probability come out exact. The arithmetic
// mirrors verify.cpp's (including its fallbacks: a residual with no mass keeps P; without
// replacement, verification stops when the draft law is exhausted) but in double precision.
// When p and q sum to exactly 1 in double (e.g. multiples of 2^-20) a valid rule's law equals p
// to rounding (~1e-16); an invalid rule/draft pairing shows its bias exactly.
//
// Closed forms (rrs_iid_acceptance, kseq_acceptance, target_only_iid_acceptance) give the exact
// acceptance of the i.i.d. rules in O(kV), so they also work at real vocabulary sizes.
//
// All inputs are the fp32 laws the rules see; every computation here is in double. The optima
// normalize p (and q) first; exact_verification and the closed forms take them as given, as the
// rules do (fp32 laws off 1 by ~1e-7 move the figures by as much).
#include <span>
#include <string>
#include <vector>

#include "decodelab/distribution.hpp"
#include "decoders/speculative/sequence_verify.hpp"

namespace decodelab::speculative {

// One ordered draft tuple (the order the verifier consumes it) with its probability.
struct DraftTuple {
  std::vector<TokenId> tokens;
  double prob = 0.0;
};
using DraftLaw = std::vector<DraftTuple>;

// All V^k tuples of k i.i.d. draws from q with positive probability.
DraftLaw iid_draft_law(std::span<const float> q, int k);
// All ordered tuples of k draws from q without replacement, in draw order. As in the drafters, a
// tuple stops early when the remaining draft mass is 0 (q has fewer than k tokens in its support).
DraftLaw wor_draft_law(std::span<const float> q, int k);
// Deterministic candidates (n-gram lookup, top-k): one tuple with probability 1.
DraftLaw fixed_draft_law(std::span<const TokenId> candidates);
// Number of tuples the two enumerations above would produce (V^k and V!/(V-k)!, saturating at
// SIZE_MAX), so callers can decide whether enumeration is affordable.
std::size_t iid_tuple_count(std::size_t vocab, int k);
std::size_t wor_tuple_count(std::size_t vocab, int k);

enum class Rule { rrs_iid, rrs_wor, kseq, target_only };
const char* to_string(Rule rule);

struct ExactVerification {
  std::vector<double> law;          // P(emitted token = x)
  double acceptance = 0.0;          // P(some candidate is accepted)
  std::vector<double> accepted_at;  // P(candidate i is the accepted one), i < longest tuple
};

// The exact behaviour of `rule` (verify.hpp) at one node whose candidates follow `draws`. `rho` is
// K-SEQ's division factor (ignored by the other rules); pass kseq_rho(p, q, k) for the decoder's
// choice, or anything >= 1 to study other choices (an infeasible rho shows as a law != p).
// Throws Error(invalid_argument) for mismatched sizes, tokens outside the vocabulary, or a residual
// with no mass that the rule would have to sample from.
ExactVerification exact_verification(Rule rule, std::span<const float> p, std::span<const float> q,
                                     const DraftLaw& draws, double rho = 1.0);

// max_x |law(x) - p(x)|, the figure the exactness tests bound by 1e-12.
double max_abs_difference(std::span<const double> law, std::span<const float> p);

// --- Sequence-level rules --------------------------------------------------------------------

// One way a Traversal Verification step over a fixed tree can end: the accepted node (0: the
// root), the probability of ending there, and the law of the final token.
struct TraversalEnding {
  int node = 0;
  double prob = 0.0;
  std::vector<double> final_law;
};
// Every ending of verify_traversal on `tree`, exactly: the tests are taken in the order the rule
// takes them, each accepting with its probability (a threshold on one uniform), so ending i has
// probability h_i prod_{j<i} (1 - h_j). Endings of probability 0 are left out.
std::vector<TraversalEnding> exact_traversal(const SequenceTree& tree);

// --- Optimal acceptance ----------------------------------------------------------------------

// alpha*_k(p, q) for k i.i.d. drafts: 1 - max over prefixes S of the q/p-descending order of
// (q(S)^k - p(S)). O(V log V); p and q are normalized (in double) first. k = 1 gives 1 - TV(p, q).
double optimal_acceptance_iid(std::span<const float> p, std::span<const float> q, int k);

// alpha*_k(p, q) for k draws without replacement (wor_optimum.cpp), at any vocabulary size: the cut
// formula minimized over the prefixes of the q/p-descending order (as for i.i.d. drafts), with
// Q(all k draws in H) from the exponential race by quadrature (1e-14 against enumeration). Every
// prefix is a set H, so the figure is always an upper bound on alpha*; that the minimum sits at a
// prefix is reported by Hu et al. and holds on every instance the tests compare with the minimum
// over all subsets. O(V log V + V k N), N quadrature nodes (5 per e-fold of t, from 1e-8 to 40 over q's
// smallest entry: about 400 for fp32 laws); seconds at V = 151,936, so a research oracle, not a
// per-step metric. p and q are normalized (in double) first.
double optimal_acceptance_wor(std::span<const float> p, std::span<const float> q, int k);
// Q(all k draws without replacement from q land in H), H given by in_h[x] != 0, by the same
// quadrature. A draw sequence ends when q's support is used up, as in wor_draft_law.
double wor_all_in_probability(std::span<const float> q, std::span<const char> in_h, int k);

// alpha*(p, Q) for any draft law by the cut formula over all 2^V subsets. V <= 20.
double optimal_acceptance_bruteforce(std::span<const float> p, const DraftLaw& draws);

// alpha*(p, Q) as the maximal flow source -> tuple (capacity Q(tuple)) -> each token in the tuple
// -> sink (capacity p(token)): the primal transport problem, independent of the cut formula.
// Sizes up to ~10^5 tuples are quick.
double optimal_acceptance_maxflow(std::span<const float> p, const DraftLaw& draws);

// --- Closed-form acceptance of the i.i.d. rules (any vocabulary size) ------------------------

// RRS with replacement: the residual after a rejection does not depend on the rejected token, so
// P_1 = p, P_{i+1} = norm((P_i - q)_+) is a fixed sequence and the acceptance is
// 1 - prod_i (1 - sum_x min(P_i(x), q(x))). O(kV).
double rrs_iid_acceptance(std::span<const float> p, std::span<const float> q, int k);
// K-SEQ: 1 - (1 - beta(rho))^k.
double kseq_acceptance(std::span<const float> p, std::span<const float> q, int k, double rho);
// Target-only verification of k i.i.d. draws (a verifier that ignores q): P(Y in the draws) =
// sum_x p(x) (1 - (1 - q(x))^k).
double target_only_iid_acceptance(std::span<const float> p, std::span<const float> q, int k);

// --- Gap of each rule to its optimum ---------------------------------------------------------

struct RuleGap {
  std::string rule;    // "rrs_iid", "kseq(rho=1.23)", ...
  std::string drafts;  // how the k candidates are drawn: "iid", "wor", "top-k of q"
  double acceptance = 0.0;
  double optimum = 0.0;  // alpha* for that draft law and k; NaN when not computed
  double gap = 0.0;      // optimum - acceptance
  std::string method;    // how the figures were obtained ("closed form", "enumeration", ...)
};

// Every rule at one node (p, q) with k candidates:
//   rrs_iid, kseq(rho*), target_only on i.i.d. drafts   vs the i.i.d. optimum (closed forms);
//   rrs_wor on drafts without replacement               vs the w/o-replacement optimum (exact
//                                                         enumeration and max-flow when
//                                                         V!/(V-k)! <= 2e5; otherwise acceptance
//                                                         sampled, 4000 draws, and
//                                                         optimal_acceptance_wor);
//   target_only on the top-k of q                       vs p(top-k), optimal for fixed drafts.
std::vector<RuleGap> rule_gaps(std::span<const float> p, std::span<const float> q, int k);
// A fixed-width table of rule_gaps' rows, one per line, for logs and terminals.
std::string format_rule_gaps(std::span<const RuleGap> rows);

}  // namespace decodelab::speculative
