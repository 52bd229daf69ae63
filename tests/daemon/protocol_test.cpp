// Request decoding: every malformed input is a ProtocolError naming the field at fault.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include "daemon/generation.hpp"
#include "daemon/protocol.hpp"

namespace decodelab::daemon {
namespace {

std::string packed(const Value& v) { return pack(v); }

ProtocolError decode_error(std::string_view bytes, const DecodeLimits& limits = {}) {
  try {
    decode_request(bytes, limits);
  } catch (const ProtocolError& e) {
    return e;
  }
  ADD_FAILURE() << "request decoded without error";
  return ProtocolError("", "", "");
}

Value::Map generate(Value::Map extra) {
  Value::Map m{{"id", 7}, {"op", "generate"}, {"models", Value::Map{{"target", "t"}}}, {"prompt", "a b"}};
  for (auto& f : extra) m.push_back(std::move(f));
  return m;
}

TEST(Protocol, DecodesAGenerateRequest) {
  const Request r = decode_request(packed(generate({{"seed", 5},
                                                    {"max_tokens", 9},
                                                    {"stream", true},
                                                    {"params", Value::Map{{"top_k", 3}, {"temperature", 0.5}}},
                                                    {"stop", Value::Array{"x"}},
                                                    {"stop_token_ids", Value::Array{4}}})),
                                   {});
  EXPECT_EQ(r.id, 7u);
  EXPECT_EQ(r.op, "generate");
  const auto& g = std::get<GenerateRequest>(r.body);
  EXPECT_EQ(g.models.at("target"), "t");
  EXPECT_EQ(*g.prompt_text, "a b");
  EXPECT_EQ(g.seed, 5u);
  EXPECT_EQ(g.max_tokens, 9);
  EXPECT_TRUE(g.stream);
  EXPECT_EQ(std::get<int64_t>(g.params.at("top_k")), 3);
  EXPECT_DOUBLE_EQ(std::get<double>(g.params.at("temperature")), 0.5);
  EXPECT_EQ(g.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(g.stop_token_ids, std::vector<TokenId>{4});
}

TEST(Protocol, EveryOpOfTheTableDecodesAndUnknownOpsListThemAll) {
  const std::vector<std::string> names = op_names();
  ASSERT_EQ(names.size(), kOpCount);
  for (const std::string& name : names) {
    // A bare {id, op} either decodes (ops without fields) or fails on a field of the op itself.
    try {
      const Request r = decode_request(packed(Value::Map{{"id", 1}, {"op", name}}), {});
      EXPECT_EQ(r.op, name);
    } catch (const ProtocolError& e) {
      EXPECT_NE(e.field(), "op") << name << ": " << e.what();
      EXPECT_EQ(e.code(), "invalid_argument") << name << ": " << e.what();
    }
  }
  const auto e = decode_error(packed(Value::Map{{"id", 1}, {"op", "fly"}}));
  for (const std::string& name : names) EXPECT_NE(std::string(e.what()).find(" " + name), std::string::npos) << name;
  // Each row decodes into its own struct.
  std::size_t index = 0;
  for_each_op([&](const auto& row) {
    using Body = typename std::decay_t<decltype(row)>::Request;
    EXPECT_EQ(RequestBody(Body{}).index(), index++) << row.name;
  });
}

TEST(Protocol, HelloFeaturesComeFromTheTable) {
  const std::vector<std::string> features = op_features();
  for (const char* f : {"stream", "cancel", "deadline", "logprobs", "stop_strings", "heartbeat", "client_reward"}) {
    EXPECT_NE(std::find(features.begin(), features.end(), f), features.end()) << f;
  }
  std::set<std::string> unique(features.begin(), features.end());
  EXPECT_EQ(unique.size(), features.size());
}

TEST(Protocol, TheProtocolDocHasAHeadingPerOp) {
  std::ifstream doc(std::string(DECODELAB_SOURCE_DIR) + "/docs/protocol.md");
  ASSERT_TRUE(doc) << "docs/protocol.md not found";
  std::set<std::string> documented;
  for (std::string line; std::getline(doc, line);) {
    if (line.rfind("### ", 0) != 0) continue;
    std::string word;
    for (char c : line.substr(4) + " ") {
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
        word += c;
      } else {
        if (!word.empty()) documented.insert(word);
        word.clear();
      }
    }
  }
  for (const std::string& name : op_names())
    EXPECT_TRUE(documented.count(name)) << "docs/protocol.md has no heading for op " << name;
}

TEST(Protocol, MalformedMessagesAreBadFormat) {
  EXPECT_EQ(decode_error("\xc1").code(), "bad_format");
  EXPECT_EQ(decode_error("").code(), "bad_format");
  EXPECT_EQ(decode_error(std::string("\x92\x01", 2)).code(), "bad_format");  // truncated array
  EXPECT_EQ(decode_error(packed(Value::Map{{"id", 1}, {"op", "hello"}}) + "x").code(), "bad_format");  // trailing
  EXPECT_EQ(decode_error(packed(Value::Array{1, 2})).field(), "request");
}

TEST(Protocol, FieldsAreTypeChecked) {
  auto e = decode_error(packed(generate({{"max_tokens", "many"}})));
  EXPECT_EQ(e.code(), "invalid_argument");
  EXPECT_EQ(e.field(), "max_tokens");
  EXPECT_EQ(decode_error(packed(generate({{"seed", -1}}))).field(), "seed");
  EXPECT_EQ(decode_error(packed(generate({{"stream", 1}}))).field(), "stream");
  EXPECT_EQ(decode_error(packed(generate({{"stop", Value::Array{3}}}))).field(), "stop[0]");
  EXPECT_EQ(decode_error(packed(generate({{"params", Value::Map{{"k", Value::Array{}}}}}))).field(), "params.k");
  EXPECT_EQ(decode_error(packed(generate({{"max_tokens", -3}}))).field(), "max_tokens");
  EXPECT_EQ(decode_error(packed(generate({{"deadline_s", -1.0}}))).field(), "deadline_s");
  EXPECT_EQ(decode_error(packed(Value::Map{{"id", "x"}, {"op", "hello"}})).field(), "id");
}

TEST(Protocol, MissingUnknownAndDuplicateFields) {
  EXPECT_EQ(decode_error(packed(Value::Map{{"op", "hello"}})).field(), "id");
  EXPECT_EQ(decode_error(packed(Value::Map{{"id", 1}})).field(), "op");
  auto e = decode_error(packed(Value::Map{{"id", 1}, {"op", "fly"}}));
  EXPECT_EQ(e.code(), "not_found");
  EXPECT_EQ(e.field(), "op");
  EXPECT_EQ(decode_error(packed(generate({{"max_token", 3}}))).field(), "max_token");
  EXPECT_EQ(decode_error(packed(Value::Map{{"id", 1}, {"op", "generate"}, {"prompt", "a"}})).field(), "models");
  EXPECT_EQ(decode_error(packed(Value::Map{{"id", 1}, {"op", "generate"}, {"models", Value::Map{}}, {"prompt", "a"}}))
                .field(),
            "models.target");
  EXPECT_EQ(decode_error(packed(generate({{"prompt_ids", Value::Array{1}}}))).field(), "prompt");
  EXPECT_EQ(decode_error(packed(Value::Map{{"id", 1},
                                           {"op", "generate"},
                                           {"models", Value::Map{{"target", "t"}}},
                                           {"prompt_ids", Value::Array{1, -2}}}))
                .field(),
            "prompt_ids[1]");
  EXPECT_EQ(decode_error(packed(Value::Map{{"id", 1}, {"op", "hello"}, {"id", 2}})).field(), "id");
}

TEST(Protocol, SizeAndNestingLimits) {
  DecodeLimits limits;
  limits.max_message_bytes = 64;
  const auto e = decode_error(packed(generate({{"prompt_pad", std::string(100, 'a')}})), limits);
  EXPECT_EQ(e.code(), "too_large");
  // Deep nesting is refused before it is built.
  std::string deep(100, '\x91');
  deep += '\x01';
  EXPECT_EQ(decode_error(deep).code(), "bad_format");
  limits = {};
  limits.max_tokens = 10;
  EXPECT_EQ(decode_error(packed(generate({{"max_tokens", 11}})), limits).field(), "max_tokens");
}

TEST(Protocol, RepliesRoundTrip) {
  const Value v = unpack(pack(error_reply(3, "busy", "full", "")));
  EXPECT_EQ(v.get("id")->as_int(), 3);
  EXPECT_EQ(v.get("code")->as_string(), "busy");
  EXPECT_THROW(unpack("\xc1"), Error);
}

TEST(Protocol, Utf8Handling) {
  EXPECT_EQ(sanitize_utf8("ok \xc3\xa9"), "ok \xc3\xa9");
  EXPECT_EQ(sanitize_utf8("a\xff"
                          "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(sanitize_utf8("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(complete_utf8_prefix("ab\xe2\x82"), 2u);                 // euro sign cut after 2 bytes
  EXPECT_EQ(complete_utf8_prefix("ab\xe2\x82\xac"), 5u);
  EXPECT_EQ(complete_utf8_prefix("abc"), 3u);
}

TEST(Protocol, PackReplyMakesEveryStringValidUtf8) {
  const Value reply =
      Value::Map{{"a\xff", Value::Array{"b\xc3", "ok \xc3\xa9"}}, {"c", Value::Map{{"d", "\xed\xa0\x80"}}}};
  const Value back = unpack(pack_reply(reply));
  const auto& m = back.as_map();
  EXPECT_EQ(m[0].first, "a\xEF\xBF\xBD");
  EXPECT_EQ(m[0].second.as_array()[0].as_string(), "b\xEF\xBF\xBD");
  EXPECT_EQ(m[0].second.as_array()[1].as_string(), "ok \xc3\xa9");
  EXPECT_TRUE(is_valid_utf8(m[1].second.get("d")->as_string()));
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));                // a surrogate
  EXPECT_EQ(unpack(pack(reply)).as_map()[0].first, "a\xff");  // pack() keeps bytes (client requests)
}

TEST(Protocol, PromptMustFitTheContext) {
  ModelInfo info;
  info.name = "m";
  info.context_length = 8;
  EXPECT_NO_THROW(check_prompt_fits(info, 7, "prompt"));
  try {
    check_prompt_fits(info, 8, "prompt");
    FAIL();
  } catch (const ProtocolError& e) {
    EXPECT_EQ(e.field(), "prompt");
    EXPECT_NE(std::string(e.what()).find("context of 8"), std::string::npos);
  }
  EXPECT_THROW(check_prompt_fits(info, 0, "prompt_ids"), ProtocolError);
  info.context_length = 0;
  EXPECT_NO_THROW(check_prompt_fits(info, 100000, "prompt"));
}

}  // namespace
}  // namespace decodelab::daemon
