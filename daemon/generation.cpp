// Loaded models, generate validation and one generation run (see generation.hpp).
#include "daemon/generation.hpp"

#include <algorithm>
#include <mutex>
#include <set>

#include "core/prompt.hpp"
#include "daemon/kv_admission.hpp"
#include "daemon/model_files.hpp"
#include "decodelab/model_factory.hpp"
#include "samplers/constraints/constraint.hpp"

namespace decodelab::daemon {

using Clock = std::chrono::steady_clock;

const char* to_string(CancelReason reason) {
  switch (reason) {
    case CancelReason::none: return "none";
    case CancelReason::client: return "cancelled";
    case CancelReason::deadline: return "deadline";
    case CancelReason::disconnected: return "disconnected";
    case CancelReason::shutdown: return "shutdown";
    case CancelReason::stop_string: return "stop_string";
    case CancelReason::failed: return "failed";
  }
  return "unknown";
}

// ------------------------------------------------------------------------------------------------
// Models

namespace {

// The model kind of a spec: its name, or gguf for a bare *.gguf path (include/decodelab/model_factory.hpp).
std::string spec_kind(const std::string& spec) {
  if (spec.size() > 5 && spec.ends_with(".gguf") && spec.find('(') == std::string::npos) return "gguf";
  try {
    return parse_spec(spec).first;
  } catch (const Error& e) {
    reject(to_string(e.code()), "spec", e.what());
  }
}

// Model kinds derived from a loaded model (`target`): include/decodelab/model_factory.hpp's draft(...). Their
// loaders receive the target; every other loader ignores it, so a target given to them is a
// mistake worth reporting.
bool derives_from_target(const std::string& kind) { return kind == "draft"; }

}  // namespace

void ModelTable::check_new(const std::string& name, const std::string& spec, const std::string& target) const {
  const std::string kind = spec_kind(spec);
  try {
    ModelLoaderRegistry::instance().get(kind);
  } catch (const Error& e) {
    reject(to_string(e.code()), "spec", e.what());
  }
  if (derives_from_target(kind) && target.empty()) {
    reject(to_string(ErrorCode::invalid_argument), "target",
           "model kind '" + kind + "' derives from a loaded model: name it in field 'target'");
  }
  if (!derives_from_target(kind) && !target.empty()) {
    reject(to_string(ErrorCode::invalid_argument), "target",
           "model kind '" + sanitize_utf8(kind) +
               "' does not derive from another model; field 'target' is only for draft(...) specs");
  }
  std::lock_guard lock(mutex_);
  if (models_.count(name)) {
    reject(to_string(ErrorCode::invalid_argument), "name",
           "a model named '" + name + "' is already loaded; unload it first");
  }
  if (!target.empty() && !models_.count(target)) {
    reject(to_string(ErrorCode::not_found), "target", "target model '" + target + "' is not loaded");
  }
}

std::shared_ptr<LoadedModel> ModelTable::load(const std::string& name, const std::string& spec,
                                              const std::string& target, const std::string& model_dir,
                                              std::size_t kv_budget_bytes) {
  auto loaded = std::make_shared<LoadedModel>();
  loaded->name = name;
  loaded->spec = spec;
  loaded->target = target;
  const OpenedModelSpec opened(spec, model_dir);
  try {
    if (!target.empty()) {
      loaded->target_ref = get(target, "target");
      // Deriving a draft reads the target, so it waits for the target's current forward pass.
      auto use = loaded->target_ref->gatherer->lock();
      loaded->model = load_model(opened.spec(), loaded->target_ref->model.get());
    } else {
      loaded->model = load_model(opened.spec(), nullptr);
    }
  } catch (const Error& e) {
    reject(to_string(e.code()), "spec", opened.client_message(e.what()));
  }
  loaded->gatherer = std::make_shared<ForwardGatherer>(loaded->model);
  const std::size_t budget = kv_budget_bytes ? kv_budget_bytes : default_kv_budget_bytes();
  loaded->model->set_kv_budget(budget);
  loaded->kv = std::make_shared<KvAdmission>(name, budget, loaded->model->kv_bytes_per_token());
  std::lock_guard lock(mutex_);
  if (!models_.emplace(name, loaded).second) {
    reject(to_string(ErrorCode::invalid_argument), "name", "a model named '" + name + "' was loaded meanwhile");
  }
  return loaded;
}

void ModelTable::unload(const std::string& name) {
  std::lock_guard lock(mutex_);
  // Requests already holding the model keep it alive until they finish.
  if (!models_.erase(name)) reject(to_string(ErrorCode::not_found), "name", "model '" + name + "' is not loaded");
}

std::shared_ptr<LoadedModel> ModelTable::get(const std::string& name, const std::string& field) const {
  std::lock_guard lock(mutex_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    std::string known;
    for (const auto& [n, m] : models_) known += " " + n;
    reject(to_string(ErrorCode::not_found), field,
           "model '" + name + "' (field '" + field + "') is not loaded; loaded:" + (known.empty() ? " none" : known));
  }
  return it->second;
}

Value ModelTable::describe_one(const LoadedModel& m) {
  const ModelInfo& info = m.model->info();
  return Value::Map{{"name", m.name},
                    {"spec", m.spec},
                    {"target", m.target},
                    {"model", info.name},
                    {"architecture", info.architecture},
                    {"vocab_size", info.vocab_size},
                    {"context_length", info.context_length},
                    {"bos", info.bos},
                    {"eos", info.eos},
                    {"has_tokenizer", m.model->has_tokenizer()},
                    {"batching", batching_value(m.gatherer->stats())},
                    {"kv", kv_value(m)}};
}

Value kv_value(const LoadedModel& m) {
  const KvAdmission::Figures f = m.kv->figures();
  return Value::Map{{"budget_bytes", int64_t(m.kv->budget_bytes())},
                    {"bytes_per_token", int64_t(m.kv->bytes_per_token())},
                    {"in_use_bytes", int64_t(m.model->kv_bytes_in_use())},
                    {"reserved_bytes", int64_t(f.reserved_bytes)},
                    {"running", f.running},
                    {"waiting", f.waiting},
                    {"admitted_after_wait", f.admitted_after_wait},
                    {"refused", f.refused}};
}

Value batching_value(const GatherStats& stats) {
  Value::Map sizes;
  for (const auto& [size, passes] : stats.batch_sizes) sizes.emplace_back(std::to_string(size), passes);
  const double passes = double(std::max<int64_t>(1, stats.forward_passes));
  return Value::Map{{"forward_passes", stats.forward_passes},
                    {"calls", stats.calls},
                    {"tokens", stats.nodes},
                    {"calls_per_forward", stats.forward_passes ? double(stats.calls) / passes : 0.0},
                    {"tokens_per_forward", stats.forward_passes ? double(stats.nodes) / passes : 0.0},
                    {"batch_sizes", sizes}};
}

Value ModelTable::batching() const {
  std::lock_guard lock(mutex_);
  Value::Map out;
  for (const auto& [name, m] : models_) out.emplace_back(name, batching_value(m->gatherer->stats()));
  return out;
}

Value ModelTable::describe() const {
  std::lock_guard lock(mutex_);
  Value::Array out;
  for (const auto& [name, m] : models_) out.push_back(describe_one(*m));
  return out;
}

// ------------------------------------------------------------------------------------------------
// Validation

void check_prompt_fits(const ModelInfo& info, std::size_t prompt_tokens, const std::string& field) {
  if (prompt_tokens == 0)
    reject(to_string(ErrorCode::invalid_argument), field, "field '" + field + "' gives an empty prompt");
  if (info.context_length > 0 && prompt_tokens >= std::size_t(info.context_length)) {
    reject(to_string(ErrorCode::invalid_argument), field,
           "field '" + field + "': the prompt has " + std::to_string(prompt_tokens) + " tokens, but model '" +
               info.name + "' has a context of " + std::to_string(info.context_length) + " tokens");
  }
}

namespace {

// Roles a decoder uses when its parameters ask for them; registry entries declare only the roles a
// decoder always needs.
const std::map<std::string, std::vector<std::string>>& optional_roles_table() {
  static const std::map<std::string, std::vector<std::string>> table{
      {"smc", {"reward_model"}},  // used when reward_model_weight != 0
  };
  return table;
}

// A constraint spec in the parameters (every constrained decoder names it "constraint") is parsed
// now, so a bad pattern or an unknown kind is refused before the request is queued, naming the
// field. Binding it to the target's vocabulary happens when it runs.
void check_constraints(const std::vector<ParamSpec>& specs, const ParamMap& params) {
  for (const ParamSpec& spec : specs) {
    if (spec.name != "constraint" || spec.type != ParamType::string) continue;
    auto given = params.find(spec.name);
    if (given == params.end()) continue;
    const std::string* text = std::get_if<std::string>(&given->second);
    if (!text || text->empty()) continue;
    try {
      make_constraint(*text, std::make_shared<const Vocabulary>());
    } catch (const Error& e) {
      reject(to_string(e.code()), "params.constraint", e.what());
    }
  }
}

}  // namespace

std::vector<std::string> optional_roles(const std::string& decoder) {
  auto it = optional_roles_table().find(decoder);
  return it == optional_roles_table().end() ? std::vector<std::string>{} : it->second;
}

std::vector<std::string> decoder_roles(const std::string& decoder) {
  std::vector<std::string> roles{"target"};
  auto add = [&](const std::string& role) {
    if (std::find(roles.begin(), roles.end(), role) == roles.end()) roles.push_back(role);
  };
  for (const auto& role : DecoderRegistry::instance().get(decoder).roles) add(role);
  for (const auto& role : optional_roles(decoder)) add(role);
  return roles;
}

std::unique_ptr<Decoder> PreparedGeneration::make_decoder() {
  std::lock_guard lock(*decoder_mutex_);
  if (decoder) return std::move(decoder);
  return DecoderRegistry::instance().create(request.decoder, request.params);
}

PreparedGeneration prepare_generation(const ModelTable& models, GenerateRequest request) {
  PreparedGeneration p;
  const auto& registry = DecoderRegistry::instance();
  if (!registry.contains(request.decoder)) {
    std::string known;
    for (const auto* e : registry.list()) known += " " + e->name;
    reject(to_string(ErrorCode::not_found), "decoder",
           "unknown decoder '" + sanitize_utf8(request.decoder) + "'; known:" + known);
  }
  const auto& entry = registry.get(request.decoder);
  for (const std::string& role : entry.roles) {
    if (!request.models.count(role)) {
      reject(to_string(ErrorCode::invalid_argument), "models." + role,
             "decoder '" + request.decoder + "' needs a model for role '" + role + "' (field 'models." + role + "')");
    }
  }
  const std::vector<std::string> takes = decoder_roles(request.decoder);
  for (const auto& [role, name] : request.models) {
    if (std::find(takes.begin(), takes.end(), role) == takes.end()) {
      std::string known;
      for (const auto& r : takes) known += " " + r;
      reject(to_string(ErrorCode::invalid_argument), "models." + role,
             "decoder '" + request.decoder + "' takes no model for role '" + sanitize_utf8(role) +
                 "'; its roles:" + known);
    }
  }
  for (const auto& [role, name] : request.models) p.models[role] = models.get(name, "models." + role);
  try {
    p.decoder = registry.create(request.decoder, request.params);
  } catch (const Error& e) {
    reject(to_string(e.code()), "params", e.what());
  }
  check_constraints(entry.params, request.params);
  if (request.client_reward && !takes_reward(*p.decoder)) {
    reject(
        to_string(ErrorCode::invalid_argument), "client_reward",
        "decoder '" + request.decoder + "' takes no external reward, so 'client_reward' cannot be set (smc takes one)");
  }
  const ModelInfo& info = p.models.at("target")->model->info();
  auto check_tokens = [&](const std::vector<TokenId>& ids, const std::string& field) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] >= info.vocab_size) {
        const std::string f = field + "[" + std::to_string(i) + "]";
        reject(to_string(ErrorCode::invalid_argument), f,
               "field '" + f + "' holds token " + std::to_string(ids[i]) + ", outside the target's vocabulary of " +
                   std::to_string(info.vocab_size));
      }
    }
  };
  if (request.prompt_ids) {
    check_tokens(*request.prompt_ids, "prompt_ids");
    check_prompt_fits(info, request.prompt_ids->size(), "prompt_ids");
  }
  check_tokens(request.stop_token_ids, "stop_token_ids");
  if (request.seeds) {
    if (request.client_reward) {
      reject(to_string(ErrorCode::invalid_argument), "client_reward",
             "'client_reward' takes one generation per request; it cannot be combined with 'n' or 'seeds'");
    }
    p.seeds = *request.seeds;
  } else {
    p.seeds = {request.seed};
  }
  p.request = std::move(request);
  return p;
}

// ------------------------------------------------------------------------------------------------
// One run

namespace {}  // namespace

std::size_t stop_string_holdback(std::string_view text, const std::vector<std::string>& stops) {
  std::size_t hold = 0;
  for (const std::string& s : stops) {
    for (std::size_t k = std::min(s.size() - (s.empty() ? 0 : 1), text.size()); k > hold; --k) {
      if (text.substr(text.size() - k) == std::string_view(s).substr(0, k)) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}

namespace {

// Sees every token the decoder appends. Mirrors the generated tokens (so rollbacks are honored),
// cuts generation at a stop string, and sends streamed chunks no more often than the interval.
class GenerationSink final : public TokenSink {
 public:
  GenerationSink(const GenerationContext& ctx, const GenerateRequest& request, const LanguageModel& target,
                 std::size_t prompt_size)
      : ctx_(ctx), request_(request), target_(target), prompt_size_(prompt_size), last_flush_(Clock::now()) {}

  void on_append(std::size_t index, const TokenRecord& record) override {
    if (stopped_ || index < prompt_size_) return;
    tokens_.resize(index - prompt_size_);
    tokens_.push_back(record);
    if (!request_.stop.empty() && check_stop_strings()) {
      stopped_ = true;
      ctx_.cancel->request(CancelReason::stop_string);
    }
    if (request_.stream && Clock::now() - last_flush_ >= std::chrono::duration<double>(ctx_.stream_interval_s))
      flush(false);
  }

  void on_truncate(std::size_t new_size) override {
    if (stopped_) return;
    const std::size_t keep = new_size > prompt_size_ ? new_size - prompt_size_ : 0;
    if (keep < tokens_.size()) tokens_.resize(keep);
  }

  // Sends the tokens not sent yet, and their text. Until the final flush, text that could still
  // become a stop string (a suffix that is a proper prefix of one) and an incomplete character are
  // held back, so the streamed chunks' texts always concatenate to the result's text: a stop
  // string found later never has to take back text already sent.
  void flush(bool final) {
    last_flush_ = Clock::now();
    if (!request_.stream) return;
    const std::string text = this->text();
    std::size_t text_end =
        final ? text.size()
              : std::min(complete_utf8_prefix(text), text.size() - stop_string_holdback(text, request_.stop));
    // Detokenization is prefix-stable for our models; if a rollback made it shrink, restart the text.
    if (text.compare(0, std::min(text_sent_, text.size()), sent_text_prefix_) != 0 || text_end < text_sent_) {
      text_sent_ = 0;
      sent_text_prefix_.clear();
    }
    if (sent_ > tokens_.size()) sent_ = tokens_.size();  // rolled back below what was sent
    if (sent_ == tokens_.size() && text_end == text_sent_) return;
    Value::Array ids;
    Value::Array logprobs;
    for (std::size_t i = sent_; i < tokens_.size(); ++i) {
      ids.emplace_back(int64_t(tokens_[i].id));
      logprobs.emplace_back(tokens_[i].logprob);
    }
    Value::Map chunk{{"id", ctx_.request_id}, {"type", "chunk"}};
    if (ctx_.tag_seed) chunk.emplace_back("seed", ctx_.seed);
    chunk.insert(chunk.end(),
                 {{"index", int64_t(sent_)},
                  {"tokens", ids},
                  {"text", sanitize_utf8(std::string_view(text).substr(text_sent_, text_end - text_sent_))}});
    if (request_.logprobs) chunk.emplace_back("logprobs", logprobs);
    ctx_.send(chunk);
    sent_ = tokens_.size();
    text_sent_ = text_end;
    sent_text_prefix_ = text.substr(0, text_end);
  }

  std::vector<TokenId> token_ids() const {
    std::vector<TokenId> ids;
    for (const auto& r : tokens_) ids.push_back(r.id);
    return ids;
  }
  const std::vector<TokenRecord>& records() const { return tokens_; }
  bool stopped_by_string() const { return stopped_; }

  // The generated text, cut just before the first stop string.
  std::string text() const {
    std::string t = target_.detokenize(token_ids());
    if (stop_at_ != std::string::npos) t.resize(stop_at_);
    return t;
  }

 private:
  bool check_stop_strings() {
    const std::string t = target_.detokenize(token_ids());
    std::size_t first = std::string::npos;
    for (const auto& s : request_.stop) first = std::min(first, t.find(s));
    if (first == std::string::npos) return false;
    stop_at_ = first;
    return true;
  }

  const GenerationContext& ctx_;
  const GenerateRequest& request_;
  const LanguageModel& target_;
  std::size_t prompt_size_;
  std::vector<TokenRecord> tokens_;
  std::size_t sent_ = 0;
  std::size_t text_sent_ = 0;
  std::string sent_text_prefix_;
  std::size_t stop_at_ = std::string::npos;
  bool stopped_ = false;
  Clock::time_point last_flush_;
};

Value stats_value(const Stats& stats) {
  Value::Map seconds, metrics;
  for (const auto& [k, v] : stats.seconds) seconds.emplace_back(k, v);
  for (const auto& [k, v] : stats.metrics) metrics.emplace_back(k, v);
  Value::Array accepted;
  for (int64_t n : stats.accepted_per_step) accepted.emplace_back(n);
  return Value::Map{{"steps", stats.steps},
                    {"target_calls", stats.target_calls},
                    {"draft_calls", stats.draft_calls},
                    {"target_nodes", stats.target_nodes},
                    {"draft_nodes", stats.draft_nodes},
                    {"tokens_generated", stats.tokens_generated},
                    {"tokens_proposed", stats.tokens_proposed},
                    {"tokens_accepted", stats.tokens_accepted},
                    {"acceptance_rate", stats.acceptance_rate()},
                    {"tokens_per_target_call", stats.tokens_per_target_call()},
                    {"accepted_per_step", accepted},
                    {"seconds", seconds},
                    {"metrics", metrics},
                    {"decoder_stop_reason", stats.stop_reason}};
}

}  // namespace

namespace {

// The error of a request stopped (cancel, deadline, disconnect, shutdown) before it produced
// anything; `when` says where it was.
[[noreturn]] void reject_stopped(const GenerationContext& ctx, const std::string& when) {
  const CancelReason why = ctx.cancel->reason();
  const bool deadline = why == CancelReason::deadline;
  reject(deadline ? codes::deadline_exceeded : to_string(ErrorCode::cancelled), deadline ? "deadline_s" : "",
         deadline ? "request " + std::to_string(ctx.request_id) + " reached its deadline_s " + when
                  : "request stopped " + when + ": " + to_string(why));
}

}  // namespace

GenerationOutcome run_generation(const PreparedGeneration& job, Decoder& decoder, const GenerationContext& ctx) {
  const GenerateRequest& r = job.request;
  const auto started = Clock::now();
  if (ctx.cancel->cancelled()) reject_stopped(ctx, "before it started");

  // Tokenizing and detokenizing read only the vocabulary (thread-safe), so they use the model
  // itself: the sink can outlive this generation's GatheringModels.
  const LanguageModel& target = *job.models.at("target")->model;

  if (r.client_reward) {
    if (!ctx.reward) fail(ErrorCode::internal, "client_reward requested but the service gave no reward channel");
    set_reward(decoder, ctx.reward);
  }

  std::vector<TokenId> prompt;
  if (r.prompt_ids) {
    prompt = *r.prompt_ids;
  } else {
    const ModelInfo& info = target.info();
    try {
      prompt = encode_prompt(target, *r.prompt_text);
    } catch (const Error& e) {
      reject(to_string(e.code()), "prompt", std::string("field 'prompt': ") + e.what());
    }
    check_prompt_fits(info, prompt.size(), "prompt");
  }

  // Room in every model's KV budget before any work: waits (in this worker) while other
  // generations hold it, and gives up when the request is cancelled meanwhile.
  std::vector<KvAdmission::Reservation> kv;
  {
    std::set<const LoadedModel*> seen;
    for (const auto& [role, m] : job.models) {
      if (!seen.insert(m.get()).second) continue;
      kv.push_back(m->kv->reserve(prompt.size() + std::size_t(r.max_tokens) + kKvTreeSlack, *ctx.cancel));
      if (!kv.back().admitted()) reject_stopped(ctx, "while waiting for KV memory");
    }
  }

  // Only now, admitted, does the generation join the models' gatherers: a member that is still
  // waiting for KV memory would make every forward pass wait for it (up to the gather window).
  // Each distinct model once, through a GatheringModel of this generation's own: its forward
  // passes merge with those of the other generations on the model, and nothing here holds the
  // model between steps.
  std::map<const LoadedModel*, std::unique_ptr<GatheringModel>> gathering;
  ModelSet set;
  for (const auto& [role, m] : job.models) {
    auto& g = gathering[m.get()];
    if (!g) g = std::make_unique<GatheringModel>(m->gatherer);
    set.set(role, g.get());
  }
  const auto locked = Clock::now();

  DecodeOptions options;
  options.seed = ctx.seed;
  options.max_new_tokens = int(r.max_tokens);
  options.stop_tokens = r.stop_token_ids;
  options.stop_strings = r.stop;
  options.stop_at_eos = r.stop_at_eos;
  options.cancel = ctx.cancel->flag();  // cancel, deadline, disconnect, shutdown: between steps and prefill chunks
  options.prefill_chunk = ctx.prefill_chunk;

  TokenStream stream(prompt);
  auto sink = std::make_shared<GenerationSink>(ctx, r, target, prompt.size());
  stream.set_sink(sink);
  const Stats stats = decoder.generate(set, options, stream);
  gathering.clear();  // this generation leaves the gatherers: the others need not wait for it
  sink->flush(true);

  std::string stop_reason = stats.stop_reason;
  if (sink->stopped_by_string()) stop_reason = "stop_string";
  else if (stop_reason == "cancelled" && ctx.cancel->cancelled()) stop_reason = to_string(ctx.cancel->reason());

  const auto& records = sink->records();
  Value::Array ids, logprobs;
  for (const auto& rec : records) {
    ids.emplace_back(int64_t(rec.id));
    logprobs.emplace_back(rec.logprob);
  }
  const auto done = Clock::now();
  auto secs = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  Value::Map result{{"id", ctx.request_id}, {"type", "result"}};
  if (ctx.tag_seed) result.emplace_back("seed", ctx.seed);
  result.insert(result.end(), {{"tokens", ids},
                               {"text", sanitize_utf8(sink->text())},
                               {"prompt_tokens", int64_t(prompt.size())},
                               {"stop_reason", stop_reason},
                               {"stats", stats_value(stats)},
                               {"timings", Value::Map{{"queue_s", secs(started - ctx.received)},
                                                      {"lock_s", secs(locked - started)},
                                                      {"run_s", secs(done - locked)},
                                                      {"total_s", secs(done - ctx.received)}}}});
  if (r.logprobs) result.emplace_back("logprobs", logprobs);
  return GenerationOutcome{std::move(result), int64_t(records.size())};
}

}  // namespace decodelab::daemon
