// table(file=...): the JSON table loader, its lookups and each of its errors.
#include "core/table_file.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/json.hpp"
#include "decodelab/error.hpp"
#include "decodelab/model_factory.hpp"

namespace decodelab {
namespace {

const char* const kTable = R"({
  "vocab": 3,
  "tokens": ["x", "y", "z"],
  "eos": 2,
  "order": 2,
  "contexts": [
    {"context": [], "probs": [0.5, 0.5, 0]},
    {"context": [0], "probs": [0.25, 0.25, 0.5]},
    {"context": ["x", "y"], "probs": [0, 1, 0]}
  ],
  "default": [0.2, 0.3, 0.5]
})";

std::vector<float> probs_after(const TableModel& m, std::vector<TokenId> context) { return m.exact_probs(context); }

void expect_law(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << "token " << i;
}

TEST(TableFile, RowsAreLookedUpByTheLastOrderTokensWithTheDefaultElsewhere) {
  auto m = parse_table_json(kTable, "t.json");
  EXPECT_EQ(m->vocab_size(), 3);
  EXPECT_EQ(m->order(), 2);
  EXPECT_EQ(m->info().eos, 2);
  EXPECT_EQ(m->info().name, "table(file=t.json)");
  EXPECT_EQ(m->token_text(1), "y");
  expect_law(probs_after(*m, {}), {0.5, 0.5, 0});
  expect_law(probs_after(*m, {0}), {0.25, 0.25, 0.5});   // a short context matches at the start only
  expect_law(probs_after(*m, {0, 1}), {0, 1, 0});        // token texts in a context
  expect_law(probs_after(*m, {2, 0, 1}), {0, 1, 0});     // only the last `order` tokens matter
  expect_law(probs_after(*m, {1, 0}), {0.2, 0.3, 0.5});  // no row: the default
  expect_law(probs_after(*m, {1}), {0.2, 0.3, 0.5});
  EXPECT_EQ(m->tokenize("x y", false), (std::vector<TokenId>{0, 1}));
}

TEST(TableFile, ZeroProbabilitiesAreExcludedTokens) {
  auto m = parse_table_json(kTable, "t.json");
  const std::vector<float> logits = m->exact_logits(std::vector<TokenId>{});
  EXPECT_TRUE(std::isinf(logits[2]) && logits[2] < 0);
}

TEST(TableFile, OrderDefaultsToTheLongestContextAndUniformAndErrorDefaults) {
  auto m = parse_table_json(R"({"vocab": 2, "contexts": [{"context": [1, 1, 0], "probs": [1, 0]}],
                                "default": "uniform"})",
                            "u.json");
  EXPECT_EQ(m->order(), 3);
  expect_law(probs_after(*m, {1, 1, 0}), {1, 0});
  expect_law(probs_after(*m, {0}), {0.5, 0.5});

  auto strict = parse_table_json(R"({"vocab": 2, "order": 1, "contexts": [{"context": [], "probs": [0.5, 0.5]}],
                                     "default": "error"})",
                                 "e.json");
  expect_law(probs_after(*strict, {}), {0.5, 0.5});
  try {
    probs_after(*strict, {1});
    FAIL() << "no row and default \"error\" must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::not_found);
    EXPECT_NE(std::string(e.what()).find("no row for the context [1]"), std::string::npos) << e.what();
  }
}

// Each bad file gives an error of `code` whose message contains `needle`.
void expect_error(const std::string& text, ErrorCode code, const std::string& needle) {
  try {
    parse_table_json(text, "bad.json");
    ADD_FAILURE() << "accepted: " << text;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << "message: " << e.what();
  }
}

TEST(TableFile, EveryProblemIsNamedWithItsPlace) {
  const std::string ok_rows = R"("contexts": [{"context": [], "probs": [0.5, 0.5]}])";
  // JSON that does not parse: bad_format with line and column.
  expect_error("{\"vocab\": 2,\n \"contexts\": [}", ErrorCode::bad_format, "line 2, column 15");
  expect_error("", ErrorCode::bad_format, "unexpected end");
  expect_error(R"({"vocab": 2, "vocab": 3})", ErrorCode::bad_format, "given twice");
  expect_error("[1, 2]", ErrorCode::invalid_argument, "must hold a JSON object");
  // Missing and unknown keys.
  expect_error(R"({"contexts": [], "default": "uniform"})", ErrorCode::invalid_argument, "\"vocab\"");
  expect_error(R"({"vocab": 2, "default": "uniform"})", ErrorCode::invalid_argument, "\"contexts\"");
  expect_error(R"({"vocab": 2, )" + ok_rows + "}", ErrorCode::invalid_argument, "\"default\"");
  expect_error(R"({"vocab": 2, "defualt": "uniform", )" + ok_rows + "}", ErrorCode::invalid_argument,
               "unknown key \"defualt\"");
  // Probabilities: wrong length, negative, not summing to 1, not numbers.
  expect_error(R"({"vocab": 3, "default": "uniform", )" + ok_rows + "}", ErrorCode::invalid_argument,
               "contexts[0].probs has 2 probabilities for a vocabulary of 3");
  expect_error(R"({"vocab": 2, "default": "uniform", "contexts": [{"context": [], "probs": [1.5, -0.5]}]})",
               ErrorCode::invalid_argument, "greater than 1");
  expect_error(R"({"vocab": 2, "default": "uniform", "contexts": [{"context": [], "probs": [0.5, -0.5]}]})",
               ErrorCode::invalid_argument, "contexts[0].probs[1] is negative");
  expect_error(R"({"vocab": 2, "default": "uniform", "contexts": [{"context": [], "probs": [0.5, 0.4]}]})",
               ErrorCode::invalid_argument, "sums to 0.9, not 1");
  expect_error(R"({"vocab": 2, "default": [0.7, 0.7], )" + ok_rows + "}", ErrorCode::invalid_argument,
               "\"default\" sums to 1.4");
  expect_error(R"({"vocab": 2, "default": "uniform", "contexts": [{"context": [], "probs": [0.5, "a"]}]})",
               ErrorCode::invalid_argument, "probs[1] must be a number");
  expect_error(R"({"vocab": 2, "default": "sometimes", )" + ok_rows + "}", ErrorCode::invalid_argument,
               "\"uniform\" or \"error\"");
  // Contexts: out of range, unknown text, too long for the order, repeated.
  expect_error(R"({"vocab": 2, "default": "uniform", "contexts": [{"context": [2], "probs": [0.5, 0.5]}]})",
               ErrorCode::invalid_argument, "contexts[0].context[0] is 2, outside [0, 1]");
  expect_error(R"({"vocab": 2, "tokens": ["a", "b"], "default": "uniform",
                   "contexts": [{"context": ["c"], "probs": [0.5, 0.5]}]})",
               ErrorCode::invalid_argument, "no token has the text \"c\"");
  expect_error(R"({"vocab": 2, "order": 0, "default": "uniform",
                   "contexts": [{"context": [1], "probs": [0.5, 0.5]}]})",
               ErrorCode::invalid_argument, "\"order\" is 0 but a context has 1 tokens");
  expect_error(R"({"vocab": 2, "default": "uniform", "contexts": [{"context": [1], "probs": [0.5, 0.5]},
                   {"context": [1], "probs": [1, 0]}]})",
               ErrorCode::invalid_argument, "contexts[1]: this context has an earlier row");
  // Vocabulary, tokens and eos.
  expect_error(R"({"vocab": 1.5, "default": "uniform", "contexts": []})", ErrorCode::invalid_argument,
               "\"vocab\" must be an integer");
  expect_error(R"({"vocab": 2, "tokens": ["a", "a"], "default": "uniform", "contexts": []})",
               ErrorCode::invalid_argument, "tokens[1] repeats tokens[0]");
  expect_error(R"({"vocab": 2, "eos": 5, "default": "uniform", "contexts": []})", ErrorCode::invalid_argument,
               "\"eos\" is 5, outside [0, 1]");
}

TEST(TableFile, LoadsThroughTheModelSpecAndRejectsMissingFilesAndMixedParameters) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "decodelab_table_file_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "t.json").string();
  std::ofstream(path) << kTable;
  auto model = load_model("table(file=" + path + ")");
  EXPECT_EQ(model->vocab_size(), 3);
  EXPECT_EQ(model->info().name, "table(file=t.json)");

  try {
    load_model("table(file=" + (dir / "missing.json").string() + ")");
    FAIL() << "a missing file must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::not_found);
    EXPECT_NE(std::string(e.what()).find("missing.json"), std::string::npos) << e.what();
  }
  try {
    load_model("table(file=" + dir.string() + ")");
    FAIL() << "a directory must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
  try {
    load_model("table(file=" + path + ",vocab=3)");
    FAIL() << "file= with vocab= must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("file= excludes vocab="), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(Json, ParsesValuesWithPositionsAndEscapes) {
  const JsonValue v = parse_json("{\"a\": [1, -2.5e1, true, null],\n \"b\": \"q\\\"\\u00e9\\ud83d\\ude00\"}", "doc");
  ASSERT_EQ(v.kind, JsonValue::Kind::object);
  const JsonValue* a = v.find("a");
  ASSERT_TRUE(a && a->items.size() == 4);
  EXPECT_EQ(a->items[1].number, -25.0);
  EXPECT_TRUE(a->items[2].boolean);
  EXPECT_EQ(a->items[3].kind, JsonValue::Kind::null);
  const JsonValue* b = v.find("b");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->string, "q\"\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(b->where(), "line 2, column 7");
  for (const char* bad : {"[1,]", "{\"a\" 1}", "01", "1.", "\"\\x\"", "[1] 2", "\"abc", "nul"}) {
    EXPECT_THROW(parse_json(bad, "doc"), Error) << bad;
  }
  EXPECT_THROW(parse_json(std::string(100, '['), "doc"), Error);  // depth bound, not a stack overflow
}

}  // namespace
}  // namespace decodelab
