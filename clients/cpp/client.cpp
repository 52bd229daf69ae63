// The decodelabd C++ client (see client.hpp).
#include "clients/cpp/client.hpp"

#include <algorithm>
#include <chrono>
#include <deque>

#include <zmq.hpp>

#include "decodelab/error.hpp"

namespace decodelab::client {

struct Client::Impl {
  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::dealer};
  ClientOptions options;
  uint64_t next_id = 1;
  // Messages for other requests that arrived while waiting for one (kept in order).
  std::deque<Value> pending;
  std::vector<Value> unattributed_errors;
};

Client::Client(const std::string& endpoint, ClientOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->socket.set(zmq::sockopt::linger, 0);
  impl_->socket.set(zmq::sockopt::ipv6, 1);  // tcp://[::1]:P as well as IPv4
  if (!impl_->options.curve_server_key.empty()) {
    std::string public_key = impl_->options.curve_public_key, secret_key = impl_->options.curve_secret_key;
    if (public_key.empty() != secret_key.empty()) {
      fail(ErrorCode::invalid_argument, "ClientOptions: give both curve_public_key and curve_secret_key, or neither");
    }
    if (public_key.empty()) {
      char fresh_public[41], fresh_secret[41];
      if (zmq_curve_keypair(fresh_public, fresh_secret) != 0)
        fail(ErrorCode::unsupported, "this libzmq has no CURVE support");
      public_key = fresh_public;
      secret_key = fresh_secret;
    }
    impl_->socket.set(zmq::sockopt::curve_serverkey, impl_->options.curve_server_key);
    impl_->socket.set(zmq::sockopt::curve_publickey, public_key);
    impl_->socket.set(zmq::sockopt::curve_secretkey, secret_key);
  }
  try {
    impl_->socket.connect(endpoint);
  } catch (const zmq::error_t& e) {
    fail(ErrorCode::invalid_argument, "cannot connect to '" + endpoint + "': " + e.what());
  }
}

Client::~Client() = default;

uint64_t Client::send(const std::string& op, Value::Map fields) {
  const uint64_t id = impl_->next_id++;
  Value::Map request{{"id", id}, {"op", op}};
  if (!impl_->options.auth.empty()) request.emplace_back("auth", impl_->options.auth);
  for (auto& f : fields) request.push_back(std::move(f));
  const std::string packed = daemon::pack(request);
  impl_->socket.send(zmq::buffer(packed), zmq::send_flags::none);
  return id;
}

Value Client::receive() {
  if (!impl_->pending.empty()) {
    Value v = std::move(impl_->pending.front());
    impl_->pending.pop_front();
    return v;
  }
  zmq::pollitem_t item{impl_->socket.handle(), 0, ZMQ_POLLIN, 0};
  const auto timeout = std::chrono::milliseconds(int64_t(impl_->options.timeout_s * 1e3));
  if (zmq::poll(&item, 1, timeout) == 0) {
    fail(ErrorCode::cancelled, "no message from decodelabd within " + std::to_string(impl_->options.timeout_s) + " s");
  }
  zmq::message_t message;
  (void)impl_->socket.recv(message, zmq::recv_flags::none);
  return daemon::unpack(message.to_string_view());
}

Value Client::wait(uint64_t id, const std::function<void(const Value&)>& on_chunk) {
  std::deque<Value> others;
  while (true) {
    Value m = receive();
    const Value* mid = m.get("id");
    const std::string type = m.get("type") ? m.get("type")->as_string("reply type") : "";
    if (!mid || uint64_t(mid->as_int("reply id")) != id) {
      if (type == "error" && mid && mid->as_int("reply id") == 0) {
        auto& kept = impl_->unattributed_errors;  // answers no request of ours; the latest 100
        if (kept.size() == 100) kept.erase(kept.begin());
        kept.push_back(std::move(m));
      } else if (type != "heartbeat") {
        others.push_back(std::move(m));
      }
      continue;
    }
    if (type == "heartbeat") continue;
    if (type == "chunk" || type == "reward_request") {
      if (on_chunk) on_chunk(m);
      continue;
    }
    for (auto& o : others) impl_->pending.push_back(std::move(o));
    if (type == "error") {
      throw RemoteError(m.get("code")->as_string("code"), m.get("field") ? m.get("field")->as_string("field") : "",
                        m.get("message")->as_string("message"));
    }
    return m;
  }
}

const std::vector<Value>& Client::unattributed_errors() const { return impl_->unattributed_errors; }

Value Client::call(const std::string& op, Value::Map fields) { return wait(send(op, std::move(fields))); }

Value Client::hello() { return call("hello"); }
Value Client::list_decoders() { return call("list_decoders"); }
Value Client::list_models() { return call("list_models"); }
Value Client::status() { return call("status"); }
Value Client::metrics() { return call("metrics"); }
Value Client::shutdown() { return call("shutdown"); }
Value Client::load_model(const std::string& name, const std::string& spec, const std::string& target) {
  Value::Map f{{"name", name}, {"spec", spec}};
  if (!target.empty()) f.emplace_back("target", target);
  return call("load_model", std::move(f));
}
Value Client::unload_model(const std::string& name) { return call("unload_model", {{"name", name}}); }

const std::vector<std::string>& Client::ops() {
  static const std::vector<std::string> names{"hello",         "load_model", "unload_model", "list_models",
                                              "list_decoders", "generate",   "cancel",       "reward",
                                              "status",        "metrics",    "shutdown"};
  return names;
}

void Client::reply_reward(uint64_t id, uint64_t call, const std::vector<double>& scores) {
  Value::Array values;
  for (double x : scores) values.emplace_back(x);
  Value::Map message{{"id", id}, {"op", "reward"}, {"call", call}, {"scores", std::move(values)}};
  if (!impl_->options.auth.empty()) message.emplace_back("auth", impl_->options.auth);
  const std::string packed = daemon::pack(message);
  impl_->socket.send(zmq::buffer(packed), zmq::send_flags::none);
}

bool Client::cancel(uint64_t id) {
  const Value reply = call("cancel", {{"request_id", id}});
  return reply.get("found")->as_bool("found");
}

Value::Map Client::generate_fields(const GenerateOptions& o, bool stream) {
  Value::Map models;
  for (const auto& [role, name] : o.models) models.emplace_back(role, name);
  Value::Map params;
  for (const auto& [name, value] : o.params)
    params.emplace_back(name, std::visit([](const auto& x) { return Value(x); }, value));
  Value::Map f{{"models", models}, {"decoder", o.decoder},       {"params", params},
               {"seed", o.seed},   {"max_tokens", o.max_tokens}, {"stop_at_eos", o.stop_at_eos},
               {"stream", stream}, {"logprobs", o.logprobs}};
  if (o.prompt) f.emplace_back("prompt", *o.prompt);
  if (o.prompt_ids) {
    Value::Array ids;
    for (TokenId t : *o.prompt_ids) ids.emplace_back(int64_t(t));
    f.emplace_back("prompt_ids", ids);
  }
  if (!o.stop.empty()) {
    Value::Array stop;
    for (const auto& s : o.stop) stop.emplace_back(s);
    f.emplace_back("stop", stop);
  }
  if (!o.stop_token_ids.empty()) {
    Value::Array ids;
    for (TokenId t : o.stop_token_ids) ids.emplace_back(int64_t(t));
    f.emplace_back("stop_token_ids", ids);
  }
  if (o.deadline_s > 0) f.emplace_back("deadline_s", o.deadline_s);
  if (o.reward) f.emplace_back("client_reward", true);
  if (o.reward_timeout_s > 0) f.emplace_back("reward_timeout_s", o.reward_timeout_s);
  return f;
}

namespace {
std::vector<TokenId> token_list(const Value* v) {
  std::vector<TokenId> out;
  if (v)
    for (const Value& t : v->as_array("tokens")) out.push_back(TokenId(t.as_int("token")));
  return out;
}
std::vector<float> float_list(const Value* v) {
  std::vector<float> out;
  if (v)
    for (const Value& x : v->as_array("logprobs")) out.push_back(float(x.as_double("logprob")));
  return out;
}
}  // namespace

GenerateResult Client::parse_result(const Value& m) {
  GenerateResult r;
  if (const Value* id = m.get("id")) r.id = uint64_t(id->as_int("id"));  // a member of a reply has none
  if (const Value* seed = m.get("seed")) r.seed = uint64_t(seed->as_int("seed"));
  r.tokens = token_list(m.get("tokens"));
  r.text = m.get("text")->as_string("text");
  r.logprobs = float_list(m.get("logprobs"));
  r.stop_reason = m.get("stop_reason")->as_string("stop_reason");
  // A seed of a several-seed request that was stopped before it started has none.
  if (const Value* p = m.get("prompt_tokens")) r.prompt_tokens = p->as_int("prompt_tokens");
  if (const Value* s = m.get("stats")) r.stats = *s;
  if (const Value* t = m.get("timings")) r.timings = *t;
  return r;
}

Chunk Client::parse_chunk(const Value& m) {
  Chunk c;
  c.index = std::size_t(m.get("index")->as_int("index"));
  c.tokens = token_list(m.get("tokens"));
  c.text = m.get("text")->as_string("text");
  c.logprobs = float_list(m.get("logprobs"));
  return c;
}

GenerateResult Client::generate(const GenerateOptions& options, const std::function<void(const Chunk&)>& on_chunk) {
  const uint64_t id = send("generate", generate_fields(options, bool(on_chunk)));
  const Value reply = wait(id, [&](const Value& m) {
    if (m.get("type")->as_string("reply type") == "chunk") {
      if (on_chunk) on_chunk(parse_chunk(m));
      return;
    }
    std::vector<std::string> texts;
    for (const Value& t : m.get("texts")->as_array("texts")) texts.push_back(t.as_string("texts[i]"));
    std::vector<double> scores;
    try {
      if (!options.reward) fail(ErrorCode::invalid_argument, "the daemon asks for a reward and the request has none");
      scores = options.reward(texts);
    } catch (...) {
      send("cancel", {{"request_id", id}});  // do not leave the daemon waiting out its timeout
      throw;
    }
    reply_reward(id, uint64_t(m.get("call")->as_int("call")), scores);
  });
  GenerateResult result = parse_result(reply);
  result.seed = options.seed;
  return result;
}

namespace {

std::vector<GenerateResult> many_results(const Value& reply, std::size_t expected) {
  std::vector<GenerateResult> out;
  const uint64_t id = uint64_t(reply.get("id")->as_int("id"));
  for (const Value& m : reply.get("results")->as_array("results")) {
    out.push_back(Client::parse_result(m));
    out.back().id = id;
  }
  if (out.size() != expected) {
    fail(ErrorCode::bad_format,
         "the daemon answered " + std::to_string(out.size()) + " results for " + std::to_string(expected) + " seeds");
  }
  return out;
}

}  // namespace

std::vector<GenerateResult> Client::generate_many(const GenerateOptions& options, int64_t n) {
  if (options.reward) fail(ErrorCode::invalid_argument, "generate_many takes no reward: use generate per seed");
  Value::Map fields = generate_fields(options, false);
  fields.emplace_back("n", n);
  return many_results(wait(send("generate", std::move(fields))), std::size_t(std::max<int64_t>(n, 0)));
}

std::vector<GenerateResult> Client::generate_many(const GenerateOptions& options, const std::vector<uint64_t>& seeds) {
  if (options.reward) fail(ErrorCode::invalid_argument, "generate_many takes no reward: use generate per seed");
  Value::Map fields = generate_fields(options, false);
  std::erase_if(fields, [](const auto& f) { return f.first == "seed"; });  // the list replaces it
  Value::Array list;
  for (uint64_t s : seeds) list.emplace_back(s);
  fields.emplace_back("seeds", std::move(list));
  return many_results(wait(send("generate", std::move(fields))), seeds.size());
}

}  // namespace decodelab::client
