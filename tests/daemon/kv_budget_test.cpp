// decodelabd's KV budget (daemon/kv_admission.hpp) on SmolLM2: generations that do not fit side by
// side wait for each other and then give the same tokens as alone; one that can never fit is
// refused with resource_exhausted naming the budget; a decoder wider than its reservation fails
// alone with resource_exhausted while the daemon keeps serving; status reports the figures; bad
// kv_budget_mb values are refused.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "clients/cpp/client.hpp"
#include "tests/daemon/daemon_harness.hpp"
#include "tests/model/model_paths.hpp"

namespace decodelab {
namespace {

using client::Client;
using client::RemoteError;
using client::Value;
using namespace daemon_testing;

// SmolLM2 holds 2 x 30 layers x 192 floats = 46080 bytes of keys and values per token.
constexpr double kBytesPerToken = 46080;

GenerateOptions smol_request(uint64_t seed, int64_t max_tokens, std::string decoder = "sample") {
  GenerateOptions g = sample_request(seed, max_tokens);
  g.models = {{"target", "s"}};
  g.prompt = "The capital of France is";
  g.decoder = std::move(decoder);
  g.params = {{"temperature", 0.8}};
  return g;
}

// status' kv figures of the loaded model `name`.
Value kv_of(Client& c, const std::string& name) {
  const Value status = c.status();  // the loop below reads into it
  for (const Value& m : status.get("models")->as_array()) {
    if (m.get("name")->as_string() == name) return *m.get("kv");
  }
  ADD_FAILURE() << "model " << name << " not in status";
  return Value();
}

std::string expect_error(Client& c, const GenerateOptions& g, const std::string& code) {
  try {
    c.generate(g);
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected error " << code;
  return "";
}

class KvBudget : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::model_path(testing::kSmolLM2);
    if (path_.empty()) GTEST_SKIP() << "SmolLM2 is not in the models cache (scripts/fetch-models)";
  }
  std::string path_;
};

TEST_F(KvBudget, GenerationsThatDoNotFitTogetherTakeTurnsAndEqualTheirLoneRuns) {
  // Each reservation is (prompt + 12 + 64 tree nodes) tokens, about 3.6 MiB: 5 MiB holds one.
  Daemon d({"--workers", "4", "--kv-budget-mb", "5", "--load", "s=gguf(path=" + path_ + ",threads=1)"});
  Client c(d.endpoint(), client_options(120.0));
  Value::Map fields = Client::generate_fields(smol_request(0, 12), false);
  fields.emplace_back("n", int64_t(3));
  const Value r = c.wait(c.send("generate", fields));
  ASSERT_EQ(r.get("type")->as_string(), "result") << describe(r);
  const Value kv = kv_of(c, "s");
  EXPECT_EQ(kv.get("budget_bytes")->as_int(), 5 << 20);
  EXPECT_EQ(kv.get("bytes_per_token")->as_int(), int64_t(kBytesPerToken));
  EXPECT_GE(kv.get("admitted_after_wait")->as_int(), 2) << "three generations fit only one at a time";
  EXPECT_EQ(kv.get("reserved_bytes")->as_int(), 0);
  EXPECT_EQ(kv.get("in_use_bytes")->as_int(), 0) << "every sequence was freed";
  for (const Value& m : r.get("results")->as_array()) {
    const auto single = c.generate(smol_request(uint64_t(m.get("seed")->as_int()), 12));
    std::vector<int64_t> tokens;
    for (const Value& t : m.get("tokens")->as_array()) tokens.push_back(t.as_int());
    EXPECT_EQ(tokens, std::vector<int64_t>(single.tokens.begin(), single.tokens.end()));
  }
}

TEST_F(KvBudget, AGenerationLargerThanTheBudgetIsRefusedAndAWideDecoderFailsAlone) {
  Daemon d({"--workers", "2", "--kv-budget-mb", "8", "--load", "s=gguf(path=" + path_ + ",threads=1)"});
  Client c(d.endpoint(), client_options(120.0));
  // 6 prompt tokens + 200 + 64 = 270 tokens, about 11.9 MiB: more than the whole budget.
  const std::string refused = expect_error(c, smol_request(1, 200), "resource_exhausted");
  EXPECT_NE(refused.find("KV budget of 8.0 MiB"), std::string::npos) << refused;
  // 32 particles hold about 6 + 32 x step rows: past 8 MiB (182 rows) within a few steps, although
  // the reservation (86 tokens) fits. The model refuses that evaluation; the daemon goes on.
  GenerateOptions smc = smol_request(2, 16, "smc");
  smc.params = {{"particles", int64_t(32)}};
  const std::string wide = expect_error(c, smc, "resource_exhausted");
  EXPECT_NE(wide.find("KV budget"), std::string::npos) << wide;
  const auto after = c.generate(smol_request(3, 8));
  EXPECT_EQ(after.tokens.size(), 8u);
  const Value kv = kv_of(c, "s");
  EXPECT_EQ(kv.get("refused")->as_int(), 1);
  EXPECT_EQ(kv.get("in_use_bytes")->as_int(), 0);
}

TEST(KvBudgetRequests, BadBudgetsAreRefusedAndTableModelsAdmitEverything) {
  Daemon d({"--workers", "2"});
  Client c(d.endpoint(), client_options(30.0));
  for (const Value& bad : {Value(-1.0), Value(0.0), Value("big"), Value(1e300)}) {
    try {
      c.call("load_model", {{"name", "x"}, {"spec", kTarget}, {"kv_budget_mb", bad}});
      ADD_FAILURE() << "kv_budget_mb accepted";
    } catch (const RemoteError& e) {
      EXPECT_EQ(e.field(), "kv_budget_mb") << e.what();
    }
  }
  const Value loaded = c.call("load_model", {{"name", "x"}, {"spec", kTarget}, {"kv_budget_mb", 1.0}});
  EXPECT_EQ(loaded.get("model")->get("kv")->get("bytes_per_token")->as_int(), 0);
  GenerateOptions g = sample_request(5, 4000);  // no KV: any length is admitted
  g.models = {{"target", "x"}};
  EXPECT_EQ(c.generate(g).tokens.size(), 4000u);
}

}  // namespace
}  // namespace decodelab
