// decodelabd batching and protocol version 2: generate with `n` or `seeds` runs one generation per
// seed, batched, each equal to the single request with that seed; version-1 requests get version
// 1's reply; chunks of several seeds carry their seed; status and metrics report the batch sizes
// formed; a client's n = 1000 does not starve another client's single request; cancelling one of
// several concurrent requests leaves the others' outputs unchanged.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "clients/cpp/client.hpp"
#include "daemon/protocol.hpp"
#include "decodelab/error.hpp"
#include "tests/daemon/daemon_harness.hpp"
#include "tests/model/model_paths.hpp"

namespace decodelab {
namespace {

using client::Client;
using client::RemoteError;
using client::Value;
using namespace daemon_testing;

std::vector<int64_t> ints(const Value& array) {
  std::vector<int64_t> out;
  for (const Value& v : array.as_array()) out.push_back(v.as_int());
  return out;
}
std::vector<float> reals(const Value& array) {
  std::vector<float> out;
  for (const Value& v : array.as_array()) out.push_back(float(v.as_double()));
  return out;
}

Value::Map many_fields(uint64_t seed, int64_t max_tokens, Value::Map extra, bool stream = false) {
  Value::Map f = Client::generate_fields(sample_request(seed, max_tokens), stream);
  for (auto& e : extra) {
    if (e.first == "seeds") {  // a seeds list replaces seed
      for (auto it = f.begin(); it != f.end(); ++it) {
        if (it->first == "seed") {
          f.erase(it);
          break;
        }
      }
    }
    f.push_back(std::move(e));
  }
  return f;
}

TEST(DaemonBatching, EachSeedOfARequestEqualsTheSingleRequestWithThatSeed) {
  Daemon d({"--workers", "4"});
  Client c(d.endpoint(), client_options(30.0));
  EXPECT_EQ(c.hello().get("protocol")->as_int(), 2);
  for (const auto& [extra, seeds] : std::vector<std::pair<Value::Map, std::vector<uint64_t>>>{
           {{{"n", int64_t(5)}}, {10, 11, 12, 13, 14}}, {{{"seeds", Value::Array{3, 99, 3}}}, {3, 99, 3}}}) {
    const Value r = c.wait(c.send("generate", many_fields(10, 40, extra)));
    ASSERT_EQ(r.get("type")->as_string(), "result") << describe(r);
    const auto& results = r.get("results")->as_array();
    ASSERT_EQ(results.size(), seeds.size());
    for (std::size_t i = 0; i < seeds.size(); ++i) {
      EXPECT_EQ(uint64_t(results[i].get("seed")->as_int()), seeds[i]);
      const auto single = c.generate(sample_request(seeds[i], 40));
      EXPECT_EQ(ints(*results[i].get("tokens")), std::vector<int64_t>(single.tokens.begin(), single.tokens.end()));
      EXPECT_EQ(reals(*results[i].get("logprobs")), single.logprobs);
      EXPECT_EQ(results[i].get("text")->as_string(), single.text);
      EXPECT_EQ(results[i].get("stop_reason")->as_string(), "max_tokens");
    }
  }
}

// The C++ client's generate_many: n seeds or a list, each result with its seed and equal to the
// single request with that seed; a reward is refused on the client side.
TEST(DaemonBatching, ClientGenerateManyEqualsSingleRequests) {
  Daemon d({"--workers", "4"});
  Client c(d.endpoint(), client_options(30.0));
  const auto by_n = c.generate_many(sample_request(20, 16), 3);
  const auto by_list = c.generate_many(sample_request(0, 16), std::vector<uint64_t>{22, 7, 22});
  ASSERT_EQ(by_n.size(), 3u);
  ASSERT_EQ(by_list.size(), 3u);
  const std::vector<uint64_t> n_seeds{20, 21, 22}, list_seeds{22, 7, 22};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(by_n[i].seed, n_seeds[i]);
    EXPECT_EQ(by_list[i].seed, list_seeds[i]);
    for (const auto* r : {&by_n[i], &by_list[i]}) {
      const auto single = c.generate(sample_request(r->seed, 16));
      EXPECT_EQ(r->tokens, single.tokens);
      EXPECT_EQ(r->logprobs, single.logprobs);
      EXPECT_EQ(r->text, single.text);
      EXPECT_EQ(single.seed, r->seed);
    }
  }
  auto with_reward = sample_request(1, 4);
  with_reward.reward = [](const std::vector<std::string>& texts) { return std::vector<double>(texts.size(), 0.0); };
  EXPECT_THROW(c.generate_many(with_reward, 2), Error);
}

TEST(DaemonBatching, VersionOneRequestsGetVersionOneReplies) {
  Daemon d({"--workers", "2"});
  Client c(d.endpoint(), client_options(30.0));
  std::vector<Value> chunks;
  const Value r = c.wait(c.send("generate", Client::generate_fields(sample_request(4, 20), true)),
                         [&](const Value& chunk) { chunks.push_back(chunk); });
  EXPECT_EQ(r.get("results"), nullptr);
  EXPECT_EQ(r.get("seed"), nullptr);
  EXPECT_EQ(r.get("tokens")->as_array().size(), 20u);
  ASSERT_FALSE(chunks.empty());
  for (const Value& chunk : chunks) EXPECT_EQ(chunk.get("seed"), nullptr);
}

TEST(DaemonBatching, StreamedChunksCarryTheirSeed) {
  Daemon d({"--workers", "3"});
  Client c(d.endpoint(), client_options(30.0));
  std::map<int64_t, std::vector<int64_t>> streamed;
  const Value r = c.wait(c.send("generate", many_fields(7, 30, {{"n", int64_t(3)}}, true)), [&](const Value& chunk) {
    ASSERT_NE(chunk.get("seed"), nullptr);
    auto& tokens = streamed[chunk.get("seed")->as_int()];
    EXPECT_EQ(std::size_t(chunk.get("index")->as_int()), tokens.size());
    for (int64_t t : ints(*chunk.get("tokens"))) tokens.push_back(t);
  });
  ASSERT_EQ(r.get("type")->as_string(), "result") << describe(r);
  ASSERT_EQ(streamed.size(), 3u);
  for (const Value& m : r.get("results")->as_array()) {
    EXPECT_EQ(streamed[m.get("seed")->as_int()], ints(*m.get("tokens")));
  }
}

TEST(DaemonBatching, BadSeedFieldsAreRefused) {
  Daemon d({"--workers", "1"});
  Client c(d.endpoint(), client_options(10.0));
  auto refused = [&](Value::Map extra, const std::string& field) {
    try {
      c.wait(c.send("generate", many_fields(1, 4, std::move(extra))));
      ADD_FAILURE() << "accepted; expected an error on " << field;
    } catch (const RemoteError& e) {
      EXPECT_EQ(e.code(), "invalid_argument") << e.what();
      EXPECT_EQ(e.field(), field) << e.what();
    }
  };
  refused({{"n", int64_t(0)}}, "n");
  refused({{"n", int64_t(daemon::kMaxSeeds + 1)}}, "n");
  refused({{"n", int64_t(2)}, {"seeds", Value::Array{1, 2}}}, "seeds");
  refused({{"seeds", Value::Array{}}}, "seeds");
  refused({{"seeds", Value::Array{1, -2}}}, "seeds[1]");
  // seed and seeds together
  Value::Map both = Client::generate_fields(sample_request(1, 4), false);
  both.emplace_back("seeds", Value::Array{1, 2});
  try {
    c.wait(c.send("generate", both));
    ADD_FAILURE() << "seed with seeds accepted";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.field(), "seed");
  }
}

TEST(DaemonBatching, StatusAndMetricsReportBatchSizes) {
  Daemon d({"--workers", "4"});
  Client c(d.endpoint(), client_options(30.0));
  c.wait(c.send("generate", many_fields(1, 16, {{"n", int64_t(4)}})));
  for (const Value& batching :
       {*c.status().get("models")->as_array()[0].get("batching"), *c.metrics().get("batching")->get("t")}) {
    const int64_t passes = batching.get("forward_passes")->as_int();
    const int64_t calls = batching.get("calls")->as_int();
    EXPECT_GE(calls, 4 * 16);  // a prefill and 15 steps each (the last token needs no pass)
    int64_t histogram_passes = 0, histogram_calls = 0;
    for (const auto& [size, count] : batching.get("batch_sizes")->as_map()) {
      histogram_passes += count.as_int();
      histogram_calls += std::stoll(size) * count.as_int();
    }
    EXPECT_EQ(histogram_passes, passes);
    EXPECT_EQ(histogram_calls, calls);
    EXPECT_NEAR(batching.get("calls_per_forward")->as_double(), double(calls) / double(passes), 1e-9);
    EXPECT_GE(batching.get("tokens_per_forward")->as_double(), batching.get("calls_per_forward")->as_double());
  }
}

TEST(DaemonBatching, ALargeRequestDoesNotStarveAnotherClient) {
  // Two workers. Client A asks for 1000 long generations in one request; client B then sends a
  // single one. The fair queue hands out A's members one per turn, so B starts as soon as a worker
  // frees up and finishes long before A.
  Daemon d({"--workers", "2"});
  Client a(d.endpoint(), client_options(60.0));
  Client b(d.endpoint(), client_options(60.0));
  const uint64_t big = a.send("generate", many_fields(1, 2000, {{"n", int64_t(1000)}}));
  while (a.status().get("in_flight")->as_int() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto sent = std::chrono::steady_clock::now();
  const auto single = b.generate(sample_request(5, 20));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  EXPECT_EQ(single.tokens.size(), 20u);
  // A is still running: most of its 1000 members have not even started.
  EXPECT_EQ(a.status().get("queue_depth")->as_int(), 1);
  EXPECT_TRUE(a.cancel(big));
  const Value r = a.wait(big);
  ASSERT_EQ(r.get("type")->as_string(), "result") << describe(r);
  const auto& results = r.get("results")->as_array();
  ASSERT_EQ(results.size(), 1000u);
  EXPECT_EQ(results.back().get("stop_reason")->as_string(), "cancelled");
  EXPECT_TRUE(results.back().get("tokens")->as_array().empty());
  std::printf("B's single request took %.3f s beside A's n=1000\n", waited);
}

TEST(DaemonBatching, CancellingOneRequestLeavesTheOthersUnchanged) {
  Daemon d({"--workers", "4"});
  std::vector<std::vector<TokenId>> expected;
  {
    Client c(d.endpoint(), client_options(30.0));
    for (uint64_t seed = 0; seed < 3; ++seed) expected.push_back(c.generate(sample_request(50 + seed, 400)).tokens);
  }
  std::vector<std::vector<TokenId>> got(3);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      Client c(d.endpoint(), client_options(30.0));
      got[i] = c.generate(sample_request(50 + i, 400)).tokens;
    });
  }
  {
    Client victim(d.endpoint(), client_options(30.0));
    const uint64_t id = victim.send("generate", Client::generate_fields(sample_request(9, 1 << 20), true));
    EXPECT_EQ(victim.receive().get("type")->as_string(), "chunk");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    victim.cancel(id);
    EXPECT_EQ(Client::parse_result(victim.wait(id)).stop_reason, "cancelled");
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(got, expected);
}

// On SmolLM2, several seeds of one request share forward passes (batch sizes above 1 are
// reported) and each equals its single request, token for token and logprob for logprob.
TEST(DaemonBatching, SeedsOnSmolLM2AreBatchedAndEqualSingleRequests) {
  const std::string path = testing::model_path(testing::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << "SmolLM2 is not in the models cache (scripts/fetch-models)";
  Daemon d({"--workers", "4", "--load", "s=gguf(path=" + path + ")"});
  Client c(d.endpoint(), client_options(120.0));
  auto request = [](uint64_t seed) {
    auto g = sample_request(seed, 8);
    g.models = {{"target", "s"}};
    g.prompt = "The capital of France is";
    g.params = {{"temperature", 0.8}};
    return g;
  };
  Value::Map fields = Client::generate_fields(request(0), false);
  fields.emplace_back("n", int64_t(4));
  const Value r = c.wait(c.send("generate", fields));
  ASSERT_EQ(r.get("type")->as_string(), "result") << describe(r);
  for (const Value& m : r.get("results")->as_array()) {
    const auto single = c.generate(request(uint64_t(m.get("seed")->as_int())));
    EXPECT_EQ(ints(*m.get("tokens")), std::vector<int64_t>(single.tokens.begin(), single.tokens.end()));
    EXPECT_EQ(reals(*m.get("logprobs")), single.logprobs);
  }
  int64_t merged = 0;
  const Value metrics = c.metrics();
  for (const auto& [size, count] : metrics.get("batching")->get("s")->get("batch_sizes")->as_map()) {
    if (std::stoll(size) > 1) merged += count.as_int();
  }
  EXPECT_GT(merged, 0) << "no forward pass merged two seeds";
}

}  // namespace
}  // namespace decodelab
