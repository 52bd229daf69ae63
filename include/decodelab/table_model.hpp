#pragma once
// TableModel: an analytic LanguageModel whose next-token logits are an explicit function of the
// last `order` tokens. Decoders run on it exactly as on a real model, and tests know the exact
// distributions p(. | context), so output laws and acceptance rates can be checked exactly.
//
//   random(vocab, order, seed, sharpness): logits ~ sharpness * N(0, 1), drawn from Philox keyed
//     by the seed and a hash of the context; sharpness 0 is uniform, larger is lower entropy.
//   explicit table: any function context -> logits (e.g. a map of hand-written distributions).
//   derive_draft(target, temper, noise): a draft q with controllable divergence from p:
//     q = (1 - noise) * softmax(logits_p / temper) + noise * r, r a random distribution (own seed).

#include <functional>
#include <map>
#include <memory>

#include "decodelab/sequence_table.hpp"

namespace decodelab {

class TableModel final : public SequenceTable {
 public:
  // Logits for the next token given the (at most `order`) last tokens of the context.
  using LogitsFn = std::function<std::vector<float>(std::span<const TokenId> context)>;

  TableModel(std::string name, int vocab_size, int order, LogitsFn fn, TokenId eos = -1);

  static std::shared_ptr<TableModel> random(int vocab_size, int order, uint64_t seed, double sharpness,
                                            TokenId eos = -1);
  // Each context (exactly `order` tokens, or fewer at the start) maps to a probability vector;
  // contexts not in the table use `fallback`.
  static std::shared_ptr<TableModel> from_table(int vocab_size, int order,
                                                std::map<std::vector<TokenId>, std::vector<float>> probs,
                                                std::vector<float> fallback, TokenId eos = -1);
  static std::shared_ptr<TableModel> derive_draft(const TableModel& target, double temper, double noise,
                                                  uint64_t noise_seed, double noise_sharpness = 1.0);

  // The exact next-token distribution after `context` (the full token history; only the last
  // `order` tokens matter).
  std::vector<float> exact_probs(std::span<const TokenId> context) const;
  std::vector<float> exact_logits(std::span<const TokenId> context) const;
  int order() const { return order_; }

  // Replaces the token texts (default " a" .. " z", " t26", ...), e.g. to give some tokens
  // punctuation for decoders that look at text. Size must equal the vocabulary; texts must be
  // distinct and non-empty.
  void set_token_texts(std::vector<std::string> texts);
  // Gives the model a token-embedding matrix (default: none). `random_embeddings` draws one from
  // N(0, 1) with its own seed.
  void set_token_embeddings(Matrix embeddings);
  void random_embeddings(int dim, uint64_t seed);
  std::optional<Matrix> token_embeddings() const override { return embeddings_; }
  uint64_t token_embeddings_key() const override { return embeddings_key_; }  // new on every set

  const ModelInfo& info() const override { return info_; }
  // Caps committed + pending tokens per sequence, as a real model's context does (default 0:
  // unbounded), so tests can run decoders into the limit.
  void set_context_length(int tokens) { info_.context_length = tokens; }
  std::string token_text(TokenId token) const override;
  bool has_tokenizer() const override { return true; }
  // Whitespace-separated token names ("a", "b", ..., "t26", ...) or decimal ids "#12"; with custom
  // texts, greedy longest match of the texts (after stripping their leading spaces).
  std::vector<TokenId> tokenize(std::string_view text, bool add_special) const override;

 protected:
  void forward(std::span<const TreeJob> batch, std::vector<Matrix>& out) override;
  std::vector<float> compute_next_logits(SeqId seq) override;  // exact_logits, no forward pass

 private:
  ModelInfo info_;
  std::vector<std::string> texts_;  // empty: the default names
  std::optional<Matrix> embeddings_;
  uint64_t embeddings_key_ = fresh_key();
  int order_;
  LogitsFn fn_;
};

// Hash of a token context, used to key generated distributions.
uint64_t hash_context(std::span<const TokenId> context, uint64_t seed);

}  // namespace decodelab
