// decodelabd stops a generation in the middle of a long prompt's prefill: a cancel, a deadline and
// SIGTERM are answered with the generation's result (stop reasons cancelled, deadline, shutdown;
// no tokens) after at most one prefill chunk, where the whole prefill used to run first (and a
// SIGTERM during it outlasted the shutdown grace, so the client got no reply at all).
//
// The prefill is made long on an analytic model: every prompt token's row of logits is `vocab`
// Philox normals, so 40000 tokens at vocab 4096 take seconds on any machine, while a chunk of 16
// tokens takes about a millisecond. The tests assert what the result says (its stop reason, and
// that the target evaluated fewer nodes than the prompt has: the prefill was cut short), never
// how long it took.
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/daemon/daemon_harness.hpp"

namespace decodelab {
namespace {

using client::RemoteError;
using namespace daemon_testing;

constexpr std::size_t kPromptTokens = 40000;
const std::string kWideModel = "table(vocab=4096,order=2,seed=1,sharpness=2)";

Daemon long_prefill_daemon() {
  return Daemon({"--workers", "1", "--prefill-chunk", "16", "--load", "wide=" + kWideModel});
}

GenerateOptions long_prompt_request() {
  GenerateOptions g;
  g.models = {{"target", "wide"}};
  g.prompt_ids.emplace();
  for (std::size_t i = 0; i < kPromptTokens; ++i) g.prompt_ids->push_back(TokenId((i * 37 + i / 11) % 4096));
  g.max_tokens = 1 << 20;
  g.seed = 3;
  return g;
}

// Waits until a worker has taken the request (status in_flight), then a little longer, so that the
// stop the test sends next finds it prefilling rather than starting.
void wait_until_running(Client& c) {
  for (int i = 0; i < 6000 && c.status().get("in_flight")->as_int() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(c.status().get("in_flight")->as_int(), 1) << "the generation never started";
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

// A result of a generation stopped during its prefill: `reason`, no tokens, fewer target nodes
// than the prompt's tokens.
void expect_stopped_in_prefill(const Value& reply, const std::string& reason) {
  ASSERT_EQ(reply.get("type")->as_string(), "result") << describe(reply);
  const auto r = Client::parse_result(reply);
  EXPECT_EQ(r.stop_reason, reason);
  EXPECT_TRUE(r.tokens.empty()) << r.tokens.size() << " tokens";
  EXPECT_EQ(r.prompt_tokens, int64_t(kPromptTokens));
  EXPECT_EQ(r.stats.get("decoder_stop_reason")->as_string(), "cancelled");
  const int64_t nodes = r.stats.get("target_nodes")->as_int();
  EXPECT_LT(nodes, int64_t(kPromptTokens)) << "the whole prompt was prefilled before the stop took effect";
  EXPECT_EQ(nodes % 16, 0) << "the prefill stopped inside a chunk";
}

TEST(LongPrefill, ACancelStopsIt) {
  Daemon d = long_prefill_daemon();
  Client c(d.endpoint(), client_options(30.0));
  const uint64_t id = c.send("generate", Client::generate_fields(long_prompt_request(), false));
  wait_until_running(c);
  EXPECT_TRUE(c.cancel(id));
  expect_stopped_in_prefill(c.wait(id), "cancelled");
  // The model is free again and its sequences are gone: a short generation on it runs.
  GenerateOptions small;
  small.models = {{"target", "wide"}};
  small.prompt_ids = std::vector<TokenId>{1, 2, 3};
  small.max_tokens = 4;
  EXPECT_EQ(c.generate(small).tokens.size(), 4u);
}

TEST(LongPrefill, ADeadlineStopsIt) {
  Daemon d = long_prefill_daemon();
  Client c(d.endpoint(), client_options(30.0));
  GenerateOptions g = long_prompt_request();
  g.deadline_s = 1.0;  // far later than the request takes to start, far sooner than its prefill ends
  expect_stopped_in_prefill(c.wait(c.send("generate", Client::generate_fields(g, false))), "deadline");
}

TEST(LongPrefill, SigtermStopsItWithAReplyAndTheDaemonExitsZero) {
  Daemon d = long_prefill_daemon();
  Client c(d.endpoint(), client_options(30.0));
  const uint64_t id = c.send("generate", Client::generate_fields(long_prompt_request(), true));
  wait_until_running(c);
  kill(d.pid(), SIGTERM);
  try {
    expect_stopped_in_prefill(c.wait(id), "shutdown");
  } catch (const std::exception& e) {
    ADD_FAILURE() << "no result after SIGTERM: " << e.what();
  }
  EXPECT_EQ(d.wait_exit(), 0);
}

}  // namespace
}  // namespace decodelab
