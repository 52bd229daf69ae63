// Static tree shapes, Sequoia's dynamic program and the static-tree drafter; see static_tree.hpp.
#include "decoders/speculative/static_tree.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <sstream>

#include "decodelab/error.hpp"
#include "decodelab/random.hpp"
#include "decodelab/verify.hpp"

namespace decodelab::speculative {

int TreeShape::depth(int node) const {
  int d = 0;
  for (int n = node; n >= 0; n = parent.at(std::size_t(n))) ++d;
  return d;
}

int TreeShape::max_depth() const { return size() ? depth(size() - 1) : 0; }  // breadth-first: last is deepest

std::string TreeShape::describe() const {
  std::map<int, int> per_depth;
  for (int i = 0; i < size(); ++i) per_depth[depth(i)] += 1;
  std::string s;
  for (const auto& [d, n] : per_depth) {
    if (!s.empty()) s += ' ';
    s += std::to_string(d);
    s += ':';
    s += std::to_string(n);
  }
  return s;
}

double expected_accepted_length(const TreeShape& shape, std::span<const double> acceptance) {
  std::vector<double> reach(std::size_t(shape.size()), 0.0);
  double total = 0.0;
  for (int i = 0; i < shape.size(); ++i) {
    const int r = shape.rank[std::size_t(i)], p = shape.parent[std::size_t(i)];
    const double a = r >= 1 && r <= int(acceptance.size()) ? acceptance[std::size_t(r - 1)] : 0.0;
    reach[std::size_t(i)] = a * (p < 0 ? 1.0 : reach[std::size_t(p)]);
    total += reach[std::size_t(i)];
  }
  return total;
}

OptimalTree optimal_static_tree(std::span<const double> acceptance, int budget, int max_depth) {
  if (budget < 1 || budget > 256)
    fail(ErrorCode::invalid_argument, "optimal_static_tree: budget must be in [1, 256], got " + std::to_string(budget));
  if (max_depth < 0)
    fail(ErrorCode::invalid_argument, "optimal_static_tree: max_depth must be >= 0, got " + std::to_string(max_depth));
  if (acceptance.empty()) fail(ErrorCode::invalid_argument, "optimal_static_tree: the acceptance vector is empty");
  double sum = 0.0;
  for (std::size_t b = 0; b < acceptance.size(); ++b) {
    if (!(acceptance[b] >= 0.0 && acceptance[b] <= 1.0))
      fail(ErrorCode::invalid_argument, "optimal_static_tree: acceptance entry " + std::to_string(b + 1) + " is " +
                                            std::to_string(acceptance[b]) + ", outside [0, 1]");
    sum += acceptance[b];
  }
  if (sum > 1.0 + 1e-9)
    fail(ErrorCode::invalid_argument, "optimal_static_tree: the acceptance vector sums to " + std::to_string(sum) +
                                          " (> 1): at most one child of a node is accepted");
  const int B = budget;
  const int K = std::min<int>(int(acceptance.size()), B);  // a node never has more than B children
  const int D = max_depth == 0 ? B : std::min(max_depth, B);
  // F[d][n]: best forest below a node with d levels of room and at most n nodes.
  std::vector<std::vector<double>> F(std::size_t(D + 1), std::vector<double>(std::size_t(B + 1), 0.0));
  // choice[d][b][n]: nodes m of the rank-b child's subtree in the best forest of ranks b.. (0: none).
  std::vector<std::vector<std::vector<int>>> choice(
      std::size_t(D + 1), std::vector<std::vector<int>>(std::size_t(K + 2), std::vector<int>(std::size_t(B + 1), 0)));
  for (int d = 1; d <= D; ++d) {
    std::vector<double> later(std::size_t(B + 1), 0.0);  // ranks b+1.. (none yet: rank K+1)
    for (int b = K; b >= 1; --b) {
      const double a = acceptance[std::size_t(b - 1)];
      std::vector<double> here(std::size_t(B + 1), 0.0);
      for (int n = 1; n <= B; ++n) {
        double best = 0.0;  // no rank-b child, hence no later ranks either
        int best_m = 0;
        for (int m = 1; m <= n; ++m) {
          const double v = a * (1.0 + F[std::size_t(d - 1)][std::size_t(m - 1)]) + later[std::size_t(n - m)];
          if (v > best) {
            best = v;
            best_m = m;
          }
        }
        here[std::size_t(n)] = best;
        choice[std::size_t(d)][std::size_t(b)][std::size_t(n)] = best_m;
      }
      later.swap(here);
    }
    F[std::size_t(d)] = later;
  }
  // Rebuild depth first, then renumber breadth first.
  std::vector<int> dfs_parent, dfs_rank;
  std::vector<std::vector<int>> dfs_children(1);  // index node + 1
  const std::function<void(int, int, int, int)> rebuild = [&](int d, int b, int n, int parent) {
    while (d > 0 && b <= K && n > 0) {
      const int m = choice[std::size_t(d)][std::size_t(b)][std::size_t(n)];
      if (m == 0) return;
      const int node = int(dfs_parent.size());
      dfs_parent.push_back(parent);
      dfs_rank.push_back(b);
      dfs_children.emplace_back();
      dfs_children[std::size_t(parent + 1)].push_back(node);
      rebuild(d - 1, 1, m - 1, node);
      b += 1;
      n -= m;
    }
  };
  rebuild(D, 1, B, -1);
  OptimalTree out;
  std::vector<int> new_index(dfs_parent.size(), -1);
  std::vector<int> queue = dfs_children[0];
  for (std::size_t at = 0; at < queue.size(); ++at) {
    const int node = queue[at];
    new_index[std::size_t(node)] = int(at);
    const int p = dfs_parent[std::size_t(node)];
    out.shape.parent.push_back(p < 0 ? -1 : new_index[std::size_t(p)]);
    out.shape.rank.push_back(dfs_rank[std::size_t(node)]);
    for (int c : dfs_children[std::size_t(node + 1)]) queue.push_back(c);
  }
  out.value = F[std::size_t(D)][std::size_t(B)];
  return out;
}

std::vector<double> parse_acceptance_vector(const std::string& text) {
  std::vector<double> out;
  std::string separated = text;  // '/' separates too, so a vector fits inside a decoder spec
  std::replace(separated.begin(), separated.end(), '/', ',');
  std::stringstream in(separated);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      std::size_t used = 0;
      const double v = std::stod(item, &used);
      while (used < item.size() && item[used] == ' ') ++used;
      if (used != item.size() || !std::isfinite(v)) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      fail(ErrorCode::invalid_argument, "acceptance vector: entry '" + item + "' of '" + text + "' is not a number");
    }
  }
  if (out.empty()) fail(ErrorCode::invalid_argument, "acceptance vector: '" + text + "' has no entries");
  return out;
}

std::vector<double> sampled_acceptance_by_rank(std::span<const float> p, std::span<const float> q, int k, int draws,
                                               uint64_t seed) {
  if (k < 1) fail(ErrorCode::invalid_argument, "sampled_acceptance_by_rank: k must be >= 1, got " + std::to_string(k));
  if (draws < 1)
    fail(ErrorCode::invalid_argument, "sampled_acceptance_by_rank: draws must be >= 1, got " + std::to_string(draws));
  if (p.size() != q.size())
    fail(ErrorCode::invalid_argument, "sampled_acceptance_by_rank: p has " + std::to_string(p.size()) +
                                          " entries but q has " + std::to_string(q.size()));
  std::vector<double> accepted(std::size_t(k), 0.0);
  std::vector<float> remaining;
  std::vector<TokenId> children;
  std::vector<double> accept_u;
  for (int n = 0; n < draws; ++n) {
    PhiloxStream rng = random_stream(seed, RandomStream::user, 0, uint64_t(n));
    remaining.assign(q.begin(), q.end());
    children.clear();
    accept_u.clear();
    for (int b = 0; b < k; ++b) {
      double mass = 0.0;
      for (float v : remaining) mass += v;
      if (mass <= 0.0) break;
      const TokenId x = sample_from_weights(remaining, rng.uniform_double());
      remaining[std::size_t(x)] = 0.0f;
      children.push_back(x);
      accept_u.push_back(rng.uniform_double());
    }
    const VerifyOutcome o = verify_rrs_wor(p, q, children, accept_u, rng.uniform_double());
    if (o.accepted >= 0) accepted[std::size_t(o.accepted)] += 1.0;
  }
  for (double& a : accepted) a /= double(draws);
  return accepted;
}

void StaticTreeDrafter::build(DraftContext& context, DraftTree& tree) {
  const int n = std::min(shape_.size(), context.max_nodes);  // a prefix of a breadth-first shape is a shape
  std::vector<int> node_of(std::size_t(n), -1);              // draft node of each shape node; -1: not drawn
  std::map<int, std::vector<float>> remaining;               // per draft node: q without the children drawn
  NodeForks forks(context);
  for (int first = 0; first < n;) {
    const int depth = shape_.depth(first);
    int end = first;
    while (end < n && shape_.depth(end) == depth) ++end;
    std::vector<int> parents;  // this level's parents need their draft laws: one batched pass
    for (int s = first; s < end; ++s) {
      const int p = shape_.parent[std::size_t(s)];
      if (p >= 0 && node_of[std::size_t(p)] >= 0 &&
          std::find(parents.begin(), parents.end(), node_of[std::size_t(p)]) == parents.end())
        parents.push_back(node_of[std::size_t(p)]);
    }
    forks.evaluate(tree, parents);
    for (int s = first; s < end; ++s) {
      const int p = shape_.parent[std::size_t(s)];
      const int parent = p < 0 ? -1 : node_of[std::size_t(p)];
      if (p >= 0 && parent < 0) continue;  // its parent was never drawn
      auto [it, fresh] = remaining.try_emplace(parent);
      if (fresh) it->second.assign(tree.q(parent).begin(), tree.q(parent).end());
      std::vector<float>& r = it->second;
      double mass = 0.0;
      for (float v : r) mass += v;
      if (mass <= 0.0) continue;  // every token with draft mass is a child already
      const TokenId x = draw_child(r, draw_, context.rng(depth, uint64_t(s)).uniform_double());
      r[std::size_t(x)] = 0.0f;
      const int child = tree.add_node(parent, x);
      tree.propose(child);
      node_of[std::size_t(s)] = child;
    }
    first = end;
  }
}

}  // namespace decodelab::speculative
