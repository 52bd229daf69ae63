// Sequence-level verification rules; see sequence_verify.hpp. All arithmetic is in double: the
// weights are products along a path, and the oracle follows this same machine exactly.
#include "decoders/speculative/sequence_verify.hpp"

#include <algorithm>
#include <string>

#include "decodelab/error.hpp"

namespace decodelab::speculative {
namespace {

void check_tree(const char* rule, const SequenceTree& tree) {
  const std::size_t n = tree.parent.size();
  if (tree.token.size() != n || tree.p.size() != n || tree.q.size() != n)
    fail(ErrorCode::invalid_argument, std::string(rule) + ": the tree's node arrays differ in size");
  if (n == 0 || tree.parent[0] != -1)
    fail(ErrorCode::invalid_argument, std::string(rule) + ": node 0 must be the root (parent -1)");
  const std::size_t V = tree.p[0].size();
  if (V == 0) fail(ErrorCode::invalid_argument, std::string(rule) + ": the root has an empty target law");
  for (std::size_t i = 1; i < n; ++i) {
    const int parent = tree.parent[i];
    if (parent < 0 || std::size_t(parent) >= i)
      fail(ErrorCode::invalid_argument, std::string(rule) + ": node " + std::to_string(i) + " has parent " +
                                            std::to_string(parent) + ", which is not an earlier node");
    if (tree.token[i] < 0 || std::size_t(tree.token[i]) >= V)
      fail(ErrorCode::invalid_argument, std::string(rule) + ": node " + std::to_string(i) + " has token " +
                                            std::to_string(tree.token[i]) + " outside the vocabulary");
    if (tree.p[i].size() != V)
      fail(ErrorCode::invalid_argument,
           std::string(rule) + ": node " + std::to_string(i) + "'s target law has the wrong size");
    if (tree.kind != DrawKind::most_probable && tree.q[std::size_t(parent)].size() != V)
      fail(ErrorCode::invalid_argument, std::string(rule) + ": node " + std::to_string(parent) +
                                            " has children but no draft law of the vocabulary's size");
  }
}

void check_uniforms(const char* rule, const SequenceTree& tree, std::span<const double> accept_u,
                    std::span<const double> residual_u) {
  int deepest = 0;
  for (int i = 0; i < tree.size(); ++i) deepest = std::max(deepest, tree.depth(i));
  if (accept_u.size() < tree.parent.size())
    fail(ErrorCode::invalid_argument, std::string(rule) + ": fewer accept uniforms than nodes");
  if (residual_u.size() < std::size_t(deepest) + 1)
    fail(ErrorCode::invalid_argument, std::string(rule) + ": fewer residual uniforms than depths");
}

TokenId sample(const std::vector<double>& law, double u) {
  const std::vector<float> weights(law.begin(), law.end());
  return sample_from_weights(weights, u);
}

// min(1, a / l) without dividing by zero: a token its law could not give has weight 0 or 1.
double weight(double a, double l) { return l > 0.0 ? std::min(1.0, a / l) : (a > 0.0 ? 1.0 : 0.0); }

}  // namespace

const char* to_string(DrawKind kind) {
  switch (kind) {
    case DrawKind::iid: return "iid";
    case DrawKind::without_replacement: return "without_replacement";
    case DrawKind::most_probable: return "most_probable";
  }
  return "?";
}

int SequenceTree::add(int parent_node, TokenId x, std::span<const float> node_p, std::span<const float> node_q) {
  parent.push_back(parent_node);
  token.push_back(x);
  p.push_back(node_p);
  q.push_back(node_q);
  return size() - 1;
}

int SequenceTree::depth(int node) const {
  int d = 0;
  for (int n = node; n > 0; n = parent.at(std::size_t(n))) ++d;
  return d;
}

Traversal::Traversal(const SequenceTree& tree) : tree_(tree) {
  check_tree("verify_traversal", tree);
  children_.resize(tree.parent.size());
  for (std::size_t i = 1; i < tree.parent.size(); ++i) children_[std::size_t(tree.parent[i])].push_back(int(i));
  state_.resize(tree.parent.size());
  state_[0].w = 1.0;
  state_[0].P.assign(tree.p[0].begin(), tree.p[0].end());
  descend();
}

double Traversal::accept_probability() const { return current_ == 0 ? 1.0 : state_[std::size_t(current_)].w; }

double Traversal::child_law(int u, int c) const {
  const std::size_t x = std::size_t(tree_.token[std::size_t(c)]);
  switch (tree_.kind) {
    case DrawKind::iid: return double(tree_.q[std::size_t(u)][x]);
    case DrawKind::without_replacement: return state_[std::size_t(u)].Q[x];
    case DrawKind::most_probable: return 1.0;
  }
  return 0.0;
}

// Enter children depth first until the current node has none left to try: that node is tested.
void Traversal::descend() {
  for (;;) {
    State& u = state_[std::size_t(current_)];
    const std::vector<int>& kids = children_[std::size_t(current_)];
    if (u.next >= kids.size()) return;
    if (tree_.kind == DrawKind::without_replacement && u.next == 0)
      u.Q.assign(tree_.q[std::size_t(current_)].begin(), tree_.q[std::size_t(current_)].end());
    const int c = kids[u.next];
    State& child = state_[std::size_t(c)];
    const std::size_t x = std::size_t(tree_.token[std::size_t(c)]);
    child.w = weight(u.w * u.P[x], child_law(current_, c));
    child.P.assign(tree_.p[std::size_t(c)].begin(), tree_.p[std::size_t(c)].end());
    current_ = c;
  }
}

// u's child c was rejected together with its whole subtree: u's state absorbs the rejection.
void Traversal::remove_child(int u, int c) {
  State& s = state_[std::size_t(u)];
  const std::size_t x = std::size_t(tree_.token[std::size_t(c)]);
  const std::size_t V = s.P.size();
  std::vector<double> r(V);
  double mass = 0.0;
  for (std::size_t y = 0; y < V; ++y) {
    double law = 0.0;  // the law c was drawn from, at y
    switch (tree_.kind) {
      case DrawKind::iid: law = double(tree_.q[std::size_t(u)][y]); break;
      case DrawKind::without_replacement: law = s.Q[y]; break;
      case DrawKind::most_probable: law = y == x ? 1.0 : 0.0; break;
    }
    r[y] = std::max(0.0, s.w * s.P[y] - law);
    mass += r[y];
  }
  const double denominator = mass + 1.0 - s.w;
  if (mass > 0.0) {
    for (double& v : r) v /= mass;
    s.P.swap(r);
    s.w = std::min(1.0, mass / denominator);
  } else if (denominator > 0.0) {
    s.w = 0.0;  // w P <= Q everywhere: nothing is left for this node or its later children
  }
  // Otherwise w = 1 and P == Q: the rejection had probability 0 (rounding); keep the state.
  if (tree_.kind == DrawKind::without_replacement) {
    s.Q[x] = 0.0;
    double left = 0.0;
    for (double v : s.Q) left += v;
    if (left > 0.0)
      for (double& v : s.Q) v /= left;
    else if (s.next + 1 < children_[std::size_t(u)].size())
      fail(ErrorCode::invalid_argument, "verify_traversal: node " + std::to_string(u) +
                                            " has more children than tokens with draft mass (drawn without "
                                            "replacement)");
  }
  s.next += 1;
}

void Traversal::reject() {
  if (current_ == 0) fail(ErrorCode::internal, "Traversal: the root cannot be rejected");
  const int c = current_;
  current_ = tree_.parent[std::size_t(c)];
  remove_child(current_, c);
  descend();
}

std::vector<double> Traversal::final_law() const { return state_[std::size_t(current_)].P; }

SequenceOutcome verify_traversal(const SequenceTree& tree, std::span<const double> accept_u,
                                 std::span<const double> residual_u) {
  check_uniforms("verify_traversal", tree, accept_u, residual_u);
  Traversal t(tree);
  while (t.node() != 0) {
    const double h = t.accept_probability();
    if (accept_u[std::size_t(t.node())] <= h && h > 0.0) break;
    t.reject();
  }
  return {t.node(), sample(t.final_law(), residual_u[std::size_t(tree.depth(t.node()))]), t.bonus()};
}

SequenceOutcome verify_block(const SequenceTree& chain, std::span<const double> accept_u,
                             std::span<const double> residual_u) {
  check_tree("verify_block", chain);
  check_uniforms("verify_block", chain, accept_u, residual_u);
  const int L = chain.size() - 1;
  for (int i = 1; i <= L; ++i)
    if (chain.parent[std::size_t(i)] != i - 1)
      fail(ErrorCode::invalid_argument, "verify_block: node " + std::to_string(i) + " does not follow node " +
                                            std::to_string(i - 1) + " (block verification needs a chain)");
  const std::size_t V = chain.p[0].size();
  // The law the token after node i was drawn from, at y.
  const auto law = [&](int i, std::size_t y) {
    if (chain.kind == DrawKind::most_probable) return y == std::size_t(chain.token[std::size_t(i + 1)]) ? 1.0 : 0.0;
    return double(chain.q[std::size_t(i)][y]);
  };
  std::vector<double> w(std::size_t(L) + 1, 1.0);
  for (int i = 1; i <= L; ++i) {
    const std::size_t x = std::size_t(chain.token[std::size_t(i)]);
    w[std::size_t(i)] = weight(w[std::size_t(i - 1)] * double(chain.p[std::size_t(i - 1)][x]), law(i - 1, x));
  }
  // r_i = (w_i p_i - law_i)_+ for i < L: the residual after the token following node i is rejected.
  const auto residual = [&](int i) {
    std::vector<double> r(V);
    for (std::size_t y = 0; y < V; ++y)
      r[y] = std::max(0.0, w[std::size_t(i)] * double(chain.p[std::size_t(i)][y]) - law(i, y));
    return r;
  };
  int tau = 0;
  for (int i = L; i >= 1 && tau == 0; --i) {
    double h = w[std::size_t(i)];
    if (i < L) {
      double s = 0.0;
      for (double v : residual(i)) s += v;
      const double denominator = s + 1.0 - w[std::size_t(i)];
      h = s > 0.0 ? std::min(1.0, s / denominator) : (denominator > 0.0 ? 0.0 : 1.0);
    }
    if (accept_u[std::size_t(i)] <= h && h > 0.0) tau = i;
  }
  std::vector<double> final_law(chain.p[std::size_t(tau)].begin(), chain.p[std::size_t(tau)].end());
  if (tau < L) {
    std::vector<double> r = residual(tau);
    double s = 0.0;
    for (double v : r) s += v;
    if (s > 0.0) {
      for (double& v : r) v /= s;  // normalized as verify_traversal's, so both draw the same token
      final_law = r;
    }
  }
  return {tau, sample(final_law, residual_u[std::size_t(tau)]), tau == L};
}

}  // namespace decodelab::speculative
