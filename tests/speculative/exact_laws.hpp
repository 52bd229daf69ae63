#pragma once
// Exact enumeration over small random autoregressive target/draft laws, shared by the tree
// verification and tree decoder suites: laws p(.|prefix), q(.|prefix) over V = 3 or 4 tokens whose
// entries are multiples of 2^-20 (so fp32 and fp64 see the same numbers and each law sums to
// exactly 1), drafts enumerated with their probabilities, the target's joint law of a fixed number
// of tokens, and the token-level walk of a drafted tree with a rule followed exactly.
#include <algorithm>
#include <cmath>
#include <map>
#include <span>
#include <vector>

#include "decodelab/random.hpp"
#include "decoders/speculative/oracle.hpp"
#include "decoders/speculative/sequence_verify.hpp"

namespace decodelab::speculative::exact {

constexpr double kUnit = 1048576.0;  // laws are multiples of 2^-20: they sum to exactly 1

inline std::vector<float> dyadic(const std::vector<double>& w) {
  double total = 0.0;
  for (double x : w) total += x;
  std::vector<int64_t> units(w.size());
  int64_t used = 0;
  for (std::size_t i = 0; i < w.size(); ++i) used += units[i] = int64_t(std::floor(w[i] / total * kUnit));
  units[std::size_t(std::max_element(w.begin(), w.end()) - w.begin())] += int64_t(kUnit) - used;
  std::vector<float> p(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) p[i] = float(double(units[i]) / kUnit);
  return p;
}

// A divergence between target and draft: the draft is the target's weights at temper `temper`,
// mixed with independent noise of weight `noise`.
struct Divergence {
  double temper, noise;
};

// Random autoregressive laws p(.|prefix), q(.|prefix) over V tokens at target temperature T, made
// on first use (std::map keeps them in place, so spans into them stay valid).
class Laws {
 public:
  Laws(int V, uint64_t seed, double temperature, Divergence d) : V_(V), seed_(seed), T_(temperature), d_(d) {}
  std::span<const float> p(const std::vector<TokenId>& prefix) { return make(prefix).first; }
  std::span<const float> q(const std::vector<TokenId>& prefix) { return make(prefix).second; }
  int vocab() const { return V_; }

 private:
  const std::pair<std::vector<float>, std::vector<float>>& make(const std::vector<TokenId>& prefix) {
    auto it = laws_.find(prefix);
    if (it != laws_.end()) return it->second;
    PhiloxStream rng = random_stream(seed_, RandomStream::user, laws_.size());
    const std::size_t n = std::size_t(V_);
    std::vector<double> base(n, 0.0), target(n, 0.0), draft(n, 0.0);
    for (double& x : base) x = std::pow(rng.uniform_double(), 2.0) + 0.02;
    for (std::size_t i = 0; i < base.size(); ++i) {
      target[i] = std::pow(base[i], 1.0 / T_);
      draft[i] = (1.0 - d_.noise) * std::pow(base[i], 1.0 / (T_ * d_.temper)) + d_.noise * rng.uniform_double();
    }
    // Occasionally a token the draft never proposes, or one the target never emits.
    const uint32_t r = rng.next_u32() % 6u;
    if (r == 0) draft[rng.next_u32() % uint32_t(V_)] = 0.0;
    if (r == 1) target[rng.next_u32() % uint32_t(V_)] = 0.0;
    return laws_.emplace(prefix, std::make_pair(dyadic(target), dyadic(draft))).first->second;
  }

  int V_;
  uint64_t seed_;
  double T_;
  Divergence d_;
  std::map<std::vector<TokenId>, std::pair<std::vector<float>, std::vector<float>>> laws_;
};

// One possible draft: k token sequences (root side first), in the order the verifier takes them.
struct Draft {
  std::vector<std::vector<TokenId>> sequences;
  double prob = 1.0;
};

// Continues the sequences of `d` from depth `depth` (all sequences are i.i.d. chains from q).
inline void extend_chains(Laws& laws, Draft d, std::size_t j, int L, std::vector<Draft>& out) {
  if (j == d.sequences.size()) return out.push_back(std::move(d));
  if (int(d.sequences[j].size()) == L) return extend_chains(laws, std::move(d), j + 1, L, out);
  const std::vector<float> q(laws.q(d.sequences[j]).begin(), laws.q(d.sequences[j]).end());
  for (int x = 0; x < laws.vocab(); ++x) {
    if (q[std::size_t(x)] <= 0.0f) continue;
    Draft next = d;
    next.sequences[j].push_back(x);
    next.prob *= q[std::size_t(x)];
    extend_chains(laws, std::move(next), j, L, out);
  }
}

// Two trees verify_traversal can be given for a draft. `chains`: each sequence its own branch,
// so the root's children are the k first tokens as drawn. `merged`: the prefix tree of the
// sequences, each node's children distinct and in order of first occurrence; for i.i.d. sequences
// these are draws without replacement with a stop that never looks at the next token (given the
// distinct tokens so far, the next new one is q without them, renormalized, however many repeats
// came before), and a child's subtree holds the continuations of every sequence through it.
enum class View { chains, merged };

inline SequenceTree tree_of(Laws& laws, const Draft& d, DrawKind kind, View view) {
  SequenceTree tree(laws.p({}), laws.q({}), kind);
  std::map<std::vector<TokenId>, int> node_of{{{}, 0}};
  for (const auto& s : d.sequences) {
    int parent = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const std::vector<TokenId> prefix(s.begin(), s.begin() + std::ptrdiff_t(i + 1));
      if (view == View::merged) {
        // Sequences are laid out one after the other; a breadth-first order is what the decoder
        // builds, and children keep their first-occurrence order either way.
        auto it = node_of.find(prefix);
        if (it == node_of.end())
          it = node_of.emplace(prefix, tree.add(parent, s[i], laws.p(prefix), laws.q(prefix))).first;
        parent = it->second;
      } else {
        parent = tree.add(parent, s[i], laws.p(prefix), laws.q(prefix));
      }
    }
  }
  return tree;
}

// Adds `weight` times the target's law of the tokens after `prefix`, up to `length` tokens.
inline void complete(Laws& laws, std::vector<TokenId> prefix, double weight, std::size_t length,
                     std::map<std::vector<TokenId>, double>& joint) {
  if (weight == 0.0) return;
  if (prefix.size() == length) {
    joint[prefix] += weight;
    return;
  }
  const std::vector<float> p(laws.p(prefix).begin(), laws.p(prefix).end());
  for (int y = 0; y < laws.vocab(); ++y) {
    std::vector<TokenId> next = prefix;
    next.push_back(y);
    complete(laws, std::move(next), weight * p[std::size_t(y)], length, joint);
  }
}

inline double max_difference(const std::map<std::vector<TokenId>, double>& a,
                             const std::map<std::vector<TokenId>, double>& b) {
  double worst = 0.0;
  for (const auto& [k, v] : a) worst = std::max(worst, std::abs(v - (b.count(k) ? b.at(k) : 0.0)));
  for (const auto& [k, v] : b) worst = std::max(worst, std::abs(v - (a.count(k) ? a.at(k) : 0.0)));
  return worst;
}

inline std::map<std::vector<TokenId>, double> target_joint(Laws& laws, std::size_t length) {
  std::map<std::vector<TokenId>, double> joint;
  complete(laws, {}, 1.0, length, joint);
  return joint;
}

// Token-level walk over a drafted tree given as each node's proposals in verification order
// (distinct children, or one proposal per sequence through the node with repeats): `rule` decides
// each node exactly (exact_verification with the node's candidates as a fixed draft law), accepted
// candidates are followed, the residual ends the step; the emitted tokens are completed to `length`
// with the target's laws.
inline void token_level_walk(Laws& laws, Rule rule, std::vector<TokenId> prefix,
                             const std::map<std::vector<TokenId>, std::vector<TokenId>>& children, double weight,
                             std::size_t length, std::map<std::vector<TokenId>, double>& joint) {
  const auto it = children.find(prefix);
  const std::vector<float> p(laws.p(prefix).begin(), laws.p(prefix).end());
  std::vector<double> residual(p.begin(), p.end());
  if (it != children.end()) {
    const ExactVerification e = exact_verification(rule, p, laws.q(prefix), fixed_draft_law(it->second));
    residual = e.law;
    for (std::size_t i = 0; i < it->second.size(); ++i) {
      const TokenId x = it->second[i];
      residual[std::size_t(x)] -= e.accepted_at[i];
      std::vector<TokenId> next = prefix;
      next.push_back(x);
      token_level_walk(laws, rule, next, children, weight * e.accepted_at[i], length, joint);
    }
  }
  for (int y = 0; y < laws.vocab(); ++y) {
    std::vector<TokenId> emitted = prefix;
    emitted.push_back(y);
    complete(laws, emitted, weight * residual[std::size_t(y)], length, joint);
  }
}

}  // namespace decodelab::speculative::exact
