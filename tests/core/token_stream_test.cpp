#include "decodelab/token_stream.hpp"

#include <gtest/gtest.h>

#include "decodelab/error.hpp"

namespace decodelab {
namespace {

TEST(TokenStream, AppendTruncateAndPrompt) {
  const std::vector<TokenId> prompt{1, 2, 3};
  TokenStream s(prompt);
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.prompt_size(), 3u);
  s.append(7, -0.5f, TokenOrigin::sampled);
  s.append(8, -1.5f, TokenOrigin::bonus);
  EXPECT_EQ(s.generated_tokens(), (std::vector<TokenId>{7, 8}));
  EXPECT_DOUBLE_EQ(s.generated_logprob(), -2.0);
  EXPECT_EQ(s.at(4).origin, TokenOrigin::bonus);
  s.truncate(4);
  EXPECT_EQ(s.tokens(), (std::vector<TokenId>{1, 2, 3, 7}));
  EXPECT_THROW(s.truncate(2), Error);  // into the prompt
  EXPECT_THROW(s.truncate(9), Error);
  EXPECT_THROW(s.at(4), Error);
}

TEST(TokenStream, ForksShareThePrefixAndEvolveIndependently) {
  TokenStream a(std::vector<TokenId>{1, 2});
  a.append(3, 0.0f, TokenOrigin::sampled);
  TokenStream b = a.fork();
  a.append(4, 0.0f, TokenOrigin::sampled);
  b.append(5, 0.0f, TokenOrigin::sampled);
  TokenStream c = b.fork();
  c.truncate(2);
  c.append(6, 0.0f, TokenOrigin::sampled);
  EXPECT_EQ(a.tokens(), (std::vector<TokenId>{1, 2, 3, 4}));
  EXPECT_EQ(b.tokens(), (std::vector<TokenId>{1, 2, 3, 5}));
  EXPECT_EQ(c.tokens(), (std::vector<TokenId>{1, 2, 6}));
  EXPECT_EQ(c.prompt_size(), 2u);
  // Rolling a fork back into shared segments and regrowing it leaves the others intact.
  b.truncate(3);
  b.append(9, 0.0f, TokenOrigin::sampled);
  EXPECT_EQ(b.tokens(), (std::vector<TokenId>{1, 2, 3, 9}));
  EXPECT_EQ(a.tokens(), (std::vector<TokenId>{1, 2, 3, 4}));
  for (std::size_t i = 0; i < b.size(); ++i) EXPECT_EQ(b.token(i), b.tokens()[i]);
}

TEST(TokenStream, ManyForksMatchAPlainVector) {
  // Random fork / append / truncate against a reference vector.
  std::vector<std::pair<TokenStream, std::vector<TokenId>>> streams;
  streams.emplace_back(TokenStream(std::vector<TokenId>{0}), std::vector<TokenId>{0});
  uint32_t state = 12345;
  auto next = [&] { return state = state * 1664525u + 1013904223u; };
  for (int it = 0; it < 2000; ++it) {
    auto& [s, ref] = streams[next() % streams.size()];
    const uint32_t op = next() % 10;
    if (op < 6) {
      const TokenId t = TokenId(next() % 100);
      s.append(t, 0.0f, TokenOrigin::sampled);
      ref.push_back(t);
    } else if (op < 8 && ref.size() > 1) {
      const std::size_t n = 1 + next() % (ref.size() - 1) + 0;
      s.truncate(n);
      ref.resize(n);
    } else if (streams.size() < 50) {
      TokenStream f = s.fork();
      std::vector<TokenId> r = ref;
      streams.emplace_back(std::move(f), std::move(r));
    }
  }
  for (auto& [s, ref] : streams) EXPECT_EQ(s.tokens(), ref);
}

TEST(TokenStream, SinkSeesAppendsAndTruncations) {
  TokenStream s(std::vector<TokenId>{1});
  std::vector<std::pair<std::size_t, TokenId>> seen;
  struct Recorder : TokenSink {
    std::vector<std::pair<std::size_t, TokenId>>* seen;
    std::size_t truncated_to = 0;
    void on_append(std::size_t i, const TokenRecord& r) override { seen->emplace_back(i, r.id); }
    void on_truncate(std::size_t n) override { truncated_to = n; }
  };
  auto sink = std::make_shared<Recorder>();
  sink->seen = &seen;
  s.set_sink(sink);
  s.append(5, 0.0f, TokenOrigin::sampled);
  s.append(6, 0.0f, TokenOrigin::sampled);
  s.truncate(2);
  EXPECT_EQ(seen, (std::vector<std::pair<std::size_t, TokenId>>{{1, 5}, {2, 6}}));
  EXPECT_EQ(sink->truncated_to, 2u);
  EXPECT_EQ(s.fork().sink(), nullptr);
}

}  // namespace
}  // namespace decodelab
