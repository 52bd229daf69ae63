#pragma once
// What the decodelabd end-to-end tests share: a daemon child process on a private ipc endpoint,
// a bare DEALER for requests the C++ client would not send, and small request builders.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <zmq.hpp>

#include "clients/cpp/client.hpp"
#include "decodelab/error.hpp"

extern char** environ;

namespace decodelab::daemon_testing {

using client::Client;
using client::GenerateOptions;
using client::Value;

// Client options by assignment: GCC 12 warns (-Wmissing-field-initializers) on designated
// initializers that leave members to their defaults.
inline client::ClientOptions client_options(double timeout_s, std::string auth = {},
                                            std::string curve_server_key = {}) {
  client::ClientOptions o;
  o.timeout_s = timeout_s;
  o.auth = std::move(auth);
  o.curve_server_key = std::move(curve_server_key);
  return o;
}

inline const char* kTarget = "table(vocab=32,order=2,seed=1,sharpness=2)";
inline const char* kDraft = "draft(temper=1.5,noise=0.2,seed=3)";

// A decodelabd child process on a private ipc endpoint; stopped with SIGTERM at the end.
class Daemon {
 public:
  explicit Daemon(std::vector<std::string> extra = {}) {
    std::string dir_template_s = (std::filesystem::temp_directory_path() / "decodelabd-test-XXXXXX").string();
    char* dir_template = dir_template_s.data();
    dir_ = mkdtemp(dir_template);
    endpoint_ = "ipc://" + dir_ + "/d.sock";
    std::vector<std::string> args{DECODELABD_PATH, "--bind", endpoint_, "--load", std::string("t=") + kTarget,
                                  "--log-level",   "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, DECODELABD_PATH, nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
  }
  ~Daemon() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      wait_exit();
    }
    std::filesystem::remove_all(dir_);
  }
  const std::string& endpoint() const { return endpoint_; }
  pid_t pid() const { return pid_; }
  // Exit status, or -1 when it did not exit within 5 s.
  int wait_exit() {
    for (int i = 0; i < 500; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return -1;
  }

 private:
  std::string dir_, endpoint_;
  pid_t pid_ = -1;
};

// A bare DEALER for requests the C++ client would not send: ids of the test's choosing, raw bytes.
class RawClient {
 public:
  explicit RawClient(const std::string& endpoint) : socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }
  void send(const Value::Map& request) { send_bytes(daemon::pack(request)); }
  void send_bytes(const std::string& bytes) { socket_.send(zmq::buffer(bytes), zmq::send_flags::none); }
  // The next message that is not a heartbeat, raw; throws after timeout_ms.
  std::string receive_bytes(int timeout_ms = 10000) {
    while (true) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) == 0)
        fail(ErrorCode::cancelled, "no reply in time");
      zmq::message_t m;
      (void)socket_.recv(m, zmq::recv_flags::none);
      std::string bytes = m.to_string();
      const Value v = daemon::unpack(bytes);
      if (v.get("type") && v.get("type")->as_string() == "heartbeat") continue;
      return bytes;
    }
  }
  Value receive(int timeout_ms = 10000) { return daemon::unpack(receive_bytes(timeout_ms)); }
  // The final reply (result or error) to `id`; chunks of it are skipped, other messages kept.
  Value final_reply(uint64_t id, int timeout_ms = 10000) {
    for (auto it = others_.begin(); it != others_.end(); ++it) {
      if (uint64_t(it->get("id")->as_int()) == id && it->get("type")->as_string() != "chunk") {
        Value v = std::move(*it);
        others_.erase(it);
        return v;
      }
    }
    while (true) {
      Value v = receive(timeout_ms);
      if (uint64_t(v.get("id")->as_int()) != id) {
        others_.push_back(std::move(v));
        continue;
      }
      if (v.get("type")->as_string() == "chunk") continue;
      return v;
    }
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
  std::vector<Value> others_;
};

// A reply's type, code, field and message, for failure messages.
inline std::string describe(const Value& reply) {
  std::string out;
  for (const char* key : {"type", "code", "field", "message", "stop_reason"}) {
    if (const Value* v = reply.get(key); v && std::holds_alternative<std::string>(v->v))
      out += std::string(key) + "=" + v->as_string() + " ";
  }
  return out;
}

inline Value::Map with_id(uint64_t id, const std::string& op, Value::Map fields) {
  Value::Map m{{"id", id}, {"op", op}};
  for (auto& f : fields) m.push_back(std::move(f));
  return m;
}

inline GenerateOptions sample_request(uint64_t seed, int64_t max_tokens) {
  GenerateOptions g;
  g.models = {{"target", "t"}};
  g.prompt = "a b c";
  g.seed = seed;
  g.max_tokens = max_tokens;
  g.logprobs = true;
  return g;
}

}  // namespace decodelab::daemon_testing
