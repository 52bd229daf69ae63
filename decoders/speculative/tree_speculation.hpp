#pragma once
// Tree speculation: the one speculative decoder. A method is a drafter plus a verification rule;
// every speculative decoder name (sd, spectr, specinfer, dyspec, ngram, ...) registers one.
//
// Each step reads as the papers do:
//
//   draft:   the drafter grows a DraftTree with the draft model (drafter.hpp)
//   verify:  one target evaluate() over [last emitted token] + tree; then either a token-level
//            rule walks down from the root, running over each node's proposals (an accepted
//            proposal moves the walk to that child, a rejection ends the step with the rule's
//            residual token, a node with no proposals ends it with a bonus token drawn from p),
//            or a sequence-level rule (sequence_verify.hpp) judges the whole tree, leaf to root,
//            and returns the accepted path and the final token
//   emit:    the accepted tokens, then the final token, stopping mid-step if a stop condition says so
//   commit:  the emitted path on the target and on the draft, so both hold the same prefix
//
// Both models always commit every emitted token except the last, which the next step evaluates
// as the first node of its target tree (and which the draft already appended to get the next
// root law). Randomness: drafting uses RandomStream::draft, acceptance RandomStream::accept
// (substream = the proposal's index at its node), final tokens RandomStream::residual, all keyed
// by the stream position being decided.
//
// A new method is one file: its drafter (or a shared one) and a registration:
//
//   const RegisterTreeSpeculation reg({
//       .name = "my_method",
//       .doc = "...",
//       .params = {ParamSpec::integer("k", 2, 1, 64, "drafts per step")},
//       .make = [](const Params& p) { return TreeSpeculationMethod{std::make_unique<MyDrafter>(...), verify_rrs_iid};
//       },
//   });
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "decodelab/decoder.hpp"
#include "decodelab/verify.hpp"
#include "decoders/speculative/drafter.hpp"
#include "decoders/speculative/sequence_verify.hpp"

namespace decodelab::speculative {

// The rule that decides a node: p the target law there, q the draft law (empty for model-free
// drafts), the proposed tokens in verification order with one acceptance uniform each, and a
// uniform for the residual or bonus draw.
using VerifyRule =
    std::function<VerifyOutcome(std::span<const float> p, std::span<const float> q, std::span<const TokenId> candidates,
                                std::span<const double> accept_u, double residual_u)>;

// A sequence-level rule: the draft tree with each node's distinct children in the order they were
// first proposed, one accept uniform per node and one residual uniform per depth.
using SequenceRule = std::function<SequenceOutcome(const SequenceTree& tree, std::span<const double> accept_u,
                                                   std::span<const double> residual_u)>;

// How a method drafts and verifies: a token-level `rule`, or a `sequence_rule` (then `rule` is
// unused) told how the drafter drew the distinct children (`draws`; the merged tree of i.i.d.
// sequences counts as drawn without replacement, see sequence_verify.hpp).
struct TreeSpeculationMethod {
  std::unique_ptr<TreeDrafter> drafter;
  VerifyRule rule;
  SequenceRule sequence_rule = nullptr;
  DrawKind draws = DrawKind::iid;
};

// Research options of the step; all off by default, so nothing here costs a normal run.
struct SpeculationOptions {
  // Per step with a draft law at the root: the i.i.d. optimum alpha*_k(p, q) at the root
  // (oracle.hpp, O(V log V), timed as "oracle") for k = the root's proposal count, and whether
  // the root accepted. Metrics: optimal_acceptance_root (mean optimum), root_acceptance.
  bool log_optimum = false;
};
// The decoder parameter `log_optimum` (for a method's ParamSpec list) and reading it back.
ParamSpec log_optimum_param();
SpeculationOptions speculation_options(const Params& params);

// The decoder. Needs role "target", and role "draft" with the same vocabulary when the drafter
// uses a model, and a non-empty prompt. Stats metrics: mean_accepted_length, mean_tree_size,
// mean_tree_depth, tokens_per_step (and the research metrics above).
// `chain` gives the target law p; `draft_chain` the law drafts are drawn from (null: `chain`, see
// draft_sampling.hpp).
class TreeSpeculativeDecoder final : public Decoder {
 public:
  TreeSpeculativeDecoder(std::unique_ptr<SamplerChain> chain, TreeSpeculationMethod method,
                         SpeculationOptions research = {}, std::unique_ptr<SamplerChain> draft_chain = nullptr);
  Stats generate(const ModelSet& models, const DecodeOptions& options, TokenStream& stream) override;

 private:
  std::unique_ptr<SamplerChain> chain_, draft_chain_;
  TreeSpeculationMethod method_;
  SpeculationOptions research_;
};

// Registers a speculative method under `name`: its parameters (the sampling parameters are
// added, and for draft-model methods the draft's own, draft_sampling.hpp; a method's boolean
// `deterministic` parameter, when it has one, tells them the drafter ranks rather than samples),
// and roles target and draft, or target alone for model-free drafters.
struct TreeSpeculationEntry {
  std::string name;
  std::string doc;
  std::vector<ParamSpec> params;
  bool needs_draft_model = true;
  std::function<TreeSpeculationMethod(const Params&)> make;
};
struct RegisterTreeSpeculation {
  explicit RegisterTreeSpeculation(TreeSpeculationEntry entry);
};

}  // namespace decodelab::speculative
