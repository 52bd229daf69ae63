#include "decodelab/decoder.hpp"

#include <algorithm>
#include <string>

namespace decodelab {

template <>
DecoderRegistry& DecoderRegistry::instance() {
  static DecoderRegistry registry("decoder");
  return registry;
}

LanguageModel* ModelSet::find(const std::string& role) const {
  auto it = roles_.find(role);
  return it == roles_.end() ? nullptr : it->second;
}

LanguageModel& ModelSet::get(const std::string& role) const {
  LanguageModel* m = find(role);
  if (!m) {
    std::string message = "no model in role '" + role + "'; given:";
    for (const auto& [r, model] : roles_) message += " " + r;
    if (roles_.empty()) message += " none";
    fail(ErrorCode::not_found, message);
  }
  return *m;
}

void Stats::record_accepted(int64_t n) {
  if (n < 0) return;
  if (accepted_per_step.size() <= std::size_t(n)) accepted_per_step.resize(std::size_t(n) + 1, 0);
  accepted_per_step[std::size_t(n)] += 1;
}

std::unique_ptr<Decoder> make_decoder(const std::string& name, const ParamMap& params, const ModelSet* models) {
  const auto& entry = DecoderRegistry::instance().get(name);
  if (models) {
    for (const std::string& role : entry.roles) {
      if (!models->find(role))
        fail(ErrorCode::invalid_argument, "decoder '" + name + "' needs a model in role '" + role + "'");
    }
    const LanguageModel* target = models->find("target");
    for (const auto& [role, model] : models->roles()) {
      if (target && model && model->vocab_size() != target->vocab_size()) {
        fail(ErrorCode::invalid_argument, "model in role '" + role + "' has vocabulary " +
                                              std::to_string(model->vocab_size()) + ", the target has " +
                                              std::to_string(target->vocab_size()));
      }
    }
  }
  return DecoderRegistry::instance().create(name, params);
}

bool stop_requested(const DecodeOptions& options, Stats& stats) {
  if (!stats.stop_reason.empty()) return true;
  if (options.cancel && options.cancel->load(std::memory_order_relaxed)) {
    stats.stop_reason = "cancelled";
    return true;
  }
  return false;
}

void check_decode_options(const DecodeOptions& options) {
  if (options.prefill_chunk < 1) {
    fail(ErrorCode::invalid_argument, "decode option prefill_chunk must be >= 1 (tokens per prefill call), got " +
                                          std::to_string(options.prefill_chunk));
  }
}

bool should_stop(const TokenStream& stream, const DecodeOptions& options, Stats& stats) {
  if (stop_requested(options, stats)) return true;
  if (int64_t(stream.generated_size()) >= options.max_new_tokens) {
    stats.stop_reason = "max_tokens";
    return true;
  }
  return false;
}

bool emit_token(TokenStream& stream, const TokenRecord& record, const DecodeOptions& options,
                const LanguageModel& target, Stats& stats) {
  stream.append(record);
  stats.tokens_generated += 1;
  if (options.stop_at_eos && target.info().eos >= 0 && record.id == target.info().eos) {
    stats.stop_reason = "eos";
    return true;
  }
  if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), record.id) != options.stop_tokens.end()) {
    stats.stop_reason = "stop_token";
    return true;
  }
  return should_stop(stream, options, stats);
}

}  // namespace decodelab
