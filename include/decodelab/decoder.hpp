#pragma once
// Decoder: a decoding strategy that grows a TokenStream using one or more LanguageModels
// (by role: "target", "draft", ...). Decoders are created by name from the registry with typed
// parameters and report Stats: model calls, tokens proposed and accepted, wall time per phase.
//
// A decoder sees models only through LanguageModel, owns no model state between calls, and draws
// every random number from PhiloxStream keyed by (options.seed, stream, step), so a run is a pure
// function of (models, parameters, prompt, seed).

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "decodelab/language_model.hpp"
#include "decodelab/registry.hpp"
#include "decodelab/token_stream.hpp"

namespace decodelab {

// Models by role. Roles a decoder needs are declared in its registry entry.
class ModelSet {
 public:
  ModelSet() = default;
  ModelSet(std::initializer_list<std::pair<const std::string, LanguageModel*>> roles) : roles_(roles) {}
  void set(const std::string& role, LanguageModel* model) { roles_[role] = model; }
  LanguageModel* find(const std::string& role) const;
  // Throws Error(not_found) naming the role when it is missing.
  LanguageModel& get(const std::string& role) const;
  const std::map<std::string, LanguageModel*>& roles() const { return roles_; }

 private:
  std::map<std::string, LanguageModel*> roles_;
};

struct DecodeOptions {
  uint64_t seed = 0;
  int max_new_tokens = 64;
  std::vector<TokenId> stop_tokens;  // generation stops after emitting one of these
  // Decoders that grow several candidates before emitting one (smc) finish a candidate once its
  // generated text contains one of these; whoever reads the stream still cuts the output there
  // (the daemon's stop strings). Single-sequence decoders leave them to the reader.
  std::vector<std::string> stop_strings;
  bool stop_at_eos = true;  // the target's eos token stops generation
  // Set it to stop early: read between steps and between prefill chunks, so a generation stops
  // within one step or one chunk of the flag being set (stop reason "cancelled").
  const std::atomic<bool>* cancel = nullptr;
  // Prefill evaluates the prompt in model calls of at most this many tokens (>= 1), checking
  // `cancel` between them: a long prompt's prefill can be stopped, and the time a stop takes is
  // bounded by one chunk's call. Chunking gives the same logits as one call, up to the order of
  // float sums in a backend's kernels (an analytic TableModel's are bit for bit the same).
  int prefill_chunk = kDefaultPrefillChunk;

  // 64: a CPU model of SmolLM2's size prefills 64 tokens in about a second (well inside decodelabd's
  // 2 s shutdown grace), and on the CPU backend chunks of 64 prefill as fast as one call does.
  static constexpr int kDefaultPrefillChunk = 64;
};

struct Stats {
  int64_t steps = 0;         // decoder iterations (one target evaluation each, for most decoders)
  int64_t target_calls = 0;  // target model forward passes
  int64_t draft_calls = 0;   // draft model forward passes
  int64_t target_nodes = 0;  // tokens (tree nodes) the target evaluated
  int64_t draft_nodes = 0;
  int64_t tokens_generated = 0;            // tokens appended to the stream (excluding the prompt)
  int64_t tokens_proposed = 0;             // draft tokens offered to verification
  int64_t tokens_accepted = 0;             // draft tokens accepted by verification
  std::map<std::string, double> seconds;   // wall time per phase: prefill, draft, verify, sample, total
  std::map<std::string, double> metrics;   // decoder-specific figures (documented by each decoder)
  std::vector<int64_t> accepted_per_step;  // histogram: index = tokens accepted in a step
  std::string stop_reason;                 // max_tokens, eos, stop_token, cancelled, length, ...

  double acceptance_rate() const { return tokens_proposed ? double(tokens_accepted) / double(tokens_proposed) : 0.0; }
  double tokens_per_target_call() const { return target_calls ? double(tokens_generated) / double(target_calls) : 0.0; }
  void record_accepted(int64_t n);
};

// Adds the wall time of its scope to stats.seconds[phase].
class PhaseTimer {
 public:
  PhaseTimer(Stats& stats, std::string phase) : stats_(stats), phase_(std::move(phase)), start_(Clock::now()) {}
  ~PhaseTimer() { stats_.seconds[phase_] += std::chrono::duration<double>(Clock::now() - start_).count(); }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  using Clock = std::chrono::steady_clock;
  Stats& stats_;
  std::string phase_;
  Clock::time_point start_;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Extends `stream` (which holds the prompt, and may already hold generated tokens) until a stop
  // condition. Tokens are appended as soon as they are final, so the stream's sink sees them live.
  virtual Stats generate(const ModelSet& models, const DecodeOptions& options, TokenStream& stream) = 0;
};

using DecoderRegistry = Registry<Decoder>;
template <>
DecoderRegistry& DecoderRegistry::instance();

struct RegisterDecoder {
  explicit RegisterDecoder(RegistryEntry<Decoder> entry) { DecoderRegistry::instance().add(std::move(entry)); }
};

// Creates a decoder by name, validating parameters, and checks that `models` has its roles.
std::unique_ptr<Decoder> make_decoder(const std::string& name, const ParamMap& params,
                                      const ModelSet* models = nullptr);

// Stop-condition bookkeeping shared by decoders: appends `record` to the stream, counts it, and
// says whether generation must stop after it (stats.stop_reason is set then).
bool emit_token(TokenStream& stream, const TokenRecord& record, const DecodeOptions& options,
                const LanguageModel& target, Stats& stats);
// Whether to stop before the next step (max tokens reached, cancelled); sets stats.stop_reason.
bool should_stop(const TokenStream& stream, const DecodeOptions& options, Stats& stats);
// Whether generation has stopped already or options.cancel is set (then stop_reason "cancelled"):
// the check between prefill chunks, where max tokens does not apply yet.
bool stop_requested(const DecodeOptions& options, Stats& stats);
// Throws Error(invalid_argument) naming the field when an option is out of range.
void check_decode_options(const DecodeOptions& options);

}  // namespace decodelab
