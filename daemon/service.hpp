#pragma once
// decodelabd's service: a ZeroMQ ROUTER front end, a fair bounded queue, a worker pool on which
// generations run, and a Boost.Asio control thread (signals, deadlines, heartbeats).
//
//   I/O thread (run()):  receives requests, answers cheap ops at once, queues generate/load_model,
//                        sends what workers produce (woken through an eventfd).
//   workers:             take jobs round-robin across clients (a request with several seeds one
//                        seed per turn); generations on one model run concurrently and their
//                        model calls are merged into one forward pass per step (the model's
//                        ForwardGatherer, core/batching_model.hpp).
//   control thread:      SIGINT/SIGTERM -> stop; per-request deadline timers; heartbeats to
//                        clients with work in flight (a heartbeat the ROUTER cannot route means the
//                        client is gone, and its work is cancelled).

#include "decodelab/decoder.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace decodelab::daemon {

enum class LogLevel { error, warn, info, debug };
LogLevel parse_log_level(const std::string& text);

struct ServiceConfig {
  std::vector<std::string> endpoints;  // "ipc:///path" or "tcp://127.0.0.1:5555"
  std::string secret;                  // shared secret every request must carry in "auth"
  std::string curve_secret_key;        // Z85 server secret key: enables CURVE encryption
  // Z85 public keys of the CURVE clients allowed to connect; empty = any client that knows the
  // server's public key (encryption without authentication).
  std::vector<std::string> curve_clients;
  bool allow_remote = false;  // permit non-loopback tcp (still needs secret or curve_clients)
  int workers = 8;
  std::size_t max_queue = 64;  // queued (not yet running) jobs before "busy"
  std::size_t max_message_bytes = 1 << 20;
  int64_t max_tokens = 1 << 20;
  bool allow_shutdown = false;       // honor the "shutdown" op
  double stream_interval_s = 0.002;  // streamed tokens arriving within this interval share a chunk
  // Tokens per prefill call (DecodeOptions::prefill_chunk): cancels, deadlines, disconnects and
  // shutdown act between prefill chunks, so this bounds how long a long prompt's prefill takes to
  // stop; larger chunks prefill a little faster on some backends.
  int prefill_chunk = DecodeOptions::kDefaultPrefillChunk;
  // KV budget of each model loaded without its own kv_budget_mb (0: half the memory available when
  // it loads); see daemon/kv_admission.hpp.
  double kv_budget_mb = 0;
  double heartbeat_interval_s = 1.0;
  double shutdown_grace_s = 2.0;  // how long in-flight work may take to stop on shutdown
  LogLevel log_level = LogLevel::info;
  // load_model requests read model files only inside this directory ("" = default_model_dir(),
  // "/" = anywhere; see model_files.hpp). `preload` is the operator's and may name any file.
  std::string model_dir;
  std::vector<std::pair<std::string, std::string>> preload;  // (name, spec) loaded at start
};

// Bounds of the numeric settings (decodelabd's options are checked against them).
inline constexpr int kMaxWorkers = 1024;
inline constexpr std::size_t kMaxQueue = 1 << 24;
inline constexpr std::size_t kMinMessageBytes = 256;      // room for any request but a long prompt
inline constexpr std::size_t kMaxMessageBytes = 1 << 30;  // ZeroMQ's own bound is twice this, in an int64
inline constexpr int64_t kMaxTokens = 2147483647;         // DecodeOptions holds an int
inline constexpr int kMaxPrefillChunk = 1 << 30;

// Throws decodelab::Error naming the option when a setting is out of its range.
void check_config(const ServiceConfig& config);

// Reads the CURVE client allow-list: one Z85 public key (40 characters) per line; blank lines and
// lines starting with '#' are skipped. Throws decodelab::Error naming the file and line.
std::vector<std::string> read_curve_clients(const std::string& path);

// Throws decodelab::Error naming the endpoint when it is not allowed by the configuration.
void check_endpoint(const std::string& endpoint, const ServiceConfig& config);

class Service {
 public:
  explicit Service(ServiceConfig config);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Binds, serves until stopped (signal, shutdown op or stop()), returns the exit status.
  int run();
  // Thread-safe; asks run() to stop (stop accepting, cancel in-flight work, exit).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace decodelab::daemon
