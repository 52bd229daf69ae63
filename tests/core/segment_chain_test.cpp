#include "decodelab/segment_chain.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <tuple>
#include <vector>

namespace decodelab {
namespace {

using Chain = SegmentChain<std::vector<int>>;

std::vector<std::tuple<std::size_t, std::size_t>> shared_stretches(const Chain& c) {
  std::vector<std::tuple<std::size_t, std::size_t>> out;
  c.for_each_shared(
      [&](std::size_t start, std::size_t count, const std::vector<int>&) { out.emplace_back(start, count); });
  return out;
}

TEST(SegmentChain, ForkSharesThePrefixWithoutCopyingIt) {
  Chain a;
  a.tail() = {1, 2, 3};
  Chain b = a.fork();
  // The three items moved into one shared segment that both chains read.
  EXPECT_EQ(a.shared_size(), 3u);
  EXPECT_TRUE(a.tail().empty());
  EXPECT_EQ(b.shared_size(), 3u);
  const int* shared = &a.at(0);
  EXPECT_EQ(&b.at(0), shared);
  a.tail().push_back(4);
  b.tail().push_back(5);
  EXPECT_EQ(a.to_vector(), (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(b.to_vector(), (std::vector<int>{1, 2, 3, 5}));
  // Forking with an empty tail adds no segment.
  Chain c = b.fork();
  Chain d = c.fork();
  EXPECT_EQ(shared_stretches(d), (std::vector<std::tuple<std::size_t, std::size_t>>{{3, 1}, {0, 3}}));
  EXPECT_EQ(d.to_vector(), b.to_vector());
}

TEST(SegmentChain, TruncateShortensTheViewAndNeverEditsASharedSegment) {
  Chain a;
  a.tail() = {1, 2, 3};
  Chain b = a.fork();
  b.tail() = {4, 5};
  Chain c = b.fork();  // segments [1 2 3] [4 5]
  c.truncate(4);       // ends inside the second segment
  EXPECT_EQ(c.size(), 4u);
  EXPECT_EQ(shared_stretches(c), (std::vector<std::tuple<std::size_t, std::size_t>>{{3, 1}, {0, 3}}));
  c.tail().push_back(9);
  EXPECT_EQ(c.to_vector(), (std::vector<int>{1, 2, 3, 4, 9}));
  EXPECT_EQ(c.at(4), 9);
  c.truncate(2);  // drops the second segment from c's view entirely
  EXPECT_EQ(shared_stretches(c), (std::vector<std::tuple<std::size_t, std::size_t>>{{0, 2}}));
  EXPECT_EQ(c.to_vector(), (std::vector<int>{1, 2}));
  EXPECT_EQ(b.to_vector(), (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(a.to_vector(), (std::vector<int>{1, 2, 3}));
  // Truncating within the tail keeps the shared part.
  b.tail().push_back(6);
  b.truncate(5);
  EXPECT_EQ(b.to_vector(), (std::vector<int>{1, 2, 3, 4, 5}));
  b.truncate(0);
  EXPECT_TRUE(b.empty());
  EXPECT_TRUE(shared_stretches(b).empty());
}

TEST(SegmentChain, ARunMayKeepSeveralArraysPerItem) {
  struct Pairs {  // two parallel arrays, as GgufModel keeps keys and values
    std::vector<int> x;
    std::vector<double> y;
    std::size_t size() const { return x.size(); }
    void resize(std::size_t n) {
      x.resize(n);
      y.resize(n);
    }
  };
  SegmentChain<Pairs> a;
  a.tail().x = {1, 2};
  a.tail().y = {0.5, 1.5};
  SegmentChain<Pairs> b = a.fork();
  b.tail().x = {3};
  b.tail().y = {2.5};
  b.truncate(2);
  EXPECT_EQ(b.size(), 2u);
  double sum = 0.0;
  b.for_each_shared([&](std::size_t, std::size_t count, const Pairs& run) {
    for (std::size_t i = 0; i < count; ++i) sum += run.y[i];
  });
  EXPECT_DOUBLE_EQ(sum, 2.0);
}

}  // namespace
}  // namespace decodelab
