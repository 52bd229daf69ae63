// Draft contexts and per-node forks; see drafter.hpp.
#include "decoders/speculative/drafter.hpp"

#include <algorithm>
#include <string>

#include "decodelab/error.hpp"

namespace decodelab::speculative {

std::vector<float> processed_probs(SamplerChain& chain, std::span<const float> logits) {
  Candidates c = Candidates::from_logits(logits);
  chain.apply(c);
  if (c.selected >= 0) {
    std::vector<float> p(logits.size(), 0.0f);
    p[std::size_t(c.selected_token())] = 1.0f;
    return p;
  }
  return c.dense_probs(int(logits.size()));
}

TokenId draw_child(std::span<const float> law, DraftDraw how, double u) {
  if (how == DraftDraw::sample) return sample_from_weights(law, u);
  return TokenId(std::max_element(law.begin(), law.end()) - law.begin());
}

ParamSpec deterministic_param() {
  return ParamSpec::boolean("deterministic", false,
                            "draft the most probable tokens instead of sampling (the k most probable as distinct "
                            "children, argmax below); verified by a rule exact for any candidates");
}

DraftDraw draft_draw(const Params& params) {
  return params.has("deterministic") && params.get_bool("deterministic") ? DraftDraw::most_probable : DraftDraw::sample;
}

void DraftContext::evaluate(DraftTree& tree) {
  const int n = tree.size();
  int trunk = tree.draft_trunk();
  const int evaluated = tree.draft_evaluated();
  if (n == evaluated) return;
  if (!draft) fail(ErrorCode::internal, "DraftContext::evaluate: this drafter has no draft model");
  // Grow the committed trunk by the pending chain when the new nodes all hang below its end.
  bool pending_is_chain = true, new_below_pending = true, new_below_trunk = true;
  for (int i = trunk; i < evaluated; ++i) pending_is_chain = pending_is_chain && tree.parent(i) == i - 1;
  for (int i = evaluated; i < n; ++i) {
    new_below_pending = new_below_pending && tree.parent(i) >= evaluated - 1;
    new_below_trunk = new_below_trunk && tree.parent(i) >= trunk - 1;
  }
  if (pending_is_chain && new_below_pending && evaluated > trunk) {
    std::vector<int32_t> path;
    for (int i = trunk; i < evaluated; ++i) path.push_back(i - trunk);
    draft->commit(seq, path);
    trunk = evaluated;
  } else if (!new_below_trunk) {  // a new branch off the trunk: evaluate the whole tree again
    draft->rollback(seq, base);
    trunk = 0;
  }
  TreeEval eval{seq, {}};
  for (int i = trunk; i < n; ++i)
    eval.nodes.push_back({tree.token(i), tree.parent(i) < trunk ? -1 : tree.parent(i) - trunk});
  std::vector<Matrix> out;
  draft->evaluate({&eval, 1}, out);
  for (int i = trunk; i < n; ++i)
    if (!tree.has_q(i)) tree.set_q(i, processed_probs(chain, out[0].row(i - trunk)));
  tree.set_draft_state(trunk, n);
}

NodeForks::~NodeForks() {
  for (const auto& [node, seq] : forks_) context_.draft->free_sequence(seq);
}

void NodeForks::evaluate(DraftTree& tree, std::span<const int> nodes) {
  if (!context_.draft) fail(ErrorCode::internal, "NodeForks: this drafter has no draft model");
  std::vector<TreeEval> batch;
  for (int node : nodes) {
    if (forks_.count(node)) continue;
    const int parent = tree.parent(node);
    const auto it = forks_.find(parent);
    if (parent >= 0 && it == forks_.end())
      fail(ErrorCode::internal, "NodeForks: node " + std::to_string(node) + " evaluated before its parent");
    const SeqId seq = context_.draft->fork(parent < 0 ? context_.seq : it->second);
    forks_.emplace(node, seq);
    batch.push_back({seq, {{tree.token(node), -1}}});
  }
  if (batch.empty()) return;
  std::vector<Matrix> out;
  context_.draft->evaluate(batch, out);
  const int32_t keep[] = {0};
  std::size_t b = 0;
  for (int node : nodes) {
    if (b == batch.size() || forks_.at(node) != batch[b].seq) continue;
    context_.draft->commit(batch[b].seq, keep);
    tree.set_q(node, processed_probs(context_.chain, out[b].row(0)));
    ++b;
  }
}

}  // namespace decodelab::speculative
