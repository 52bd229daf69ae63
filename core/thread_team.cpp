#include "core/thread_team.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DECODELAB_PAUSE() _mm_pause()
#else
#define DECODELAB_PAUSE() std::this_thread::yield()
#endif

namespace decodelab {
namespace {

// How long an idle member spins before it sleeps: longer than the gap between two loops of one
// forward pass (a norm, a rope: microseconds), far shorter than an OS time slice.
constexpr auto kSpin = std::chrono::microseconds(50);

// Waits until `value` differs from `old`: spin for kSpin, then sleep on the atomic (a futex).
template <typename T>
T wait_change(const std::atomic<T>& value, T old) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    const T now = value.load(std::memory_order_acquire);
    if (now != old) return now;
    DECODELAB_PAUSE();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) break;
  }
  for (;;) {
    value.wait(old, std::memory_order_acquire);
    const T now = value.load(std::memory_order_acquire);
    if (now != old) return now;
  }
}

}  // namespace

ThreadTeam::ThreadTeam(int threads) {
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  workers_.reserve(std::size_t(threads - 1));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadTeam::~ThreadTeam() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);  // wakes the workers to see stop_
  generation_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadTeam::run_chunks(uint32_t loop) {
  for (;;) {
    uint64_t ticket = next_.load(std::memory_order_acquire);
    uint32_t chunk = 0;
    for (;;) {
      chunk = uint32_t(ticket);
      if (uint32_t(ticket >> 32) != loop || chunk >= chunks_.load(std::memory_order_relaxed)) return;
      if (next_.compare_exchange_weak(ticket, ticket + 1, std::memory_order_acq_rel)) break;
    }
    const std::size_t grain = grain_.load(std::memory_order_relaxed);
    const std::size_t begin = std::size_t(chunk) * grain,
                      end = std::min(n_.load(std::memory_order_relaxed), begin + grain);
    try {
      (*body_.load(std::memory_order_relaxed))(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
    if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks_.load(std::memory_order_relaxed)) {
      done_.notify_all();
    }
  }
}

void ThreadTeam::worker_loop() {
  uint32_t seen = 0;
  for (;;) {
    seen = wait_change(generation_, seen);
    if (stop_.load(std::memory_order_acquire)) return;
    run_chunks(seen);
  }
}

void ThreadTeam::parallel_for(std::size_t n, std::size_t grain,
                              const std::function<void(std::size_t, std::size_t)>& body) {
  if (grain == 0) grain = 1;
  if (workers_.empty() || n <= grain) {
    for (std::size_t begin = 0; begin < n; begin += grain) body(begin, std::min(n, begin + grain));
    return;
  }
  std::lock_guard<std::mutex> lock(call_mutex_);
  const uint32_t loop = generation_.load(std::memory_order_relaxed) + 1;
  const uint32_t chunks = uint32_t((n + grain - 1) / grain);
  body_.store(&body, std::memory_order_relaxed);
  n_.store(n, std::memory_order_relaxed);
  grain_.store(grain, std::memory_order_relaxed);
  chunks_.store(chunks, std::memory_order_relaxed);
  error_ = nullptr;
  done_.store(0, std::memory_order_relaxed);
  next_.store(uint64_t(loop) << 32, std::memory_order_release);
  generation_.store(loop, std::memory_order_release);  // wakes the workers for this loop
  generation_.notify_all();
  run_chunks(loop);
  for (uint32_t finished = done_.load(std::memory_order_acquire); finished != chunks;) {
    finished = wait_change(done_, finished);
  }
  if (error_) std::rethrow_exception(error_);
}

ThreadTeam& shared_thread_team(int threads) {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<ThreadTeam>> teams;
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<ThreadTeam>& team = teams[threads];
  if (!team) team = std::make_unique<ThreadTeam>(threads);
  return *team;
}

}  // namespace decodelab
