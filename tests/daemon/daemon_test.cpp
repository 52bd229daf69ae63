// decodelabd end to end: the test starts the real binary on an ipc endpoint in a temporary
// directory and talks to it through the C++ client (and raw ZeroMQ for malformed input).
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <thread>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "clients/cpp/client.hpp"
#include "core/cpu_features.hpp"
#include "core/reward.hpp"
#include "daemon/generation.hpp"
#include "decodelab/decoder.hpp"
#include "decodelab/model_factory.hpp"
#include "tests/daemon/daemon_harness.hpp"

namespace decodelab {
namespace {

using client::Client;
using client::GenerateOptions;
using client::RemoteError;
using client::Value;
using namespace daemon_testing;

// The same generation through the library, in process.
TokenStream library_generation(const std::string& decoder, const ParamMap& params, uint64_t seed, int max_tokens,
                               bool with_draft) {
  auto target = load_model(kTarget);
  std::shared_ptr<LanguageModel> draft;
  ModelSet models{{"target", target.get()}};
  if (with_draft) {
    draft = load_model(kDraft, target.get());
    models.set("draft", draft.get());
  }
  auto d = make_decoder(decoder, params, &models);
  std::vector<TokenId> prompt = target->tokenize("a b c", true);
  TokenStream stream(prompt);
  DecodeOptions options;
  options.seed = seed;
  options.max_new_tokens = max_tokens;
  d->generate(models, options, stream);
  return stream;
}

class DaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Daemon({"--workers", "2", "--max-message-bytes", "4096", "--allow-shutdown"});
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  Client connect() { return Client(daemon_->endpoint(), client_options(10.0)); }
  static Daemon* daemon_;
};
Daemon* DaemonTest::daemon_ = nullptr;

TEST_F(DaemonTest, HelloAndSchemas) {
  Client c = connect();
  const Value hello = c.hello();
  EXPECT_EQ(hello.get("protocol")->as_int(), 2);
  ASSERT_NE(hello.get("cpu"), nullptr);
  EXPECT_EQ(hello.get("cpu")->get("kernel_path")->as_string(), cpu_path_name(best_cpu_path()));
  EXPECT_FALSE(hello.get("cpu")->get("description")->as_string().empty());
  const Value decoders = c.list_decoders();
  bool saw_sd = false;
  for (const Value& d : decoders.get("decoders")->as_array()) {
    if (d.get("name")->as_string() != "sd") continue;
    saw_sd = true;
    ASSERT_FALSE(d.get("params")->as_array().empty());
    const Value& p = d.get("params")->as_array()[0];
    for (const char* key : {"name", "type", "default", "min", "max", "doc", "choices"})
      EXPECT_NE(p.get(key), nullptr) << key;
    EXPECT_EQ(d.get("roles")->as_array().size(), 2u);
  }
  EXPECT_TRUE(saw_sd);
}

TEST_F(DaemonTest, HelloListsTheOpTableAndTheClientHasEveryOp) {
  Client c = connect();
  const Value hello = c.hello();
  std::vector<std::string> reported;
  for (const Value& op : hello.get("ops")->as_array()) reported.push_back(op.as_string());
  EXPECT_EQ(reported, daemon::op_names());
  EXPECT_EQ(Client::ops(), daemon::op_names());
  std::vector<std::string> features;
  for (const Value& f : hello.get("features")->as_array()) features.push_back(f.as_string());
  EXPECT_EQ(features, daemon::op_features());
}

TEST_F(DaemonTest, GenerationEqualsTheLibrary) {
  Client c = connect();
  for (uint64_t seed : {1u, 2u, 99u}) {
    const auto remote = c.generate(sample_request(seed, 40));
    const TokenStream local = library_generation("sample", {}, seed, 40, false);
    EXPECT_EQ(remote.tokens, local.generated_tokens()) << "seed " << seed;
    ASSERT_EQ(remote.logprobs.size(), remote.tokens.size());
    for (std::size_t i = 0; i < remote.tokens.size(); ++i) {
      EXPECT_EQ(remote.logprobs[i], local.at(local.prompt_size() + i).logprob);
    }
    EXPECT_EQ(remote.stop_reason, "max_tokens");
    EXPECT_EQ(remote.prompt_tokens, 3);
  }
}

TEST_F(DaemonTest, SpeculativeGenerationWithADraftEqualsTheLibrary) {
  Client c = connect();
  c.load_model("d_spec", kDraft, "t");
  GenerateOptions g = sample_request(5, 30);
  g.models["draft"] = "d_spec";
  g.decoder = "sd";
  const auto remote = c.generate(g);
  const TokenStream local = library_generation("sd", {}, 5, 30, true);
  EXPECT_EQ(remote.tokens, local.generated_tokens());
  EXPECT_GT(remote.stats.get("tokens_proposed")->as_int(), 0);
  c.unload_model("d_spec");
  EXPECT_THROW(c.generate(g), RemoteError);
}

TEST_F(DaemonTest, ConcurrentClientsOnOneModelGetExactResults) {
  // Four clients at once on the same model (two workers): the per-model lock keeps every
  // generation identical to its sequential twin.
  std::vector<std::vector<TokenId>> expected;
  {
    Client c = connect();
    for (uint64_t seed = 0; seed < 4; ++seed) expected.push_back(c.generate(sample_request(100 + seed, 300)).tokens);
  }
  std::vector<std::vector<TokenId>> got(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      Client c = connect();
      for (int repeat = 0; repeat < 3; ++repeat) got[i] = c.generate(sample_request(100 + i, 300)).tokens;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(got, expected);
}

TEST_F(DaemonTest, StreamingIsOrderedAndComplete) {
  Client c = connect();
  std::vector<TokenId> streamed;
  std::string text;
  std::size_t chunks = 0;
  auto g = sample_request(3, 200);
  const auto result = c.generate(g, [&](const client::Chunk& k) {
    EXPECT_EQ(k.index, streamed.size());
    EXPECT_EQ(k.logprobs.size(), k.tokens.size());
    streamed.insert(streamed.end(), k.tokens.begin(), k.tokens.end());
    text += k.text;
    ++chunks;
  });
  EXPECT_GE(chunks, 1u);
  EXPECT_EQ(streamed, result.tokens);
  EXPECT_EQ(text, result.text);
  EXPECT_EQ(result.tokens, c.generate(sample_request(3, 200)).tokens);  // streaming changes nothing
}

TEST_F(DaemonTest, StopStringsAndStopTokens) {
  Client c = connect();
  const auto full = c.generate(sample_request(3, 40));
  auto g = sample_request(3, 40);
  g.stop_token_ids = {full.tokens[5]};
  const auto stopped = c.generate(g);
  EXPECT_EQ(stopped.stop_reason, "stop_token");
  EXPECT_EQ(stopped.tokens.back(), full.tokens[5]);
  g = sample_request(3, 40);
  const std::string needle = full.text.substr(10, 3);
  g.stop = {needle};
  const auto by_text = c.generate(g);
  EXPECT_EQ(by_text.stop_reason, "stop_string");
  EXPECT_EQ(by_text.text, full.text.substr(0, full.text.find(needle)));
}

TEST_F(DaemonTest, CancelStopsAStream) {
  Client c = connect();
  const uint64_t id = c.send("generate", Client::generate_fields(sample_request(4, 1 << 20), true));
  bool cancelled = false;
  std::size_t streamed = 0;
  const Value reply = c.wait(id, [&](const Value& chunk) {
    streamed += chunk.get("tokens")->as_array().size();
    if (!cancelled) {
      // A second connection, as a user's other thread would; cancels apply to the same client
      // only, so this one must not find it.
      Client other = connect();
      EXPECT_FALSE(other.cancel(id));
      c.send("cancel", {{"request_id", id}});
      cancelled = true;
    }
  });
  const auto r = Client::parse_result(reply);
  EXPECT_EQ(r.stop_reason, "cancelled");
  EXPECT_LT(r.tokens.size(), std::size_t(1 << 20));
  EXPECT_EQ(streamed, r.tokens.size());
  // The cancel's own reply arrives too.
  const Value ack = c.receive();
  EXPECT_TRUE(ack.get("found")->as_bool());
}

TEST_F(DaemonTest, LoadModelRefusesTheIdOfAGenerationInFlight) {
  RawClient raw(daemon_->endpoint());
  raw.send(with_id(50, "generate", Client::generate_fields(sample_request(4, 1 << 20), true)));
  ASSERT_EQ(raw.receive().get("type")->as_string(), "chunk");  // running
  raw.send(with_id(50, "load_model", {{"name", "dup_id"}, {"spec", kTarget}}));
  const Value refused = raw.final_reply(50);
  ASSERT_EQ(refused.get("type")->as_string(), "error");
  EXPECT_EQ(refused.get("code")->as_string(), "invalid_argument");
  EXPECT_EQ(refused.get("field")->as_string(), "id");
  // The generation still owns its id: cancel finds it.
  raw.send(with_id(51, "cancel", {{"request_id", 50}}));
  const Value cancel = raw.final_reply(51);
  ASSERT_NE(cancel.get("found"), nullptr) << describe(cancel);
  EXPECT_TRUE(cancel.get("found")->as_bool());
  const Value result = raw.final_reply(50);
  ASSERT_NE(result.get("stop_reason"), nullptr) << describe(result);
  EXPECT_EQ(result.get("stop_reason")->as_string(), "cancelled");
  Client c = connect();
  const Value models = c.list_models();
  for (const Value& m : models.get("models")->as_array()) EXPECT_NE(m.get("name")->as_string(), "dup_id");
}

TEST_F(DaemonTest, AnIdIsFreeAgainAsSoonAsItsFinalReplyArrives) {
  // The reply used to be sent before the job left the table of jobs in flight, so an id reused at
  // once was now and then refused as "already in flight".
  RawClient raw(daemon_->endpoint());
  const Value::Map request = with_id(77, "generate", Client::generate_fields(sample_request(1, 1), false));
  int refused = 0;
  std::string first_refusal;
  for (int i = 0; i < 2000; ++i) {
    raw.send(request);
    const Value reply = raw.final_reply(77);
    if (reply.get("type")->as_string() != "result") {
      if (refused++ == 0) first_refusal = describe(reply);
    }
  }
  EXPECT_EQ(refused, 0) << "of 2000 immediate reuses; first: " << first_refusal;
  // The same for a load_model.
  for (int i = 0; i < 100; ++i) {
    raw.send(with_id(78, "load_model", {{"name", "reuse_" + std::to_string(i)}, {"spec", kTarget}}));
    const Value loaded = raw.final_reply(78);
    EXPECT_EQ(loaded.get("type")->as_string(), "result") << describe(loaded);
    raw.send(with_id(78, "unload_model", {{"name", "reuse_" + std::to_string(i)}}));
    const Value unloaded = raw.final_reply(78);
    EXPECT_EQ(unloaded.get("type")->as_string(), "result") << describe(unloaded);
  }
}

TEST_F(DaemonTest, DeadlinesStopRunningAndQueuedWork) {
  Client c = connect();
  auto g = sample_request(6, 1 << 20);
  g.deadline_s = 0.1;
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = c.generate(g);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.stop_reason, "deadline");
  EXPECT_LT(seconds, 5.0);
  EXPECT_GE(r.timings.get("total_s")->as_double(), 0.1);
}

TEST_F(DaemonTest, AnExpiredDeadlineIsCheckedWhenAJobStarts) {
  // deadline_s = 1e-6 has always passed when a worker takes the request, whether or not the
  // deadline timer has fired yet: none may run.
  RawClient raw(daemon_->endpoint());
  Value::Map request = Client::generate_fields(sample_request(2, 200), false);
  request.emplace_back("deadline_s", 1e-6);
  int ran = 0;
  for (uint64_t id = 1; id <= 200; ++id) {
    // In batches of 20, well inside the queue bound (64).
    if (id % 20 == 1) {
      for (uint64_t k = id; k < id + 20; ++k) raw.send(with_id(k, "generate", request));
    }
    const Value reply = raw.final_reply(id);
    if (reply.get("type")->as_string() == "result") {
      ++ran;
      continue;
    }
    EXPECT_EQ(reply.get("code")->as_string(), "deadline_exceeded") << describe(reply);
    EXPECT_EQ(reply.get("field")->as_string(), "deadline_s") << describe(reply);
  }
  EXPECT_EQ(ran, 0) << "of 200 requests with deadline_s = 1e-6 ran";
}

// Every string and map key in a reply, recursively, is valid UTF-8.
bool all_valid_utf8(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v.v)) return daemon::is_valid_utf8(*s);
  if (const auto* a = std::get_if<Value::Array>(&v.v)) {
    return std::all_of(a->begin(), a->end(), [](const Value& x) { return all_valid_utf8(x); });
  }
  if (const auto* m = std::get_if<Value::Map>(&v.v)) {
    return std::all_of(m->begin(), m->end(),
                       [](const auto& kv) { return daemon::is_valid_utf8(kv.first) && all_valid_utf8(kv.second); });
  }
  return true;
}

TEST_F(DaemonTest, RepliesAreValidUtf8WhateverTheRequestEchoes) {
  RawClient raw(daemon_->endpoint());
  const std::string bad = "x\xff\xc3(";
  std::vector<Value::Map> requests{
      with_id(1, "hello", {{bad, 1}}),                                                     // an unknown key
      with_id(2, bad, {}),                                                                 // an unknown op
      with_id(3, "generate", {{"models", Value::Map{{"target", bad}}}, {"prompt", "a"}}),  // an unknown model
      with_id(4, "generate", {{"models", Value::Map{{"target", "t"}, {bad, "t"}}}, {"prompt", "a"}}),  // a role
      with_id(5, "generate", {{"models", Value::Map{{"target", "t"}}}, {"prompt", "a"}, {"decoder", bad}}),
      with_id(6, "generate",
              {{"models", Value::Map{{"target", "t"}}}, {"prompt", "a"}, {"params", Value::Map{{bad, 1}}}}),
      with_id(7, "load_model", {{"name", "u"}, {"spec", bad}}),
      with_id(8, "unload_model", {{"name", bad}}),
      with_id(9, "load_model", {{"name", bad}, {"spec", kTarget}}),  // loads: its name is listed below
      with_id(10, "list_models", {}),
      with_id(11, "unload_model", {{"name", bad}}),
  };
  for (const auto& request : requests) {
    raw.send(request);
    const uint64_t id = uint64_t(request[0].second.as_int());
    const Value reply = raw.final_reply(id);
    EXPECT_TRUE(all_valid_utf8(reply)) << "request " << id << ": " << describe(reply);
  }
}

TEST_F(DaemonTest, BadInputGetsAnErrorAndTheDaemonKeepsServing) {
  Client c = connect();
  auto expect_error = [&](const std::string& op, Value::Map fields, const std::string& code, const std::string& field) {
    try {
      c.call(op, std::move(fields));
      ADD_FAILURE() << op << ": no error";
    } catch (const RemoteError& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_EQ(e.field(), field) << e.what();
    }
    EXPECT_EQ(c.hello().get("protocol")->as_int(), daemon::kProtocolVersion);  // still serving
  };
  auto gen = [](Value::Map extra) {
    Value::Map m = Client::generate_fields(sample_request(1, 4), false);
    for (auto& f : extra) {
      auto it = std::find_if(m.begin(), m.end(), [&](const auto& kv) { return kv.first == f.first; });
      if (it != m.end()) it->second = f.second;
      else m.push_back(f);
    }
    return m;
  };
  expect_error("teleport", {}, "not_found", "op");
  expect_error("generate", gen({{"max_tokens", "ten"}}), "invalid_argument", "max_tokens");
  expect_error("generate", gen({{"models", Value::Map{{"target", "nope"}}}}), "not_found", "models.target");
  expect_error("generate", gen({{"decoder", "nope"}}), "not_found", "decoder");
  expect_error("generate", gen({{"params", Value::Map{{"temperature", -2.0}}}}), "invalid_argument", "params");
  expect_error("generate", gen({{"params", Value::Map{{"warp", 1}}}}), "invalid_argument", "params");
  expect_error("generate", gen({{"decoder", "sd"}}), "invalid_argument", "models.draft");
  expect_error("generate", gen({{"prompt", "zebra"}}), "invalid_argument", "prompt");
  expect_error("generate", gen({{"bogus_field", 1}}), "invalid_argument", "bogus_field");
  expect_error("load_model", {{"name", "x"}, {"spec", "table(vocab=-4)"}}, "invalid_argument", "spec");
  expect_error("load_model", {{"name", "x"}, {"spec", "warp(drive=1)"}}, "not_found", "spec");
  expect_error("load_model", {{"name", "t"}, {"spec", kTarget}}, "invalid_argument", "name");
  expect_error("load_model", {{"name", "dd"}, {"spec", kDraft}, {"target", "none"}}, "not_found", "target");
  expect_error("unload_model", {{"name", "none"}}, "not_found", "name");
  {
    auto m = Client::generate_fields(sample_request(1, 4), false);
    m.erase(std::find_if(m.begin(), m.end(), [](const auto& kv) { return kv.first == "prompt"; }));
    m.emplace_back("prompt_ids", Value::Array{1, 40});
    expect_error("generate", m, "invalid_argument", "prompt_ids[1]");
  }
  expect_error("generate", gen({{"prompt", std::string(5000, 'a')}}), "too_large", "");
  expect_error("shutdown", {{"now", true}}, "invalid_argument", "now");

  // Raw bytes: not msgpack, not a map, two frames.
  zmq::context_t ctx;
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.set(zmq::sockopt::rcvtimeo, 5000);
  raw.connect(daemon_->endpoint());
  auto raw_error = [&](std::vector<std::string> frames) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
      raw.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    zmq::message_t reply;
    EXPECT_TRUE(raw.recv(reply));
    const Value v = daemon::unpack(reply.to_string_view());
    EXPECT_EQ(v.get("type")->as_string(), "error");
    return v.get("code")->as_string();
  };
  EXPECT_EQ(raw_error({"\xc1\xc1"}), "bad_format");
  EXPECT_EQ(raw_error({daemon::pack(Value::Array{1, 2, 3})}), "invalid_argument");
  EXPECT_EQ(raw_error({daemon::pack(Value::Map{{"id", 1}, {"op", "hello"}}), "x"}), "bad_format");
  EXPECT_EQ(c.generate(sample_request(1, 4)).tokens.size(), 4u);

  const Value metrics = c.metrics();
  EXPECT_GT(metrics.get("errors")->as_int(), 15);
  EXPECT_NE(metrics.get("errors_by_code")->get("not_found"), nullptr);
}

RemoteError call_error(Client& c, const std::string& op, Value::Map fields) {
  try {
    c.call(op, std::move(fields));
  } catch (const RemoteError& e) {
    return e;
  }
  ADD_FAILURE() << op << ": no error";
  return RemoteError("", "", "");
}

TEST_F(DaemonTest, RolesTargetsAndConstraintsAreValidated) {
  Client c = connect();
  auto gen = [](Value::Map models, std::string decoder, Value::Map params = {}) {
    Value::Map m{{"models", std::move(models)}, {"decoder", std::move(decoder)}, {"prompt", "a b"}, {"max_tokens", 4}};
    if (!params.empty()) m.emplace_back("params", std::move(params));
    return m;
  };
  c.load_model("d11", kDraft, "t");
  // A role the decoder does not take.
  auto e = call_error(c, "generate", gen({{"target", "t"}, {"foo", "t"}}, "sample"));
  EXPECT_EQ(e.code(), "invalid_argument") << e.what();
  EXPECT_EQ(e.field(), "models.foo") << e.what();
  e = call_error(c, "generate", gen({{"target", "t"}, {"draft", "d11"}}, "sample"));
  EXPECT_EQ(e.field(), "models.draft") << e.what();
  // An optional role is taken (smc's reward_model) and the required ones still are.
  EXPECT_NO_THROW(c.call("generate", gen({{"target", "t"}, {"reward_model", "t"}}, "smc", {{"particles", 2}})));
  EXPECT_NO_THROW(c.call("generate", gen({{"target", "t"}, {"draft", "d11"}}, "sd")));
  // target belongs to draft(...) specs only, and they need one.
  e = call_error(c, "load_model", {{"name", "x11"}, {"spec", kTarget}, {"target", "t"}});
  EXPECT_EQ(e.code(), "invalid_argument") << e.what();
  EXPECT_EQ(e.field(), "target") << e.what();
  e = call_error(c, "load_model", {{"name", "x11"}, {"spec", kDraft}});
  EXPECT_EQ(e.field(), "target") << e.what();
  // Constraint specs are checked with the request, naming the field.
  e = call_error(c, "generate", gen({{"target", "t"}}, "smc", {{"constraint", "regex(pattern=(a|)"}}));
  EXPECT_EQ(e.code(), "invalid_argument") << e.what();
  EXPECT_EQ(e.field(), "params.constraint") << e.what();
  e = call_error(c, "generate", gen({{"target", "t"}}, "smc", {{"constraint", "nosuch(x=1)"}}));
  EXPECT_EQ(e.code(), "not_found") << e.what();
  EXPECT_EQ(e.field(), "params.constraint") << e.what();
  EXPECT_NO_THROW(c.call("generate", gen({{"target", "t"}}, "smc", {{"constraint", "regex(pattern=[a-z ]*)"}})));
  c.unload_model("d11");
}

TEST(DaemonAlone, ABadConstraintIsRefusedWithoutQueueing) {
  Daemon d({"--workers", "1"});
  Client c(d.endpoint(), client_options(5.0));
  const uint64_t blocker = c.send("generate", Client::generate_fields(sample_request(1, 1 << 20), true));
  EXPECT_EQ(c.receive().get("type")->as_string(), "chunk");  // the only worker is busy
  GenerateOptions g = sample_request(1, 4);
  g.decoder = "smc";
  g.params = {{"constraint", std::string("regex(pattern=(a|)")}};
  try {
    c.generate(g);  // answered while the worker is still busy
    ADD_FAILURE() << "bad constraint accepted";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.field(), "params.constraint") << e.what();
  }
  EXPECT_TRUE(c.cancel(blocker));
}

TEST_F(DaemonTest, RefusedMessagesCarryTheirIdWhenTheyHaveOne) {
  RawClient raw(daemon_->endpoint());
  // Over --max-message-bytes (4096) but under twice it: too_large, with the request's own id.
  Value::Map big = with_id(123, "generate", Client::generate_fields(sample_request(1, 4), false));
  big.emplace_back("stop", Value::Array{std::string(5000, 'a')});
  raw.send(big);
  Value reply = raw.receive();
  EXPECT_EQ(reply.get("code")->as_string(), "too_large") << describe(reply);
  EXPECT_EQ(reply.get("id")->as_int(), 123);
  // Unreadable: id 0, and the C++ client keeps it aside instead of failing the request it waits on.
  Client c = connect();
  Value deep = 1;
  for (int i = 0; i < 40; ++i) deep = Value::Array{deep};
  c.send("hello", {{"nested", deep}});
  EXPECT_EQ(c.hello().get("protocol")->as_int(), daemon::kProtocolVersion);
  ASSERT_EQ(c.unattributed_errors().size(), 1u);
  EXPECT_EQ(c.unattributed_errors()[0].get("code")->as_string(), "bad_format");
}

// decodelabd run to completion with `args` (shell words): its exit status and what it printed. One
// that does not exit within 20 s is stopped (status 124), so a test of a refusal cannot hang.
std::pair<int, std::string> run_decodelabd(const std::string& args) {
  std::string output;
  FILE* p = popen(("timeout 20 " + std::string(DECODELABD_PATH) + " " + args + " 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, p)) output.append(buffer, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

TEST(DaemonAlone, NumericOptionsOutOfRangeAreRefused) {
  // --max-message-bytes 1e30 used to overflow (hello said -1 and ZeroMQ dropped messages over ~1 KB).
  for (const std::string option :
       {"--max-message-bytes 1e30", "--max-message-bytes 12", "--max-message-bytes 1.5e3x", "--workers 1e30",
        "--workers 0", "--max-queue 0", "--max-tokens 1e19", "--heartbeat-ms nan", "--stream-interval-ms -1",
        "--workers 2.5", "--prefill-chunk 0", "--prefill-chunk 2e9"}) {
    // The endpoint cannot be bound, so a daemon that accepted the option exits too, but with a
    // message that does not name it.
    const auto [status, output] = run_decodelabd(option + " --bind ipc:///nonexistent-dir/d.sock");
    EXPECT_EQ(status, 2) << option << ": " << output;
    const std::string name = option.substr(0, option.find(' '));
    EXPECT_NE(output.find(name), std::string::npos) << option << ": " << output;
  }
}

TEST(DaemonAlone, ASecondDaemonOnALiveIpcPathIsRefused) {
  std::string file;
  {
    Daemon first;
    Client c(first.endpoint(), client_options(5.0));
    EXPECT_EQ(c.hello().get("protocol")->as_int(), daemon::kProtocolVersion);
    file = first.endpoint().substr(6);
    // It used to bind, replacing the socket file, and the first daemon ran on unreachable.
    const auto [status, output] = run_decodelabd("--bind " + first.endpoint());
    EXPECT_EQ(status, 2) << output;
    EXPECT_NE(output.find("listens on it"), std::string::npos) << output;
    Client again(first.endpoint(), client_options(5.0));
    EXPECT_EQ(again.hello().get("protocol")->as_int(), daemon::kProtocolVersion);
    kill(first.pid(), SIGTERM);
    EXPECT_EQ(first.wait_exit(), 0);
    EXPECT_FALSE(std::filesystem::exists(file)) << "the socket file outlives a clean exit";
  }
  // A stale socket file (nobody listens) is taken over.
  std::string dir_template_s = (std::filesystem::temp_directory_path() / "decodelabd-stale-XXXXXX").string();
  char* dir_template = dir_template_s.data();
  const std::string dir = mkdtemp(dir_template);
  const std::string stale = dir + "/s.sock";
  {
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, stale.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
    close(fd);  // the file stays, with nobody behind it
  }
  ASSERT_TRUE(std::filesystem::exists(stale));
  {
    Daemon second({"--bind", "ipc://" + stale});
    Client c("ipc://" + stale, client_options(5.0));
    EXPECT_EQ(c.hello().get("protocol")->as_int(), daemon::kProtocolVersion);
  }
  std::filesystem::remove_all(dir);
}

bool has_ipv6_loopback() {
  std::ifstream f("/proc/net/if_inet6");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("00000000000000000000000000000001", 0) == 0) return true;
  }
  return false;
}

TEST(DaemonAlone, LocalhostAndIpv6LoopbackEndpoints) {
  const int port = 40000 + (getpid() * 3 + 7) % 20000;
  std::vector<std::string> args{"--bind", "tcp://localhost:" + std::to_string(port)};
  const bool v6 = has_ipv6_loopback();
  if (v6) args.insert(args.end(), {"--bind", "tcp://[::1]:" + std::to_string(port + 1)});
  Daemon d(args);
  std::vector<std::string> endpoints{"tcp://localhost:" + std::to_string(port),
                                     "tcp://127.0.0.1:" + std::to_string(port)};
  if (v6)
    endpoints.insert(endpoints.end(),
                     {"tcp://[::1]:" + std::to_string(port), "tcp://[::1]:" + std::to_string(port + 1)});
  for (const auto& e : endpoints) {
    Client c(e, client_options(5.0));
    EXPECT_EQ(c.hello().get("protocol")->as_int(), daemon::kProtocolVersion) << e;
  }
  if (!v6) GTEST_SKIP() << "no IPv6 loopback on this host; checked IPv4 only";
}

// The reward of the client-reward tests: prefers texts with many "a" tokens (table models name
// their tokens), so the steered generation differs from an unsteered one.
std::vector<double> count_a(const std::vector<std::string>& texts) {
  std::vector<double> out;
  for (const auto& t : texts) out.push_back(1.5 * double(std::count(t.begin(), t.end(), 'a')));
  return out;
}

TEST_F(DaemonTest, ClientRewardSteersSmcExactlyAsInTheLibrary) {
  const ParamMap params{{"particles", int64_t(6)}, {"block", int64_t(2)}};
  for (uint64_t seed : {1u, 2u, 3u}) {
    Client c = connect();
    GenerateOptions g = sample_request(seed, 12);
    g.decoder = "smc";
    g.params = params;
    int calls = 0;
    g.reward = [&](const std::vector<std::string>& texts) {
      ++calls;
      EXPECT_EQ(texts.size(), 6u);
      return count_a(texts);
    };
    const auto remote = c.generate(g);
    EXPECT_GT(calls, 0);

    auto target = load_model(kTarget);
    ModelSet models{{"target", target.get()}};
    auto d = make_decoder("smc", params, &models);
    set_reward(*d, [](std::span<const std::string> texts) { return count_a({texts.begin(), texts.end()}); });
    TokenStream stream(target->tokenize("a b c", true));
    DecodeOptions options;
    options.seed = seed;
    options.max_new_tokens = 12;
    const Stats stats = d->generate(models, options, stream);
    EXPECT_EQ(remote.tokens, stream.generated_tokens()) << "seed " << seed;
    EXPECT_DOUBLE_EQ(remote.stats.get("metrics")->get("log_evidence")->as_double(), stats.metrics.at("log_evidence"))
        << "seed " << seed;
  }
}

TEST_F(DaemonTest, BadClientRewardsFailTheGenerationOnly) {
  GenerateOptions g = sample_request(1, 8);
  g.decoder = "smc";
  g.params = {{"particles", int64_t(4)}};
  auto expect_failure = [&](const std::function<std::vector<double>(const std::vector<std::string>&)>& reward,
                            const std::string& code, const std::string& field) {
    Client c = connect();
    g.reward = reward;
    try {
      c.generate(g);
      ADD_FAILURE() << "no error for field " << field;
    } catch (const RemoteError& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_EQ(e.field(), field) << e.what();
    }
    EXPECT_EQ(c.hello().get("protocol")->as_int(), daemon::kProtocolVersion);  // still serving
  };
  expect_failure([](const std::vector<std::string>&) { return std::vector<double>{1.0}; }, "invalid_argument",
                 "scores");
  expect_failure(
      [](const std::vector<std::string>& t) {
        return std::vector<double>(t.size(), std::numeric_limits<double>::quiet_NaN());
      },
      "invalid_argument", "scores[0]");
  // -inf is a score (it rules a particle out); all particles ruled out is a result, not an error.
  {
    Client c = connect();
    g.reward = [](const std::vector<std::string>& t) {
      return std::vector<double>(t.size(), -std::numeric_limits<double>::infinity());
    };
    const auto r = c.generate(g);
    EXPECT_TRUE(r.tokens.empty());
    EXPECT_EQ(r.stop_reason, "all_particles_dead");
    // Every stop reason the daemon sends is in the protocol's list of them.
    std::ifstream doc(std::string(DECODELAB_SOURCE_DIR) + "/docs/protocol.md");
    const std::string text((std::istreambuf_iterator<char>(doc)), std::istreambuf_iterator<char>());
    const std::size_t list = text.find("`stop_reason`: ");
    ASSERT_NE(list, std::string::npos);
    EXPECT_NE(text.substr(list, text.find("\n\n", list) - list).find("`" + r.stop_reason + "`"), std::string::npos)
        << r.stop_reason << " is not among docs/protocol.md's stop reasons";
    EXPECT_EQ(r.stats.get("metrics")->get("log_evidence")->as_double(), -std::numeric_limits<double>::infinity());
  }
  // A decoder without an external reward refuses client_reward before it starts.
  {
    Client c = connect();
    GenerateOptions s = sample_request(1, 4);
    s.reward = count_a;
    try {
      c.generate(s);
      ADD_FAILURE() << "sample accepted client_reward";
    } catch (const RemoteError& e) {
      EXPECT_EQ(e.field(), "client_reward") << e.what();
    }
  }
  // A client that never answers: the generation gives up after reward_timeout_s.
  {
    Client c = connect();
    g.reward = count_a;
    g.reward_timeout_s = 0.2;
    Value::Map f = Client::generate_fields(g, false);  // client_reward: true
    const uint64_t id = c.send("generate", std::move(f));
    try {
      c.wait(id, [](const Value&) {});  // ignores the reward request
      ADD_FAILURE() << "no timeout";
    } catch (const RemoteError& e) {
      EXPECT_EQ(e.code(), "deadline_exceeded") << e.what();
      EXPECT_EQ(e.field(), "reward_timeout_s") << e.what();
    }
  }
}

TEST_F(DaemonTest, AClientThatLeavesMidRewardFreesItsGeneration) {
  {
    Client c = connect();
    GenerateOptions g = sample_request(1, 8);
    g.decoder = "smc";
    g.params = {{"particles", int64_t(4)}};
    g.reward = count_a;
    const uint64_t id = c.send("generate", Client::generate_fields(g, false));
    const Value m = c.receive();  // the first reward request; the client then goes away unanswered
    ASSERT_EQ(m.get("type")->as_string(), "reward_request");
    ASSERT_EQ(uint64_t(m.get("id")->as_int()), id);
  }
  Client other = connect();
  for (int i = 0; i < 200 && other.status().get("in_flight")->as_int() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(other.status().get("in_flight")->as_int(), 0) << "the abandoned generation still runs";
  EXPECT_EQ(other.hello().get("protocol")->as_int(), daemon::kProtocolVersion);
}

TEST_F(DaemonTest, StatusReportsModelsAndMemory) {
  Client c = connect();
  const Value s = c.status();
  EXPECT_GT(s.get("rss_bytes")->as_int(), 0);
  EXPECT_GT(s.get("heap_bytes")->as_int(), 0);
  bool has_t = false;
  for (const Value& m : s.get("models")->as_array()) has_t |= m.get("name")->as_string() == "t";
  EXPECT_TRUE(has_t);
  EXPECT_GE(c.list_models().get("loaders")->as_array().size(), 2u);
}

TEST_F(DaemonTest, ADisconnectedClientsWorkIsCancelled) {
  {
    Client gone = connect();
    const uint64_t id = gone.send("generate", Client::generate_fields(sample_request(8, 1 << 20), true));
    const Value first = gone.receive();
    EXPECT_EQ(first.get("id")->as_int(), int64_t(id));
  }  // socket closed mid-stream
  Client c = connect();
  bool idle = false;
  for (int i = 0; i < 300 && !idle; ++i) {
    idle = c.status().get("in_flight")->as_int() == 0;
    if (!idle) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(idle);
}

TEST(DaemonAlone, BusyWhenTheQueueIsFull) {
  Daemon d({"--workers", "1", "--max-queue", "1"});
  Client c(d.endpoint(), client_options(10.0));
  // Occupy the only worker: once a chunk arrives the request is running, not queued.
  const uint64_t running = c.send("generate", Client::generate_fields(sample_request(1, 1 << 20), true));
  EXPECT_EQ(c.receive().get("type")->as_string(), "chunk");
  // A queued request with a short deadline is answered when it expires, not when a worker frees up.
  auto late = sample_request(9, 4);
  late.deadline_s = 0.05;
  const uint64_t queued = c.send("generate", Client::generate_fields(late, false));
  const uint64_t rejected = c.send("generate", Client::generate_fields(sample_request(2, 4), false));
  try {
    c.wait(rejected);
    ADD_FAILURE() << "a request beyond the queue bound was accepted";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.code(), "busy");
  }
  try {
    c.wait(queued);
    ADD_FAILURE() << "queued request ran despite its deadline";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.code(), "deadline_exceeded");
  }
  EXPECT_TRUE(c.cancel(running));
  EXPECT_EQ(Client::parse_result(c.wait(running)).stop_reason, "cancelled");
  EXPECT_EQ(c.generate(sample_request(1, 4)).tokens.size(), 4u);
}

TEST(DaemonAlone, ClientsAreServedRoundRobin) {
  // One worker. Client A queues a short and two very long requests, then client B a short one.
  // Round-robin serves A1, B, A2, A3: B finishes while A3 still waits. (FIFO would make B wait
  // for both long requests.)
  Daemon d({"--workers", "1"});
  Client a(d.endpoint(), client_options(20.0));
  Client b(d.endpoint(), client_options(20.0));
  const uint64_t blocker = a.send("generate", Client::generate_fields(sample_request(1, 1 << 20), true));
  EXPECT_EQ(a.receive().get("type")->as_string(), "chunk");  // the worker is busy with it
  std::vector<uint64_t> a_ids;
  for (int64_t n : {int64_t(200), int64_t(1) << 20, int64_t(1) << 20}) {
    a_ids.push_back(a.send("generate", Client::generate_fields(sample_request(10, n), false)));
  }
  EXPECT_EQ(a.status().get("queue_depth")->as_int(), 3);  // all queued before B arrives
  const uint64_t b_id = b.send("generate", Client::generate_fields(sample_request(20, 200), false));
  while (b.status().get("queue_depth")->as_int() < 4) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(a.cancel(blocker));
  b.wait(b_id);
  // A3 still waits (A2 may not have left the queue yet either).
  const int64_t waiting = a.status().get("queue_depth")->as_int();
  EXPECT_GE(waiting, 1);
  EXPECT_LE(waiting, 2);
  for (uint64_t id : {a_ids[1], a_ids[2]}) a.cancel(id);
  a.wait(a_ids[0]);
  for (uint64_t id : {a_ids[1], a_ids[2]}) {
    try {
      EXPECT_EQ(Client::parse_result(a.wait(id)).stop_reason, "cancelled");  // cancelled while running
    } catch (const RemoteError& e) {
      EXPECT_EQ(e.code(), "cancelled");  // cancelled while queued
    }
  }
}

TEST(StopStringHoldback, HoldsTheLongestSuffixThatMayBecomeAStopString) {
  using daemon::stop_string_holdback;
  EXPECT_EQ(stop_string_holdback("The capital", {"The United"}), 0u);
  EXPECT_EQ(stop_string_holdback("Paris. The", {"The United"}), 3u);
  EXPECT_EQ(stop_string_holdback("Paris. The Un", {"The United"}), 6u);
  EXPECT_EQ(stop_string_holdback("Paris. T", {"The United", ". Tx"}), 3u);  // the longest over all stop strings
  EXPECT_EQ(stop_string_holdback("abc", {""}), 0u);
  EXPECT_EQ(stop_string_holdback("", {"abc"}), 0u);
  EXPECT_EQ(stop_string_holdback("xab", {"abc", "b"}), 2u);
}

// Streamed chunks concatenate to the result, for every decoder, when a stop string cuts the text
// (its beginning used to be streamed, and the final chunk re-sent the text from the start).
TEST(DaemonAlone, StreamedChunksConcatenateToTheResultWithStopStrings) {
  Daemon d({"--stream-interval-ms", "0"});
  Client c(d.endpoint(), client_options(20.0));
  c.load_model("d", kDraft, "t");
  const std::vector<std::pair<std::string, bool>> decoders = {{"sample", false}, {"greedy", false},   {"sd", true},
                                                              {"spectr", true},  {"specinfer", true}, {"dyspec", true},
                                                              {"ngram", false},  {"cntp", false},     {"smc", false}};
  for (const auto& [decoder, with_draft] : decoders) {
    GenerateOptions g = sample_request(7, 40);
    g.decoder = decoder;
    if (with_draft) g.models["draft"] = "d";
    const auto full = c.generate(g);
    ASSERT_GE(full.text.size(), 16u) << decoder;
    for (std::size_t at : {std::size_t(4), std::size_t(9)}) {
      g.stop = {full.text.substr(at, 5)};  // spans token boundaries
      std::string streamed;
      const auto r = c.generate(g, [&](const client::Chunk& k) { streamed += k.text; });
      EXPECT_EQ(r.stop_reason, "stop_string") << decoder;
      EXPECT_EQ(r.text, full.text.substr(0, full.text.find(g.stop[0]))) << decoder;
      EXPECT_EQ(streamed, r.text) << decoder << " stopping at '" << g.stop[0] << "'";
    }
  }
}

TEST(DaemonAlone, StreamIntervalBatchesTokens) {
  for (const auto& [interval, one_chunk] : {std::pair{"0", false}, std::pair{"60000", true}}) {
    Daemon d({"--stream-interval-ms", interval});
    Client c(d.endpoint(), client_options(10.0));
    std::size_t chunks = 0;
    const auto r = c.generate(sample_request(5, 100), [&](const client::Chunk&) { ++chunks; });
    ASSERT_EQ(r.tokens.size(), 100u);
    // Interval 0: every token is sent as it comes. A long interval: one chunk at the end.
    EXPECT_EQ(chunks, one_chunk ? 1u : 100u) << "interval " << interval;
  }
}

TEST(DaemonAlone, SigtermMidStreamExitsCleanly) {
  Daemon d;
  Client c(d.endpoint(), client_options(10.0));
  const uint64_t id = c.send("generate", Client::generate_fields(sample_request(2, 1 << 20), true));
  const Value first = c.receive();
  EXPECT_EQ(first.get("type")->as_string(), "chunk");
  kill(d.pid(), SIGTERM);
  const Value last = c.wait(id);
  EXPECT_EQ(last.get("stop_reason")->as_string(), "shutdown");
  EXPECT_EQ(d.wait_exit(), 0);
}

TEST(DaemonAlone, SharedSecretIsRequired) {
  Daemon d({"--secret", "s3cret"});
  Client wrong(d.endpoint(), client_options(10.0, "nope"));
  try {
    wrong.hello();
    ADD_FAILURE();
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.code(), "unauthorized");
  }
  Client right(d.endpoint(), client_options(10.0, "s3cret"));
  EXPECT_EQ(right.hello().get("auth_required")->as_bool(), true);
}

TEST(DaemonAlone, CurveEncryptedTcp) {
  if (!zmq_has("curve")) GTEST_SKIP() << "libzmq without CURVE";
  char public_key[41], secret_key[41];
  ASSERT_EQ(zmq_curve_keypair(public_key, secret_key), 0);
  // Port 0 is not allowed for a fixed endpoint we must connect to; pick one from the pid.
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(40000 + getpid() % 20000);
  Daemon d({"--bind", endpoint, "--curve-secret-key", secret_key});
  Client c(endpoint, client_options(10.0, {}, public_key));
  EXPECT_EQ(c.hello().get("protocol")->as_int(), daemon::kProtocolVersion);
  EXPECT_EQ(c.generate(sample_request(1, 4)).tokens.size(), 4u);
  // A client without the server key cannot complete the handshake: it gets no reply at all.
  Client plain(endpoint, client_options(0.3));
  EXPECT_THROW(plain.hello(), Error);
}

// A model directory for the load_model tests: a FIFO, a directory, a file that is not a GGUF, and
// a symlink out of the directory.
class ModelDir {
 public:
  ModelDir() {
    std::string dir_template_s = (std::filesystem::temp_directory_path() / "decodelabd-models-XXXXXX").string();
    char* dir_template = dir_template_s.data();
    dir_ = mkdtemp(dir_template);
    EXPECT_EQ(mkfifo((dir_ + "/fifo.gguf").c_str(), 0600), 0);
    std::filesystem::create_directory(dir_ + "/sub.gguf");
    std::FILE* f = std::fopen((dir_ + "/junk.gguf").c_str(), "w");
    std::fputs("not a gguf file", f);
    std::fclose(f);
    std::filesystem::create_symlink("/etc/hostname", dir_ + "/out.gguf");
  }
  ~ModelDir() { std::filesystem::remove_all(dir_); }
  const std::string& path() const { return dir_; }

 private:
  std::string dir_;
};

RemoteError load_error(Client& c, const std::string& spec) {
  try {
    c.load_model("m", spec);
  } catch (const RemoteError& e) {
    return e;
  }
  ADD_FAILURE() << spec << " loaded";
  return RemoteError("", "", "");
}

TEST(DaemonAlone, LoadModelReadsOnlyRegularFilesInsideTheModelDir) {
  ModelDir models;
  Daemon d({"--workers", "1", "--model-dir", models.path()});
  Client c(d.endpoint(), client_options(5.0));
  // A FIFO used to block the only worker in open() for good.
  for (const std::string& spec : std::vector<std::string>{"gguf(path=fifo.gguf)", "fifo.gguf",
                                                          models.path() + "/fifo.gguf", "gguf(path=sub.gguf)"}) {
    const RemoteError e = load_error(c, spec);
    EXPECT_EQ(e.code(), "invalid_argument") << e.what();
    EXPECT_EQ(e.field(), "spec") << e.what();
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
  // Outside the directory: the same answer whether or not the file exists.
  for (const std::string spec : {"gguf(path=/etc/passwd)", "gguf(path=/no/such/file.gguf)", "gguf(path=../x.gguf)",
                                 "gguf(path=sub.gguf/../../etc/passwd)", "out.gguf"}) {
    const RemoteError e = load_error(c, spec);
    EXPECT_EQ(e.code(), "invalid_argument") << e.what();
    EXPECT_EQ(e.field(), "spec") << e.what();
    EXPECT_NE(std::string(e.what()).find("outside the daemon's model directory"), std::string::npos) << e.what();
  }
  // Inside: a missing file is not_found; a file that is not a GGUF is read and refused by the loader,
  // its error naming the path the client gave.
  EXPECT_EQ(load_error(c, "gguf(path=none.gguf)").code(), "not_found");
  const RemoteError junk = load_error(c, "junk.gguf");
  EXPECT_EQ(junk.field(), "spec") << junk.what();
  EXPECT_NE(std::string(junk.what()).find("junk.gguf"), std::string::npos) << junk.what();
  EXPECT_EQ(std::string(junk.what()).find("decodelabd-load-"), std::string::npos) << junk.what();
  // Analytic models need no file; the worker is still free.
  EXPECT_EQ(c.load_model("t2", kTarget).get("model")->get("vocab_size")->as_int(), 32);
  EXPECT_EQ(c.generate(sample_request(1, 4)).tokens.size(), 4u);
}

TEST(DaemonAlone, ModelDirSlashAllowsAnyFile) {
  Daemon d({"--model-dir", "/"});
  Client c(d.endpoint(), client_options(5.0));
  const RemoteError e = load_error(c, "gguf(path=/etc/hostname)");
  EXPECT_EQ(e.field(), "spec");
  EXPECT_EQ(std::string(e.what()).find("outside"), std::string::npos) << e.what();  // read, and not a GGUF
}

TEST(DaemonAlone, LoadModelOfARealFileInTheModelDir) {
  const char* env = std::getenv("DECODELAB_MODELS");
  const std::string dir =
      env && *env ? env : std::string(std::getenv("HOME") ? std::getenv("HOME") : "") + "/.cache/decodelab/models";
  const std::string file = "SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(dir + "/" + file)) GTEST_SKIP() << "no " << file << " in " << dir;
  Daemon d({"--model-dir", dir});
  Client c(d.endpoint(), client_options(60.0));
  const Value model = c.load_model("real", file).get("model")->as_map();
  Value m(model);
  EXPECT_EQ(m.get("spec")->as_string(), file);
  EXPECT_EQ(m.get("model")->as_string(), file);  // named after the client's file, not the private link
  GenerateOptions g;
  g.models = {{"target", "real"}};
  g.prompt = "The capital of France is";
  g.max_tokens = 3;
  EXPECT_EQ(c.generate(g).tokens.size(), 3u);
}

std::pair<std::string, std::string> curve_keypair() {
  char public_key[41], secret_key[41];
  EXPECT_EQ(zmq_curve_keypair(public_key, secret_key), 0);
  return {public_key, secret_key};
}

// A file in a private temporary directory, removed with it.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    std::string dir_template_s = (std::filesystem::temp_directory_path() / "decodelabd-file-XXXXXX").string();
    char* dir_template = dir_template_s.data();
    dir_ = mkdtemp(dir_template);
    path_ = dir_ + "/f";
    std::FILE* f = std::fopen(path_.c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
  }
  ~TempFile() { std::filesystem::remove_all(dir_); }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
};

TEST(DaemonAlone, CurveAdmitsOnlyListedClients) {
  if (!zmq_has("curve")) GTEST_SKIP() << "libzmq without CURVE";
  const auto [server_public, server_secret] = curve_keypair();
  const auto [allowed_public, allowed_secret] = curve_keypair();
  const auto [other_public, other_secret] = curve_keypair();
  TempFile clients("# who may connect\n" + allowed_public + "\n\n");
  TempFile server_key(server_secret + "\n");
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(40000 + (getpid() * 5 + 11) % 20000);
  Daemon d({"--bind", endpoint, "--curve-secret-file", server_key.path(), "--curve-clients", clients.path()});
  client::ClientOptions listed = client_options(10.0, {}, server_public);
  listed.curve_public_key = allowed_public;
  listed.curve_secret_key = allowed_secret;
  Client c(endpoint, listed);
  const Value hello = c.hello();
  EXPECT_TRUE(hello.get("auth_required")->as_bool());
  EXPECT_EQ(c.generate(sample_request(1, 4)).tokens.size(), 4u);
  // Knowing the server's key is not enough: an unlisted client's handshake is refused.
  client::ClientOptions unlisted = client_options(0.5, {}, server_public);
  unlisted.curve_public_key = other_public;
  unlisted.curve_secret_key = other_secret;
  Client stranger(endpoint, unlisted);
  EXPECT_THROW(stranger.hello(), Error);
  Client fresh(endpoint, client_options(0.5, {}, server_public));
  EXPECT_THROW(fresh.hello(), Error);
  EXPECT_EQ(c.hello().get("protocol")->as_int(), daemon::kProtocolVersion);
  // The server's secret key stays out of the process list.
  std::ifstream cmdline("/proc/" + std::to_string(d.pid()) + "/cmdline");
  const std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  EXPECT_EQ(args.find(server_secret), std::string::npos);
}

TEST(DaemonAlone, AuthRequiredIsReportedTruthfully) {
  if (!zmq_has("curve")) GTEST_SKIP() << "libzmq without CURVE";
  const auto [server_public, server_secret] = curve_keypair();
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(40000 + (getpid() * 5 + 13) % 20000);
  {
    // Encryption only: any client with the server key gets in, so nothing is required of it.
    Daemon d({"--bind", endpoint, "--curve-secret-key", server_secret});
    Client c(endpoint, client_options(10.0, {}, server_public));
    EXPECT_FALSE(c.hello().get("auth_required")->as_bool());
  }
  {
    Daemon d;
    Client c(d.endpoint(), client_options(10.0));
    EXPECT_FALSE(c.hello().get("auth_required")->as_bool());
  }
}

TEST(DaemonAlone, TheSecretIsCheckedBeforeAnythingElse) {
  TempFile secret("s3cret\n");
  Daemon d({"--secret-file", secret.path(), "--max-message-bytes", "4096"});
  RawClient raw(d.endpoint());
  // Without the secret, an unknown op, a bad field, an unknown field or an oversized message all
  // get the same answer, so a client without the secret learns nothing.
  Value::Map big = with_id(5, "hello", {});
  big.emplace_back("pad", std::string(5000, 'a'));
  for (const Value::Map& request :
       {with_id(1, "teleport", {}), with_id(2, "generate", {{"max_tokens", "x"}}), with_id(3, "hello", {{"bogus", 1}}),
        with_id(4, "load_model", {{"name", "x"}, {"spec", "/etc/passwd"}}), big}) {
    raw.send(request);
    const Value reply = raw.receive();
    EXPECT_EQ(reply.get("code")->as_string(), "unauthorized") << describe(reply);
    EXPECT_EQ(reply.get("id")->as_int(), request[0].second.as_int());
  }
  // With it, the same requests get their real errors.
  Value::Map teleport = with_id(6, "teleport", {{"auth", "s3cret"}});
  raw.send(teleport);
  EXPECT_EQ(raw.receive().get("code")->as_string(), "not_found");
  Client c(d.endpoint(), client_options(10.0, "s3cret"));
  EXPECT_TRUE(c.hello().get("auth_required")->as_bool());
  std::ifstream cmdline("/proc/" + std::to_string(d.pid()) + "/cmdline");
  const std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  EXPECT_EQ(args.find("s3cret"), std::string::npos);
}

TEST(DaemonAlone, RemoteEndpointsNeedAuthenticatedClients) {
  if (!zmq_has("curve")) GTEST_SKIP() << "libzmq without CURVE";
  const auto [server_public, server_secret] = curve_keypair();
  // CURVE without an allow-list encrypts, but admits anyone who knows the (public) server key.
  // Quoted for the shell: Z85 keys may hold < > & and the like (never a single quote).
  const auto [status, output] =
      run_decodelabd("--bind tcp://0.0.0.0:0 --allow-remote --curve-secret-key '" + server_secret + "'");
  EXPECT_EQ(status, 2) << output;
  EXPECT_NE(output.find("--curve-clients"), std::string::npos) << output;
}

TEST(DaemonAlone, RefusesNonLoopbackTcpWithoutASecret) {
  Daemon d({"--bind", "tcp://0.0.0.0:0", "--allow-remote"});
  EXPECT_EQ(d.wait_exit(), 2);
}

}  // namespace
}  // namespace decodelab
