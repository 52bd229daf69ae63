// The CLI's file formats: flat JSON lines (prompt sets, records) and bench spec's record file,
// which a long benchmark resumes from, so a record must read back exactly as written.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "clients/cli/flat_json.hpp"
#include "clients/cli/spec_record.hpp"
#include "decodelab/error.hpp"

namespace decodelab::cli {
namespace {

TEST(FlatJson, ReadsStringsNumbersBooleansNullsAndNumberArrays) {
  const FlatObject o = parse_flat_json(
      R"( {"s":"a\"b\\c\n\u00e9\ud83d\ude00", "n":-1.5e3, "t":true, "f":false, "z":null, "a":[1, 2.5,null], "e":[]} )",
      "x:1");
  EXPECT_EQ(o.at("s").kind, FlatValue::Kind::string);
  EXPECT_EQ(o.at("s").text, "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(o.at("n").number, -1500.0);
  EXPECT_EQ(o.at("t").kind, FlatValue::Kind::boolean);
  EXPECT_EQ(o.at("t").number, 1.0);
  EXPECT_EQ(o.at("f").number, 0.0);
  EXPECT_EQ(o.at("z").kind, FlatValue::Kind::null);
  ASSERT_EQ(o.at("a").numbers.size(), 3u);
  EXPECT_EQ(o.at("a").numbers[1], 2.5);
  EXPECT_TRUE(std::isnan(o.at("a").numbers[2]));
  EXPECT_TRUE(o.at("e").numbers.empty());
  EXPECT_TRUE(parse_flat_json("{}", "x:1").empty());
}

TEST(FlatJson, BadLinesNameWhereAndWhat) {
  for (const auto& [line, what] :
       std::vector<std::pair<std::string, std::string>>{{R"({"a":{"b":1}})", "nested objects"},
                                                        {R"({"a":"x)", "unterminated string"},
                                                        {R"({"a":1,})", "expected a string"},
                                                        {R"({"a" 1})", "expected ':'"},
                                                        {R"({"a":1} x)", "text after the object"},
                                                        {R"({"a":[1,"x"]})", "expected a number"},
                                                        {R"({"a":"\q"})", "unknown escape"},
                                                        {R"({"a":"\ud800"})", "lone surrogate"},
                                                        {"", "expected '{'"}}) {
    try {
      parse_flat_json(line, "file.jsonl:7");
      ADD_FAILURE() << "accepted " << line;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::bad_format);
      EXPECT_NE(std::string(e.what()).find("file.jsonl:7"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << line << " -> " << e.what();
    }
  }
}

TEST(FlatJson, EscapedStringsReadBack) {
  const std::string raw = std::string("q\"b\\s\nt\tr\r") + char(1) + "é";
  const FlatObject o = parse_flat_json("{\"k\":\"" + json_escape(raw) + "\"}", "x:1");
  EXPECT_EQ(o.at("k").text, raw);
}

SpecRecord sample_record(const std::string& decoder, const std::string& prompt) {
  SpecRecord r;
  r.config = {"gguf(path=/m/t.gguf,threads=1)", "gguf(path=/m/d.gguf)", 32, 7};
  r.temperature = 0.6;
  r.prompt_id = prompt;
  r.prompt_index = 3;
  r.decoder = decoder;
  r.totals = {1, 32, 9, 10, 40, 37, 0, 36, 23, 1.0 / 3.0, 0.125, 0.2, 0.1, {1, 0, 2, 3, 3}};
  r.generated = {151643, 0, 42};
  r.when = "2026-12-02 01:00 UTC";
  r.load = "1.00 2.00 3.00";
  r.build = "abc1234";
  return r;
}

std::filesystem::path temp_file(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("decodelab_records_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove(p);
  return p;
}

void expect_same(const SpecRecord& a, const SpecRecord& b) {
  EXPECT_TRUE(a.config == b.config);
  EXPECT_EQ(a.temperature, b.temperature);
  EXPECT_EQ(a.prompt_id, b.prompt_id);
  EXPECT_EQ(a.prompt_index, b.prompt_index);
  EXPECT_EQ(a.decoder, b.decoder);
  const SpecTotals &x = a.totals, &y = b.totals;
  EXPECT_EQ(x.runs, y.runs);
  EXPECT_EQ(x.tokens, y.tokens);
  EXPECT_EQ(x.steps, y.steps);
  EXPECT_EQ(x.target_calls, y.target_calls);
  EXPECT_EQ(x.draft_calls, y.draft_calls);
  EXPECT_EQ(x.target_nodes, y.target_nodes);
  EXPECT_EQ(x.draft_nodes, y.draft_nodes);
  EXPECT_EQ(x.proposed, y.proposed);
  EXPECT_EQ(x.accepted, y.accepted);
  EXPECT_EQ(x.seconds, y.seconds);  // 17 digits: times round-trip exactly
  EXPECT_EQ(x.prefill, y.prefill);
  EXPECT_EQ(x.draft, y.draft);
  EXPECT_EQ(x.verify, y.verify);
  EXPECT_EQ(x.accepted_hist, y.accepted_hist);
  EXPECT_EQ(a.generated, b.generated);
  EXPECT_EQ(a.when, b.when);
  EXPECT_EQ(a.load, b.load);
  EXPECT_EQ(a.build, b.build);
}

TEST(SpecRecords, RoundTripExactly) {
  const auto path = temp_file("roundtrip");
  const SpecRecord a = sample_record("spectr(k=4,L=3)", "code \"quoted\""), b = sample_record("sample", "chat-1");
  {
    std::ofstream out(path);
    out << to_json(a) << "\n\n" << to_json(b) << "\n";
  }
  const RecordFile f = read_records(path.string());
  EXPECT_FALSE(f.torn_tail);
  EXPECT_EQ(f.intact_bytes, std::filesystem::file_size(path));
  ASSERT_EQ(f.records.size(), 2u);
  expect_same(f.records[0], a);
  expect_same(f.records[1], b);
  std::filesystem::remove(path);
}

TEST(SpecRecords, AnAbsentFileHoldsNoneAndATornLastLineIsNotARecord) {
  const auto path = temp_file("torn");
  EXPECT_TRUE(read_records(path.string()).records.empty());
  const std::string whole = to_json(sample_record("sd(L=2)", "p")) + "\n";
  {
    std::ofstream out(path);
    out << whole << whole.substr(0, whole.size() / 2);  // a run stopped mid-write
  }
  const RecordFile f = read_records(path.string());
  EXPECT_TRUE(f.torn_tail);
  EXPECT_EQ(f.intact_bytes, whole.size());
  EXPECT_EQ(f.records.size(), 1u);
  std::filesystem::remove(path);
}

TEST(SpecRecords, AMalformedRecordNamesFileLineAndField) {
  const auto path = temp_file("bad");
  std::string line = to_json(sample_record("sd(L=2)", "p"));
  line.replace(line.find("\"steps\":9"), 9, "\"steps\":-1");
  {
    std::ofstream out(path);
    out << to_json(sample_record("sd(L=3)", "p")) << "\n" << line << "\n";
  }
  try {
    read_records(path.string());
    ADD_FAILURE() << "accepted a negative step count";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path.string() + ":2"), std::string::npos) << what;
    EXPECT_NE(what.find("\"steps\""), std::string::npos) << what;
  }
  {
    std::ofstream out(path);
    out << R"({"type":"spec_run","target":"t"})"
        << "\n";
  }
  try {
    read_records(path.string());
    ADD_FAILURE() << "accepted a record without its fields";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"draft\""), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

TEST(SpecTotals, PoolsRunsAndReadsAcceptanceByDepthOffTheHistogram) {
  SpecTotals a, b;
  a.runs = b.runs = 1;
  a.tokens = 10;
  b.tokens = 6;
  a.seconds = 2.0;
  b.seconds = 2.0;
  a.prefill = 1.0;
  a.accepted_hist = {2, 1};     // 2 steps accepted 0, 1 accepted 1
  b.accepted_hist = {0, 1, 4};  // ... 4 accepted 2
  a.add(b);
  EXPECT_EQ(a.runs, 2);
  EXPECT_EQ(a.tokens, 16);
  EXPECT_EQ(a.accepted_hist, (std::vector<int64_t>{2, 2, 4}));
  EXPECT_DOUBLE_EQ(a.tok_per_s(), 4.0);
  EXPECT_DOUBLE_EQ(a.decode_tok_per_s(), 16.0 / 3.0);
  const auto depth = a.acceptance_by_depth();
  ASSERT_EQ(depth.size(), 2u);
  EXPECT_DOUBLE_EQ(depth[0], 6.0 / 8.0);  // steps with >= 1 accepted over all steps
  EXPECT_DOUBLE_EQ(depth[1], 4.0 / 6.0);  // >= 2 over >= 1
}

}  // namespace
}  // namespace decodelab::cli
