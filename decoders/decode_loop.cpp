#include "decoders/decode_loop.hpp"

#include <algorithm>

namespace decodelab {

DecodeLoop::DecodeLoop(const ModelSet& models, const DecodeOptions& options, TokenStream& stream)
    : models_(models),
      options_(options),
      stream_(stream),
      target_(&models.get("target")),
      draft_(models.find("draft")) {
  check_decode_options(options_);
  if (draft_ == target_) draft_ = nullptr;  // one object in both roles: its calls count as the target's
  target_start_ = target_->counters();
  if (draft_) draft_start_ = draft_->counters();
}

DecodeLoop::~DecodeLoop() { free_all(); }

void DecodeLoop::free_all() noexcept {
  for (const auto& [model, seq] : owned_) {
    try {
      model->free_sequence(seq);
    } catch (...) {  // freeing must not throw while an error unwinds; a bad id was the decoder's bug
    }
  }
  owned_.clear();
}

SeqId DecodeLoop::open(LanguageModel& model, std::span<const TokenId> tokens) {
  PhaseTimer timer(stats_, "prefill");
  const SeqId seq = adopt(model, model.new_sequence());
  // A chunk's logits depend only on the committed prefix and the chunk, so chunks give one call's
  // logits; the flag is read before each call because a call cannot be interrupted.
  const std::size_t chunk = std::size_t(options_.prefill_chunk);
  for (std::size_t done = 0; done < tokens.size(); done += chunk) {
    if (stop_requested(options_, stats_)) {
      prefill_stopped_ = true;
      break;
    }
    model.append(seq, tokens.subspan(done, std::min(chunk, tokens.size() - done)));
  }
  return seq;
}

SeqId DecodeLoop::adopt(LanguageModel& model, SeqId seq) {
  owned_.insert({&model, seq});
  return seq;
}

void DecodeLoop::release(LanguageModel& model, SeqId seq) {
  owned_.erase({&model, seq});
  model.free_sequence(seq);
}

std::size_t DecodeLoop::room(const LanguageModel& model, SeqId seq) const {
  const int context = model.info().context_length;
  if (context <= 0) return std::size_t(1) << 40;
  const std::size_t used = model.length(seq);
  return used >= std::size_t(context) ? 0 : std::size_t(context) - used;
}

void DecodeLoop::stop_for_length(const LanguageModel& model) {
  stats_.stop_reason = "length";
  const int target_context = target_->info().context_length, context = model.info().context_length;
  if (&model != target_ && (target_context <= 0 || context < target_context))
    stats_.metrics["context_full_draft"] = 1.0;
}

Stats DecodeLoop::finish() {
  free_all();
  const ModelCounters& t = target_->counters();
  stats_.target_calls = t.evaluate_calls - target_start_.evaluate_calls;
  stats_.target_nodes = t.nodes_evaluated - target_start_.nodes_evaluated;
  if (draft_) {
    const ModelCounters& d = draft_->counters();
    stats_.draft_calls = d.evaluate_calls - draft_start_.evaluate_calls;
    stats_.draft_nodes = d.nodes_evaluated - draft_start_.nodes_evaluated;
  }
  stats_.seconds["total"] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return std::move(stats_);
}

}  // namespace decodelab
