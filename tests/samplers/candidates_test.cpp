// Candidates over a borrowed array: a chain run on the caller's own array (as an engine hands
// over llama.cpp's llama_token_data) keeps exactly what it keeps on decodelab's own copy, writes
// nothing past the caller's entries, and never grows the array.
#include "decodelab/candidates.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "decodelab/error.hpp"
#include "decodelab/philox.hpp"
#include "decodelab/sampler.hpp"

namespace decodelab {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> logits(int n, uint64_t seed) {
  PhiloxStream rng(seed, 3);
  std::vector<float> out(static_cast<std::size_t>(n));
  for (float& x : out) x = float(2.0 * rng.normal());
  return out;
}

// The caller's array: every token, in a shuffled order, with some excluded at -inf.
std::vector<Candidate> engine_array(const std::vector<float>& l) {
  std::vector<Candidate> out;
  for (std::size_t i = 0; i < l.size(); ++i) out.push_back({TokenId((i * 7) % l.size()), 0.0f, 0.0f});
  for (Candidate& c : out) c.logit = (c.id % 11 == 5) ? -kInf : l[std::size_t(c.id)];
  return out;
}

std::vector<float> with_exclusions(std::vector<float> l) {
  for (std::size_t i = 0; i < l.size(); ++i)
    if (i % 11 == 5) l[i] = -kInf;
  return l;
}

TEST(BorrowedCandidates, EveryChainKeepsAndSelectsWhatItDoesOnItsOwnCopy) {
  const int n = 307;  // prime: the shuffle above is a permutation
  for (const char* spec : {"top_k(k=40)", "top_p(p=0.9)", "min_p(p=0.05)", "typical(p=0.8)", "temperature(t=0.7)",
                           "top_k(k=50),top_p(p=0.95),temperature(t=0.8),dist(seed=4)", "greedy",
                           "min_p(p=0.1),dist(seed=9)", "top_w(gamma=0)"}) {
    SCOPED_TRACE(spec);
    for (uint64_t round = 0; round < 3; ++round) {
      const std::vector<float> l = with_exclusions(logits(n, round));
      auto own_chain = parse_chain(spec), borrowed_chain = parse_chain(spec);
      Candidates own = Candidates::from_logits(l);
      own_chain->apply(own);

      std::vector<Candidate> storage = engine_array(l);
      storage.push_back({12345, 99.0f, 0.0f});  // a sentinel past the span the chain is given
      Candidates borrowed = Candidates::borrow(std::span(storage.data(), storage.size() - 1));
      borrowed_chain->apply(borrowed);

      ASSERT_TRUE(borrowed.data.borrowed());
      EXPECT_EQ(borrowed.data.data(), storage.data()) << "the chain must work in the caller's array";
      EXPECT_EQ(own.dense_probs(n), borrowed.dense_probs(n));
      EXPECT_EQ(own.selected >= 0, borrowed.selected >= 0);
      if (own.selected >= 0) {
        EXPECT_EQ(own.selected_token(), borrowed.selected_token());
      }
      // Kept logits are the processed ones, token for token.
      std::vector<float> own_logits(std::size_t(n), -kInf), borrowed_logits(std::size_t(n), -kInf);
      for (const Candidate& c : own.data) own_logits[std::size_t(c.id)] = c.logit;
      for (std::size_t i = 0; i < borrowed.data.size(); ++i)
        borrowed_logits[std::size_t(storage[i].id)] = storage[i].logit;
      EXPECT_EQ(own_logits, borrowed_logits);
      EXPECT_EQ(storage.back().id, 12345);
      EXPECT_EQ(storage.back().logit, 99.0f);
    }
  }
}

TEST(BorrowedCandidates, AreCheckedBeforeAnythingIsWritten) {
  std::vector<Candidate> storage{{0, 1.0f, 0.0f}, {1, std::nanf(""), 0.0f}};
  const std::vector<Candidate> before = storage;
  try {
    Candidates::borrow(storage);
    FAIL() << "a NaN logit was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::numeric);
    EXPECT_NE(std::string(e.what()).find("entry 1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(storage[0].id, before[0].id);
  EXPECT_EQ(storage[1].id, before[1].id);

  std::vector<Candidate> negative{{0, 1.0f, 0.0f}, {-3, 0.0f, 0.0f}};
  EXPECT_THROW(Candidates::borrow(negative), Error);
  std::vector<Candidate> excluded{{0, -kInf, 0.0f}, {1, -kInf, 0.0f}};
  EXPECT_THROW(Candidates::borrow(excluded), Error);
  EXPECT_THROW(Candidates::borrow(std::span<Candidate>()), Error);
  std::vector<Candidate> plus_inf{{0, kInf, 0.0f}};
  EXPECT_THROW(Candidates::borrow(plus_inf), Error);
}

TEST(CandidateArray, ABorrowedArrayShrinksButNeverGrowsPastTheCallersEntries) {
  std::vector<Candidate> storage{{3, 0.5f, 0.0f}, {1, 2.0f, 0.0f}, {2, 1.0f, 0.0f}};
  CandidateArray a = CandidateArray::borrow(storage);
  EXPECT_EQ(a.size(), 3u);
  a.resize(2);
  a.push_back({7, 0.0f, 0.0f});  // back to 3: within the caller's array
  EXPECT_EQ(storage[2].id, 7);
  EXPECT_THROW(a.push_back({8, 0.0f, 0.0f}), Error);
  EXPECT_THROW(a.resize(4), Error);
  EXPECT_THROW(a.reserve(4), Error);
  EXPECT_THROW((a = {{1, 0.f, 0.f}, {2, 0.f, 0.f}, {3, 0.f, 0.f}, {4, 0.f, 0.f}}), Error);

  // Assigning a kept subset writes it into the caller's array.
  a = std::vector<Candidate>{{2, 1.0f, 0.0f}};
  EXPECT_TRUE(a.borrowed());
  EXPECT_EQ(a.size(), 1u);
  EXPECT_EQ(storage[0].id, 2);

  // A copy owns its entries: changing it leaves the caller's array alone.
  CandidateArray copy = a;
  EXPECT_FALSE(copy.borrowed());
  copy[0].id = 42;
  copy.push_back({5, 0.0f, 0.0f});
  EXPECT_EQ(storage[0].id, 2);
  EXPECT_EQ(copy.size(), 2u);
}

TEST(CandidateArray, EraseIfKeepsTheOrderOfWhatItKeeps) {
  CandidateArray a{{0, 1.0f, 0.0f}, {1, -1.0f, 0.0f}, {2, 3.0f, 0.0f}, {3, -2.0f, 0.0f}, {4, 0.0f, 0.0f}};
  EXPECT_EQ(erase_if(a, [](const Candidate& c) { return c.logit < 0.0f; }), 2u);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].id, 0);
  EXPECT_EQ(a[1].id, 2);
  EXPECT_EQ(a[2].id, 4);
}

}  // namespace
}  // namespace decodelab
