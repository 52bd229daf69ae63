// Oracles for speculative verification; see oracle.hpp.
#include "decoders/speculative/oracle.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/edmonds_karp_max_flow.hpp>

#include "decodelab/error.hpp"
#include "decodelab/verify.hpp"
#include "decoders/speculative/static_tree.hpp"

namespace decodelab::speculative {
namespace {

// Enumerations beyond this many tuples are refused rather than left to exhaust memory.
constexpr std::size_t kMaxTuples = std::size_t(20'000'000);

std::vector<double> to_double(std::span<const float> v) { return {v.begin(), v.end()}; }

double sum(std::span<const double> v) {
  double s = 0.0;
  for (double x : v) s += x;
  return s;
}

std::vector<double> normalized(std::span<const float> v, const char* what) {
  std::vector<double> out = to_double(v);
  const double s = sum(out);
  if (!(s > 0.0)) fail(ErrorCode::invalid_argument, std::string(what) + ": distribution has no mass");
  for (double& x : out) x /= s;
  return out;
}

void check_same_size(const char* what, std::span<const float> p, std::span<const float> q) {
  if (p.size() != q.size())
    fail(ErrorCode::invalid_argument, std::string(what) + ": target and draft distributions differ in size (" +
                                          std::to_string(p.size()) + " vs " + std::to_string(q.size()) + ")");
}

void check_k(const char* what, int k) {
  if (k < 1) fail(ErrorCode::invalid_argument, std::string(what) + ": k must be >= 1, got " + std::to_string(k));
}

double integer_power(double base, int k) {
  double result = 1.0;
  for (; k > 0; k >>= 1, base *= base)
    if (k & 1) result *= base;
  return result;
}

// The probability that a threshold test u * threshold <= target (u uniform in (0, 1)) accepts,
// with verify.cpp's convention that a token without target mass is never accepted.
double accept_probability(double threshold, double target) {
  if (target <= 0.0) return 0.0;
  if (threshold <= target) return 1.0;  // threshold <= 0 included: u * 0 <= target always
  return target / threshold;
}

// P <- norm((P - Q)_+), keeping P when that has no mass (verify.cpp's residual_update).
void residual_update(std::vector<double>& P, std::span<const double> Q) {
  std::vector<double> next(P.size());
  double mass = 0.0;
  for (std::size_t x = 0; x < P.size(); ++x) mass += next[x] = std::max(P[x] - Q[x], 0.0);
  if (mass <= 0.0) return;
  for (double& v : next) v /= mass;
  P.swap(next);
}

// law += weight * norm(P): the residual draw (sample_from_weights normalizes its weights).
void add_residual(std::vector<double>& law, std::span<const double> P, double weight, const char* rule) {
  if (weight <= 0.0) return;
  const double mass = sum(P);
  if (!(mass > 0.0))
    fail(ErrorCode::invalid_argument, std::string("exact_verification(") + rule + "): the residual has no mass");
  for (std::size_t x = 0; x < law.size(); ++x) law[x] += weight * P[x] / mass;
}

// The K-SEQ residual in double: norm((p - min(q, p / rho) A / beta)_+), p when it has no mass.
std::vector<double> kseq_residual_law(std::span<const double> p, std::span<const double> q, int k, double rho) {
  double beta = 0.0;
  for (std::size_t x = 0; x < p.size(); ++x) beta += std::min(q[x], p[x] / rho);
  const double scale = beta > 0.0 ? (1.0 - std::pow(1.0 - beta, k)) / beta : 0.0;
  std::vector<double> r(p.size());
  double mass = 0.0;
  for (std::size_t x = 0; x < p.size(); ++x) mass += r[x] = std::max(p[x] - std::min(q[x], p[x] / rho) * scale, 0.0);
  if (mass <= 0.0) return {p.begin(), p.end()};
  return r;
}

// One tuple's contribution (weight = its probability) to the exact law and acceptance.
struct Accumulator {
  std::vector<double> law;
  std::vector<double> accepted_at;
  void accept(std::size_t i, TokenId x, double mass) {
    if (accepted_at.size() <= i) accepted_at.resize(i + 1, 0.0);
    accepted_at[i] += mass;
    law[std::size_t(x)] += mass;
  }
};

void run_rrs(bool without_replacement, std::span<const double> p, std::span<const double> q,
             std::span<const TokenId> xs, double w, Accumulator& acc) {
  std::vector<double> P(p.begin(), p.end());
  std::vector<double> Q(q.begin(), q.end());
  double alive = w;
  for (std::size_t i = 0; i < xs.size() && alive > 0.0; ++i) {
    const std::size_t x = std::size_t(xs[i]);
    const double a = accept_probability(Q[x], P[x]);
    acc.accept(i, xs[i], alive * a);
    alive *= 1.0 - a;
    residual_update(P, Q);
    if (without_replacement) {
      Q[x] = 0.0;
      const double mass = sum(Q);
      if (mass <= 0.0) break;  // nothing left to draw (verify_rrs_wor stops here too)
      for (double& v : Q) v /= mass;
    }
  }
  add_residual(acc.law, P, alive, without_replacement ? "rrs_wor" : "rrs_iid");
}

void run_kseq(std::span<const double> p, std::span<const double> q, std::span<const TokenId> xs, double rho, double w,
              Accumulator& acc) {
  double alive = w;
  for (std::size_t i = 0; i < xs.size() && alive > 0.0; ++i) {
    const std::size_t x = std::size_t(xs[i]);
    const double a = accept_probability(rho * q[x], p[x]);
    acc.accept(i, xs[i], alive * a);
    alive *= 1.0 - a;
  }
  if (xs.empty()) return add_residual(acc.law, p, alive, "kseq");
  add_residual(acc.law, kseq_residual_law(p, q, int(xs.size()), rho), alive, "kseq");
}

void run_target_only(std::span<const double> p, std::span<const TokenId> xs, double w, Accumulator& acc) {
  std::vector<double> P(p.begin(), p.end());
  double mass = sum(P);
  double alive = w;
  for (std::size_t i = 0; i < xs.size() && alive > 0.0; ++i) {
    const std::size_t x = std::size_t(xs[i]);
    const double a = accept_probability(mass, P[x]);
    acc.accept(i, xs[i], alive * a);
    alive *= 1.0 - a;
    mass -= P[x];
    P[x] = 0.0;
  }
  add_residual(acc.law, P, alive, "target_only");
}

void enumerate_iid(std::span<const float> q, int k, std::vector<TokenId>& prefix, double prob, DraftLaw& out) {
  if (int(prefix.size()) == k) {
    out.push_back({prefix, prob});
    return;
  }
  for (std::size_t x = 0; x < q.size(); ++x) {
    if (q[x] <= 0.0f) continue;
    prefix.push_back(TokenId(x));
    enumerate_iid(q, k, prefix, prob * double(q[x]), out);
    prefix.pop_back();
  }
}

void enumerate_wor(std::span<const float> q, int k, std::vector<TokenId>& prefix, std::vector<char>& used, double prob,
                   DraftLaw& out) {
  double rem = 0.0;  // the drafter's remaining draft mass, summed the same way
  for (std::size_t x = 0; x < q.size(); ++x)
    if (!used[x]) rem += double(q[x]);
  if (int(prefix.size()) == k || rem <= 0.0) {
    out.push_back({prefix, prob});
    return;
  }
  for (std::size_t x = 0; x < q.size(); ++x) {
    if (used[x] || q[x] <= 0.0f) continue;
    used[x] = 1;
    prefix.push_back(TokenId(x));
    enumerate_wor(q, k, prefix, used, prob * double(q[x]) / rem, out);
    prefix.pop_back();
    used[x] = 0;
  }
}

std::size_t support_size(std::span<const float> v) {
  return std::size_t(std::count_if(v.begin(), v.end(), [](float x) { return x > 0.0f; }));
}

void check_tokens(const char* what, const DraftLaw& draws, std::size_t vocab) {
  for (const DraftTuple& t : draws)
    for (TokenId x : t.tokens)
      if (x < 0 || std::size_t(x) >= vocab)
        fail(ErrorCode::invalid_argument, std::string(what) + ": draft token " + std::to_string(x) +
                                              " outside the vocabulary of " + std::to_string(vocab));
}

}  // namespace

std::size_t iid_tuple_count(std::size_t vocab, int k) {
  std::size_t n = 1;
  for (int i = 0; i < k; ++i) {
    if (vocab != 0 && n > std::numeric_limits<std::size_t>::max() / vocab)
      return std::numeric_limits<std::size_t>::max();
    n *= vocab;
  }
  return n;
}

std::size_t wor_tuple_count(std::size_t vocab, int k) {
  std::size_t n = 1;
  for (int i = 0; i < k && std::size_t(i) < vocab; ++i) {
    const std::size_t f = vocab - std::size_t(i);
    if (n > std::numeric_limits<std::size_t>::max() / f) return std::numeric_limits<std::size_t>::max();
    n *= f;
  }
  return n;
}

DraftLaw iid_draft_law(std::span<const float> q, int k) {
  check_k("iid_draft_law", k);
  if (iid_tuple_count(support_size(q), k) > kMaxTuples)
    fail(ErrorCode::invalid_argument, "iid_draft_law: " + std::to_string(support_size(q)) + "^" + std::to_string(k) +
                                          " tuples is too many to enumerate");
  DraftLaw out;
  std::vector<TokenId> prefix;
  enumerate_iid(q, k, prefix, 1.0, out);
  return out;
}

DraftLaw wor_draft_law(std::span<const float> q, int k) {
  check_k("wor_draft_law", k);
  if (wor_tuple_count(support_size(q), k) > kMaxTuples)
    fail(ErrorCode::invalid_argument, "wor_draft_law: too many ordered " + std::to_string(k) + "-tuples over " +
                                          std::to_string(support_size(q)) + " tokens to enumerate");
  DraftLaw out;
  std::vector<TokenId> prefix;
  std::vector<char> used(q.size(), 0);
  enumerate_wor(q, k, prefix, used, 1.0, out);
  return out;
}

DraftLaw fixed_draft_law(std::span<const TokenId> candidates) {
  return {DraftTuple{{candidates.begin(), candidates.end()}, 1.0}};
}

const char* to_string(Rule rule) {
  switch (rule) {
    case Rule::rrs_iid: return "rrs_iid";
    case Rule::rrs_wor: return "rrs_wor";
    case Rule::kseq: return "kseq";
    case Rule::target_only: return "target_only";
  }
  return "?";
}

ExactVerification exact_verification(Rule rule, std::span<const float> p, std::span<const float> q,
                                     const DraftLaw& draws, double rho) {
  if (rule != Rule::target_only) check_same_size("exact_verification", p, q);
  check_tokens("exact_verification", draws, p.size());
  if (rule == Rule::kseq && !(rho >= 1.0))
    fail(ErrorCode::invalid_argument, "exact_verification: K-SEQ's rho must be >= 1, got " + std::to_string(rho));
  const std::vector<double> pd = to_double(p), qd = to_double(q);
  Accumulator acc{std::vector<double>(p.size(), 0.0), {}};
  for (const DraftTuple& t : draws) {
    if (t.prob <= 0.0) continue;
    switch (rule) {
      case Rule::rrs_iid: run_rrs(false, pd, qd, t.tokens, t.prob, acc); break;
      case Rule::rrs_wor: run_rrs(true, pd, qd, t.tokens, t.prob, acc); break;
      case Rule::kseq: run_kseq(pd, qd, t.tokens, rho, t.prob, acc); break;
      case Rule::target_only: run_target_only(pd, t.tokens, t.prob, acc); break;
    }
  }
  // One entry per candidate position of the longest tuple, also for positions no tuple reached
  // (probability 0), as the header promises.
  std::size_t longest = 0;
  for (const DraftTuple& t : draws) longest = std::max(longest, t.tokens.size());
  if (acc.accepted_at.size() < longest) acc.accepted_at.resize(longest, 0.0);
  ExactVerification out;
  out.law = std::move(acc.law);
  out.accepted_at = std::move(acc.accepted_at);
  out.acceptance = sum(out.accepted_at);
  return out;
}

double max_abs_difference(std::span<const double> law, std::span<const float> p) {
  if (law.size() != p.size())
    fail(ErrorCode::invalid_argument,
         "max_abs_difference: sizes differ (" + std::to_string(law.size()) + " vs " + std::to_string(p.size()) + ")");
  double worst = 0.0;
  for (std::size_t x = 0; x < p.size(); ++x) worst = std::max(worst, std::abs(law[x] - double(p[x])));
  return worst;
}

double optimal_acceptance_iid(std::span<const float> p, std::span<const float> q, int k) {
  check_same_size("optimal_acceptance_iid", p, q);
  check_k("optimal_acceptance_iid", k);
  const std::vector<double> pn = normalized(p, "optimal_acceptance_iid (p)");
  const std::vector<double> qn = normalized(q, "optimal_acceptance_iid (q)");
  // (ratio q/p, token). Tokens without draft mass would come last and only lower q(S)^k - p(S),
  // so they are left out (truncated drafts have many).
  std::vector<std::pair<double, std::size_t>> order;
  order.reserve(p.size());
  for (std::size_t x = 0; x < p.size(); ++x)
    if (qn[x] > 0.0) order.emplace_back(pn[x] > 0.0 ? qn[x] / pn[x] : std::numeric_limits<double>::infinity(), x);
  // Ties need no care: along a run of equal ratios the objective is convex in the prefix mass, so
  // its maximum is at a run boundary, which every tie order visits.
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  double best = 0.0, sp = 0.0, sq = 0.0;  // best over prefixes of q(S)^k - p(S); the empty one gives 0
  for (const auto& [ratio, x] : order) {
    sp += pn[x];
    sq += qn[x];
    best = std::max(best, integer_power(sq, k) - sp);
  }
  return std::clamp(1.0 - best, 0.0, 1.0);
}

double optimal_acceptance_bruteforce(std::span<const float> p, const DraftLaw& draws) {
  const std::size_t V = p.size();
  if (V > 20)
    fail(ErrorCode::invalid_argument,
         "optimal_acceptance_bruteforce: 2^" + std::to_string(V) + " subsets is too many (V <= 20)");
  check_tokens("optimal_acceptance_bruteforce", draws, V);
  const std::vector<double> pn = normalized(p, "optimal_acceptance_bruteforce (p)");
  const std::size_t subsets = std::size_t(1) << V;
  // contained[H] = Q(every draft in H): tuple masses at their token sets, then summed over subsets.
  std::vector<double> contained(subsets, 0.0), mass(subsets, 0.0);
  double total = 0.0;
  for (const DraftTuple& t : draws) {
    std::size_t set = 0;
    for (TokenId x : t.tokens) set |= std::size_t(1) << std::size_t(x);
    contained[set] += t.prob;
    total += t.prob;
  }
  for (std::size_t bit = 0; bit < V; ++bit)
    for (std::size_t h = 0; h < subsets; ++h)
      if (h >> bit & 1) contained[h] += contained[h ^ (std::size_t(1) << bit)];
  double best = std::numeric_limits<double>::infinity();
  for (std::size_t h = 0; h < subsets; ++h) {
    if (h) {
      const std::size_t low = std::size_t(std::countr_zero(h));
      mass[h] = mass[h & (h - 1)] + pn[low];
    }
    best = std::min(best, mass[h] + total - contained[h]);
  }
  return best;
}

double optimal_acceptance_maxflow(std::span<const float> p, const DraftLaw& draws) {
  check_tokens("optimal_acceptance_maxflow", draws, p.size());
  const std::vector<double> pn = normalized(p, "optimal_acceptance_maxflow (p)");
  // Tuples with the same token set are interchangeable in the transport problem: merge them.
  std::map<std::vector<TokenId>, double> sets;
  for (const DraftTuple& t : draws) {
    if (t.prob <= 0.0) continue;
    std::vector<TokenId> s = t.tokens;
    std::sort(s.begin(), s.end());
    s.erase(std::unique(s.begin(), s.end()), s.end());
    sets[s] += t.prob;
  }
  using Traits = boost::adjacency_list_traits<boost::vecS, boost::vecS, boost::directedS>;
  using Graph = boost::adjacency_list<
      boost::vecS, boost::vecS, boost::directedS, boost::no_property,
      boost::property<boost::edge_capacity_t, double,
                      boost::property<boost::edge_residual_capacity_t, double,
                                      boost::property<boost::edge_reverse_t, Traits::edge_descriptor>>>>;
  const std::size_t V = p.size();
  const std::size_t source = 0, sink = 1, first_token = 2, first_set = 2 + V;
  Graph g(first_set + sets.size());
  auto capacity = boost::get(boost::edge_capacity, g);
  auto reverse = boost::get(boost::edge_reverse, g);
  const auto add = [&](std::size_t from, std::size_t to, double cap) {
    const auto e = boost::add_edge(from, to, g).first;
    const auto r = boost::add_edge(to, from, g).first;
    capacity[e] = cap;
    capacity[r] = 0.0;
    reverse[e] = r;
    reverse[r] = e;
  };
  for (std::size_t x = 0; x < V; ++x)
    if (pn[x] > 0.0) add(first_token + x, sink, pn[x]);
  std::size_t node = first_set;
  for (const auto& [tokens, prob] : sets) {
    add(source, node, prob);
    for (TokenId x : tokens) add(node, first_token + std::size_t(x), prob);  // never the bottleneck
    ++node;
  }
  // Edmonds-Karp: each augmentation empties its bottleneck edge exactly (x - x == 0 in floating
  // point), so it terminates with doubles, unlike push-relabel's excess bookkeeping.
  return boost::edmonds_karp_max_flow(g, source, sink);
}

double rrs_iid_acceptance(std::span<const float> p, std::span<const float> q, int k) {
  check_same_size("rrs_iid_acceptance", p, q);
  check_k("rrs_iid_acceptance", k);
  std::vector<double> P = to_double(p);
  const std::vector<double> Q = to_double(q);
  double reject = 1.0;
  for (int i = 0; i < k; ++i) {
    double a = 0.0;
    for (std::size_t x = 0; x < P.size(); ++x) a += std::min(P[x], Q[x]);
    reject *= std::max(1.0 - a, 0.0);
    residual_update(P, Q);
  }
  return 1.0 - reject;
}

double kseq_acceptance(std::span<const float> p, std::span<const float> q, int k, double rho) {
  check_same_size("kseq_acceptance", p, q);
  check_k("kseq_acceptance", k);
  return 1.0 - std::pow(1.0 - kseq_beta(p, q, rho), k);
}

double target_only_iid_acceptance(std::span<const float> p, std::span<const float> q, int k) {
  check_same_size("target_only_iid_acceptance", p, q);
  check_k("target_only_iid_acceptance", k);
  double acc = 0.0;
  for (std::size_t x = 0; x < p.size(); ++x) acc += double(p[x]) * (1.0 - std::pow(1.0 - double(q[x]), k));
  return acc;
}

std::vector<RuleGap> rule_gaps(std::span<const float> p, std::span<const float> q, int k) {
  check_same_size("rule_gaps", p, q);
  check_k("rule_gaps", k);
  std::vector<RuleGap> rows;
  const auto row = [&](std::string rule, std::string drafts, double acceptance, double optimum, std::string method) {
    rows.push_back({std::move(rule), std::move(drafts), acceptance, optimum, optimum - acceptance, std::move(method)});
  };
  const std::string ks = "k=" + std::to_string(k);
  const double opt1 = optimal_acceptance_iid(p, q, 1), opt_iid = optimal_acceptance_iid(p, q, k);
  row("sd", "iid, k=1", rrs_iid_acceptance(p, q, 1), opt1, "closed form; optimum by sort");
  row("rrs_iid", "iid, " + ks, rrs_iid_acceptance(p, q, k), opt_iid, "closed form; optimum by sort");
  const double rho = kseq_rho(p, q, k);
  char name[64];
  std::snprintf(name, sizeof name, "kseq(rho=%.4g)", rho);
  row(name, "iid, " + ks, kseq_acceptance(p, q, k, rho), opt_iid, "closed form; optimum by sort");
  row("target_only", "iid, " + ks, target_only_iid_acceptance(p, q, k), opt_iid, "closed form; optimum by sort");
  // Without replacement: only by enumeration, when affordable (each tuple costs O(kV)).
  const std::size_t tuples = wor_tuple_count(support_size(q), k);
  const bool affordable = tuples <= 200'000 && double(tuples) * double(k) * double(p.size()) <= 5e7;
  if (affordable) {
    const DraftLaw wor = wor_draft_law(q, k);
    row("rrs_wor", "wor, " + ks, exact_verification(Rule::rrs_wor, p, q, wor).acceptance,
        optimal_acceptance_maxflow(p, wor), "enumeration; optimum by max-flow");
  } else {
    // Too many tuples to enumerate: RRS without replacement run on Philox draws (a fixed stream,
    // so the report is reproducible; standard error <= 0.008), the optimum by prefixes and the
    // exponential race.
    double sampled = 0.0;
    for (double a : sampled_acceptance_by_rank(p, q, k, 4000, 0x776f72)) sampled += a;
    row("rrs_wor", "wor, " + ks, sampled, optimal_acceptance_wor(p, q, k),
        "sampled, 4000 draws; optimum by prefix cut and race quadrature");
  }
  // Fixed candidates: target-only is optimal for them (alpha* of a point mass on T is p(T)).
  std::vector<std::size_t> order(q.size());
  for (std::size_t x = 0; x < order.size(); ++x) order[x] = x;
  const std::size_t top = std::min(order.size(), std::size_t(k));
  std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(top), order.end(),
                    [&](std::size_t a, std::size_t b) { return q[a] != q[b] ? q[a] > q[b] : a < b; });
  double pt = 0.0;
  for (std::size_t i = 0; i < top; ++i) pt += double(p[order[i]]);
  row("target_only", "top-" + std::to_string(k) + " of q", pt, pt, "closed form (p of the candidates)");
  return rows;
}

std::string format_rule_gaps(std::span<const RuleGap> rows) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-18s %-14s %10s %10s %10s  %s\n", "rule", "drafts", "accept", "optimum", "gap",
                "method");
  out += line;
  for (const RuleGap& r : rows) {
    std::snprintf(line, sizeof line, "%-18s %-14s %10.6f %10.6f %10.6f  %s\n", r.rule.c_str(), r.drafts.c_str(),
                  r.acceptance, r.optimum, r.gap, r.method.c_str());
    out += line;
  }
  return out;
}

std::vector<TraversalEnding> exact_traversal(const SequenceTree& tree) {
  std::vector<TraversalEnding> endings;
  Traversal t(tree);
  double reached = 1.0;  // probability that every earlier test rejected
  for (;;) {
    const double h = t.accept_probability();
    if (reached * h > 0.0) endings.push_back({t.node(), reached * h, t.final_law()});
    if (t.node() == 0 || h >= 1.0) break;
    reached *= 1.0 - h;
    t.reject();
  }
  return endings;
}

}  // namespace decodelab::speculative
