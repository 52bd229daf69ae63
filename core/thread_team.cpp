#include "core/thread_team.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
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

// Sleeping and waking go through the futex directly rather than std::atomic::wait/notify_all.
// With those, a test run on a loaded 2-core machine twice left a forward pass's caller (waiting
// for the loop's chunks) and a worker (waiting for a loop) both asleep for minutes. The lost wake
// was not pinned down (one suspect: libstdc++ 12's notify skips the futex wake when its own waiter
// count reads zero). With a plain futex the kernel compares the value and queues the sleeper
// atomically with respect to a wake that follows the change, and every sleep is also bounded
// (kSleepNs), so a missed wake could cost a millisecond, never a hang.
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) && std::atomic<uint32_t>::is_always_lock_free);
constexpr long kSleepNs = 1000000;

void futex_sleep(const std::atomic<uint32_t>& value, uint32_t old) {
  const timespec timeout{0, kSleepNs};
  syscall(SYS_futex, reinterpret_cast<const uint32_t*>(&value), FUTEX_WAIT_PRIVATE, old, &timeout, nullptr, 0);
}

void futex_wake_all(std::atomic<uint32_t>& value) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&value), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

// Waits until `value` differs from `old`: spin for kSpin, then sleep on the futex.
uint32_t wait_change(const std::atomic<uint32_t>& value, uint32_t old) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    const uint32_t now = value.load(std::memory_order_acquire);
    if (now != old) return now;
    DECODELAB_PAUSE();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) break;
  }
  for (;;) {
    futex_sleep(value, old);
    const uint32_t now = value.load(std::memory_order_acquire);
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
  futex_wake_all(generation_);
  for (std::thread& t : workers_) t.join();
}

void ThreadTeam::run_chunks(uint32_t loop) {
  for (;;) {
    uint64_t ticket = next_.load(std::memory_order_acquire);
    uint32_t chunk = 0;
    for (;;) {
      chunk = uint32_t(ticket);
      // Acquire: a chunk count newer than `ticket` means parallel_for has closed this loop
      // (next_ moved on), so the compare-and-swap below fails instead of claiming a chunk of a
      // loop that has ended against a later loop's count.
      if (uint32_t(ticket >> 32) != loop || chunk >= chunks_.load(std::memory_order_acquire)) return;
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
      futex_wake_all(done_);
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
  // Close the previous loop before changing what its late members may still read: a member that
  // read the previous loop's last ticket and then this loop's larger chunk count must fail its
  // compare-and-swap, not claim a chunk past the previous loop's end (it ran the previous body
  // out of bounds, and its count in done_ could leave a caller waiting for ever).
  next_.store((uint64_t(loop) << 32) | 0xFFFFFFFFu, std::memory_order_seq_cst);
  body_.store(&body, std::memory_order_relaxed);
  n_.store(n, std::memory_order_relaxed);
  grain_.store(grain, std::memory_order_relaxed);
  chunks_.store(chunks, std::memory_order_release);
  error_ = nullptr;
  done_.store(0, std::memory_order_relaxed);
  next_.store(uint64_t(loop) << 32, std::memory_order_release);
  generation_.store(loop, std::memory_order_seq_cst);  // wakes the workers for this loop
  futex_wake_all(generation_);
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
