#pragma once
// DraftTree: the tokens a drafter proposes in one speculative step, hanging off the last emitted
// token, and the order in which the verifier must consume them.
//
// Node -1 is the root (the position right after the stream); nodes 0.. are drafted tokens in
// creation order, parents before children. Each node (root included) lists its *proposals*: the
// child nodes offered to verification at that node, in verification order. A tree built from k
// i.i.d. draft sequences lists one proposal per sequence passing through the node (so a token two
// sequences share appears twice and points to the same merged child); a tree drawn without
// replacement lists each child once, in draw order.
//
// q(node) is the draft law at a node after the sampler chain (the law its children were drawn
// from); it exists for nodes the draft model has evaluated.
#include <span>
#include <vector>

#include "decodelab/language_model.hpp"

namespace decodelab::speculative {

class DraftTree {
 public:
  explicit DraftTree(std::vector<float> root_q);

  int size() const { return int(nodes_.size()); }
  const std::vector<TreeNode>& nodes() const { return nodes_; }
  TokenId token(int node) const { return nodes_.at(std::size_t(node)).token; }
  int parent(int node) const { return nodes_.at(std::size_t(node)).parent; }
  // Root children have depth 1.
  int depth(int node) const { return node < 0 ? 0 : depths_.at(std::size_t(node)); }

  // Adds a node under `parent` (-1: the root) without proposing it.
  int add_node(int parent, TokenId token);
  // The child of `parent` holding `token`, or -1.
  int find_child(int parent, TokenId token) const;
  // Appends `child` to the proposals of its parent.
  void propose(int child);
  std::span<const int> proposals(int node) const { return proposals_.at(std::size_t(node + 1)); }

  bool has_q(int node) const { return !q_.at(std::size_t(node + 1)).empty(); }
  std::span<const float> q(int node) const;
  void set_q(int node, std::vector<float> q) { q_.at(std::size_t(node + 1)) = std::move(q); }

  // Draft model state: nodes [0, draft_trunk()) are a chain from the root committed on the draft
  // sequence (every later node descends from its last node); nodes [draft_trunk(),
  // draft_evaluated()) are its pending tree, the last one it evaluated.
  int draft_trunk() const { return draft_trunk_; }
  int draft_evaluated() const { return draft_evaluated_; }
  void set_draft_state(int trunk, int evaluated) {
    draft_trunk_ = trunk;
    draft_evaluated_ = evaluated;
  }

  // Tokens from the root to `node`, root side first.
  std::vector<int> path_to(int node) const;

 private:
  std::vector<TreeNode> nodes_;
  std::vector<int> depths_;
  std::vector<std::vector<int>> proposals_;  // index node + 1
  std::vector<std::vector<float>> q_;        // index node + 1
  int draft_trunk_ = 0;
  int draft_evaluated_ = 0;
};

}  // namespace decodelab::speculative
