#pragma once
// Sequence-level verification: rules that judge a whole drafted path at once instead of one token
// at a time. Pure functions of the laws and uniforms, like verify.hpp's node rules.
//
// Token-level rules (verify.hpp) accept a token with probability min(1, p/q) at its own position,
// so a path is accepted only if every token on it is. Sequence-level rules carry a weight down the
// path instead,
//
//   w(root) = 1,   w(child x of node u) = min(1, w(u) P_u(x) / Q_u(x)),
//
// the largest probability with which the path to the child can be accepted while the output stays
// exactly p-distributed: a token the draft over-proposes (q > p) lowers the weight, one it
// under-proposes (q < p) can raise it back. A path is tested from its end (the leaf) towards the
// root, so a deep token can compensate for a shallow one that a token-level rule would reject.
//
// Traversal Verification (Weng et al., NeurIPS 2025, arXiv 2505.12398): over a tree, in
// depth-first order, a node is tested once all its children have been removed (at first, the
// leaves). The test accepts with probability w(node). Accepting emits the path to the node and a
// final token from P_node. Rejecting removes the node and updates its parent u, whose children are
// tried in draw order, with the law Q_u the rejected child was drawn from:
//
//   r = (w(u) P_u - Q_u)_+,   s = sum r,   P_u <- r / s,   w(u) <- s / (s + 1 - w(u)),
//
// and, for children drawn without replacement, Q_u loses the rejected token. Later siblings get
// their weights from the updated (w(u), P_u). The root has w = 1 throughout, so the root (once all
// its children are gone) always accepts and the step ends with a token from its residual.
//
// Why the output is exact: by induction over the tree, a node reached with state (w, P) is
// accepted with its continuation y with probability exactly w P(y) (completed by p below), and is
// rejected with probability 1 - w. For a leaf that is the test itself. For a node with a first
// child x ~ Q: the child's own subtree accepts (x, rest) with probability
// min(Q(x), w P(x)) p(rest | x); it is rejected with probability 1 - w + s, after which the node
// (with its remaining children) accepts y with probability s/(s + 1 - w) r(y)/s, which times the
// rejection probability is r(y) = (w P - Q)_+(y). The sum is w P(y); and the node is rejected
// with probability (1 - w + s)(1 - w)/(s + 1 - w) = 1 - w. The root has w = 1: it never rejects,
// and its output is P = p. The induction needs each child's law given everything verified before
// it (its earlier siblings and their subtrees) to be Q as updated: i.i.d. children, children drawn
// without replacement in draw order, or deterministic children (Q = a point mass at the child).
// So a child's subtree may not tell anything about which tokens its later siblings are.
//
// The merged prefix tree of k i.i.d. draft sequences qualifies as drawn without replacement: a
// node's distinct children in order of first occurrence are each distributed as q without the
// earlier ones, renormalized (the draws that are not repeats of the first m distinct tokens are
// i.i.d. from q restricted to the rest), whether another distinct child exists never depends on
// which token it would be, and a child's subtree (the continuations of the sequences through it)
// depends on the others only through how many sequences chose it, which says nothing about the
// later siblings' tokens. Trees whose shape depends on sibling tokens (dyspec's budget spends
// follow the values of every drawn node) do not qualify.
//
// Block verification (Sun et al., "Block Verification Accelerates Speculative Decoding", arXiv
// 2403.10444) is the same rule on a single chain, in closed form: with w_i the weight after i
// tokens, h_i = s_i / (s_i + 1 - w_i) (s_i the residual mass at depth i) and h_L = w_L, scan
// i = L, L-1, ..., 1 and stop at the first i with u_i <= h_i; emit the first i tokens and a token
// from norm((w_i p_i - q_i)_+) (p_L at i = L). verify_block computes it that way, independently of
// verify_traversal, and the two agree draw for draw on chains.
#include <span>
#include <vector>

#include "decodelab/distribution.hpp"

namespace decodelab::speculative {

// How the children of a node were drawn, which tells the rule the law each child came from.
enum class DrawKind {
  iid,                  // each child ~ q, independently
  without_replacement,  // child i ~ q without the earlier children, renormalized (draw order)
  most_probable,        // chosen deterministically: child i's law is a point mass on it
};
const char* to_string(DrawKind kind);

// A draft tree as sequence-level rules see it. Node 0 is the root (the position right after the
// stream); nodes 1.. are drafted tokens, each added after its parent, and a node's children are
// verified in the order they were added, which must be the order they were drawn.
struct SequenceTree {
  std::vector<int> parent{-1};
  std::vector<TokenId> token{0};
  std::vector<std::span<const float>> p;  // target law after each node (the root's: p[0])
  std::vector<std::span<const float>> q;  // the draft law a node's children were drawn from
  DrawKind kind = DrawKind::iid;

  SequenceTree(std::span<const float> root_p, std::span<const float> root_q, DrawKind draws)
      : p{root_p}, q{root_q}, kind(draws) {}
  // Adds a drafted token after `parent_node`; returns its node index. `node_q` may be empty when
  // the node has no children (or for most_probable children, whose law is implied).
  int add(int parent_node, TokenId x, std::span<const float> node_p, std::span<const float> node_q);
  int size() const { return int(parent.size()); }
  int depth(int node) const;
};

struct SequenceOutcome {
  int accepted = 0;    // the deepest accepted node (0: none); the accepted path is its ancestors
  TokenId token = 0;   // the token that ends the step
  bool bonus = false;  // drawn from p at a node that had no children (nothing of it was rejected)
};

// Traversal Verification as a state machine, so that the oracle can follow every outcome exactly
// and verify_traversal can follow one with uniforms. node() is the node under test and
// accept_probability() its current weight (1 for the root); reject() removes it and moves to the
// next test. Once a test accepts, final_law() is the law of the step's last token.
class Traversal {
 public:
  explicit Traversal(const SequenceTree& tree);
  int node() const { return current_; }
  double accept_probability() const;
  void reject();
  std::vector<double> final_law() const;
  bool bonus() const { return children_[std::size_t(current_)].empty(); }

 private:
  struct State {
    double w = 0.0;
    std::vector<double> P;  // current target law at the node
    std::vector<double> Q;  // without replacement: the law the next child is drawn from
    std::size_t next = 0;   // children tried so far
  };
  void descend();
  // The probability the law the child `c` of `u` was drawn from gives its token.
  double child_law(int u, int c) const;
  void remove_child(int u, int c);

  const SequenceTree& tree_;
  std::vector<std::vector<int>> children_;
  std::vector<State> state_;
  int current_ = 0;
};

// Throws Error(invalid_argument) for malformed trees (laws of different sizes, a missing q where
// a node has children, tokens outside the vocabulary, parents after their children) or too few
// uniforms: accept_u needs one per node (index = node; accept_u[0] is unused), residual_u one per
// depth (index = depth of the node the final token follows).
SequenceOutcome verify_traversal(const SequenceTree& tree, std::span<const double> accept_u,
                                 std::span<const double> residual_u);

// Block verification of a chain (node i's parent is node i - 1) of i.i.d. or most_probable draws.
// Same uniforms as verify_traversal, and the same outcome on every chain (up to rounding).
SequenceOutcome verify_block(const SequenceTree& chain, std::span<const double> accept_u,
                             std::span<const double> residual_u);

}  // namespace decodelab::speculative
