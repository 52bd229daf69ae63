#pragma once
// A persistent team of threads for the forward pass's parallel loops.
//
// Why not an OpenMP region per matmul: a token's forward pass runs hundreds of parallel loops, and
// OpenMP's idle threads spin for a long time between them. On a machine where other processes want
// the same cores (shared CI machines, a daemon with several workers) the spinning threads take the
// time slices the working ones need: with two threads under a load of twice the cores, decoding
// ran at a fraction of its one-thread speed. Here an idle member spins only briefly (long enough to
// catch the next loop of the same token) and then sleeps on a futex; and work is handed out in
// small chunks from a shared counter, so a member the OS has descheduled delays only its current
// chunk: the others take the rest.
//
//   ThreadTeam team(2);                                   // the caller plus one worker thread
//   team.parallel_for(rows, 16, [&](std::size_t begin, std::size_t end) { ... });
//
// One loop runs at a time per team (a second caller waits); each index is visited exactly once,
// by one member, so per-index results never depend on the team's size or on scheduling.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace decodelab {

class ThreadTeam {
 public:
  // threads: members including the calling thread; 0 = std::thread::hardware_concurrency().
  explicit ThreadTeam(int threads);
  ~ThreadTeam();
  ThreadTeam(const ThreadTeam&) = delete;
  ThreadTeam& operator=(const ThreadTeam&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Calls body(begin, end) over [0, n) in chunks of `grain` indices (the last may be shorter),
  // on every member, and returns when all are done. Small loops (n <= grain) run on the caller
  // alone. The first exception a body throws is rethrown here, after the other chunks finish.
  void parallel_for(std::size_t n, std::size_t grain, const std::function<void(std::size_t, std::size_t)>& body);

 private:
  void worker_loop();
  void run_chunks(uint32_t loop);

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one loop at a time
  // The current loop. A member that wakes late must not take chunks of a later loop: `next_`
  // holds the loop's number (high 32 bits) with its next chunk (low 32), and chunks are claimed
  // by compare-and-swap against the loop the member woke for. The caller waits for `done_`
  // chunks, not for members, so a descheduled member that took no chunk delays nobody.
  // (Atomics, relaxed: a late member may read them while the next loop is set up, before its
  // compare-and-swap fails.)
  std::atomic<const std::function<void(std::size_t, std::size_t)>*> body_{nullptr};
  std::atomic<std::size_t> n_{0}, grain_{1};
  std::atomic<uint32_t> chunks_{0};
  std::atomic<uint64_t> next_{0};
  std::atomic<uint32_t> done_{0};
  std::atomic<uint32_t> generation_{0};  // the loop's number, bumped to start it
  std::atomic<bool> stop_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

// A process-wide team of `threads` members (0 = all cores), made on first use: for callers that
// do not own one (tests, one-off products).
ThreadTeam& shared_thread_team(int threads);

}  // namespace decodelab
