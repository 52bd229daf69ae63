// bench_daemon: round-trip latency of a trivial decodelabd request against the ZeroMQ floor,
// measured in the same run (docs/benchmarks-daemon.md).
//
//   floor:  a bare ROUTER thread that unpacks each small msgpack map and packs a small reply
//           map back, DEALER client in the same process (what any msgpack-over-ZeroMQ server pays)
//   hello:  decodelabd's Service in the same process answering {"op": "hello"}
//   status: a reply that reads the model table and /proc
//   generate(1 token): a full generation request on a 32-token analytic model, through a worker
//
// Usage: bench_daemon [round_trips=20000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "bench/daemon/bench_floor.hpp"
#include "daemon/protocol.hpp"
#include "daemon/service.hpp"

namespace {

using namespace decodelab::daemon;
using Clock = std::chrono::steady_clock;

struct Summary {
  double p50_us, p90_us, p99_us, mean_us;
};

Summary summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double x : us) sum += x;
  auto at = [&](double q) { return us[std::min(us.size() - 1, std::size_t(q * double(us.size())))]; };
  return {at(0.5), at(0.9), at(0.99), sum / double(us.size())};
}

// Sends `request` and waits for the reply `n` times (after a warm-up), returning microseconds.
std::vector<double> round_trips(zmq::socket_t& dealer, const std::string& request, int n) {
  std::vector<double> us;
  us.reserve(std::size_t(n));
  zmq::message_t reply;
  for (int i = 0; i < n + n / 10; ++i) {
    const auto t0 = Clock::now();
    dealer.send(zmq::buffer(request), zmq::send_flags::none);
    (void)dealer.recv(reply, zmq::recv_flags::none);
    const double t = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    if (i >= n / 10) us.push_back(t);
  }
  return us;
}

void echo_server(zmq::context_t& ctx, const std::string& endpoint, std::atomic<bool>& ready) {
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind(endpoint);
  ready = true;
  serve_msgpack_echo(router);
}

void print(const char* transport, const char* what, const Summary& s, double floor_p50) {
  std::printf("%-4s %-22s p50 %7.1f us  p90 %7.1f us  p99 %7.1f us  mean %7.1f us  p50/floor %5.2f\n", transport, what,
              s.p50_us, s.p90_us, s.p99_us, s.mean_us, s.p50_us / floor_p50);
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::stoi(argv[1]) : 20000;
  const std::string dir = std::filesystem::temp_directory_path() / ("bench-daemon-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string hello = pack(Value::Map{{"id", 1}, {"op", "hello"}});
  const std::string status = pack(Value::Map{{"id", 1}, {"op", "status"}});
  const std::string generate = pack(Value::Map{{"id", 1},
                                               {"op", "generate"},
                                               {"models", Value::Map{{"target", "t"}}},
                                               {"prompt_ids", Value::Array{1, 2}},
                                               {"max_tokens", 1}});

  for (const char* transport : {"ipc", "tcp"}) {
    const bool ipc = std::string(transport) == "ipc";
    const std::string floor_ep = ipc ? "ipc://" + dir + "/floor" : "tcp://127.0.0.1:47361";
    const std::string daemon_ep = ipc ? "ipc://" + dir + "/daemon" : "tcp://127.0.0.1:47362";

    zmq::context_t ctx;
    std::atomic<bool> ready{false};
    std::thread echo([&] { echo_server(ctx, floor_ep, ready); });
    while (!ready) std::this_thread::yield();
    ServiceConfig config;
    config.endpoints = {daemon_ep};
    config.log_level = LogLevel::error;
    config.preload = {{"t", "table(vocab=32,order=2,seed=1,sharpness=2)"}};
    Service service(config);
    std::thread server([&] { service.run(); });

    zmq::socket_t floor_client(ctx, zmq::socket_type::dealer);
    floor_client.set(zmq::sockopt::linger, 0);
    floor_client.connect(floor_ep);
    zmq::socket_t client(ctx, zmq::socket_type::dealer);
    client.set(zmq::sockopt::linger, 0);
    client.connect(daemon_ep);
    // Interleaved rounds, so drift in machine load affects floor and daemon alike.
    std::vector<double> floor_us, hello_us, status_us, generate_us;
    constexpr int kRounds = 10;
    for (int round = 0; round < kRounds; ++round) {
      for (auto [sock, request, out] :
           {std::tuple{&floor_client, &hello, &floor_us}, std::tuple{&client, &hello, &hello_us},
            std::tuple{&client, &status, &status_us}, std::tuple{&client, &generate, &generate_us}}) {
        const auto us = round_trips(*sock, *request, std::max(1, n / kRounds));
        out->insert(out->end(), us.begin(), us.end());
      }
    }
    floor_client.send(zmq::str_buffer("q"), zmq::send_flags::none);
    echo.join();
    service.stop();
    server.join();
    const Summary floor = summarize(floor_us), h = summarize(hello_us), s = summarize(status_us),
                  g = summarize(generate_us);

    print(transport, "floor (msgpack echo)", floor, floor.p50_us);
    print(transport, "decodelabd hello", h, floor.p50_us);
    print(transport, "decodelabd status", s, floor.p50_us);
    print(transport, "decodelabd generate(1)", g, floor.p50_us);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
