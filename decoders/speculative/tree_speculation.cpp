// The tree-speculative decoder; see tree_speculation.hpp.
#include "decoders/speculative/tree_speculation.hpp"

#include <algorithm>
#include <optional>
#include <string>

#include "decodelab/error.hpp"
#include "decodelab/random.hpp"
#include "decoders/decode_loop.hpp"
#include "decoders/speculative/draft_sampling.hpp"
#include "decoders/speculative/oracle.hpp"

namespace decodelab::speculative {
namespace {

float raw_logprob(std::span<const float> logits, TokenId token) {
  return float(double(logits[std::size_t(token)]) - log_sum_exp(logits));
}

std::unique_ptr<SamplerChain> clone_chain(const SamplerChain& chain) {
  return std::unique_ptr<SamplerChain>(static_cast<SamplerChain*>(chain.clone().release()));
}

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

// What verification decided in one step: the accepted path (draft node indices, root side first)
// and the token that ends the step, with the target's logits for every node.
struct Verdict {
  std::vector<int> path;
  TokenId final_token = 0;
  TokenOrigin final_origin = TokenOrigin::sampled;
  Matrix logits;  // row 0: after the last emitted token; row i + 1: after draft node i
};

// One generate() call: both models' sequences, the chains, and the step's four phases.
class Speculation {
 public:
  Speculation(DecodeLoop& loop, const SamplerChain& chain, const SamplerChain& draft_chain,
              TreeSpeculationMethod& method, const SpeculationOptions& research)
      : loop_(loop), stats_(loop.stats()), target_(loop.target()), method_(method), research_(research) {
    draft_ = method.drafter->needs_draft_model() ? &loop.models().get("draft") : nullptr;
    if (draft_ && target_.vocab_size() != draft_->vocab_size())
      fail(ErrorCode::invalid_argument, "speculative decoding: the target model '" + target_.info().name + "' has " +
                                            std::to_string(target_.vocab_size()) + " tokens but the draft model '" +
                                            draft_->info().name + "' has " + std::to_string(draft_->vocab_size()));
    const std::vector<TokenId> prompt = loop.stream().tokens();
    if (prompt.empty())
      fail(ErrorCode::invalid_argument, "speculative decoding: the prompt is empty (it needs at least one token)");
    target_chain_ = clone_chain(chain);
    draft_chain_ = clone_chain(draft_chain);
    // Samplers that need their model (top_w's embedding geometry) see the model whose logits they
    // process; verification is exact for any q, so the draft's geometry may differ from the target's.
    target_chain_->bind({.model = &target_});
    draft_chain_->bind({.model = draft_ ? draft_ : &target_});
    // The target evaluates the last emitted token as the first node of every step's tree; the draft
    // has it committed already (its logits are the root law of the next draft tree).
    target_seq_ = loop.open(target_, std::span(prompt).first(prompt.size() - 1));
    if (draft_) draft_seq_ = loop.open(*draft_, prompt);
    last_ = prompt.back();
  }

  // The drafter grows this step's tree, within the room both contexts have left; none when a
  // context is full (generation ends with stop reason "length").
  std::optional<DraftTree> draft() {
    PhaseTimer timer(stats_, "draft");
    step_base_ = loop_.stream().size();
    // The target evaluates [last] + the tree; the draft evaluates the tree and must then take the
    // step's final token.
    const std::size_t target_room = loop_.room(target_, target_seq_);
    if (target_room == 0) {
      loop_.stop_for_length(target_);
      return std::nullopt;
    }
    std::size_t max_nodes = target_room - 1;
    if (draft_) {
      const std::size_t draft_room = loop_.room(*draft_, draft_seq_);
      if (draft_room == 0) {
        loop_.stop_for_length(*draft_);
        return std::nullopt;
      }
      max_nodes = std::min(max_nodes, draft_room - 1);
    }
    DraftTree tree(draft_ ? processed_probs(*draft_chain_, draft_->next_logits(draft_seq_)) : std::vector<float>{});
    const std::vector<TokenId> history = loop_.stream().tokens();
    DraftContext context{draft_,
                         draft_seq_,
                         *draft_chain_,
                         loop_.options().seed,
                         base(),
                         history,
                         int(std::min<std::size_t>(max_nodes, 1 << 20))};
    if (method_.sequence_rule) context.step_key = step_key(base());
    method_.drafter->build(context, tree);
    return tree;
  }

  // One target pass over [last] + tree (draft node i is target node i + 1), then the rule.
  Verdict verify(const DraftTree& tree) {
    PhaseTimer timer(stats_, "verify");
    Verdict v;
    TreeEval eval{target_seq_, {{last_, -1}}};
    for (const TreeNode& n : tree.nodes()) eval.nodes.push_back({n.token, n.parent + 1});
    std::vector<Matrix> out;
    target_.evaluate({&eval, 1}, out);
    v.logits = std::move(out[0]);
    if (method_.sequence_rule) verify_sequences(tree, v);
    else verify_nodes(tree, v);
    return v;
  }

  // Token-level: walk down from the root, the rule deciding each node over its proposals.
  void verify_nodes(const DraftTree& tree, Verdict& v) {
    const uint64_t seed = loop_.options().seed;
    for (int node = -1;;) {
      const std::vector<float> p = processed_probs(*target_chain_, v.logits.row(node + 1));
      const std::size_t position = base() + v.path.size();
      const double residual_u = random_stream(seed, RandomStream::residual, position).uniform_double();
      const std::span<const int> proposals = tree.proposals(node);
      if (proposals.empty()) {
        v.final_token = sample_from_weights(p, residual_u);
        v.final_origin = v.path.empty() ? TokenOrigin::sampled : TokenOrigin::bonus;
        break;
      }
      std::vector<TokenId> candidates;
      std::vector<double> accept_u;
      for (std::size_t i = 0; i < proposals.size(); ++i) {
        candidates.push_back(tree.token(proposals[i]));
        accept_u.push_back(random_stream(seed, RandomStream::accept, position, i).uniform_double());
      }
      const std::span<const float> q = tree.has_q(node) ? tree.q(node) : std::span<const float>{};
      const VerifyOutcome outcome = method_.rule(p, q, candidates, accept_u, residual_u);
      if (research_.log_optimum && node == -1 && !q.empty()) {
        root_p_ = p;
        root_accepts_ += outcome.accepted >= 0;
      }
      if (outcome.accepted < 0) {
        v.final_token = outcome.token;
        v.final_origin = TokenOrigin::resampled;
        break;
      }
      node = proposals[std::size_t(outcome.accepted)];
      v.path.push_back(node);
    }
  }

  // Sequence-level: the rule sees the tree with each node's distinct children in the order they
  // were first proposed and decides the whole step. Node n's test uses random_stream(accept,
  // position, step_key + n): one uniform per node (several nodes share a depth, and the rule may
  // test them all), fresh for every step (see step_key).
  void verify_sequences(const DraftTree& tree, Verdict& v) {
    const uint64_t seed = loop_.options().seed;
    std::vector<std::vector<float>> p(std::size_t(tree.size()) + 1);  // target law after node i at i + 1
    for (int i = -1; i < tree.size(); ++i) p[std::size_t(i + 1)] = processed_probs(*target_chain_, v.logits.row(i + 1));
    const auto draft_law = [&](int node) { return tree.has_q(node) ? tree.q(node) : std::span<const float>{}; };
    SequenceTree branches(p[0], draft_law(-1), method_.draws);
    std::vector<int> draft_node{-1};  // draft node of each rule node
    std::vector<int> rule_node(std::size_t(tree.size()) + 1, -1);
    rule_node[0] = 0;
    std::vector<double> accept_u{0.0};
    std::size_t deepest = 0;
    for (std::size_t at = 0; at < draft_node.size(); ++at) {  // breadth first: parents before children
      const int node = draft_node[at];
      for (int child : tree.proposals(node)) {
        if (rule_node[std::size_t(child + 1)] >= 0) continue;  // a repeated proposal of the same child
        const int n = branches.add(rule_node[std::size_t(node + 1)], tree.token(child), p[std::size_t(child + 1)],
                                   draft_law(child));
        rule_node[std::size_t(child + 1)] = n;
        draft_node.push_back(child);
        const std::size_t depth = std::size_t(tree.depth(child));
        accept_u.push_back(random_stream(seed, RandomStream::accept, base() + depth - 1, step_key(base()) + uint64_t(n))
                               .uniform_double());
        deepest = std::max(deepest, depth);
      }
    }
    std::vector<double> residual_u;
    for (std::size_t d = 0; d <= deepest; ++d)
      residual_u.push_back(random_stream(seed, RandomStream::residual, base() + d).uniform_double());
    const SequenceOutcome outcome = method_.sequence_rule(branches, accept_u, residual_u);
    if (outcome.accepted > 0) v.path = tree.path_to(draft_node[std::size_t(outcome.accepted)]);
    v.final_token = outcome.token;
    v.final_origin = !outcome.bonus   ? TokenOrigin::resampled
                     : v.path.empty() ? TokenOrigin::sampled
                                      : TokenOrigin::bonus;
  }

  // Counts the step, then emits the accepted tokens and the final one; true when generation stops.
  bool emit(const DraftTree& tree, const Verdict& v) {
    record_step(tree, v);
    const uint32_t step = uint32_t(stats_.steps);
    bool stop = false;
    for (emitted_path_ = 0; emitted_path_ < v.path.size() && !stop; ++emitted_path_) {
      const int node = v.path[emitted_path_];
      const TokenId token = tree.token(node);
      accept(token);
      stop = loop_.emit(
          {token, raw_logprob(v.logits.row(tree.parent(node) + 1), token), TokenOrigin::draft_accepted, step});
    }
    final_emitted_ = !stop;
    if (final_emitted_) {
      accept(v.final_token);
      const int final_row = v.path.empty() ? 0 : v.path.back() + 1;
      stop = loop_.emit({v.final_token, raw_logprob(v.logits.row(final_row), v.final_token), v.final_origin, step});
    }
    stopped_ = stop;
    return stop;
  }

  // Commits the emitted part of the accepted path on both models.
  void commit(const DraftTree& tree, const Verdict& v) {
    std::vector<int32_t> target_path{0};
    for (std::size_t i = 0; i < emitted_path_; ++i) target_path.push_back(v.path[i] + 1);
    target_.commit(target_seq_, target_path);
    if (draft_) commit_draft(tree, v);
    target_uncommitted_ = final_emitted_ ? 1 : 0;
    draft_uncommitted_ = final_emitted_ && stopped_ ? 1 : 0;
    last_ = v.final_token;
  }

  // Checks both models against the stream and writes the decoder's metrics.
  void finish() {
    // A stopped prefill leaves the sequences holding part of the prompt, by design.
    if (!loop_.prefill_stopped()) {
      check_committed(target_, target_seq_, loop_.stream(), target_uncommitted_, "target");
      if (draft_) check_committed(*draft_, draft_seq_, loop_.stream(), draft_uncommitted_, "draft");
    }
    if (stats_.steps > 0) {
      stats_.metrics["mean_accepted_length"] = double(stats_.tokens_accepted) / double(stats_.steps);
      stats_.metrics["mean_tree_size"] = double(stats_.tokens_proposed) / double(stats_.steps);
      stats_.metrics["mean_tree_depth"] = double(tree_depth_total_) / double(stats_.steps);
    }
    if (research_.log_optimum && root_steps_ > 0) {
      stats_.metrics["optimal_acceptance_root"] = optimum_total_ / double(root_steps_);
      stats_.metrics["root_acceptance"] = double(root_accepts_) / double(root_steps_);
    }
    stats_.metrics["tokens_per_step"] = stats_.steps ? double(stats_.tokens_generated) / double(stats_.steps) : 0.0;
  }

 private:
  // Stream position decided by this step's depth-1 nodes.
  std::size_t base() const { return step_base_; }

  void accept(TokenId token) {
    target_chain_->accept(token);
    draft_chain_->accept(token);
  }

  void record_step(const DraftTree& tree, const Verdict& v) {
    if (!root_p_.empty()) {
      PhaseTimer timer(stats_, "oracle");
      optimum_total_ += optimal_acceptance_iid(root_p_, tree.q(-1), int(tree.proposals(-1).size()));
      root_steps_ += 1;
      root_p_.clear();
    }
    stats_.steps += 1;
    int deepest = 0;
    for (int i = 0; i < tree.size(); ++i) deepest = std::max(deepest, tree.depth(i));
    tree_depth_total_ += deepest;
    stats_.tokens_proposed += tree.size();
    stats_.tokens_accepted += int64_t(v.path.size());
    stats_.record_accepted(int64_t(v.path.size()));
  }

  // The draft holds the trunk committed and [trunk, evaluated) pending; keep what was emitted,
  // then append the emitted tokens it has not evaluated.
  void commit_draft(const DraftTree& tree, const Verdict& v) {
    PhaseTimer timer(stats_, "draft");
    const std::size_t trunk = std::size_t(tree.draft_trunk());
    std::vector<int32_t> draft_path;  // accepted pending nodes, as pending-tree indices
    std::vector<TokenId> draft_rest;  // emitted tokens the draft still has to evaluate
    if (emitted_path_ < trunk) {
      draft_->rollback(draft_seq_, step_base_ + emitted_path_);
    } else {
      for (std::size_t i = trunk; i < emitted_path_; ++i) {
        if (v.path[i] < tree.draft_evaluated()) draft_path.push_back(v.path[i] - int32_t(trunk));
        else draft_rest.push_back(tree.token(v.path[i]));
      }
      if (!draft_path.empty()) draft_->commit(draft_seq_, draft_path);
      else if (tree.draft_evaluated() > int(trunk)) draft_->rollback(draft_seq_, draft_->length(draft_seq_));
    }
    if (final_emitted_ && !stopped_) draft_rest.push_back(v.final_token);
    if (!draft_rest.empty()) draft_->append(draft_seq_, draft_rest);
  }

  DecodeLoop& loop_;
  Stats& stats_;
  LanguageModel& target_;
  LanguageModel* draft_ = nullptr;
  TreeSpeculationMethod& method_;
  const SpeculationOptions& research_;
  std::unique_ptr<SamplerChain> target_chain_, draft_chain_;
  SeqId target_seq_ = -1, draft_seq_ = -1;
  TokenId last_ = 0;
  // This step: the stream position it decides first, what it emitted.
  std::size_t step_base_ = 0;
  std::size_t emitted_path_ = 0;
  bool final_emitted_ = false, stopped_ = false;
  std::size_t target_uncommitted_ = 1, draft_uncommitted_ = 0;
  // Figures over the run.
  int64_t tree_depth_total_ = 0;
  std::vector<float> root_p_;  // this step's root target law, when research.log_optimum
  double optimum_total_ = 0.0;
  int64_t root_steps_ = 0, root_accepts_ = 0;
};

}  // namespace

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

TreeSpeculativeDecoder::TreeSpeculativeDecoder(std::unique_ptr<SamplerChain> chain, TreeSpeculationMethod method,
                                               SpeculationOptions research, std::unique_ptr<SamplerChain> draft_chain)
    : chain_(std::move(chain)), draft_chain_(std::move(draft_chain)), method_(std::move(method)), research_(research) {}

Stats TreeSpeculativeDecoder::generate(const ModelSet& models, const DecodeOptions& options, TokenStream& stream) {
  DecodeLoop loop(models, options, stream);
  Speculation s(loop, *chain_, draft_chain_ ? *draft_chain_ : *chain_, method_, research_);
  while (loop.running()) {
    const std::optional<DraftTree> drafted = s.draft();
    if (!drafted) break;
    const DraftTree& tree = *drafted;
    const Verdict verdict = s.verify(tree);
    const bool stop = s.emit(tree, verdict);
    s.commit(tree, verdict);
    if (stop) break;
  }
  s.finish();
  return loop.finish();
}

RegisterTreeSpeculation::RegisterTreeSpeculation(TreeSpeculationEntry entry) {
  auto make = entry.make;
  std::vector<ParamSpec> params = entry.params;
  if (entry.needs_draft_model)
    for (ParamSpec& spec : draft_sampling_params()) params.push_back(std::move(spec));
  const bool draft_model = entry.needs_draft_model;
  DecoderRegistry::instance().add({
      .name = entry.name,
      .doc = entry.doc,
      .params = with_sampling_params(std::move(params)),
      .roles =
          entry.needs_draft_model ? std::vector<std::string>{"target", "draft"} : std::vector<std::string>{"target"},
      .make = [make, draft_model](const Params& p) -> std::unique_ptr<Decoder> {
        std::unique_ptr<SamplerChain> draft_chain;
        if (draft_model)
          draft_chain = draft_chain_from_params(p, p.has("deterministic") && p.get_bool("deterministic"));
        return std::make_unique<TreeSpeculativeDecoder>(chain_from_params(p), make(p), speculation_options(p),
                                                        std::move(draft_chain));
      },
  });
}

}  // namespace decodelab::speculative
