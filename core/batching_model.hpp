#pragma once
// Batching concurrent generations on one model: their evaluate() calls are merged into one forward
// pass per step, with generations joining and leaving between steps.
//
// A ForwardGatherer owns access to one real model. Every generation that uses the model gets its
// own GatheringModel, a LanguageModel proxy that the generation's decoder uses as if it were the
// model itself. The decoder needs no knowledge of it:
//
//   auto gatherer = std::make_shared<ForwardGatherer>(model);      // once per loaded model
//   GatheringModel a(gatherer), b(gatherer);                       // one per generation (thread)
//   thread 1: decoder->generate({{"target", &a}}, ...)             // both run as if alone; their
//   thread 2: decoder->generate({{"target", &b}}, ...)             // steps share forward passes
//
//   * evaluate() queues the call and blocks. The first caller to find no forward pass running
//     becomes the leader: it waits until every member (live GatheringModel) of the gatherer has
//     queued a call, or until a short gather window passes (a member busy elsewhere, e.g. on its
//     draft model or waiting for a client's reward, does not hold the others for long), then runs
//     one evaluate() on the real model over every queued call's trees and hands each caller its
//     own rows. A lone member never waits: it is the only member, so its call is the whole batch.
//   * Every other call (new_sequence, fork, free_sequence, commit, rollback, next_logits, length,
//     committed_tokens) goes straight to the real model under the gatherer's model lock. Reads of
//     the vocabulary (info, tokenize, detokenize, token_text, token_embeddings) are const and go
//     straight through without it.
//   * A call whose trees are invalid (unknown sequence, bad token, context full) fails alone: each
//     call is validated before it joins a batch, and so is its room in the model's KV budget,
//     counting the calls admitted before it. A forward pass that fails fails every call in it.
//
// Outputs do not depend on batching: the backends compute each tree's rows independently of the
// other trees in the batch (GGUF: every matmul row and attention head per node; tests check it
// bit for bit), so a generation's tokens and log-probabilities are the same alone or batched,
// and cancelling one member changes nothing for the others. A GatheringModel's counters count
// only its own calls (a merged forward pass counts once for each member in it, as it would alone),
// so decoders' Stats are unchanged too.
//
// Thread-safety: a GatheringModel is used by one thread at a time (like any LanguageModel); any
// number of GatheringModels on one gatherer may be used concurrently from different threads. The
// real model must not be used directly while gatherers' members use it, except through lock().

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "decodelab/language_model.hpp"

namespace decodelab {

// How long a leader waits for members that have not queued a call yet. It stops waiting as soon
// as every member has, so a lone member never waits; the window only matters while some member
// is busy elsewhere (sampling, its draft model, a client's reward) or waits for a CPU.
struct GatherPolicy {
  // At most this fraction of the last forward pass's duration: a member between two steps
  // normally needs far less (sampling, bookkeeping), and a late one then costs the others a
  // bounded share of a step ...
  double window_fraction = 0.25;
  // ... never longer than this, and at least min_window (tests use it to make merging certain).
  std::chrono::microseconds max_window{20000};
  std::chrono::microseconds min_window{0};
};

// What the gatherer has done: forward passes and how many calls (generations) each merged.
struct GatherStats {
  int64_t forward_passes = 0;
  int64_t calls = 0;                   // evaluate() calls served (sum of batch sizes)
  int64_t nodes = 0;                   // tree nodes evaluated (tokens) over all passes
  std::map<int, int64_t> batch_sizes;  // calls merged in one pass -> passes
};

class ForwardGatherer {
 public:
  explicit ForwardGatherer(std::shared_ptr<LanguageModel> model, GatherPolicy policy = {});
  ForwardGatherer(const ForwardGatherer&) = delete;
  ForwardGatherer& operator=(const ForwardGatherer&) = delete;

  LanguageModel& model() const { return *model_; }
  const std::shared_ptr<LanguageModel>& shared_model() const { return model_; }
  // The model lock: held for every forward pass and every bookkeeping call. Hold it to use the
  // real model directly (e.g. to derive another model from it).
  std::unique_lock<std::mutex> lock() { return std::unique_lock<std::mutex>(model_mutex_); }
  GatherStats stats() const;
  int members() const;

 private:
  friend class GatheringModel;
  struct Call {
    std::span<const TreeEval> batch;
    std::vector<Matrix>* out = nullptr;
    bool done = false;
    std::exception_ptr error;
  };

  void join();
  void leave();
  // Queues `call` and returns when it is done (having led a forward pass or been served by one).
  void evaluate(Call& call);
  void run_batch(std::vector<Call*>& calls);

  std::shared_ptr<LanguageModel> model_;
  GatherPolicy policy_;
  std::mutex model_mutex_;  // the real model: forward passes and bookkeeping calls

  mutable std::mutex mutex_;         // everything below
  std::condition_variable arrived_;  // a call was queued or a member left (wakes the leader)
  std::condition_variable served_;   // a forward pass ended (wakes the callers it served)
  int members_ = 0;
  std::vector<Call*> queued_;
  bool leading_ = false;  // a leader is gathering or running a forward pass
  std::chrono::steady_clock::duration last_forward_{};
  GatherStats stats_;
};

class GatheringModel final : public LanguageModel {
 public:
  explicit GatheringModel(std::shared_ptr<ForwardGatherer> gatherer);
  ~GatheringModel() override;
  GatheringModel(const GatheringModel&) = delete;
  GatheringModel& operator=(const GatheringModel&) = delete;

  const ModelInfo& info() const override { return real().info(); }
  std::string token_text(TokenId token) const override { return real().token_text(token); }
  bool has_tokenizer() const override { return real().has_tokenizer(); }
  std::vector<TokenId> tokenize(std::string_view text, bool add_special) const override {
    return real().tokenize(text, add_special);
  }
  std::string detokenize(std::span<const TokenId> tokens) const override { return real().detokenize(tokens); }
  std::optional<Matrix> token_embeddings() const override { return real().token_embeddings(); }
  uint64_t token_embeddings_key() const override { return real().token_embeddings_key(); }
  // The real model's KV figures and budget (its budget is checked again, under the model lock, for
  // each call merged into a forward pass).
  std::size_t kv_bytes_per_token() const override { return real().kv_bytes_per_token(); }
  std::size_t kv_bytes_in_use() const override { return real().kv_bytes_in_use(); }
  std::size_t kv_budget() const override { return real().kv_budget(); }
  void set_kv_budget(std::size_t bytes) override;

  SeqId new_sequence() override;
  SeqId fork(SeqId seq) override;
  void free_sequence(SeqId seq) override;
  std::size_t length(SeqId seq) const override;
  std::vector<TokenId> committed_tokens(SeqId seq) const override;
  void commit(SeqId seq, std::span<const int32_t> path) override;
  void rollback(SeqId seq, std::size_t new_length) override;
  std::span<const float> next_logits(SeqId seq) override;

 protected:
  void do_evaluate(std::span<const TreeEval> batch, std::vector<Matrix>& out) override;

 private:
  LanguageModel& real() const { return gatherer_->model(); }
  // Runs f on the real model under the model lock. counted(): forward passes the real model
  // makes inside f (next_logits after a rollback) count in this model's counters too.
  template <typename F>
  auto locked(F&& f) const;
  template <typename F>
  auto counted(F&& f);

  std::shared_ptr<ForwardGatherer> gatherer_;
};

}  // namespace decodelab
