#pragma once
// Static draft-tree shapes, Sequoia's dynamic program that picks the best one for a node budget,
// and the drafter that fills a shape with draft tokens (Chen et al., "Sequoia: Scalable, Robust,
// and Hardware-aware Speculative Decoding", NeurIPS 2024; docs/speculative.md, "sequoia").
//
// A shape says, for every node, its parent and its rank: the rank-th child drawn at that parent.
// Children are drawn from the draft law without replacement, rank 1 first, so the rank-b child of
// a node exists only if ranks 1..b-1 do.
//
// The model behind the dynamic program: an acceptance vector a_1..a_K, a_b the probability that
// verification at a node accepts its rank-b child (marginally over the drawn tokens; at most one
// child of a node is accepted, so the a_b add up to at most 1). Taking these as the same at every
// node and independent across depths, a node is reached and accepted with probability the product
// of a_rank along its path, and the expected number of accepted draft tokens per step is the sum
// of those products over the nodes. optimal_static_tree maximizes that sum over every shape with
// at most `budget` nodes and depth at most `max_depth`.
#include <span>
#include <string>
#include <vector>

#include "decoders/speculative/drafter.hpp"

namespace decodelab::speculative {

struct TreeShape {
  // Nodes in breadth-first order (every depth before the next; siblings by rank), so the first n
  // nodes of a shape are themselves a shape.
  std::vector<int> parent;  // -1: a child of the root
  std::vector<int> rank;    // 1-based draw order among its siblings

  int size() const { return int(parent.size()); }
  int depth(int node) const;  // root children: 1
  int max_depth() const;
  // Node count per depth, e.g. "1:3 2:5 3:4".
  std::string describe() const;
};

// The sum over nodes of the product of acceptance[rank - 1] along the path (ranks beyond the
// vector's length count as 0).
double expected_accepted_length(const TreeShape& shape, std::span<const double> acceptance);

struct OptimalTree {
  TreeShape shape;
  double value = 0.0;  // expected_accepted_length(shape, acceptance)
};

// The shape with at most `budget` nodes and depth at most `max_depth` (0: no cap) that maximizes
// expected_accepted_length. Dynamic program over (depth left, next rank, nodes left): a node's
// forest of children of ranks b, b+1, ... with n nodes is either empty or a rank-b child with m
// nodes in its subtree (its own forest one level shallower) beside a forest of ranks b+1, ... with
// n - m. O(depth * K * budget^2) time. Throws Error(invalid_argument) for a budget outside
// [1, 256], a negative max_depth, or an acceptance vector that is empty, has an entry outside
// [0, 1], or sums above 1 (+1e-9).
OptimalTree optimal_static_tree(std::span<const double> acceptance, int budget, int max_depth);

// "0.6/0.15/0.05" (or with commas) -> {0.6, 0.15, 0.05}; Error(invalid_argument) naming the bad
// entry otherwise. '/' lets a vector sit inside a decoder spec, where commas separate parameters.
std::vector<double> parse_acceptance_vector(const std::string& text);

// Measuring the acceptance vector at one node: the frequency with which RRS without replacement
// (verify_rrs_wor) accepts the b-th of k children drawn from q without replacement, b = 1..k, over
// `draws` draws (Philox stream `seed`, substream = the draw). O(draws * k * V). Averaged over the
// positions of real text it is the vector the dynamic program takes; on small vocabularies the
// exact figure is exact_verification(Rule::rrs_wor, p, q, wor_draft_law(q, k)).accepted_at.
std::vector<double> sampled_acceptance_by_rank(std::span<const float> p, std::span<const float> q, int k, int draws,
                                               uint64_t seed);

// Fills `shape` with draft tokens: level by level, each node's children drawn from its draft law
// without replacement in rank order (or, with DraftDraw::most_probable, its most probable remaining
// tokens), one batched draft pass per level over the nodes that get children. A node whose draft
// law has no mass left gets no further children, and the shape's nodes below a missing node are
// skipped: which nodes exist depends only on tokens already drawn. The shape is cut to its first
// max_nodes nodes up front when the contexts are nearly full.
class StaticTreeDrafter final : public TreeDrafter {
 public:
  StaticTreeDrafter(TreeShape shape, DraftDraw draw) : shape_(std::move(shape)), draw_(draw) {}
  void build(DraftContext& context, DraftTree& tree) override;

 private:
  TreeShape shape_;
  DraftDraw draw_;
};

}  // namespace decodelab::speculative
