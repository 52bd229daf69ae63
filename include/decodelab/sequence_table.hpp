#pragma once
// SequenceTable: the part of a LanguageModel that every backend shares, so that a backend is only
// its forward pass and its KV storage.
//
// The table owns the sequences: their ids, their committed tokens (a SegmentChain, so fork() shares
// them), the pending tree of the last evaluation with its logits, and the cached next-token logits.
// It validates every call before a backend sees it: batches (validate_batch: known sequences,
// well-formed trees, tokens in the vocabulary, the context length), commit paths (root-to-node
// paths of the pending tree) and rollback lengths; all of those are Error(invalid_argument) naming
// the model, the sequence and what was wrong.
//
// A backend derives from it and provides
//   forward(batch, out)   the logits of every node of every tree, one forward pass; it keeps the
//                         nodes' keys and values as the sequence's pending rows
//   new_storage()         the KV storage of a new, empty sequence (nullptr: the backend keeps none)
// and a SequenceStorage per sequence that commits pending rows, truncates committed ones and forks
// (shares its committed rows with a new sequence). TableModel keeps no storage; GgufModel keeps a
// SegmentChain of rows; CudaModel keeps reference-counted device pages.

#include <map>
#include <memory>
#include <span>
#include <vector>

#include "decodelab/language_model.hpp"
#include "decodelab/segment_chain.hpp"

namespace decodelab {

// A backend's keys and values for one sequence: rows for its committed tokens, and rows for the
// nodes of the last evaluated tree (pending). The table calls these only with validated arguments.
class SequenceStorage {
 public:
  virtual ~SequenceStorage() = default;
  // The storage of a new sequence whose committed rows are this one's, shared rather than copied
  // where the backend can; no pending rows.
  virtual std::unique_ptr<SequenceStorage> fork() = 0;
  // Appends the pending rows of `path` (a root-to-node path of the last evaluated tree, root first,
  // not empty) after the first `length` committed rows (all of them).
  virtual void commit(std::size_t length, std::span<const int32_t> path) = 0;
  // Keeps the first `length` committed rows (fewer than there are).
  virtual void truncate(std::size_t length) = 0;
  // The pending tree was committed or dropped: its rows may be let go.
  virtual void drop_pending() {}
  // The sequence is being freed (may throw; then the sequence stays). The destructor follows.
  virtual void release() {}
};

class SequenceTable : public LanguageModel {
 public:
  SeqId new_sequence() final;
  SeqId fork(SeqId seq) final;
  void free_sequence(SeqId seq) final;
  std::size_t length(SeqId seq) const final;
  std::vector<TokenId> committed_tokens(SeqId seq) const final;
  void commit(SeqId seq, std::span<const int32_t> path) final;
  void rollback(SeqId seq, std::size_t new_length) final;
  std::span<const float> next_logits(SeqId seq) final;

 protected:
  // One tree of a validated batch, as the forward pass sees it.
  struct TreeJob {
    SeqId seq = 0;
    std::span<const TreeNode> nodes;
    std::vector<int32_t> depth;          // node i sits at position committed + depth[i] (roots: depth 0)
    std::size_t committed = 0;           // committed tokens of the sequence
    SequenceStorage* storage = nullptr;  // the sequence's storage (nullptr when the backend keeps none)
    bool last_logits_only = false;       // only the last node's logits are wanted (TreeEval's field)
  };

  // Fills out[i] (out has batch.size() entries) with one row of logits per node of batch[i], or
  // with the last node's row alone when batch[i].last_logits_only (a backend may also give every
  // row then), and keeps the nodes' keys and values as the pending rows of batch[i].storage.
  virtual void forward(std::span<const TreeJob> batch, std::vector<Matrix>& out) = 0;
  virtual std::unique_ptr<SequenceStorage> new_storage() { return nullptr; }
  // The logits after `seq`'s committed prefix when none are cached (after a rollback, or the fork
  // of a sequence that had none). The default evaluates the last committed token again (a forward
  // pass, counted in the counters) and throws for an empty sequence; TableModel computes them.
  virtual std::vector<float> compute_next_logits(SeqId seq);

  // The last `n` committed tokens of `seq` (all of them when it has fewer).
  std::vector<TokenId> last_tokens(SeqId seq, std::size_t n) const;
  // Frees every sequence's storage without release(): for a backend's destructor, while what the
  // storages point into still exists.
  void clear_sequences() { sequences_.clear(); }

 private:
  struct Sequence {
    SegmentChain<std::vector<TokenId>> tokens;  // committed
    std::vector<TreeNode> pending;              // the last evaluated tree
    Matrix pending_logits;                      // its logits: one row per node, or the last node's only
    bool pending_last_only = false;             // pending_logits is the last node's row alone
    std::vector<float> next;                    // logits after the committed prefix; empty = unknown
    std::unique_ptr<SequenceStorage> storage;
  };

  void do_evaluate(std::span<const TreeEval> batch, std::vector<Matrix>& out) final;
  Sequence& sequence(SeqId seq);
  const Sequence& sequence(SeqId seq) const;
  void drop_pending(Sequence& s);
  SeqId add(Sequence s);  // under a fresh id

  std::map<SeqId, Sequence> sequences_;
  SeqId next_id_ = 0;
};

}  // namespace decodelab
