#pragma once
// A C++ client for decodelabd (docs/protocol.md). One Client owns one DEALER socket; it is not
// thread-safe (use one per thread). Requests get increasing ids; generate() waits for its own
// reply, calling on_chunk for streamed chunks, and skips heartbeats.
//
//   decodelab::client::Client c("ipc:///tmp/decodelabd.sock");
//   c.load_model("t", "table(vocab=32)");
//   GenerateOptions g;  g.models = {{"target", "t"}};  g.prompt = "a b c";  g.seed = 1;
//   auto r = c.generate(g, [](const Chunk& k) { std::cout << k.text << std::flush; });

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/protocol.hpp"
#include "decodelab/distribution.hpp"
#include "decodelab/error.hpp"
#include "decodelab/params.hpp"

namespace decodelab::client {

using daemon::Value;

// An error reply: `code` as on the wire ("invalid_argument", "busy", ...), `field` the request
// field at fault ("" for the message as a whole).
class RemoteError : public std::runtime_error {
 public:
  RemoteError(std::string code, std::string field, const std::string& message)
      : std::runtime_error(code + (field.empty() ? "" : " (" + field + ")") + ": " + message),
        code_(std::move(code)),
        field_(std::move(field)) {}
  const std::string& code() const { return code_; }
  const std::string& field() const { return field_; }

 private:
  std::string code_, field_;
};

struct ClientOptions {
  double timeout_s = 30.0;       // longest wait for any one message; a daemon silent for longer is an error
  std::string auth;              // shared secret, when the daemon requires one
  std::string curve_server_key;  // Z85 public key of a daemon running with CURVE
  // The client's own CURVE keypair (Z85), for a daemon that admits listed clients only
  // (--curve-clients); when empty the client makes a fresh keypair.
  std::string curve_public_key;
  std::string curve_secret_key;
};

struct GenerateOptions {
  std::map<std::string, std::string> models;  // role -> loaded model name
  std::string decoder = "sample";
  ParamMap params;
  std::optional<std::string> prompt;
  std::optional<std::vector<TokenId>> prompt_ids;
  uint64_t seed = 0;
  int64_t max_tokens = 64;
  std::vector<std::string> stop;
  std::vector<TokenId> stop_token_ids;
  bool stop_at_eos = true;
  bool logprobs = false;
  double deadline_s = 0.0;
  // For decoders that steer by an external reward (smc): called at every scoring point with all
  // live particles' generated texts, returns one cumulative log-potential each (-inf rules a
  // particle out). The daemon asks over the connection and waits up to reward_timeout_s.
  std::function<std::vector<double>(const std::vector<std::string>& texts)> reward;
  double reward_timeout_s = 0.0;  // 0: the daemon's default (60 s)
};

struct Chunk {
  std::size_t index = 0;  // position of tokens[0] among the generated tokens
  std::vector<TokenId> tokens;
  std::string text;
  std::vector<float> logprobs;  // when requested
};

struct GenerateResult {
  uint64_t id = 0;
  uint64_t seed = 0;  // the seed it ran with (generate_many; generate: the request's seed)
  std::vector<TokenId> tokens;
  std::string text;
  std::vector<float> logprobs;
  std::string stop_reason;
  int64_t prompt_tokens = 0;
  Value stats;    // the decoder's Stats (see docs/protocol.md)
  Value timings;  // queue_s, lock_s, run_s, total_s
};

class Client {
 public:
  explicit Client(const std::string& endpoint, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Value hello();
  Value list_decoders();
  Value list_models();
  Value status();
  Value metrics();
  Value load_model(const std::string& name, const std::string& spec, const std::string& target = "");
  Value unload_model(const std::string& name);
  Value shutdown();
  // Streams when on_chunk is given.
  GenerateResult generate(const GenerateOptions& options, const std::function<void(const Chunk&)>& on_chunk = {});
  // Several generations of one request, one per seed (protocol 2's n / seeds): seeds
  // options.seed .. options.seed + n - 1, or the given list. The daemon runs them side by side,
  // their model calls batched; each result equals generate() with its seed, and the results come
  // in the order of the seeds. No streaming and no client reward (those are per generation).
  std::vector<GenerateResult> generate_many(const GenerateOptions& options, int64_t n);
  std::vector<GenerateResult> generate_many(const GenerateOptions& options, const std::vector<uint64_t>& seeds);

  // Lower level: send a request map (an "id" is added) and return its id; wait for the next
  // message for any request (heartbeats included).
  uint64_t send(const std::string& op, Value::Map fields);
  Value receive();
  // Waits for the final reply to `id` (result, or RemoteError), passing the messages before it
  // (chunks, reward requests) to on_chunk.
  Value wait(uint64_t id, const std::function<void(const Value&)>& on_chunk = {});
  // Error replies with id 0, kept in arrival order: the daemon could not read some message far
  // enough to find its id, so they answer no request of this client (whose requests carry ids).
  const std::vector<Value>& unattributed_errors() const;
  // Asks the daemon to cancel request `id`; returns whether it was still in flight.
  bool cancel(uint64_t id);
  // Answers reward request `call` of generation `id` (one-way; see docs/protocol.md).
  void reply_reward(uint64_t id, uint64_t call, const std::vector<double>& scores);
  Value call(const std::string& op, Value::Map fields = {});

  // The ops this client has a method for, by wire name, in the daemon's table order (a test
  // checks them against daemon::kOps): "reward" is reply_reward(), the rest have the op's name.
  static const std::vector<std::string>& ops();

  static Value::Map generate_fields(const GenerateOptions& options, bool stream);
  static GenerateResult parse_result(const Value& reply);
  static Chunk parse_chunk(const Value& chunk);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace decodelab::client
