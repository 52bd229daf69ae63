#pragma once
// DecodeLoop: the bookkeeping every decoder repeats, so that a decoder's file holds only its step.
//
//   Stats generate(const ModelSet& models, const DecodeOptions& options, TokenStream& stream) override {
//     DecodeLoop loop(models, options, stream);
//     const SeqId seq = loop.open(loop.target(), stream.tokens());   // prefill, freed by the loop
//     while (loop.running()) {                                       // max tokens, cancel
//       ... decide a token from loop.target().next_logits(seq) ...
//       if (loop.emit({token, logprob, TokenOrigin::sampled, step})) break;  // eos, stop tokens
//       loop.target().append(seq, {&token, 1});
//     }
//     return loop.finish();
//   }
//
// It owns:
//   * prefill: open() creates a sequence holding the given tokens, timed as "prefill", evaluated in
//     chunks of options.prefill_chunk tokens with the cancel flag read before each, so a cancel
//     (the daemon's deadline, disconnect and shutdown too) stops a long prompt's prefill within a
//     chunk. A stopped prefill leaves stop_reason "cancelled", running() false and the sequence
//     holding only part of the tokens: the decoder ends without emitting (prefill_stopped() says
//     so, for decoders that check their sequences against the stream at the end);
//   * the stop conditions: running() before a step, emit() after each token (emit_token's rules);
//   * freeing: every sequence opened or adopted is freed when the loop ends, however it ends;
//   * the model-call counts: finish() sets Stats' target/draft calls and nodes from the models'
//     own ModelCounters (the change over the loop's life), so no decoder counts forward passes by
//     hand and none can miss one (a next_logits() recomputed after a rollback counts too);
//   * the "total" wall time.
// When one model object serves as both target and draft, its calls are reported as the target's.

#include <chrono>
#include <set>
#include <utility>

#include "decodelab/decoder.hpp"

namespace decodelab {

class DecodeLoop {
 public:
  // Throws Error(invalid_argument) for options out of range (check_decode_options).
  DecodeLoop(const ModelSet& models, const DecodeOptions& options, TokenStream& stream);
  ~DecodeLoop();
  DecodeLoop(const DecodeLoop&) = delete;
  DecodeLoop& operator=(const DecodeLoop&) = delete;

  const ModelSet& models() const { return models_; }
  LanguageModel& target() const { return *target_; }
  const DecodeOptions& options() const { return options_; }
  TokenStream& stream() const { return stream_; }
  Stats& stats() { return stats_; }

  // A new sequence on `model` holding `tokens` (prefill, timed as "prefill"); freed with the loop.
  // Evaluated options().prefill_chunk tokens per model call; when a stop is requested before a
  // call (cancel, or a stop reason already set), the rest is skipped: the sequence then holds a
  // prefix of `tokens` and prefill_stopped() is true.
  SeqId open(LanguageModel& model, std::span<const TokenId> tokens);
  // Whether a stop cut an open() short, leaving a sequence without all its tokens.
  bool prefill_stopped() const { return prefill_stopped_; }
  // Hands a sequence the decoder made (a fork) to the loop, which frees it at the end.
  SeqId adopt(LanguageModel& model, SeqId seq);
  // Frees an opened or adopted sequence now (a particle that died, a trial that lost).
  void release(LanguageModel& model, SeqId seq);

  // Whether to run another step: false once a stop condition holds (max tokens, cancelled, or a
  // stop emit() reported); stats().stop_reason says which.
  bool running() { return !should_stop(stream_, options_, stats_); }
  // Tokens `seq` can still take (committed + pending) before `model`'s context length; a very
  // large number when the model has none.
  std::size_t room(const LanguageModel& model, SeqId seq) const;
  // Ends generation because `model`'s context is full: stop_reason "length", and the metric
  // context_full_draft = 1 when it was the draft's context, and it is the smaller one.
  void stop_for_length(const LanguageModel& model);
  // Appends a final token to the stream; true when generation must stop after it.
  bool emit(const TokenRecord& record) { return emit_token(stream_, record, options_, *target_, stats_); }

  // The stats of the run: model-call counts from the models' counters, the total time.
  Stats finish();

 private:
  void free_all() noexcept;

  const ModelSet& models_;
  const DecodeOptions& options_;
  TokenStream& stream_;
  LanguageModel* target_;
  LanguageModel* draft_;
  ModelCounters target_start_, draft_start_;
  Stats stats_;
  bool prefill_stopped_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::set<std::pair<LanguageModel*, SeqId>> owned_;  // a set: particle decoders release thousands
};

}  // namespace decodelab
