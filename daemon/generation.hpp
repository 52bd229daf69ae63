#pragma once
// What the daemon does for load_model and generate, apart from the sockets: the table of loaded
// models (shared between requests; each has a ForwardGatherer, so concurrent generations on it
// share its forward passes), request validation against the registries, and one generation run
// that streams chunks and ends with a result message.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/batching_model.hpp"
#include "core/reward.hpp"
#include "daemon/protocol.hpp"
#include "decodelab/decoder.hpp"
#include "decodelab/language_model.hpp"

namespace decodelab::daemon {

// Why a request was stopped early; the first reason given wins.
// `failed`: another member of the same request (n / seeds) failed, so the request's reply is that
// error and the rest need not run.
enum class CancelReason : int { none = 0, client, deadline, disconnected, shutdown, stop_string, failed };
const char* to_string(CancelReason reason);

class CancelState {
 public:
  // Returns true when this call cancelled it (not already cancelled).
  bool request(CancelReason why) {
    int expected = 0;
    const bool first = reason_.compare_exchange_strong(expected, int(why));
    flag_.store(true);
    return first;
  }
  bool cancelled() const { return flag_.load(); }
  CancelReason reason() const { return CancelReason(reason_.load()); }
  const std::atomic<bool>* flag() const { return &flag_; }

 private:
  std::atomic<bool> flag_{false};
  std::atomic<int> reason_{0};
};

class KvAdmission;  // daemon/kv_admission.hpp

struct LoadedModel {
  std::string name;
  std::string spec;
  std::string target;  // the model a draft derives from ("" otherwise)
  std::shared_ptr<LanguageModel> model;
  std::shared_ptr<LoadedModel> target_ref;  // keeps a draft's target alive after unload
  // Every generation reaches the model through its own GatheringModel on this gatherer: their
  // evaluate calls merge into one forward pass per step (core/batching_model.hpp).
  std::shared_ptr<ForwardGatherer> gatherer;
  // Its KV budget: generations reserve room here before they run (daemon/kv_admission.hpp).
  std::shared_ptr<KvAdmission> kv;
};

class ModelTable {
 public:
  // Rejects a name already in use, a draft without a loaded target, a target for a spec that is
  // not a draft, and a spec that does not parse.
  void check_new(const std::string& name, const std::string& spec, const std::string& target) const;
  // Files are read only from inside `model_dir` ("/" for anywhere; see model_files.hpp). The
  // model's KV budget is `kv_budget_bytes` (0: default_kv_budget_bytes()). Throws ProtocolError
  // naming the field at fault (name, target, spec).
  std::shared_ptr<LoadedModel> load(const std::string& name, const std::string& spec, const std::string& target,
                                    const std::string& model_dir, std::size_t kv_budget_bytes = 0);
  void unload(const std::string& name);
  // Throws ProtocolError(not_found, field) when `name` is not loaded.
  std::shared_ptr<LoadedModel> get(const std::string& name, const std::string& field) const;
  Value describe() const;
  static Value describe_one(const LoadedModel& m);
  // Per loaded model (by name): its batching figures (batching_value).
  Value batching() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<LoadedModel>> models_;
};

// A generate request checked against the models and registries, ready to run on a worker.
struct PreparedGeneration {
  GenerateRequest request;
  std::map<std::string, std::shared_ptr<LoadedModel>> models;  // by role
  std::unique_ptr<Decoder> decoder;                            // checked; make_decoder() makes more like it
  // The seeds to run: {request.seed} for a single generation, else those `n` or `seeds` named.
  std::vector<uint64_t> seeds;
  // Takes `decoder` on the first call, then makes a new one from the same (checked) parameters:
  // each concurrent member of a request needs its own. Thread-safe.
  std::unique_ptr<Decoder> make_decoder();

 private:
  std::unique_ptr<std::mutex> decoder_mutex_ = std::make_unique<std::mutex>();
};
// Roles a decoder uses only when its parameters ask for them (smc: reward_model).
std::vector<std::string> optional_roles(const std::string& decoder);
// Every role a decoder takes: target, its required roles, its optional ones.
std::vector<std::string> decoder_roles(const std::string& decoder);

// Throws ProtocolError naming the field at fault (models.<role>, decoder, params, prompt_ids[i], ...).
PreparedGeneration prepare_generation(const ModelTable& models, GenerateRequest request);

// Rejects a prompt that leaves no room in the model's context (context_length 0 = unbounded).
void check_prompt_fits(const ModelInfo& info, std::size_t prompt_tokens, const std::string& field);

struct GenerationContext {
  uint64_t request_id = 0;
  uint64_t seed = 0;
  bool tag_seed = false;  // a member of a request with several seeds: chunks carry "seed"
  CancelState* cancel = nullptr;
  double stream_interval_s = 0.002;
  int prefill_chunk = DecodeOptions::kDefaultPrefillChunk;  // stops act between prefill chunks
  std::chrono::steady_clock::time_point received;
  std::function<void(const Value&)> send;  // thread-safe
  RewardFn reward;  // asks the client (see reward_channel.hpp); required when the request has client_reward
};

struct GenerationOutcome {
  Value result;        // the final "result" message
  int64_t tokens = 0;  // tokens generated
};
// Runs one generation (seed ctx.seed, with `decoder`) on its models, each through a GatheringModel
// of its own, and sends chunks when streaming. Returns the result message for the caller to send
// once it has retired the request (so a client that reuses the id as soon as it sees the result
// is not refused). Throws Error / ProtocolError for a generation that fails. Several may run at
// once on one PreparedGeneration (the members of a request with several seeds).
GenerationOutcome run_generation(const PreparedGeneration& job, Decoder& decoder, const GenerationContext& ctx);

// The batching figures of a gatherer, as status and metrics report them.
Value batching_value(const GatherStats& stats);
// A loaded model's KV budget, memory in use, reservations and waiting generations (status).
Value kv_value(const LoadedModel& m);

// How many bytes at the end of streamed `text` must wait: the longest suffix that is a proper
// prefix of a stop string (it may still become one).
std::size_t stop_string_holdback(std::string_view text, const std::vector<std::string>& stops);

}  // namespace decodelab::daemon
