#pragma once
// GgufModel: a Llama or Qwen2 GGUF model evaluated on the CPU, implementing LanguageModel.
//
// The forward pass runs every node of every tree in a batch through each weight matrix together
// (matmul decodes each weight block once for all nodes). Node i of a tree sits at position
// committed_length + depth(i) and attends to the committed prefix plus its own ancestors-or-self.
//
// KV cache: a sequence's committed keys and values are a SegmentChain (include/decodelab/segment_chain.hpp): an
// immutable, shared chain of segments plus its own growing suffix. fork() freezes the parent's
// suffix into a new shared segment (moved, not copied) and gives both sequences that chain;
// rollback() only shortens the view. Sequence bookkeeping and validation are SequenceTable's.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/model/gguf.hpp"
#include "core/model/quants.hpp"
#include "decodelab/sequence_table.hpp"

namespace decodelab {

struct GgufModelOptions {
  int context = 4096;  // cap on committed + pending tokens per sequence
  int threads = 0;     // 0 = all (OpenMP default)
  // q8: 8-bit activations and integer dot products with quantized weights (llama.cpp's numerics,
  // fast); f32: fp32 dot products with the dequantized weights (HF transformers' numerics).
  MatmulPrecision precision = MatmulPrecision::q8;
  // 0 = every block; N = only the first N transformer blocks, then the final norm and the output
  // head: an early-exit copy of the model, a draft that shares the target's weights and tokenizer
  // (self-speculative decoding: Draft & Verify, Zhang et al. 2023; LayerSkip, Elhoushi et al. 2024).
  int layers = 0;
};

// Hyperparameters read from the GGUF metadata.
struct LlamaConfig {
  std::string arch;  // "llama" or "qwen2"
  int dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, hidden_dim = 0, vocab = 0;
  int n_rot = 0;
  float rope_theta = 10000.0f;
  float norm_eps = 1e-5f;
  bool rope_neox = false;  // qwen2: rotate (i, i + n_rot/2); llama: adjacent pairs (2i, 2i+1)
  int train_context = 0;
};

class GgufModel : public SequenceTable {
 public:
  // Throws Error naming the file and the key or tensor for anything missing or malformed, and
  // Error(unsupported) naming the architecture for anything but llama and qwen2.
  explicit GgufModel(const std::string& path, GgufModelOptions options = {});
  ~GgufModel() override;

  const ModelInfo& info() const override { return info_; }
  const LlamaConfig& config() const { return cfg_; }

  std::string token_text(TokenId token) const override;
  bool has_tokenizer() const override;
  std::vector<TokenId> tokenize(std::string_view text, bool add_special) const override;
  std::string detokenize(std::span<const TokenId> tokens) const override;
  std::optional<Matrix> token_embeddings() const override;
  // Keys and values are fp32: 2 x layers x kv heads x head dim floats per token.
  std::size_t kv_bytes_per_token() const override;
  std::size_t kv_bytes_in_use() const override;

  struct Impl;

 protected:
  void forward(std::span<const TreeJob> batch, std::vector<Matrix>& out) override;
  std::unique_ptr<SequenceStorage> new_storage() override;

 private:
  std::size_t kv_row_bytes() const;
  std::unique_ptr<Impl> impl_;
  LlamaConfig cfg_;
  ModelInfo info_;
};

}  // namespace decodelab
