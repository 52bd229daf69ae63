#include "decoders/speculative/tree.hpp"

#include <algorithm>
#include <string>

#include "decodelab/error.hpp"

namespace decodelab::speculative {

DraftTree::DraftTree(std::vector<float> root_q) {
  proposals_.emplace_back();
  q_.push_back(std::move(root_q));
}

int DraftTree::add_node(int parent, TokenId token) {
  if (parent < -1 || parent >= size())
    fail(ErrorCode::internal, "DraftTree: parent " + std::to_string(parent) + " does not exist");
  nodes_.push_back({token, parent});
  depths_.push_back(depth(parent) + 1);
  proposals_.emplace_back();
  q_.emplace_back();
  return size() - 1;
}

int DraftTree::find_child(int parent, TokenId token) const {
  for (int i = std::max(parent + 1, 0); i < size(); ++i)
    if (nodes_[std::size_t(i)].parent == parent && nodes_[std::size_t(i)].token == token) return i;
  return -1;
}

void DraftTree::propose(int child) { proposals_.at(std::size_t(parent(child) + 1)).push_back(child); }

std::span<const float> DraftTree::q(int node) const {
  if (!has_q(node)) fail(ErrorCode::internal, "DraftTree: node " + std::to_string(node) + " has no draft distribution");
  return q_[std::size_t(node + 1)];
}

std::vector<int> DraftTree::path_to(int node) const {
  std::vector<int> path;
  for (int n = node; n >= 0; n = parent(n)) path.push_back(n);
  std::reverse(path.begin(), path.end());
  return path;
}

}  // namespace decodelab::speculative
