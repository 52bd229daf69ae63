#include "core/thread_team.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

namespace decodelab {
namespace {

// Every index is visited exactly once, for any size, grain and team, over many loops in a row
// (members that wake late must not take chunks of a later loop).
TEST(ThreadTeam, EveryIndexExactlyOnceOverManyLoops) {
  for (int members : {1, 2, 3, 5}) {
    ThreadTeam team(members);
    EXPECT_EQ(team.size(), members);
    for (int loop = 0; loop < 2000; ++loop) {
      const std::size_t n = std::size_t(loop % 97), grain = std::size_t(1 + loop % 7);
      std::vector<std::atomic<int>> hits(n);
      team.parallel_for(n, grain, [&](std::size_t begin, std::size_t end) {
        ASSERT_LE(end - begin, grain);
        for (std::size_t i = begin; i < end; ++i) hits[i].fetch_add(1);
      });
      for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i << " of loop " << loop;
    }
  }
}

TEST(ThreadTeam, WorkIsSharedAmongMembers) {
  ThreadTeam team(2);
  std::atomic<int> on_other_threads{0};
  const auto caller = std::this_thread::get_id();
  for (int loop = 0; loop < 200 && on_other_threads.load() == 0; ++loop) {
    team.parallel_for(64, 1, [&](std::size_t, std::size_t) {
      if (std::this_thread::get_id() != caller) on_other_threads.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    });
  }
  EXPECT_GT(on_other_threads.load(), 0) << "the worker thread never took a chunk";
}

TEST(ThreadTeam, AnExceptionReachesTheCallerAfterTheOtherChunks) {
  ThreadTeam team(2);
  std::atomic<int> ran{0};
  EXPECT_THROW(team.parallel_for(100, 1,
                                 [&](std::size_t begin, std::size_t) {
                                   ran.fetch_add(1);
                                   if (begin == 37) throw std::runtime_error("chunk 37");
                                 }),
               std::runtime_error);
  EXPECT_EQ(ran.load(), 100);
  // The team still works afterwards.
  std::atomic<int> after{0};
  team.parallel_for(10, 1, [&](std::size_t, std::size_t) { after.fetch_add(1); });
  EXPECT_EQ(after.load(), 10);
}

// Two threads sharing one team: their loops run one at a time, each complete.
TEST(ThreadTeam, ConcurrentCallersEachGetTheirWholeLoop) {
  ThreadTeam team(2);
  std::atomic<long> total{0};
  auto caller = [&] {
    for (int loop = 0; loop < 300; ++loop) {
      team.parallel_for(50, 3, [&](std::size_t begin, std::size_t end) { total.fetch_add(long(end - begin)); });
    }
  };
  std::thread a(caller), b(caller);
  a.join();
  b.join();
  EXPECT_EQ(total.load(), 2L * 300 * 50);
}

}  // namespace
}  // namespace decodelab
