// Drafters of k sequences; see sequence_drafters.hpp.
#include "decoders/speculative/sequence_drafters.hpp"

#include <algorithm>
#include <map>
#include <optional>

namespace decodelab::speculative {
namespace {

// Brings the sequences' current nodes to the draft law: forks per node for several sequences,
// the committed trunk for one (a chain).
void advance_sequences(DraftContext& context, DraftTree& tree, std::optional<NodeForks>& forks,
                       std::span<const int> at) {
  if (!forks) return context.evaluate(tree);
  std::vector<int> nodes;
  for (int node : at)
    if (node >= 0 && std::find(nodes.begin(), nodes.end(), node) == nodes.end()) nodes.push_back(node);
  forks->evaluate(tree, nodes);
}

}  // namespace

void IidSequencesDrafter::build(DraftContext& context, DraftTree& tree) {
  std::vector<int> at(std::size_t(k_), -1);                      // each sequence's current node
  const int length = std::min(length_, context.max_nodes / k_);  // at most k nodes per depth
  std::optional<NodeForks> forks;
  if (k_ > 1 && length > 1) forks.emplace(context);
  for (int depth = 1; depth <= length; ++depth) {
    if (depth > 1) advance_sequences(context, tree, forks, at);
    for (int j = 0; j < k_; ++j) {
      const int node = at[std::size_t(j)];
      const TokenId x = sample_from_weights(tree.q(node), context.rng(depth, uint64_t(j)).uniform_double());
      int child = tree.find_child(node, x);
      if (child < 0) child = tree.add_node(node, x);
      tree.propose(child);
      at[std::size_t(j)] = child;
    }
  }
}

void WorSequencesDrafter::build(DraftContext& context, DraftTree& tree) {
  std::vector<int> at(std::size_t(k_), -1);                      // each sequence's current node; -2 once it ended
  const int length = std::min(length_, context.max_nodes / k_);  // at most k nodes per depth
  std::optional<NodeForks> forks;
  if (k_ > 1 && length > 1) forks.emplace(context);
  for (int depth = 1; depth <= length; ++depth) {
    if (depth > 1) advance_sequences(context, tree, forks, at);
    std::map<int, std::vector<float>> remaining;  // per node: q with this depth's drawn children removed
    bool any = false;
    for (int j = 0; j < k_; ++j) {
      const int node = at[std::size_t(j)];
      if (node == -2) continue;
      auto [it, fresh] = remaining.try_emplace(node);
      if (fresh) it->second.assign(tree.q(node).begin(), tree.q(node).end());
      std::vector<float>& r = it->second;
      double mass = 0.0;
      for (float v : r) mass += v;
      if (mass <= 0.0) {  // every token with draft mass is already a child: the sequence ends here
        at[std::size_t(j)] = -2;
        continue;
      }
      const TokenId x = draw_child(r, draw_, context.rng(depth, uint64_t(j)).uniform_double());
      r[std::size_t(x)] = 0.0f;
      const int child = tree.add_node(node, x);
      tree.propose(child);
      at[std::size_t(j)] = child;
      any = true;
    }
    if (!any) break;
  }
}

double collision_probability(std::span<const float> q) {
  double sum = 0.0;
  for (float v : q) sum += double(v) * double(v);
  return sum;
}

void DelayedSequencesDrafter::build(DraftContext& context, DraftTree& tree) {
  const int length = std::min(length_, context.max_nodes / k_);  // at most k nodes per depth
  int end = -1, depth = 0;                                       // the trunk so far
  // The trunk is a chain: the draft commits it as it grows (DraftContext::evaluate), one node a pass.
  for (; depth < length && depth < delay_; ++depth) {
    if (depth > 0) context.evaluate(tree);
    if (threshold_ > 0.0 && collision_probability(tree.q(end)) < threshold_) break;
    const TokenId x = sample_from_weights(tree.q(end), context.rng(depth + 1, 0).uniform_double());
    end = tree.add_node(end, x);
    tree.propose(end);
  }
  std::vector<int> at(std::size_t(k_), end);  // each rollout's current node
  for (++depth; depth <= length; ++depth) {
    context.evaluate(tree);  // the rollouts' current nodes (the trunk's end at first)
    for (int j = 0; j < k_; ++j) {
      const int node = at[std::size_t(j)];
      const TokenId x = sample_from_weights(tree.q(node), context.rng(depth, uint64_t(j)).uniform_double());
      int child = tree.find_child(node, x);
      if (child < 0) child = tree.add_node(node, x);
      tree.propose(child);
      at[std::size_t(j)] = child;
    }
  }
}

}  // namespace decodelab::speculative
