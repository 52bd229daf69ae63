#include "decodelab/philox.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "decodelab/random.hpp"

namespace decodelab {
namespace {

// Known-answer vectors of Random123 (kat_vectors: philox4x32 10 counter[4] key[2] -> output[4]).
TEST(Philox, Random123KnownAnswers) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}), (PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

// cuRAND's layout: key = seed, counter = (offset/4, subsequence), words consumed in order.
TEST(Philox, StreamLayoutMatchesCurand) {
  PhiloxStream s(0x299f31d0a4093822ull, 0, 0);
  const PhiloxCounter block0 = philox4x32_10({0, 0, 0, 0}, {0xa4093822, 0x299f31d0});
  const PhiloxCounter block1 = philox4x32_10({1, 0, 0, 0}, {0xa4093822, 0x299f31d0});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(s.next_u32(), block0[i]);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(s.next_u32(), block1[i]);

  // subsequence goes to the counter's high words; offset 6 = block 1, word 2.
  PhiloxStream t(7, 0x0000000500000003ull, 6);
  const PhiloxCounter b = philox4x32_10({1, 0, 3, 5}, {7, 0});
  EXPECT_EQ(t.next_u32(), b[2]);
  EXPECT_EQ(t.next_u32(), b[3]);
  EXPECT_EQ(t.next_u32(), philox4x32_10({2, 0, 3, 5}, {7, 0})[0]);
}

TEST(Philox, SkipEqualsDrawing) {
  for (uint64_t n : {0ull, 1ull, 3ull, 4ull, 5ull, 17ull, 1000ull}) {
    PhiloxStream a(42, 9, 0), b(42, 9, 0);
    for (uint64_t i = 0; i < n; ++i) a.next_u32();
    b.skip(n);
    for (int i = 0; i < 9; ++i) EXPECT_EQ(a.next_u32(), b.next_u32()) << "n=" << n;
  }
  // Large offsets carry from the low counter words into the high ones.
  PhiloxStream c(1, 0, (uint64_t(0xffffffffffffffffull) & ~3ull));
  PhiloxStream d(1, 0, 0);
  d.skip(0xfffffffffffffffcull);
  EXPECT_EQ(c.next_u32(), d.next_u32());
}

TEST(Philox, StepKeyingIsReproducibleAndDistinct) {
  auto a = random_stream(5, RandomStream::sample, 10);
  auto b = random_stream(5, RandomStream::sample, 10);
  auto c = random_stream(5, RandomStream::accept, 10);
  auto d = random_stream(5, RandomStream::sample, 11);
  auto e = random_stream(6, RandomStream::sample, 10);
  const double ua = a.uniform_double();
  EXPECT_EQ(ua, b.uniform_double());
  EXPECT_NE(ua, c.uniform_double());
  EXPECT_NE(ua, d.uniform_double());
  EXPECT_NE(ua, e.uniform_double());
}

TEST(Philox, UniformRanges) {
  PhiloxStream s(3, 1);
  double sum = 0.0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const float f = s.uniform();
    ASSERT_GT(f, 0.0f);
    ASSERT_LE(f, 1.0f);
    const double d = s.uniform_double();
    ASSERT_GT(d, 0.0);
    ASSERT_LT(d, 1.0);
    sum += d;
  }
  EXPECT_NEAR(sum / n, 0.5, 4.0 * std::sqrt(1.0 / 12.0 / n));
  // curand_uniform maps word 0 to 2^-33 and 0xffffffff to 1.0f.
  EXPECT_EQ(std::fma(0.0f, 2.3283064e-10f, 2.3283064e-10f / 2.0f), 2.3283064e-10f / 2.0f);
}

TEST(Philox, NoShortCycles) {
  PhiloxStream s(11, 0);
  std::set<uint32_t> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(s.next_u32());
  EXPECT_GT(seen.size(), 9990u);
}

}  // namespace
}  // namespace decodelab
