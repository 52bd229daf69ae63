// The shared speculative step; see tree_decoder.hpp.
#include "speculative/tree_decoder.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "speculative/oracle.hpp"

namespace decodelab::speculative {
namespace {

// The law plain sampling would draw from: the chain's distribution, or a point mass on the token
// a terminal sampler (greedy) selected.
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

std::unique_ptr<SamplerChain> clone_chain(const SamplerChain& chain) {
  return std::unique_ptr<SamplerChain>(static_cast<SamplerChain*>(chain.clone().release()));
}

float raw_logprob(std::span<const float> logits, TokenId token) {
  return float(double(logits[std::size_t(token)]) - log_sum_exp(logits));
}

// Frees both sequences however generation ends.
struct SequenceGuard {
  LanguageModel& target;
  LanguageModel* draft;
  SeqId target_seq;
  SeqId draft_seq;
  ~SequenceGuard() {
    target.free_sequence(target_seq);
    if (draft) draft->free_sequence(draft_seq);
  }
};

// Both models must hold exactly the stream minus the tokens they have not evaluated yet.
void check_committed(const LanguageModel& model, SeqId seq, const TokenStream& stream, std::size_t uncommitted,
                     const char* role) {
  const std::vector<TokenId> committed = model.committed_tokens(seq);
  const std::vector<TokenId> tokens = stream.tokens();
  const std::size_t expected = tokens.size() - uncommitted;
  bool same = committed.size() == expected;
  for (std::size_t i = 0; same && i < expected; ++i) same = committed[i] == tokens[i];
  if (!same)
    fail(ErrorCode::internal, std::string("speculative decoding: the ") + role + " model's committed tokens (" +
                                  std::to_string(committed.size()) + ") do not match the stream's first " +
                                  std::to_string(expected));
}

}  // namespace

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
  for (int i = trunk; i < n; ++i) eval.nodes.push_back({tree.token(i), tree.parent(i) < trunk ? -1 : tree.parent(i) - trunk});
  std::vector<Matrix> out;
  draft->evaluate({&eval, 1}, out);
  stats.draft_calls += 1;
  stats.draft_nodes += int64_t(eval.nodes.size());
  for (int i = trunk; i < n; ++i)
    if (!tree.has_q(i)) tree.set_q(i, processed_probs(chain, out[0].row(i - trunk)));
  tree.set_draft_state(trunk, n);
}

ParamSpec log_optimum_param() {
  return ParamSpec::boolean("log_optimum", false,
                            "log metrics optimal_acceptance_root (i.i.d. optimum at the root, O(V log V) per step) "
                            "and root_acceptance");
}

SpeculationOptions speculation_options(const Params& params) {
  SpeculationOptions o;
  if (params.has("log_optimum")) o.log_optimum = params.get_bool("log_optimum");
  return o;
}

Stats run_tree_speculation(const ModelSet& models, const DecodeOptions& options, TokenStream& stream,
                           const SamplerChain& chain, TreeDrafter& drafter, const VerifyRule& rule,
                           const SpeculationOptions& research) {
  Stats stats;
  PhaseTimer total(stats, "total");
  LanguageModel& target = models.get("target");
  LanguageModel* draft = drafter.needs_draft_model() ? &models.get("draft") : nullptr;
  if (draft && target.vocab_size() != draft->vocab_size())
    fail(ErrorCode::invalid_argument, "speculative decoding: the target model '" + target.info().name + "' has " +
                                          std::to_string(target.vocab_size()) + " tokens but the draft model '" +
                                          draft->info().name + "' has " + std::to_string(draft->vocab_size()));
  const std::vector<TokenId> prompt = stream.tokens();
  if (prompt.empty()) fail(ErrorCode::invalid_argument, "speculative decoding: the prompt is empty (it needs at least one token)");
  auto target_chain = clone_chain(chain);
  auto draft_chain = clone_chain(chain);
  // Samplers that need their model (top_w's embedding geometry) see the model whose logits they
  // process; verification is exact for any q, so the draft's geometry may differ from the target's.
  target_chain->bind({.model = &target});
  draft_chain->bind({.model = draft ? draft : &target});

  // The target evaluates the last emitted token as the first node of every step's tree; the draft
  // has it committed already (its logits are the root law of the next draft tree).
  const SeqId target_seq = prefill(target, std::span(prompt).first(prompt.size() - 1), stats, true);
  SeqId draft_seq = -1;
  try {
    if (draft) draft_seq = prefill(*draft, prompt, stats, false);
  } catch (...) {
    target.free_sequence(target_seq);
    throw;
  }
  SequenceGuard guard{target, draft, target_seq, draft_seq};
  TokenId last = prompt.back();
  int64_t tree_depth_total = 0;
  double optimum_total = 0.0;  // research.log_optimum: sums over steps with a root draft law
  int64_t root_steps = 0, root_accepts = 0;
  std::size_t target_uncommitted = 1, draft_uncommitted = 0;

  while (!should_stop(stream, options, stats)) {
    const std::size_t base = stream.size();
    std::optional<DraftTree> tree_slot;
    {
      PhaseTimer timer(stats, "draft");
      tree_slot.emplace(draft ? processed_probs(*draft_chain, draft->next_logits(draft_seq)) : std::vector<float>{});
      const std::vector<TokenId> history = stream.tokens();
      DraftContext context{draft, draft_seq, *draft_chain, stats, options.seed, base, history};
      drafter.build(context, *tree_slot);
    }
    DraftTree& tree = *tree_slot;

    // Verification: one target pass over [last] + tree (draft node i is target node i + 1).
    std::vector<int> path;
    TokenId final_token = 0;
    TokenOrigin final_origin = TokenOrigin::sampled;
    Matrix logits;
    std::vector<float> root_p;  // kept for the optimum when research.log_optimum
    {
      PhaseTimer timer(stats, "verify");
      TreeEval eval{target_seq, {{last, -1}}};
      for (const TreeNode& n : tree.nodes()) eval.nodes.push_back({n.token, n.parent + 1});
      std::vector<Matrix> out;
      target.evaluate({&eval, 1}, out);
      logits = std::move(out[0]);
      stats.target_calls += 1;
      stats.target_nodes += int64_t(eval.nodes.size());
      for (int node = -1;;) {
        const std::vector<float> p = processed_probs(*target_chain, logits.row(node + 1));
        const std::size_t position = base + path.size();
        const double residual_u = random_stream(options.seed, RandomStream::residual, position).uniform_double();
        const std::span<const int> proposals = tree.proposals(node);
        if (proposals.empty()) {
          final_token = sample_from_weights(p, residual_u);
          final_origin = path.empty() ? TokenOrigin::sampled : TokenOrigin::bonus;
          break;
        }
        std::vector<TokenId> candidates;
        std::vector<double> accept_u;
        for (std::size_t i = 0; i < proposals.size(); ++i) {
          candidates.push_back(tree.token(proposals[i]));
          accept_u.push_back(random_stream(options.seed, RandomStream::accept, position, i).uniform_double());
        }
        const std::span<const float> q = tree.has_q(node) ? tree.q(node) : std::span<const float>{};
        const VerifyOutcome outcome = rule(p, q, candidates, accept_u, residual_u);
        if (research.log_optimum && node == -1 && !q.empty()) {
          root_p = p;
          root_accepts += outcome.accepted >= 0;
        }
        if (outcome.accepted < 0) {
          final_token = outcome.token;
          final_origin = TokenOrigin::resampled;
          break;
        }
        node = proposals[std::size_t(outcome.accepted)];
        path.push_back(node);
      }
    }
    if (!root_p.empty()) {
      PhaseTimer timer(stats, "oracle");
      optimum_total += optimal_acceptance_iid(root_p, tree.q(-1), int(tree.proposals(-1).size()));
      root_steps += 1;
    }
    stats.steps += 1;
    int deepest = 0;
    for (int i = 0; i < tree.size(); ++i) deepest = std::max(deepest, tree.depth(i));
    tree_depth_total += deepest;
    stats.tokens_proposed += tree.size();
    stats.tokens_accepted += int64_t(path.size());
    stats.record_accepted(int64_t(path.size()));

    // Emit the accepted tokens, then the final one, stopping as soon as a stop condition says so.
    const uint32_t step = uint32_t(stats.steps);
    std::size_t emitted_path = 0;
    bool stop = false;
    for (; emitted_path < path.size() && !stop; ++emitted_path) {
      const int node = path[emitted_path];
      const TokenId token = tree.token(node);
      target_chain->accept(token);
      draft_chain->accept(token);
      stop = emit_token(stream, {token, raw_logprob(logits.row(tree.parent(node) + 1), token), TokenOrigin::draft_accepted, step},
                        options, target, stats);
    }
    const bool final_emitted = !stop;
    if (final_emitted) {
      target_chain->accept(final_token);
      draft_chain->accept(final_token);
      const int final_row = path.empty() ? 0 : path.back() + 1;
      stop = emit_token(stream, {final_token, raw_logprob(logits.row(final_row), final_token), final_origin, step},
                        options, target, stats);
    }

    // Commit the emitted part of the accepted path on both models.
    std::vector<int32_t> target_path{0};
    for (std::size_t i = 0; i < emitted_path; ++i) target_path.push_back(path[i] + 1);
    target.commit(target_seq, target_path);
    // The draft holds the trunk committed and [trunk, evaluated) pending; keep what was accepted.
    const std::size_t trunk = std::size_t(tree.draft_trunk());
    std::vector<int32_t> draft_path;  // accepted pending nodes, as pending-tree indices
    std::vector<TokenId> draft_rest;  // emitted tokens the draft still has to evaluate
    if (draft) {
      PhaseTimer timer(stats, "draft");
      if (emitted_path < trunk) {
        draft->rollback(draft_seq, base + emitted_path);
      } else {
        for (std::size_t i = trunk; i < emitted_path; ++i) {
          if (path[i] < tree.draft_evaluated()) draft_path.push_back(path[i] - int32_t(trunk));
          else draft_rest.push_back(tree.token(path[i]));
        }
        if (!draft_path.empty()) draft->commit(draft_seq, draft_path);
        else if (tree.draft_evaluated() > int(trunk)) draft->rollback(draft_seq, draft->length(draft_seq));
      }
      if (final_emitted && !stop) draft_rest.push_back(final_token);
      if (!draft_rest.empty()) {
        draft->append(draft_seq, draft_rest);
        stats.draft_calls += 1;
        stats.draft_nodes += int64_t(draft_rest.size());
      }
    }
    target_uncommitted = final_emitted ? 1 : 0;
    draft_uncommitted = final_emitted && stop ? 1 : 0;
    last = final_token;
    if (stop) break;
  }

  check_committed(target, target_seq, stream, target_uncommitted, "target");
  if (draft) check_committed(*draft, draft_seq, stream, draft_uncommitted, "draft");
  if (stats.steps > 0) stats.metrics["mean_accepted_length"] = double(stats.tokens_accepted) / double(stats.steps);
  if (stats.steps > 0) {
    stats.metrics["mean_tree_size"] = double(stats.tokens_proposed) / double(stats.steps);
    stats.metrics["mean_tree_depth"] = double(tree_depth_total) / double(stats.steps);
  }
  if (research.log_optimum && root_steps > 0) {
    stats.metrics["optimal_acceptance_root"] = optimum_total / double(root_steps);
    stats.metrics["root_acceptance"] = double(root_accepts) / double(root_steps);
  }
  stats.metrics["tokens_per_step"] = stats.steps ? double(stats.tokens_generated) / double(stats.steps) : 0.0;
  return stats;
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
  context_.stats.draft_calls += 1;
  context_.stats.draft_nodes += int64_t(batch.size());
  const int32_t keep[] = {0};
  std::size_t b = 0;
  for (int node : nodes) {
    if (b == batch.size() || forks_.at(node) != batch[b].seq) continue;
    context_.draft->commit(batch[b].seq, keep);
    tree.set_q(node, processed_probs(context_.chain, out[b].row(0)));
    ++b;
  }
}

namespace {

// Brings the sequences' current nodes to the draft law: forks per node for several sequences,
// the committed trunk for one (a chain).
void advance_sequences(DraftContext& context, DraftTree& tree, std::optional<NodeForks>& forks, std::span<const int> at) {
  if (!forks) return context.evaluate(tree);
  std::vector<int> nodes;
  for (int node : at)
    if (node >= 0 && std::find(nodes.begin(), nodes.end(), node) == nodes.end()) nodes.push_back(node);
  forks->evaluate(tree, nodes);
}

}  // namespace

void IidSequencesDrafter::build(DraftContext& context, DraftTree& tree) {
  std::vector<int> at(std::size_t(k_), -1);  // each sequence's current node
  std::optional<NodeForks> forks;
  if (k_ > 1 && length_ > 1) forks.emplace(context);
  for (int depth = 1; depth <= length_; ++depth) {
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
  std::vector<int> at(std::size_t(k_), -1);  // each sequence's current node; -2 once it ended
  std::optional<NodeForks> forks;
  if (k_ > 1 && length_ > 1) forks.emplace(context);
  for (int depth = 1; depth <= length_; ++depth) {
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
      const TokenId x = sample_from_weights(r, context.rng(depth, uint64_t(j)).uniform_double());
      r[std::size_t(x)] = 0.0f;
      const int child = tree.add_node(node, x);
      tree.propose(child);
      at[std::size_t(j)] = child;
      any = true;
    }
    if (!any) break;
  }
}

}  // namespace decodelab::speculative
