#pragma once
// Drafters: how a speculative method proposes tokens. A drafter grows a DraftTree (tree.hpp) with
// the draft model, through a DraftContext that positions the draft at the stream; the
// tree-speculative decoder (tree_speculation.hpp) then verifies the tree with the method's rule.
//
// Randomness: a drafter draws from RandomStream::draft keyed by the stream position its node
// decides and a substream (the draft sequence or node index), through DraftContext::rng.
#include <map>
#include <span>
#include <vector>

#include "decodelab/decoder.hpp"
#include "decodelab/random.hpp"
#include "decodelab/sampler.hpp"
#include "decoders/speculative/tree.hpp"

namespace decodelab::speculative {

// The law plain sampling would draw from after `logits`: the chain's distribution, or a point
// mass on the token a terminal sampler (greedy) selected.
std::vector<float> processed_probs(SamplerChain& chain, std::span<const float> logits);

// How a drafter picks a child from a law: a sample (the law is what verification assumes), or the
// most probable token (deterministic: the candidates carry no draft law, so only rules exact for
// any candidates apply, such as verify_target_only).
enum class DraftDraw { sample, most_probable };
// A sample from `law` with uniform u, or its most probable token (the lowest id among ties).
TokenId draw_child(std::span<const float> law, DraftDraw how, double u);
// The decoder parameter `deterministic` (for a method's ParamSpec list) and reading it back.
ParamSpec deterministic_param();
DraftDraw draft_draw(const Params& params);

// What a drafter may use: the draft model positioned at the stream, the sampler chain, the seed.
struct DraftContext {
  LanguageModel* draft;  // null for model-free drafters
  SeqId seq;
  SamplerChain& chain;
  uint64_t seed;
  std::size_t base;                  // stream position decided by depth-1 nodes (= the draft's committed length)
  std::span<const TokenId> history;  // the stream so far (prompt and generated tokens)
  // The most nodes the tree may have: the room left in the target's and the draft's contexts.
  // Drafters cap their own size parameters by it up front, never by what they drew, so the
  // proposals stay distributed as the verification rule assumes.
  int max_nodes;

  // Added to every substream (see step_key()); 0 keeps the draws keyed by position alone.
  uint64_t step_key = 0;

  std::size_t position(int depth) const { return base + std::size_t(depth) - 1; }
  // The draft stream for a node at `depth` and a substream (draft sequence, node index).
  PhiloxStream rng(int depth, uint64_t substream) const {
    return random_stream(seed, RandomStream::draft, position(depth), substream + step_key);
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

// A substream offset unique to the step that starts at stream position `base` (substreams below
// 2^20 stay distinct). Keying by position alone is safe for token-level rules: a step's output
// depends on a deeper draft token or accept uniform only when it emitted the token before it, and
// then the next step starts past that position. Sequence-level rules look at the whole tree, so a
// step that ends early has used the draws of positions the next step decides again; drawing them
// afresh per step keeps each step's draws independent of what came before.
inline uint64_t step_key(std::size_t base) { return uint64_t(base) << 20; }

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

}  // namespace decodelab::speculative
