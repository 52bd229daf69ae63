#pragma once
// The speculative step every decoder in this folder shares, so each decoder file only says how
// it drafts and which rule verifies:
//
//   draft:   the drafter grows a DraftTree with the draft model (DraftContext)
//   verify:  one target evaluate() over [last emitted token] + tree; walk down from the root,
//            at each node run the rule over its proposals; an accepted proposal moves the walk to
//            that child, a rejection ends the step with the rule's residual token, and a node
//            with no proposals ends it with a bonus token drawn from p
//   emit:    accepted tokens, then the final token, through emit_token (stops mid-step)
//   commit:  the accepted path on the target and on the draft, so both hold the same prefix
//
// Both models always commit every emitted token except the last, which the next step evaluates
// as the first node of its target tree (and which the draft already appended to get the next
// root law). Randomness: drafting uses RandomStream::draft, acceptance RandomStream::accept
// (substream = the proposal's index at its node), final tokens RandomStream::residual, all keyed
// by the stream position being decided.
#include <functional>
#include <map>

#include "core/decoder.hpp"
#include "core/random.hpp"
#include "samplers/sampler.hpp"
#include "speculative/tree.hpp"
#include "speculative/verify.hpp"

namespace decodelab::speculative {

// What a drafter may use: the draft model positioned at the stream, the sampler chain, the seed.
struct DraftContext {
  LanguageModel* draft;  // null for model-free drafters
  SeqId seq;
  SamplerChain& chain;
  Stats& stats;
  uint64_t seed;
  std::size_t base;  // stream position decided by depth-1 nodes (= the draft's committed length)
  std::span<const TokenId> history;  // the stream so far (prompt and generated tokens)

  std::size_t position(int depth) const { return base + std::size_t(depth) - 1; }
  // The draft stream for a node at `depth` and a substream (draft sequence, node index).
  PhiloxStream rng(int depth, uint64_t substream) const {
    return random_stream(seed, RandomStream::draft, position(depth), substream);
  }
  // One draft forward that fills q for every node that lacked it. When the tree so far is a chain
  // the draft commits it and evaluates only the new nodes (chains cost one node per token);
  // otherwise it evaluates the tree below its committed trunk.
  void evaluate(DraftTree& tree);
};

// Evaluates draft-tree nodes on forks of the draft sequence, one fork per node (holding the path
// to it), so each node is evaluated exactly once however the tree branches; k nodes cost one
// batched pass of k single tokens. The forks are freed on destruction.
class NodeForks {
 public:
  explicit NodeForks(DraftContext& context) : context_(context) {}
  ~NodeForks();
  NodeForks(const NodeForks&) = delete;
  NodeForks& operator=(const NodeForks&) = delete;

  // One draft pass over `nodes` (their parents are the root or were evaluated here); fills q.
  void evaluate(DraftTree& tree, std::span<const int> nodes);

 private:
  DraftContext& context_;
  std::map<int, SeqId> forks_;
};

class TreeDrafter {
 public:
  virtual ~TreeDrafter() = default;
  // Adds nodes and proposals to `tree`, whose root law q(-1) is already set (when there is a
  // draft model).
  virtual void build(DraftContext& context, DraftTree& tree) = 0;
  // Model-free drafters (n-gram lookup) say false: no "draft" role, no q, and then only rules
  // that ignore q (verify_target_only) are valid.
  virtual bool needs_draft_model() const { return true; }
};

using VerifyRule = std::function<VerifyOutcome(std::span<const float> p, std::span<const float> q,
                                               std::span<const TokenId> candidates,
                                               std::span<const double> accept_u, double residual_u)>;

// Research options of the shared step; all off by default, so nothing here costs a normal run.
struct SpeculationOptions {
  // Per step with a draft law at the root: the i.i.d. optimum alpha*_k(p, q) at the root
  // (oracle.hpp, O(V log V), timed as "oracle") for k = the root's proposal count, and whether
  // the root accepted. Metrics: optimal_acceptance_root (mean optimum), root_acceptance.
  bool log_optimum = false;
};
// The decoder parameter `log_optimum` (for a decoder's ParamSpec list) and reading it back.
ParamSpec log_optimum_param();
SpeculationOptions speculation_options(const Params& params);

// Runs speculative steps until a stop condition. Needs role "target", role "draft" with the same
// vocabulary when the drafter uses a model, and a non-empty prompt in `stream`.
Stats run_tree_speculation(const ModelSet& models, const DecodeOptions& options, TokenStream& stream,
                           const SamplerChain& chain, TreeDrafter& drafter, const VerifyRule& rule,
                           const SpeculationOptions& research = {});

// Drafters shared by several decoders.
// k sequences of length L drawn i.i.d. from q, merged into a prefix tree; every node proposes
// one child per sequence through it, in sequence order (SpecInfer with replacement, SpecTr, SD).
class IidSequencesDrafter final : public TreeDrafter {
 public:
  IidSequencesDrafter(int k, int length) : k_(k), length_(length) {}
  void build(DraftContext& context, DraftTree& tree) override;

 private:
  int k_;
  int length_;
};

// k sequences of length L where the sequences passing through a node draw their next tokens
// from q without replacement (distinct children, proposed in draw order); a sequence ends when
// its node has no draft mass left (Sequoia-style SpecInfer).
class WorSequencesDrafter final : public TreeDrafter {
 public:
  WorSequencesDrafter(int k, int length) : k_(k), length_(length) {}
  void build(DraftContext& context, DraftTree& tree) override;

 private:
  int k_;
  int length_;
};

}  // namespace decodelab::speculative
