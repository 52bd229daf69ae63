#pragma once
// CudaModel: a Llama or Qwen2 model evaluated on one CUDA device, implementing LanguageModel with
// the same semantics as GgufModel (core/model/gguf_model.hpp), so decoders cannot tell them apart
// except by speed and rounding.
//
//   auto m = std::make_shared<CudaModel>("qwen.gguf", CudaModelOptions{.device = 0});
//   // or: load_model("gguf(path=qwen.gguf,backend=cuda,device=0,dtype=f16)")
//
// Weights: dequantized from any type GgufModel reads (dequantize_row) and uploaded at load as
// fp16, bf16 or fp32. GEMMs are cuBLAS (fp32 accumulation and output); the residual stream is fp32.
// The KV cache is fp16 (fp32 with fp32 weights) in pages of `page_tokens` tokens, each page holding
// every layer's keys and values. A sequence is a list of pages: fork() copies the list and shares
// the pages (reference counts), a write into a shared page copies that one page first, rollback()
// shortens the list. An evaluation's nodes keep their K/V in the sequence's pending rows; commit()
// gathers the chosen path's rows into pages. Sequence bookkeeping and validation are SequenceTable's.
//
// A single-node evaluation (batch-1 decode) replays a captured CUDA graph of the whole forward pass;
// everything that changes per step (token, position, page pointers) lives in device metadata.

#include <memory>
#include <string>

#include "core/model/gguf_model.hpp"
#include "decodelab/sequence_table.hpp"

namespace decodelab {

struct CudaModelOptions {
  int device = 0;
  int context = 4096;         // cap on committed + pending tokens per sequence
  std::string dtype = "f16";  // weight type on the device: f16, bf16 or f32
  int page_tokens = 64;       // tokens per KV page
  int split_tokens = 256;     // keys per attention split (flash-decoding chunks, up to 64 splits)
  bool graphs = true;         // replay a CUDA graph for single-node evaluations
  int layers = 0;             // 0 = every block; N = the first N (see GgufModelOptions::layers)
};

class CudaModel : public SequenceTable {
 public:
  // Loads a GGUF file; Error(unsupported) when there is no CUDA device, Error(unsupported) naming
  // what was being allocated when device memory runs out, GgufModel's errors for the file.
  CudaModel(const std::string& path, CudaModelOptions options = {});
  // A model of the given shape with random weights generated on the device (benchmarks):
  // uniform weights scaled by 1/sqrt(fan-in), unit norms, no tokenizer.
  static std::unique_ptr<CudaModel> random(const LlamaConfig& config, uint64_t seed, CudaModelOptions options = {});
  ~CudaModel() override;

  const ModelInfo& info() const override;
  const LlamaConfig& config() const;
  // Bytes of weights on the device, and bytes a single-token forward reads (weights + committed KV
  // of a sequence of `length` tokens): the roofline numerator.
  std::size_t weight_bytes() const;
  std::size_t bytes_per_token(std::size_t length) const;
  // KV memory is counted in whole pages: a page's bytes over its tokens per token, and every page
  // some sequence holds (shared pages once).
  std::size_t kv_bytes_per_token() const override;
  std::size_t kv_bytes_in_use() const override;

  std::string token_text(TokenId token) const override;
  bool has_tokenizer() const override;
  std::vector<TokenId> tokenize(std::string_view text, bool add_special) const override;
  std::string detokenize(std::span<const TokenId> tokens) const override;
  std::optional<Matrix> token_embeddings() const override;

  // Device pointer to the logits [nodes x vocab] of the last evaluation (valid until the next one),
  // for device-side sampling (core/cuda/sampling.hpp).
  const float* device_logits() const;
  // Graph replays and captures so far (benchmarks and tests check the graph path ran).
  int64_t graph_replays() const;
  int64_t graph_captures() const;

  struct Impl;

 protected:
  void forward(std::span<const TreeJob> batch, std::vector<Matrix>& out) override;
  std::unique_ptr<SequenceStorage> new_storage() override;

 private:
  CudaModel();
  std::unique_ptr<Impl> impl_;
};

}  // namespace decodelab
