#pragma once
// LanguageModel: the only view decoders have of a model, whether an analytic table, a GGUF model
// on CPU or on CUDA.
//
// A model owns KV-cache *sequences*. A sequence has a committed prefix (tokens whose keys and
// values are cached). Decoders extend it by evaluating a *token tree* hanging off the committed
// prefix: node i is (token, parent), parent == -1 for a child of the prefix's last token, otherwise
// an earlier node. One evaluation returns, for every node, the next-token logits after
// prefix + path(root .. node). A chain is the tree with parent[i] = i - 1.
//
// The evaluated tree stays pending until the decoder commits one root-to-node path of it (which
// becomes part of the prefix) or evaluates another tree (which replaces it). rollback() shortens the
// committed prefix; fork() makes a new sequence sharing the committed prefix without copying it.
//
//   SeqId s = model.new_sequence();
//   model.append(s, prompt);                     // prefill: evaluate the chain and commit it
//   auto p = model.next_logits(s);               // distribution of the next token
//   model.evaluate({{s, tree}}, out);            // verify a draft tree in one pass
//   model.commit(s, accepted_path);              // keep one path, drop the rest
//
// Logits are raw (before temperature or truncation); decoders process them with samplers.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "decodelab/distribution.hpp"

namespace decodelab {

using SeqId = int32_t;

struct TreeNode {
  TokenId token = 0;
  int32_t parent = -1;  // -1: child of the committed prefix; else index of an earlier node
};

// One tree to evaluate against one sequence.
struct TreeEval {
  SeqId seq = 0;
  std::vector<TreeNode> nodes;
  // Only the logits after the last node are wanted (a prompt's prefill): out gets that one row,
  // and a backend may skip the output head for the other nodes, which is a large part of a
  // prefill's work when the vocabulary is large. Committing a path that ends elsewhere leaves
  // next_logits to be computed again.
  bool last_logits_only = false;
};

// Row-major [rows x cols] fp32 matrix (logits: one row per tree node, cols = vocabulary size).
struct Matrix {
  int rows = 0;
  int cols = 0;
  std::vector<float> data;

  void resize(int r, int c) {
    rows = r;
    cols = c;
    data.resize(std::size_t(r) * std::size_t(c));
  }
  std::span<float> row(int r) { return {data.data() + std::size_t(r) * cols, std::size_t(cols)}; }
  std::span<const float> row(int r) const { return {data.data() + std::size_t(r) * cols, std::size_t(cols)}; }
};

// Chain helper: nodes for tokens t0 -> t1 -> ..., the first hanging off `parent` (-1: the prefix).
// `first_index` is the tree index the first node will have (when appending to an existing tree).
std::vector<TreeNode> chain_nodes(std::span<const TokenId> tokens, int32_t parent = -1, int32_t first_index = 0);

// Depth of every node (roots have depth 0); throws Error(invalid_argument) for a malformed tree.
std::vector<int32_t> tree_depths(std::span<const TreeNode> nodes);

struct ModelInfo {
  std::string name;          // e.g. "table(vocab=16,order=2,seed=1)" or a GGUF file name
  std::string architecture;  // "table", "llama", "qwen2", ...
  int vocab_size = 0;
  int context_length = 0;  // maximum committed + pending tokens per sequence; 0 = unbounded
  TokenId bos = -1;        // -1: none
  TokenId eos = -1;        // -1: none
  bool add_bos = false;    // whether prompts should start with bos
};

// Counters every model keeps; decoders and benchmarks read them.
struct ModelCounters {
  int64_t evaluate_calls = 0;   // evaluate() invocations (each is one forward pass)
  int64_t nodes_evaluated = 0;  // tree nodes across all calls
};

class LanguageModel {
 public:
  virtual ~LanguageModel() = default;

  virtual const ModelInfo& info() const = 0;
  int vocab_size() const { return info().vocab_size; }

  // --- vocabulary ---
  virtual std::string token_text(TokenId token) const = 0;
  virtual bool has_tokenizer() const { return false; }
  virtual std::vector<TokenId> tokenize(std::string_view text, bool add_special) const;
  virtual std::string detokenize(std::span<const TokenId> tokens) const;
  // Token-embedding matrix [vocab x dim] when the model has one (Top-W uses it); empty otherwise.
  virtual std::optional<Matrix> token_embeddings() const { return std::nullopt; }
  // Names the matrix token_embeddings() returns: equal keys mean the same matrix, for the life of
  // the process (keys are never reused), so samplers can cache what they derive from it without
  // fetching it again (for GGUF that is a dequantization of the whole table). The default, one key
  // per model object, suits models whose embeddings never change; others override it.
  virtual uint64_t token_embeddings_key() const { return object_key_; }

  // --- sequences (KV cache) ---
  virtual SeqId new_sequence() = 0;
  // A new sequence whose committed prefix is `seq`'s, shared not copied. Pending nodes are not forked.
  virtual SeqId fork(SeqId seq) = 0;
  virtual void free_sequence(SeqId seq) = 0;
  // Committed tokens of `seq`.
  virtual std::size_t length(SeqId seq) const = 0;
  virtual std::vector<TokenId> committed_tokens(SeqId seq) const = 0;

  // Evaluates every tree in `batch` (one forward pass for all of them); out[i] gets one row of
  // logits per node of batch[i] (one row, the last node's, when batch[i].last_logits_only). A
  // sequence may appear at most once in a batch.
  void evaluate(std::span<const TreeEval> batch, std::vector<Matrix>& out);
  // Keeps the path of pending nodes `path` (root first, each the parent of the next) as committed
  // tokens and drops the other pending nodes.
  virtual void commit(SeqId seq, std::span<const int32_t> path) = 0;
  // Shortens the committed prefix to `new_length` tokens and drops pending nodes.
  virtual void rollback(SeqId seq, std::size_t new_length) = 0;
  // Logits of the token after the committed prefix (computed on demand when a rollback or fork left
  // them unknown). Throws when the sequence is empty.
  virtual std::span<const float> next_logits(SeqId seq) = 0;

  // Convenience: evaluate `tokens` as a chain on `seq` (last_logits_only) and commit them all;
  // returns next_logits.
  std::span<const float> append(SeqId seq, std::span<const TokenId> tokens);

  const ModelCounters& counters() const { return counters_; }
  void reset_counters() { counters_ = {}; }

  // --- KV memory ---
  // Bytes of keys and values one token of one sequence holds (0: the model keeps none, like a
  // table model).
  virtual std::size_t kv_bytes_per_token() const { return 0; }
  // Bytes of keys and values the model's sequences hold now, committed (rows that forks share
  // count once) and pending (the last evaluated trees).
  virtual std::size_t kv_bytes_in_use() const { return 0; }
  // A ceiling on kv_bytes_in_use(), 0 = none. An evaluate() whose nodes would take the model past
  // it throws Error(resource_exhausted) naming the model and the budget before any work is done,
  // so a decoder wider than memory allows fails cleanly instead of exhausting the machine. The
  // check counts a sequence's previous pending tree as still held, so it errs on the safe side;
  // committing a path may exceed the ceiling by that path's rows for a moment.
  virtual void set_kv_budget(std::size_t bytes) { kv_budget_ = bytes; }
  virtual std::size_t kv_budget() const { return kv_budget_; }

 protected:
  virtual void do_evaluate(std::span<const TreeEval> batch, std::vector<Matrix>& out) = 0;
  ModelCounters counters_;
  static uint64_t fresh_key();  // process-unique, for token_embeddings_key()

 private:
  uint64_t object_key_ = fresh_key();
  std::size_t kv_budget_ = 0;
};

// Validates a batch against a model before evaluation: sequence ids known, trees well formed,
// tokens in range, context length respected. SequenceTable (include/decodelab/sequence_table.hpp) calls it for
// the backends derived from it; a model implementing do_evaluate itself calls it there.
void validate_batch(const LanguageModel& model, std::span<const TreeEval> batch);

// Throws Error(resource_exhausted) when evaluating `nodes` more tree nodes would take `model` past
// its KV budget (LanguageModel::set_kv_budget); `pending_nodes` are nodes already admitted to the
// same forward pass (ForwardGatherer checks each merged call on its own, so only the call that
// does not fit fails).
void check_kv_room(const LanguageModel& model, std::size_t nodes, std::size_t pending_nodes = 0);

}  // namespace decodelab
