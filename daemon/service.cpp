// decodelabd's service: see service.hpp for the threads and who owns what.
#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST  // msgpack-cxx without its Boost-based adaptors
#endif
#include "daemon/service.hpp"

#include <malloc.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DECODELAB_SANITIZED_HEAP 1
// The sanitizers' allocator counts its bytes in use (GCC ships no header declaring it).
extern "C" __SIZE_TYPE__ __sanitizer_get_current_allocated_bytes();
#endif
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "core/cpu_features.hpp"
#include "daemon/generation.hpp"
#include "daemon/model_files.hpp"
#include "daemon/protocol.hpp"
#include "daemon/reward_channel.hpp"
#include "decodelab/decoder.hpp"
#include "decodelab/error.hpp"
#include "decodelab/model_factory.hpp"

namespace decodelab::daemon {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// 0 stays 0: the model table's default budget.
static std::size_t kv_budget_bytes(double mib) { return std::size_t(mib * 1024.0 * 1024.0); }

LogLevel parse_log_level(const std::string& text) {
  if (text == "error") return LogLevel::error;
  if (text == "warn") return LogLevel::warn;
  if (text == "info") return LogLevel::info;
  if (text == "debug") return LogLevel::debug;
  fail(ErrorCode::invalid_argument, "log level '" + text + "' is not one of error, warn, info, debug");
}

void check_config(const ServiceConfig& config) {
  auto in_range = [](const char* option, double value, double min, double max) {
    if (!(value >= min && value <= max)) {
      fail(ErrorCode::invalid_argument, std::string(option) + " must be in [" + std::to_string(int64_t(min)) + ", " +
                                            std::to_string(int64_t(max)) + "], got " + std::to_string(value));
    }
  };
  in_range("--workers", config.workers, 1, kMaxWorkers);
  in_range("--max-queue", double(config.max_queue), 1, double(kMaxQueue));
  in_range("--max-message-bytes", double(config.max_message_bytes), double(kMinMessageBytes), double(kMaxMessageBytes));
  in_range("--max-tokens", double(config.max_tokens), 1, double(kMaxTokens));
  in_range("--prefill-chunk", config.prefill_chunk, 1, kMaxPrefillChunk);
  in_range("--kv-budget-mb", config.kv_budget_mb, 0, kMaxKvBudgetMb);
}

std::vector<std::string> read_curve_clients(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(ErrorCode::not_found, "cannot read CURVE client list '" + path + "'");
  std::vector<std::string> keys;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    std::size_t start = 0;
    while (start < line.size() && std::isspace(static_cast<unsigned char>(line[start]))) ++start;
    line.erase(0, start);
    if (line.empty() || line[0] == '#') continue;
    uint8_t key[32];
    if (line.size() != 40 || !zmq_z85_decode(key, line.c_str())) {
      fail(ErrorCode::invalid_argument,
           path + ":" + std::to_string(number) + ": not a Z85 CURVE public key (40 characters)");
    }
    keys.push_back(line);
  }
  if (keys.empty()) fail(ErrorCode::invalid_argument, "CURVE client list '" + path + "' holds no key");
  return keys;
}

void check_endpoint(const std::string& endpoint, const ServiceConfig& config) {
  if (endpoint.rfind("ipc://", 0) == 0) {
    if (endpoint.size() <= 6) fail(ErrorCode::invalid_argument, "endpoint '" + endpoint + "' has no path");
    return;
  }
  if (endpoint.rfind("tcp://", 0) != 0) {
    fail(ErrorCode::invalid_argument, "endpoint '" + endpoint + "': only ipc:// and tcp:// endpoints are supported");
  }
  const std::string rest = endpoint.substr(6);
  const std::size_t colon = rest.rfind(':');
  if (colon == std::string::npos) fail(ErrorCode::invalid_argument, "endpoint '" + endpoint + "' has no port");
  const std::string host = rest.substr(0, colon);
  const bool loopback = host == "127.0.0.1" || host == "localhost" || host == "[::1]" || host == "lo";
  if (loopback) return;
  if (!config.allow_remote) {
    fail(ErrorCode::invalid_argument,
         "endpoint '" + endpoint +
             "' is not loopback; pass --allow-remote together with --secret-file or --curve-clients");
  }
  // CURVE alone encrypts but lets in anyone who knows the server's (public) key.
  if (config.secret.empty() && (config.curve_secret_key.empty() || config.curve_clients.empty())) {
    fail(ErrorCode::invalid_argument,
         "endpoint '" + endpoint +
             "' is not loopback and clients are not authenticated: configure a shared secret "
             "(--secret-file) or CURVE with an allow-list of clients (--curve-clients)");
  }
}

namespace {

// ------------------------------------------------------------------------------------------------
// Logging

class Log {
 public:
  explicit Log(LogLevel level) : level_(level) {}
  bool enabled(LogLevel level) const { return int(level) <= int(level_); }
  void operator()(LogLevel level, const std::string& message) {
    if (!enabled(level)) return;
    static const char* names[] = {"error", "warn", "info", "debug"};
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const double t = std::chrono::duration<double>(now).count();
    std::lock_guard lock(mutex_);
    std::fprintf(stderr, "decodelabd %.3f [%s] %s\n", t, names[int(level)], message.c_str());
    std::fflush(stderr);
  }

 private:
  LogLevel level_;
  std::mutex mutex_;
};

// ------------------------------------------------------------------------------------------------
// Jobs and the fair queue

struct Job {
  std::string identity;  // the client's ROUTER identity
  uint64_t id = 0;
  std::string op;
  Clock::time_point received;
  double deadline_s = 0;
  // A job runs as `members` runs (a generate with n / seeds: one per seed; else 1), each on a
  // worker of its own. `work` runs one and returns the job's final reply (a result or an error)
  // when it was the last to finish, nothing otherwise; the worker sends it after taking the job
  // out of the table of jobs in flight.
  std::size_t members = 1;
  std::size_t handed_out = 0;  // members given to workers so far (FairQueue's mutex)
  std::function<std::optional<Value>(Job&, std::size_t member)> work;
  CancelState cancel;
  std::shared_ptr<RewardChannel> reward;               // generations with client_reward only
  std::shared_ptr<asio::steady_timer> deadline_timer;  // touched only on the control thread
};

// Round-robin across clients: each client has its own FIFO, and workers take the head of the
// next client's FIFO in turn, so one client's burst cannot starve another. A job of several
// members stays at the head of its client's FIFO until every member has been handed out, one
// per turn: a request for n = 1000 generations takes one worker per round like any other
// client's request, and another client's request starts as soon as a worker frees up.
class FairQueue {
 public:
  explicit FairQueue(std::size_t capacity) : capacity_(capacity) {}

  bool push(std::shared_ptr<Job> job) {
    std::lock_guard lock(mutex_);
    if (closed_ || size_ >= capacity_) return false;
    auto& q = per_client_[job->identity];
    if (q.empty()) turn_.push_back(job->identity);
    const bool several = job->members > 1;
    q.push_back(std::move(job));
    ++size_;
    if (several) ready_.notify_all();  // a worker for each member
    else ready_.notify_one();
    return true;
  }

  // Blocks; returns a job and the member to run, or nullptr once closed and drained.
  std::pair<std::shared_ptr<Job>, std::size_t> pop() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return closed_ || size_ > 0; });
    if (size_ == 0) return {nullptr, 0};
    const std::string client = turn_.front();
    turn_.pop_front();
    auto& q = per_client_[client];
    std::shared_ptr<Job> job = q.front();
    const std::size_t member = job->handed_out++;
    if (job->handed_out == job->members) {
      q.pop_front();
      --size_;
    }
    if (q.empty()) per_client_.erase(client);
    else turn_.push_back(client);
    return {std::move(job), member};
  }

  // Takes a job out of the queue if none of its members has started.
  bool remove(const std::shared_ptr<Job>& job) {
    std::lock_guard lock(mutex_);
    auto it = per_client_.find(job->identity);
    if (it == per_client_.end()) return false;
    auto& q = it->second;
    auto pos = std::find(q.begin(), q.end(), job);
    if (pos == q.end() || job->handed_out > 0) return false;
    q.erase(pos);
    --size_;
    if (q.empty()) {
      per_client_.erase(it);
      turn_.erase(std::find(turn_.begin(), turn_.end(), job->identity));
    }
    return true;
  }

  // Stops taking jobs and returns those none of whose members has started. Jobs already started
  // stay: workers still take their remaining members (cancelled by then, they end at once), so
  // every started job gets its one reply.
  std::vector<std::shared_ptr<Job>> close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    std::vector<std::shared_ptr<Job>> left;
    for (auto it = per_client_.begin(); it != per_client_.end();) {
      auto& q = it->second;
      for (auto j = q.begin(); j != q.end();) {
        if ((*j)->handed_out == 0) {
          left.push_back(*j);
          j = q.erase(j);
          --size_;
        } else {
          ++j;
        }
      }
      if (q.empty()) {
        turn_.erase(std::find(turn_.begin(), turn_.end(), it->first));
        it = per_client_.erase(it);
      } else {
        ++it;
      }
    }
    ready_.notify_all();
    return left;
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return size_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::map<std::string, std::deque<std::shared_ptr<Job>>> per_client_;
  std::deque<std::string> turn_;
  std::size_t size_ = 0;
  std::size_t capacity_;
  bool closed_ = false;
};

// ------------------------------------------------------------------------------------------------
// Metrics

class Metrics {
 public:
  void request(const std::string& op) {
    std::lock_guard lock(mutex_);
    requests_[op] += 1;
  }
  void error(const std::string& code) {
    std::lock_guard lock(mutex_);
    errors_[code] += 1;
  }
  void finished(const std::string& op, double seconds, int64_t tokens) {
    std::lock_guard lock(mutex_);
    auto& ring = latency_[op];
    if (ring.size() < kWindow) ring.push_back(seconds);
    else ring[std::size_t(completed_[op] % int64_t(kWindow))] = seconds;
    completed_[op] += 1;
    tokens_ += tokens;
  }
  Value snapshot() const {
    std::lock_guard lock(mutex_);
    Value::Map requests, errors, latency;
    int64_t total = 0, error_total = 0;
    for (const auto& [op, n] : requests_) {
      requests.emplace_back(op, n);
      total += n;
    }
    for (const auto& [code, n] : errors_) {
      errors.emplace_back(code, n);
      error_total += n;
    }
    for (const auto& [op, ring] : latency_) {
      std::vector<double> sorted = ring;
      std::sort(sorted.begin(), sorted.end());
      auto at = [&](double q) { return sorted[std::min(sorted.size() - 1, std::size_t(q * double(sorted.size())))]; };
      latency.emplace_back(op, Value::Map{{"count", completed_.at(op)},
                                          {"window", int64_t(sorted.size())},
                                          {"p50_s", at(0.5)},
                                          {"p90_s", at(0.9)},
                                          {"p99_s", at(0.99)},
                                          {"max_s", sorted.back()}});
    }
    return Value::Map{{"requests", total},        {"requests_by_op", requests},  {"errors", error_total},
                      {"errors_by_code", errors}, {"tokens_generated", tokens_}, {"latency", latency}};
  }

 private:
  static constexpr std::size_t kWindow = 4096;  // latency percentiles over the last requests per op
  mutable std::mutex mutex_;
  std::map<std::string, int64_t> requests_, errors_, completed_;
  std::map<std::string, std::vector<double>> latency_;
  int64_t tokens_ = 0;
};

// Bytes the allocator has handed out and not taken back: what a leak grows, unlike the resident
// set, which also counts pages of shared libraries as they are first touched (cuBLAS alone maps
// ~150 MB) and memory the allocator keeps for reuse. -1 where the allocator cannot tell.
int64_t heap_bytes() {
#if defined(DECODELAB_SANITIZED_HEAP)
  return int64_t(__sanitizer_get_current_allocated_bytes());
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 info = mallinfo2();
  return int64_t(info.uordblks + info.hblkhd);
#else
  return -1;
#endif
}

int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * int64_t(sysconf(_SC_PAGESIZE));
}

// The file of an ipc:// endpoint ("" for other endpoints and Linux's abstract @names, which the
// kernel itself refuses to bind twice).
std::string ipc_file(const std::string& endpoint) {
  if (endpoint.rfind("ipc://", 0) != 0 || endpoint.size() <= 6 || endpoint[6] == '@') return "";
  return endpoint.substr(6);
}

// Whether a process accepts connections on the unix socket at `path`.
bool someone_listens(const std::string& path) {
  sockaddr_un address{};
  if (path.size() >= sizeof address.sun_path) return false;  // unbindable; bind reports it
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool connected = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return connected;
}

bool same_secret(const std::string& given, const std::string& expected) {
  // Constant time in the secret's length, so response timing does not reveal a matching prefix.
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    diff |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
  }
  return diff == 0;
}

Value strings(const std::vector<std::string>& items) {
  Value::Array out;
  for (const auto& item : items) out.emplace_back(item);
  return out;
}

Value param_value(const ParamValue& v) {
  return std::visit([](const auto& x) { return Value(x); }, v);
}

Value param_schema(const std::vector<ParamSpec>& specs) {
  Value::Array out;
  for (const ParamSpec& s : specs) {
    const bool numeric = s.type == ParamType::integer || s.type == ParamType::real;
    Value::Array choices;
    for (const auto& c : s.choices) choices.emplace_back(c);
    out.emplace_back(Value::Map{{"name", s.name},
                                {"type", to_string(s.type)},
                                {"default", param_value(s.default_value)},
                                {"min", numeric && std::isfinite(s.min) ? Value(s.min) : Value()},
                                {"max", numeric && std::isfinite(s.max) ? Value(s.max) : Value()},
                                {"doc", s.doc},
                                {"choices", choices}});
  }
  return out;
}

}  // namespace

// ------------------------------------------------------------------------------------------------

struct Service::Impl {
  ServiceConfig config;
  DecodeLimits limits;
  Log log;
  Metrics metrics;
  ModelTable models;
  std::string model_dir;  // absolute; "" refuses every model file
  struct IpcFile {
    std::string path;
    dev_t dev;
    ino_t ino;
  };
  std::vector<IpcFile> ipc_files;  // the socket files of our ipc endpoints, removed at exit
  Authorizer authorizer;           // checks the shared secret; empty without one
  // CURVE authentication: the ZAP handler (ZeroMQ asks it about every CURVE handshake) admits the
  // clients whose public keys (32 bytes) are listed here.
  std::set<std::string> curve_clients;

  zmq::context_t context{1};
  zmq::socket_t router{context, zmq::socket_type::router};
  zmq::socket_t zap{context, zmq::socket_type::rep};  // the ZAP handler, bound with curve_clients
  std::thread::id io_thread;                          // the thread in run()
  int wake_fd = -1;  // eventfd: workers and the control thread wake the I/O thread through it

  std::mutex outbox_mutex;
  std::deque<std::pair<std::string, std::string>> outbox;  // (identity, packed message)

  FairQueue queue;
  std::mutex jobs_mutex;
  std::map<std::pair<std::string, uint64_t>, std::shared_ptr<Job>> jobs;  // queued or running
  std::atomic<int> running{0};

  asio::io_context io;
  std::unique_ptr<asio::signal_set> signals;
  std::unique_ptr<asio::steady_timer> heartbeat;
  std::thread control;
  std::vector<std::thread> workers;
  std::atomic<bool> stopping{false};
  Clock::time_point started = Clock::now();

  explicit Impl(ServiceConfig c) : config(std::move(c)), log(config.log_level), queue(config.max_queue) {
    if (!config.secret.empty()) {
      authorizer = [this](const std::string& auth) {
        if (!same_secret(auth, config.secret)) {
          reject(codes::unauthorized, "auth", "this daemon requires the shared secret in field 'auth'");
        }
      };
    }
    for (const std::string& key : config.curve_clients) {
      std::string binary(32, '\0');
      if (key.size() != 40 || !zmq_z85_decode(reinterpret_cast<uint8_t*>(binary.data()), key.c_str())) {
        fail(ErrorCode::invalid_argument, "CURVE client key '" + key + "' is not a Z85 public key (40 characters)");
      }
      curve_clients.insert(binary);
    }
    limits.max_message_bytes = config.max_message_bytes;
    limits.max_tokens = config.max_tokens;
    model_dir = config.model_dir.empty() ? default_model_dir() : config.model_dir;
    if (!model_dir.empty()) model_dir = std::filesystem::absolute(model_dir).lexically_normal().string();
  }

  // Only reached with live threads when run() failed part-way.
  ~Impl() {
    queue.close();
    for (auto& w : workers) {
      if (w.joinable()) w.join();
    }
    io.stop();
    if (control.joinable()) control.join();
  }

  void wake() {
    const uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  }

  // Any thread: queue a message for the I/O thread to send. The I/O thread flushes after every
  // batch of requests, so only other threads need to wake it.
  void post(const std::string& identity, const Value& message) {
    std::string packed = pack_reply(message);
    {
      std::lock_guard lock(outbox_mutex);
      outbox.emplace_back(identity, std::move(packed));
    }
    if (std::this_thread::get_id() != io_thread) wake();
  }

  void post_error(const std::string& identity, uint64_t id, const std::string& code, const std::string& message,
                  const std::string& field) {
    post(identity, counted_error(id, code, message, field));
  }

  // An error reply, counted in the metrics and logged (debug).
  Value counted_error(uint64_t id, const std::string& code, const std::string& message, const std::string& field) {
    metrics.error(code);
    if (log.enabled(LogLevel::debug)) {
      log(LogLevel::debug, "request " + std::to_string(id) + " error " + code + ": " + message);
    }
    return error_reply(id, code, message, field);
  }

  // I/O thread only.
  void flush_outbox() {
    std::deque<std::pair<std::string, std::string>> batch;
    {
      std::lock_guard lock(outbox_mutex);
      batch.swap(outbox);
    }
    for (auto& [identity, payload] : batch) {
      try {
        if (!router.send(zmq::buffer(identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
          log(LogLevel::warn, "client send queue full; message dropped");
          continue;
        }
        router.send(zmq::buffer(payload), zmq::send_flags::dontwait);
      } catch (const zmq::error_t& e) {
        if (e.num() != EHOSTUNREACH) throw;
        client_gone(identity);
      }
    }
  }

  void client_gone(const std::string& identity) {
    std::vector<std::shared_ptr<Job>> orphaned;
    {
      std::lock_guard lock(jobs_mutex);
      for (auto& [key, job] : jobs) {
        if (key.first == identity) orphaned.push_back(job);
      }
    }
    for (auto& job : orphaned) {
      if (job->cancel.request(CancelReason::disconnected)) {
        log(LogLevel::info, "client of request " + std::to_string(job->id) + " disconnected; cancelling it");
      }
      if (queue.remove(job)) finish_job(job);
    }
  }

  // Every queued op (generate, load_model) goes through here, so no op can take over the id of
  // a job in flight (its cancel, heartbeats and reward replies are found by that id).
  void register_job(const std::shared_ptr<Job>& job) {
    std::lock_guard lock(jobs_mutex);
    if (!jobs.emplace(std::pair{job->identity, job->id}, job).second) {
      reject(to_string(ErrorCode::invalid_argument), "id",
             "request id " + std::to_string(job->id) + " is already in flight for this client");
    }
  }

  void finish_job(const std::shared_ptr<Job>& job) {
    {
      std::lock_guard lock(jobs_mutex);
      auto it = jobs.find({job->identity, job->id});
      if (it != jobs.end() && it->second == job) jobs.erase(it);
    }
    // The timer belongs to the control thread: read it there, not here (a worker calls this).
    asio::post(io, [job] {
      if (job->deadline_timer) job->deadline_timer->cancel();
    });
  }

  // --- control thread: deadlines and heartbeats ---
  void arm_deadline(const std::shared_ptr<Job>& job) {
    if (job->deadline_s <= 0) return;
    asio::post(io, [this, job] {
      job->deadline_timer = std::make_shared<asio::steady_timer>(
          io,
          job->received + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(job->deadline_s)));
      job->deadline_timer->async_wait([this, weak = std::weak_ptr<Job>(job)](const boost::system::error_code& ec) {
        auto j = weak.lock();
        if (ec || !j) return;
        j->cancel.request(CancelReason::deadline);
        if (queue.remove(j)) {
          finish_job(j);
          post_error(j->identity, j->id, codes::deadline_exceeded,
                     "request " + std::to_string(j->id) + " waited in the queue past its deadline_s", "deadline_s");
        }
      });
    });
  }

  void schedule_heartbeat() {
    heartbeat->expires_after(
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(config.heartbeat_interval_s)));
    heartbeat->async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      std::vector<std::pair<std::string, uint64_t>> live;
      {
        std::lock_guard lock(jobs_mutex);
        for (const auto& [key, job] : jobs) live.push_back(key);
      }
      for (const auto& [identity, id] : live) post(identity, Value::Map{{"id", id}, {"type", "heartbeat"}});
      schedule_heartbeat();
    });
  }

  // --- workers ---
  void worker_loop() {
    while (true) {
      auto [job, member] = queue.pop();
      if (!job) break;
      running += 1;
      // The deadline timer runs on the control thread and may not have fired yet.
      if (job->deadline_s > 0 && Clock::now() >= job->received + seconds(job->deadline_s)) {
        job->cancel.request(CancelReason::deadline);
      }
      std::optional<Value> reply;
      try {
        reply = job->work(*job, member);
      } catch (const std::exception& e) {
        reply = counted_error(job->id, to_string(ErrorCode::internal), e.what(), "");
      }
      if (reply) {
        // Out of the table first: once the client has the final reply, its id is free again.
        finish_job(job);
        post(job->identity, *reply);
      }
      running -= 1;
      wake();
    }
  }

  bool enqueue(const std::shared_ptr<Job>& job) {
    register_job(job);
    if (!queue.push(job)) {
      finish_job(job);
      return false;
    }
    arm_deadline(job);
    return true;
  }

  // --- requests (I/O thread) ---
  Value hello() const {
    Value::Array backends;
    for (const ModelLoader* l : ModelLoaderRegistry::instance().list()) backends.emplace_back(l->name);
    return Value::Map{
        {"protocol", kProtocolVersion},
        {"server", "decodelabd"},
        {"version", DECODELAB_VERSION_STRING},
        {"build", Value::Map{{"compiler", __VERSION__},
                             {"cplusplus", int64_t(__cplusplus)},
#ifdef NDEBUG
                             {"assertions", false}
#else
                             {"assertions", true}
#endif
                  }},
        {"backends", backends},
        // The CPU and the kernel path its quantized products take (DECODELAB_CPU_PATH forces one).
        {"cpu", Value::Map{{"description", cpu_description()}, {"kernel_path", cpu_path_name(active_cpu_path())}}},
        {"ops", strings(op_names())},
        {"features", strings(op_features())},
        // True when a client must prove who it is: the shared secret, or a key on the CURVE allow-list.
        {"auth_required", !config.secret.empty() || !config.curve_clients.empty()},
        {"max_message_bytes", int64_t(config.max_message_bytes)},
    };
  }

  Value list_decoders() const {
    Value::Array out;
    for (const auto* e : DecoderRegistry::instance().list()) {
      Value::Array roles;
      for (const auto& r : e->roles) roles.emplace_back(r);
      out.emplace_back(Value::Map{{"name", e->name},
                                  {"doc", e->doc},
                                  {"roles", roles},
                                  {"optional_roles", strings(optional_roles(e->name))},
                                  {"params", param_schema(e->params)}});
    }
    return Value::Map{{"decoders", out}};
  }

  Value list_models() const {
    Value::Array loaders;
    for (const ModelLoader* l : ModelLoaderRegistry::instance().list()) {
      loaders.emplace_back(Value::Map{{"name", l->name}, {"doc", l->doc}, {"params", param_schema(l->params)}});
    }
    return Value::Map{{"models", models.describe()}, {"loaders", loaders}};
  }

  Value status() const {
    return Value::Map{{"queue_depth", int64_t(queue.size())},
                      {"in_flight", int64_t(running.load())},
                      {"workers", config.workers},
                      {"max_queue", int64_t(config.max_queue)},
                      {"models", models.describe()},
                      {"rss_bytes", resident_bytes()},
                      {"heap_bytes", heap_bytes()},
                      {"uptime_s", std::chrono::duration<double>(Clock::now() - started).count()},
                      {"stopping", stopping.load()}};
  }

  void handle(const std::string& identity, std::string_view payload) {
    const auto received = Clock::now();
    uint64_t id = 0;
    std::string op = "invalid";
    try {
      Request r = decode_request(payload, limits, &id, authorizer);
      op = r.op;
      metrics.request(op);
      if (log.enabled(LogLevel::debug)) {
        log(LogLevel::debug,
            "request " + std::to_string(id) + " op " + op + " (" + std::to_string(payload.size()) + " bytes)");
      }
      if (stopping) reject(codes::shutting_down, "", "the daemon is shutting down");
      Call call{identity, id, op, received};
      std::visit([&](auto& body) { on(call, body); }, r.body);
    } catch (const ProtocolError& e) {
      // A message with the id of a generation waiting for its reward is taken as that reward
      // reply, gone wrong: the generation fails with the error, once.
      if (auto channel = reward_channel(identity, id); channel && channel->deliver_error(e.code(), e.field(), e.what()))
        return;
      post_error(identity, id, e.code(), e.what(), e.field());
    } catch (const Error& e) {
      post_error(identity, id, to_string(e.code()), e.what(), "");
    } catch (const std::exception& e) {
      post_error(identity, id, to_string(ErrorCode::internal), e.what(), "");
    }
  }

  // --- one handler per request struct of kOps (I/O thread) ---
  // A request being handled: who sent it and when.
  struct Call {
    const std::string& identity;
    uint64_t id;
    const std::string& op;
    Clock::time_point received;
  };

  void reply(const Call& call, Value::Map fields) {
    post(call.identity, result_reply(call.id, std::move(fields)));
    metrics.finished(call.op, std::chrono::duration<double>(Clock::now() - call.received).count(), 0);
  }
  static Value::Map as_fields(Value v) { return std::get<Value::Map>(std::move(v.v)); }

  void on(const Call& call, HelloRequest&) { reply(call, as_fields(hello())); }
  void on(const Call& call, ListDecodersRequest&) { reply(call, as_fields(list_decoders())); }
  void on(const Call& call, ListModelsRequest&) { reply(call, as_fields(list_models())); }
  void on(const Call& call, StatusRequest&) { reply(call, as_fields(status())); }
  void on(const Call& call, MetricsRequest&) {
    Value::Map fields = as_fields(metrics.snapshot());
    fields.emplace_back("batching", models.batching());
    reply(call, std::move(fields));
  }

  void on(const Call& call, ShutdownRequest&) {
    if (!config.allow_shutdown)
      reject(codes::forbidden, "op", "the shutdown op is disabled (start decodelabd with --allow-shutdown)");
    reply(call, {{"stopping", true}});
    log(LogLevel::info, "shutdown requested by a client");
    stopping = true;
  }

  void on(const Call& call, CancelRequest& body) {
    std::shared_ptr<Job> job = find_job(call.identity, body.request_id);
    const bool found = job != nullptr;
    if (job) {
      job->cancel.request(CancelReason::client);
      if (queue.remove(job)) {
        finish_job(job);
        post_error(call.identity, job->id, to_string(ErrorCode::cancelled), "request cancelled before it started", "");
      }
    }
    reply(call, {{"found", found}});
  }

  void on(const Call& call, RewardReply& body) {
    // One-way: a problem with the reply fails the generation it answers.
    const uint64_t reward_call = body.call;
    auto channel = reward_channel(call.identity, call.id);
    if (!channel || !channel->deliver(std::move(body))) {
      log(LogLevel::debug, "reward reply for request " + std::to_string(call.id) + " call " +
                               std::to_string(reward_call) + " answers no outstanding reward request; dropped");
    }
  }

  void on(const Call& call, UnloadModelRequest& body) {
    models.unload(body.name);
    log(LogLevel::info, "unloaded model '" + body.name + "'");
    reply(call, {{"unloaded", body.name}});
  }

  void on(const Call& call, LoadModelRequest& body) {
    queue_load(call.identity, call.id, call.received, std::move(body));
  }
  void on(const Call& call, GenerateRequest& body) {
    queue_generate(call.identity, call.id, call.received, std::move(body));
  }

  std::shared_ptr<Job> find_job(const std::string& identity, uint64_t id) {
    std::lock_guard lock(jobs_mutex);
    auto it = jobs.find({identity, id});
    return it == jobs.end() ? nullptr : it->second;
  }

  std::shared_ptr<RewardChannel> reward_channel(const std::string& identity, uint64_t id) {
    auto job = find_job(identity, id);
    return job ? job->reward : nullptr;
  }

  void queue_load(const std::string& identity, uint64_t id, Clock::time_point received, LoadModelRequest body) {
    models.check_new(body.name, body.spec, body.target);
    auto job = std::make_shared<Job>();
    job->identity = identity;
    job->id = id;
    job->op = "load_model";
    job->received = received;
    job->work = [this, body = std::move(body)](Job& j, std::size_t) -> std::optional<Value> {
      try {
        const auto t0 = Clock::now();
        auto loaded = models.load(body.name, body.spec, body.target, model_dir,
                                  kv_budget_bytes(body.kv_budget_mb ? body.kv_budget_mb : config.kv_budget_mb));
        const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        log(LogLevel::info,
            "loaded model '" + body.name + "' = " + body.spec + " in " + std::to_string(seconds) + " s");
        metrics.finished("load_model", std::chrono::duration<double>(Clock::now() - j.received).count(), 0);
        return result_reply(j.id, {{"model", ModelTable::describe_one(*loaded)}, {"seconds", seconds}});
      } catch (const ProtocolError& e) {
        return counted_error(j.id, e.code(), e.what(), e.field());
      } catch (const Error& e) {
        return counted_error(j.id, to_string(e.code()), e.what(), "spec");
      }
    };
    if (!enqueue(job))
      reject(codes::busy, "",
             "the request queue is full (" + std::to_string(config.max_queue) + " waiting); retry later");
  }

  void queue_generate(const std::string& identity, uint64_t id, Clock::time_point received, GenerateRequest body) {
    auto prepared = std::make_shared<PreparedGeneration>(prepare_generation(models, std::move(body)));
    auto job = std::make_shared<Job>();
    job->identity = identity;
    job->id = id;
    job->op = "generate";
    job->received = received;
    job->deadline_s = prepared->request.deadline_s;
    job->members = prepared->seeds.size();
    if (prepared->request.client_reward) job->reward = std::make_shared<RewardChannel>();
    if (!prepared->request.seeds) {
      job->work = [this, prepared](Job& j, std::size_t) -> std::optional<Value> {
        try {
          auto decoder = prepared->make_decoder();
          GenerationOutcome outcome = run_generation(*prepared, *decoder, generation_context(j, *prepared, 0));
          metrics.finished("generate", std::chrono::duration<double>(Clock::now() - j.received).count(),
                           outcome.tokens);
          return std::move(outcome.result);
        } catch (const ProtocolError& e) {
          return counted_error(j.id, e.code(), e.what(), e.field());
        } catch (const Error& e) {
          return counted_error(j.id, to_string(e.code()), e.what(), "");
        }
      };
    } else {
      auto many = std::make_shared<ManyResults>(prepared->seeds.size());
      job->work = [this, prepared, many](Job& j, std::size_t member) -> std::optional<Value> {
        return run_member(j, *prepared, *many, member);
      };
    }
    if (!enqueue(job))
      reject(codes::busy, "",
             "the request queue is full (" + std::to_string(config.max_queue) + " waiting); retry later");
  }

  GenerationContext generation_context(Job& j, const PreparedGeneration& prepared, std::size_t member) {
    GenerationContext ctx;
    ctx.request_id = j.id;
    ctx.seed = prepared.seeds[member];
    ctx.tag_seed = prepared.request.seeds.has_value();
    ctx.cancel = &j.cancel;
    ctx.stream_interval_s = config.stream_interval_s;
    ctx.prefill_chunk = config.prefill_chunk;
    ctx.received = j.received;
    ctx.send = [this, identity = j.identity](const Value& message) { post(identity, message); };
    if (j.reward) {
      const double timeout_s = prepared.request.reward_timeout_s;
      ctx.reward = [this, channel = j.reward, identity = j.identity, id = j.id, cancel = &j.cancel,
                    timeout_s](std::span<const std::string> texts) {
        const uint64_t call = channel->begin_call();
        post(identity, reward_request_message(id, call, texts));
        return channel->wait(call, texts.size(), *cancel, timeout_s);
      };
    }
    return ctx;
  }

  // The members of a request with several seeds: each result is kept until the last member ends,
  // which sends them all as one result (or the first member's error: the others are then
  // cancelled, so they end soon).
  struct ManyResults {
    explicit ManyResults(std::size_t n) : results(n), left(n) {}
    std::mutex mutex;
    std::vector<Value> results;
    std::size_t left;
    std::optional<Value> error;
    int64_t tokens = 0;
  };

  std::optional<Value> run_member(Job& j, PreparedGeneration& prepared, ManyResults& many, std::size_t member) {
    Value result;
    std::optional<Value> error;
    int64_t tokens = 0;
    const uint64_t seed = prepared.seeds[member];
    // Stopped before this member started (cancel, deadline, disconnect, shutdown): it generated
    // nothing. (Not for `failed`: then the request's reply is the failing member's error.)
    auto unstarted = [&] {
      Value::Map r{
          {"seed", seed}, {"tokens", Value::Array{}}, {"text", ""}, {"stop_reason", to_string(j.cancel.reason())}};
      if (prepared.request.logprobs) r.emplace_back("logprobs", Value::Array{});
      return Value(std::move(r));
    };
    try {
      if (j.cancel.cancelled()) {
        result = unstarted();
      } else {
        auto decoder = prepared.make_decoder();
        GenerationOutcome outcome = run_generation(prepared, *decoder, generation_context(j, prepared, member));
        auto& fields = std::get<Value::Map>(outcome.result.v);
        fields.erase(fields.begin(), fields.begin() + 2);  // id and type belong to the whole reply
        result = std::move(outcome.result);
        tokens = outcome.tokens;
      }
    } catch (const ProtocolError& e) {
      // A stop that came between the check above and the run's own check is not a failure.
      const bool stopped = e.code() == to_string(ErrorCode::cancelled) || e.code() == codes::deadline_exceeded;
      if (stopped && j.cancel.cancelled() && j.cancel.reason() != CancelReason::failed) result = unstarted();
      else error = error_reply(j.id, e.code(), e.what(), e.field());
    } catch (const Error& e) {
      error = error_reply(j.id, to_string(e.code()), e.what(), "");
    } catch (const std::exception& e) {
      error = error_reply(j.id, to_string(ErrorCode::internal), e.what(), "");
    }
    if (error) j.cancel.request(CancelReason::failed);
    std::lock_guard lock(many.mutex);
    many.results[member] = std::move(result);
    many.tokens += tokens;
    if (error && !many.error) many.error = std::move(error);
    if (--many.left > 0) return std::nullopt;
    if (many.error) {
      const Value* code = many.error->get("code");
      metrics.error(code ? code->as_string() : to_string(ErrorCode::internal));
      return std::move(*many.error);
    }
    const double total_s = std::chrono::duration<double>(Clock::now() - j.received).count();
    metrics.finished("generate", total_s, many.tokens);
    return result_reply(
        j.id, {{"results", Value::Array(std::move(many.results))}, {"timings", Value::Map{{"total_s", total_s}}}});
  }

  // --- lifecycle ---
  void bind() {
    if (config.endpoints.empty()) fail(ErrorCode::invalid_argument, "no endpoint to bind (--bind)");
    for (const auto& e : config.endpoints) check_endpoint(e, config);
    router.set(zmq::sockopt::router_mandatory, 1);
    router.set(zmq::sockopt::sndhwm, 100000);
    router.set(zmq::sockopt::rcvhwm, 100000);
    router.set(zmq::sockopt::linger, 500);
    // Messages far over the limit are dropped by ZeroMQ before they are buffered; those up to 2x
    // arrive and get a "too_large" reply.
    router.set(zmq::sockopt::maxmsgsize, int64_t(config.max_message_bytes) * 2 + 1024);
    if (!config.curve_clients.empty() && config.curve_secret_key.empty()) {
      fail(ErrorCode::invalid_argument,
           "--curve-clients needs CURVE enabled (--curve-secret-key or --curve-secret-file)");
    }
    if (!config.curve_secret_key.empty()) {
      if (!zmq_has("curve")) fail(ErrorCode::unsupported, "this libzmq has no CURVE support (--curve-secret-key)");
      if (!curve_clients.empty()) {
        zap.set(zmq::sockopt::linger, 0);
        zap.bind("inproc://zeromq.zap.01");  // before any handshake can happen
        router.set(zmq::sockopt::zap_domain, "decodelabd");
      }
      router.set(zmq::sockopt::curve_server, 1);
      router.set(zmq::sockopt::curve_secretkey, config.curve_secret_key);
    }
    router.set(zmq::sockopt::ipv6, 1);  // tcp://[::1]:P; IPv4 addresses still work
    for (const auto& e : config.endpoints) {
      // ZeroMQ binds to interfaces and addresses, not host names: localhost is both loopbacks.
      const std::string localhost = "tcp://localhost:";
      if (e.rfind(localhost, 0) == 0) {
        const std::string port = e.substr(localhost.size());
        bind_endpoint("tcp://127.0.0.1:" + port, e);
        try {
          router.bind("tcp://[::1]:" + port);
        } catch (const zmq::error_t& err) {
          log(LogLevel::info, "no IPv6 loopback for " + e + " (" + err.what() + "); IPv4 only");
        }
      } else {
        bind_endpoint(e, e);
      }
      log(LogLevel::info, "listening on " + e);
    }
  }

  void bind_endpoint(const std::string& endpoint, const std::string& as_given) {
    const std::string path = ipc_file(endpoint);
    // ZeroMQ replaces an existing socket file without asking, which would leave a running daemon
    // there unreachable; a file nobody answers on is stale and may go.
    if (!path.empty() && someone_listens(path)) {
      fail(ErrorCode::invalid_argument,
           "cannot bind endpoint '" + as_given + "': another process (a running decodelabd?) listens on it");
    }
    try {
      router.bind(endpoint);
    } catch (const zmq::error_t& err) {
      fail(ErrorCode::invalid_argument, "cannot bind endpoint '" + as_given + "': " + err.what());
    }
    struct stat st {};
    if (!path.empty() && ::stat(path.c_str(), &st) == 0) ipc_files.push_back({path, st.st_dev, st.st_ino});
  }

  // Removes the socket files this daemon created, unless another process has replaced them since.
  void remove_ipc_files() {
    for (const IpcFile& f : ipc_files) {
      struct stat st {};
      if (::stat(f.path.c_str(), &st) == 0 && st.st_dev == f.dev && st.st_ino == f.ino) ::unlink(f.path.c_str());
    }
    ipc_files.clear();
  }

  int run() {
    check_config(config);
    io_thread = std::this_thread::get_id();
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) fail(ErrorCode::internal, "eventfd failed");
    for (const auto& [name, spec] : config.preload) {
      models.load(name, spec, "", "/", kv_budget_bytes(config.kv_budget_mb));
      log(LogLevel::info, "preloaded model '" + name + "' = " + spec);
    }
    bind();

    signals = std::make_unique<asio::signal_set>(io, SIGINT, SIGTERM);
    signals->async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      log(LogLevel::info, std::string("received ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") + "; stopping");
      stopping = true;
      wake();
    });
    heartbeat = std::make_unique<asio::steady_timer>(io);
    schedule_heartbeat();
    auto guard = asio::make_work_guard(io);
    control = std::thread([this] { io.run(); });
    for (int i = 0; i < std::max(1, config.workers); ++i) workers.emplace_back([this] { worker_loop(); });

    Clock::time_point give_up{};
    bool draining = false;
    while (true) {
      zmq::pollitem_t items[] = {
          {router.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd, ZMQ_POLLIN, 0}, {zap.handle(), 0, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, curve_clients.empty() ? 2 : 3, std::chrono::milliseconds(draining ? 10 : -1));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;  // a signal interrupted the wait; the signal_set handles it
        continue;
      }
      if (items[1].revents & ZMQ_POLLIN) {
        uint64_t count;
        [[maybe_unused]] auto n = ::read(wake_fd, &count, sizeof count);
      }
      if (!curve_clients.empty() && (items[2].revents & ZMQ_POLLIN)) answer_zap();
      flush_outbox();
      if (items[0].revents & ZMQ_POLLIN) {
        receive_all();
        flush_outbox();
      }
      if (stopping && !draining) {
        draining = true;
        give_up = Clock::now() +
                  std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(config.shutdown_grace_s));
        begin_stop();
      }
      if (draining) {
        flush_outbox();
        if (running == 0 || Clock::now() > give_up) break;
      }
    }
    const bool abandoned = running != 0;
    for (auto& w : workers) {
      if (abandoned) w.detach();
      else w.join();
    }
    flush_outbox();
    // Let the control thread finish its handlers (timer cancellations) so no timer outlives the
    // io_context; stop it outright if something still waits after a second.
    asio::post(io, [this] {
      heartbeat->cancel();
      signals->cancel();
    });
    guard.reset();
    for (int i = 0; i < 100 && !io.stopped(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    io.stop();
    control.join();
    if (abandoned) {
      log(LogLevel::warn, "in-flight work did not stop within the grace period; exiting anyway");
      router.close();
      remove_ipc_files();
      std::_Exit(0);
    }
    router.close();
    remove_ipc_files();
    log(LogLevel::info, "stopped");
    return 0;
  }

  // ZAP (ZeroMQ RFC 27): one request per CURVE handshake, frames version, request id, domain,
  // address, routing id, mechanism, then the client's 32-byte public key. Status 200 admits it.
  void answer_zap() {
    while (true) {
      std::vector<zmq::message_t> request;
      if (!zmq::recv_multipart(zap, std::back_inserter(request), zmq::recv_flags::dontwait)) return;
      // A REP socket must answer every request; a malformed one (libzmq sends none) is refused.
      const bool curve = request.size() >= 7 && request[5].to_string_view() == "CURVE" && request[6].size() == 32;
      const zmq::const_buffer request_id =
          request.size() >= 2 ? zmq::buffer(request[1].data(), request[1].size()) : zmq::str_buffer("");
      const std::string address = request.size() >= 4 ? request[3].to_string() : "?";
      const bool allowed = curve && curve_clients.count(request[6].to_string());
      if (!allowed) log(LogLevel::info, "CURVE client from " + address + " is not on the allow-list; refused");
      std::array<zmq::const_buffer, 6> reply{
          zmq::str_buffer("1.0"),
          request_id,
          allowed ? zmq::str_buffer("200") : zmq::str_buffer("400"),
          allowed ? zmq::str_buffer("OK") : zmq::str_buffer("client key not allowed"),
          zmq::str_buffer(""),
          zmq::str_buffer("")};
      zmq::send_multipart(zap, reply);
    }
  }

  void receive_all() {
    while (true) {
      std::vector<zmq::message_t> frames;
      std::optional<std::size_t> got;
      try {
        got = zmq::recv_multipart(router, std::back_inserter(frames), zmq::recv_flags::dontwait);
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
        return;
      }
      if (!got) return;
      if (frames.size() < 2) continue;
      const std::string identity = frames[0].to_string();
      if (frames.size() != 2) {
        post_error(identity, peek_request_id(frames[1].to_string_view(), limits), to_string(ErrorCode::bad_format),
                   "a request is exactly one message frame (got " + std::to_string(frames.size() - 1) + ")", "");
        continue;
      }
      handle(identity, frames[1].to_string_view());  // refuses requests with shutting_down while stopping
    }
  }

  void begin_stop() {
    log(LogLevel::info, "stopping: cancelling in-flight work");
    for (auto& job : queue.close()) {
      finish_job(job);
      post_error(job->identity, job->id, codes::shutting_down, "the daemon is shutting down", "");
    }
    std::lock_guard lock(jobs_mutex);
    for (auto& [key, job] : jobs) job->cancel.request(CancelReason::shutdown);
  }
};

Service::Service(ServiceConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Service::~Service() {
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}
int Service::run() { return impl_->run(); }
void Service::stop() {
  impl_->stopping = true;
  if (impl_->wake_fd >= 0) impl_->wake();
}

}  // namespace decodelab::daemon
