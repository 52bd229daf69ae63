// bench_load: decodelabd under concurrent load (docs/benchmarks.md, "decodelabd under concurrent
// load"). Not a test: a measurement that also checks delivery.
//
// For each transport (an ephemeral ipc path, then an ephemeral tcp loopback port), N client
// threads, each with its own DEALER socket, send M requests each with up to W in flight. Every
// request carries an id unique in the run; every final reply ("result" or "error") is matched to
// its id, so a reply that never comes is counted lost and one that comes twice is counted
// duplicated. "heartbeat" messages are not replies and are skipped. A "busy" error is a reply (the
// daemon answered; the client may retry) and is counted on its own.
//
//   floor:       a bare ROUTER thread that unpacks each msgpack request and packs a small reply
//                (what any msgpack-over-ZeroMQ server pays; mirrors bench_daemon's floor)
//   hello:       decodelabd's Service in the same process answering {"op": "hello"}
//   generate(1): a 1-token generation on a 32-token analytic model, through the worker pool
//   busy:        generate(1) against a Service with --max-queue 2 and one worker, so the queue
//                overflows on purpose
//
// The three ops of one (N, W) row run back to back, in kRounds alternating rounds, so drift in
// machine load affects floor and daemon alike. The normal Service's queue (1024) is larger than
// N * W for every row, so no normal row may see "busy"; one that does is reported as a failure.
//
// Usage: bench_load [requests_per_client=2000] [clients=1,4,16] [window=1,8]
// Exits 1 when any reply is lost, duplicated, unexpected, or an unexpected error.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
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

constexpr int kRounds = 4;
// A client waiting this long for any reply with requests still in flight declares them lost.
constexpr int kReplyTimeoutMs = 5000;
// After its last reply a client keeps listening this long, so late duplicates are seen.
constexpr int kDrainMs = 20;

enum class Op { floor, hello, generate };

std::string request_for(Op op, uint64_t id) {
  if (op == Op::generate) {
    return pack(Value::Map{{"id", id},
                           {"op", "generate"},
                           {"models", Value::Map{{"target", "t"}}},
                           {"prompt_ids", Value::Array{1, 2}},
                           {"max_tokens", 1}});
  }
  return pack(Value::Map{{"id", id}, {"op", "hello"}});
}

// What one client saw; merged across clients and rounds.
struct Tally {
  std::vector<double> us;  // round trip of every final reply
  int64_t sent = 0, results = 0, busy = 0, errors = 0, lost = 0, duplicated = 0, unexpected = 0;
  double seconds = 0;      // wall time of the timed phase (all clients), summed over rounds
  Clock::time_point done;  // when this client had its last reply (before the drain)

  void merge(const Tally& o) {
    us.insert(us.end(), o.us.begin(), o.us.end());
    sent += o.sent, results += o.results, busy += o.busy, errors += o.errors;
    lost += o.lost, duplicated += o.duplicated, unexpected += o.unexpected;
  }
};

// One client: ids base+0 .. base+m-1, at most `window` in flight. `start` releases all clients
// of a round at once, after each has connected and warmed up.
Tally run_client(zmq::context_t& ctx, const std::string& endpoint, Op op, uint64_t base, int m, int window,
                 std::barrier<>& start) {
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::rcvtimeo, kReplyTimeoutMs);
  dealer.connect(endpoint);
  zmq::message_t reply;
  // Warm-up (ids below base, from a range no timed request uses): the connection is up and the
  // daemon has seen this client before the clock starts.
  for (int i = 0; i < 20; ++i) {
    dealer.send(zmq::buffer(request_for(op, base - 1 - uint64_t(i))), zmq::send_flags::none);
    while (dealer.recv(reply, zmq::recv_flags::none) &&
           unpack(reply.to_string_view()).get("type")->as_string() == "heartbeat") {
    }
  }

  Tally t;
  t.us.reserve(std::size_t(m));
  std::vector<Clock::time_point> sent_at(static_cast<std::size_t>(m));
  std::vector<uint8_t> seen(static_cast<std::size_t>(m), 0);
  int next = 0, in_flight = 0, answered = 0;
  auto handle = [&](const zmq::message_t& msg, const Clock::time_point now) {
    const Value v = unpack(msg.to_string_view());
    const std::string& type = v.get("type")->as_string("type");
    if (type == "heartbeat") return;
    const uint64_t id = uint64_t(v.get("id")->as_int("id"));
    if (id < base || id >= base + uint64_t(m) || !sent_at[id - base].time_since_epoch().count()) {
      ++t.unexpected;
      return;
    }
    const std::size_t k = id - base;
    if (seen[k]++) {
      ++t.duplicated;
      return;
    }
    ++answered, --in_flight;
    t.us.push_back(std::chrono::duration<double, std::micro>(now - sent_at[k]).count());
    if (type == "result") {
      ++t.results;
    } else if (type == "error" && v.get("code")->as_string("code") == codes::busy) {
      ++t.busy;
    } else {
      ++t.errors;
    }
  };

  start.arrive_and_wait();
  while (answered < m) {
    while (next < m && in_flight < window) {
      const std::string request = request_for(op, base + uint64_t(next));  // packed before the clock
      sent_at[std::size_t(next)] = Clock::now();
      dealer.send(zmq::buffer(request), zmq::send_flags::none);
      ++next, ++in_flight, ++t.sent;
    }
    if (!dealer.recv(reply, zmq::recv_flags::none)) break;  // timed out: the rest are lost
    handle(reply, Clock::now());
  }
  t.lost = m - answered;
  t.done = Clock::now();
  dealer.set(zmq::sockopt::rcvtimeo, kDrainMs);
  while (dealer.recv(reply, zmq::recv_flags::none)) handle(reply, Clock::now());
  return t;
}

// N clients for one round; returns the merged tally with the round's wall time.
Tally run_round(zmq::context_t& ctx, const std::string& endpoint, Op op, int clients, int m, int window,
                uint64_t& next_base) {
  std::barrier start(clients + 1);
  std::vector<Tally> per(static_cast<std::size_t>(clients));
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    const uint64_t base = next_base + 1000;  // the 1000 below it are this client's warm-up ids
    next_base = base + uint64_t(m);
    threads.emplace_back([&, c, base] { per[std::size_t(c)] = run_client(ctx, endpoint, op, base, m, window, start); });
  }
  start.arrive_and_wait();
  const auto t0 = Clock::now();
  for (auto& th : threads) th.join();
  Tally all;
  Clock::time_point last = t0;
  for (const auto& t : per) all.merge(t), last = std::max(last, t.done);
  all.seconds = std::chrono::duration<double>(last - t0).count();  // without the drain
  return all;
}

void echo_server(zmq::socket_t& router) { serve_msgpack_echo(router); }

double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, std::size_t(q * double(sorted.size())))];
}

struct Row {
  const char* transport;
  int clients, window;
  const char* what;
  Tally tally;
};

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoi(item));
  return out;
}

// A tcp loopback port nobody listens on now: the kernel picks it for a throwaway bind. A plain
// socket, because a ZeroMQ socket's close (hence its unbind) completes later on its I/O thread,
// and the Service's bind could then find the port still taken.
std::string free_tcp_endpoint() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("bench_load: probing for a free tcp port");
    std::exit(1);
  }
  close(fd);
  return "tcp://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

ServiceConfig service_config(const std::string& endpoint, int workers, std::size_t max_queue) {
  ServiceConfig config;
  config.endpoints = {endpoint};
  config.log_level = LogLevel::error;
  config.workers = workers;
  config.max_queue = max_queue;
  config.preload = {{"t", "table(vocab=32,order=2,seed=1,sharpness=2)"}};
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  const int m = argc > 1 ? std::stoi(argv[1]) : 2000;
  const std::vector<int> client_counts = parse_list(argc > 2 ? argv[2] : "1,4,16");
  const std::vector<int> windows = parse_list(argc > 3 ? argv[3] : "1,8");
  const std::string dir = std::filesystem::temp_directory_path() / ("bench-load-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const int per_round = std::max(1, m / kRounds);
  uint64_t next_base = 0;
  std::vector<Row> rows;

  for (const char* transport : {"ipc", "tcp"}) {
    const bool ipc = std::string(transport) == "ipc";
    zmq::context_t ctx(2);  // two I/O threads: 16 clients share this context with the servers
    zmq::socket_t floor_router(ctx, zmq::socket_type::router);
    floor_router.set(zmq::sockopt::linger, 0);
    floor_router.set(zmq::sockopt::rcvhwm, 100000);
    floor_router.set(zmq::sockopt::sndhwm, 100000);
    floor_router.bind(ipc ? "ipc://" + dir + "/floor" : "tcp://127.0.0.1:*");
    const std::string floor_ep = floor_router.get(zmq::sockopt::last_endpoint);
    std::thread echo([&] { echo_server(floor_router); });

    const std::string daemon_ep = ipc ? "ipc://" + dir + "/daemon" : free_tcp_endpoint();
    const std::string busy_ep = ipc ? "ipc://" + dir + "/busy" : free_tcp_endpoint();
    Service service(service_config(daemon_ep, 2, 1024));
    Service small(service_config(busy_ep, 1, 2));
    std::thread server([&] { service.run(); });
    std::thread small_server([&] { small.run(); });

    for (int n : client_counts) {
      for (int w : windows) {
        Tally floor, hello, generate;
        for (int round = 0; round < kRounds; ++round) {
          for (auto [tally, ep, op] :
               {std::tuple{&floor, &floor_ep, Op::floor}, std::tuple{&hello, &daemon_ep, Op::hello},
                std::tuple{&generate, &daemon_ep, Op::generate}}) {
            Tally r = run_round(ctx, *ep, op, n, per_round, w, next_base);
            tally->merge(r);
            tally->seconds += r.seconds;
          }
        }
        rows.push_back({transport, n, w, "floor", std::move(floor)});
        rows.push_back({transport, n, w, "hello", std::move(hello)});
        rows.push_back({transport, n, w, "generate(1)", std::move(generate)});
      }
    }
    // Deliberate overload: the largest N x W against a queue of 2.
    {
      const int n = *std::max_element(client_counts.begin(), client_counts.end());
      const int w = *std::max_element(windows.begin(), windows.end());
      Tally busy = run_round(ctx, busy_ep, Op::generate, n, per_round, w, next_base);
      rows.push_back({transport, n, w, "generate(1) queue=2", std::move(busy)});
    }

    zmq::socket_t quit(ctx, zmq::socket_type::dealer);
    quit.set(zmq::sockopt::linger, 1000);
    quit.connect(floor_ep);
    quit.send(zmq::str_buffer("q"), zmq::send_flags::none);
    echo.join();
    service.stop();
    small.stop();
    server.join();
    small_server.join();
  }
  std::filesystem::remove_all(dir);

  std::printf("requests_per_client=%d rounds=%d (floor, hello, generate interleaved per row)\n", m, kRounds);
  std::printf("%-4s %3s %2s %-20s %9s %8s %8s %8s %9s %6s %5s %4s %4s %4s\n", "tr", "N", "W", "op", "req/s", "p50_us",
              "p90_us", "p99_us", "p50-floor", "busy", "err", "lost", "dup", "unex");
  bool ok = true;
  double floor_p50 = 0;
  for (auto& row : rows) {
    std::sort(row.tally.us.begin(), row.tally.us.end());
    const double p50 = percentile(row.tally.us, 0.5);
    if (std::string(row.what) == "floor") floor_p50 = p50;
    const bool overload_row = std::string(row.what).find("queue=") != std::string::npos;
    const Tally& t = row.tally;
    std::printf("%-4s %3d %2d %-20s %9.0f %8.1f %8.1f %8.1f %9.1f %6lld %5lld %4lld %4lld %4lld\n", row.transport,
                row.clients, row.window, row.what, double(t.results + t.busy + t.errors) / t.seconds, p50,
                percentile(t.us, 0.9), percentile(t.us, 0.99), p50 - floor_p50, (long long)t.busy, (long long)t.errors,
                (long long)t.lost, (long long)t.duplicated, (long long)t.unexpected);
    if (t.lost || t.duplicated || t.unexpected || t.errors || (t.busy && !overload_row)) ok = false;
  }
  if (!ok)
    std::printf("FAILED: a reply was lost, duplicated, unexpected, an error, or busy outside the overload row\n");
  return ok ? 0 : 1;
}
