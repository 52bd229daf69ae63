// Constraints: exact answers on hand-checked texts, and incremental answers (allows() on a state
// grown token by token) equal from-scratch answers (viable_text on the whole text) on random
// token sequences.
#include <gtest/gtest.h>

#include "decodelab/error.hpp"
#include "decodelab/philox.hpp"
#include "decodelab/table_model.hpp"
#include "samplers/constraints/constraint.hpp"
#include "samplers/constraints/json_recognizer.hpp"

namespace decodelab {
namespace {

const std::vector<std::string> kTexts = {"{",    "}",  "[",  "]", "\"", "a", "1",  "0",   ",",      ":",    " ",
                                         "true", "nu", "ll", ".", "e",  "-", "\\", "ab1", "\"a\":", "<eos>"};
constexpr TokenId kEos = 20;

std::shared_ptr<TableModel> text_model() {
  auto m = TableModel::random(int(kTexts.size()), 1, 7, 1.0, kEos);
  m->set_token_texts(kTexts);
  return m;
}

bool json_viable(std::string_view s) {
  JsonRecognizer r;
  return r.feed(s);
}
bool json_complete(std::string_view s) {
  JsonRecognizer r;
  return r.feed(s) && r.complete();
}

TEST(Json, CompleteDocuments) {
  for (const char* ok : {"{}", "[]", " 0 ", "-0.5e+3", "1E7", "\"x\\n\\u00e9\"", "true", "null",
                         "{\"a\":[1,2,{\"b\":false}]}", "[ 1 , \"a\" , null ]\n", "{ \"k\" : { } }"}) {
    EXPECT_TRUE(json_complete(ok)) << ok;
  }
  for (const char* prefix :
       {"{", "[1,", "{\"a\"", "{\"a\":", "-", "1.", "1e", "1e-", "\"abc", "\"\\u00", "tr", "[[[", "{\"a\":1,"}) {
    EXPECT_TRUE(json_viable(prefix)) << prefix;
    EXPECT_FALSE(json_complete(prefix)) << prefix;
  }
  for (const char* bad : {"}", "[1,]", "{,", "{\"a\" 1", "01", "1.e", "-a", "tru e", "{1:2}", "[1 2]", "\"\x01\"",
                          "1 2", "{\"a\":1}}", "\"\\x\"", "+1", "nul1", "[1}", "{]"}) {
    EXPECT_FALSE(json_viable(bad)) << bad;
  }
}

// Grows a random sequence from tokens the constraint allows, checking at every prefix that
// allows(t) == viable_text(text + t) for every non-eos token and allows(eos) == is_complete().
void check_incremental(const std::string& spec, uint64_t seed, int sequences, int length) {
  auto model = text_model();
  for (int s = 0; s < sequences; ++s) {
    auto c = make_constraint(spec, *model);
    PhiloxStream rng(seed, uint64_t(s));
    for (int step = 0; step < length; ++step) {
      std::vector<TokenId> allowed;
      for (TokenId t = 0; t < TokenId(kTexts.size()); ++t) {
        const bool ok = c->allows(t);
        if (t == kEos) {
          ASSERT_EQ(ok, c->is_complete()) << spec << " text '" << c->text() << "'";
        } else {
          ASSERT_EQ(ok, c->viable_text(c->text() + kTexts[std::size_t(t)]))
              << spec << " text '" << c->text() << "' + '" << kTexts[std::size_t(t)] << "'";
        }
        if (ok && t != kEos) allowed.push_back(t);
      }
      if (allowed.empty()) break;
      c->extend(allowed[std::size_t(rng.next_u32() % allowed.size())]);
      ASSERT_TRUE(c->viable_text(c->text()));
    }
  }
}

TEST(Constraints, IncrementalEqualsFromScratch) {
  check_incremental("json", 1, 200, 12);
  check_incremental("regex(pattern=\\{(\"a\":[01]+(,\"a\":[01]+)*)?\\})", 2, 200, 10);
  check_incremental("regex(pattern=(ab1|a)+1?)", 3, 100, 8);
  check_incremental("stop(text=ll,max_chars=9)", 4, 100, 10);
}

TEST(Constraints, RegexExactAnswers) {
  auto model = text_model();
  auto c = make_constraint("regex(pattern=(a|1)*0)", *model);
  EXPECT_TRUE(c->allows(5));      // "a"
  EXPECT_TRUE(c->allows(7));      // "0" completes
  EXPECT_FALSE(c->allows(0));     // "{"
  EXPECT_FALSE(c->allows(18));    // "ab1": 'b' cannot appear
  EXPECT_FALSE(c->allows(kEos));  // "" is not a match
}

TEST(Constraints, RegexRejectsAndCompletes) {
  auto model = text_model();
  auto c = make_constraint("regex(pattern=(a|1)*0)", *model);
  EXPECT_THROW(c->extend(18), Error);  // "ab1": 'b' cannot appear
  c->extend(5);
  c->extend(6);
  EXPECT_FALSE(c->is_complete());
  c->extend(7);
  EXPECT_TRUE(c->is_complete());
  EXPECT_TRUE(c->allows(kEos));
  EXPECT_FALSE(c->allows(7));  // "a10" + "0" no longer matches: the pattern ends at the first 0
  EXPECT_EQ(c->text(), "a10");
  c->extend(kEos);
  EXPECT_FALSE(c->allows(kEos));  // nothing follows eos
}

TEST(Constraints, EvaluationsAreCountedAndSharedByClones) {
  auto model = text_model();
  auto c = make_constraint("json", *model);
  c->allows(0);
  c->allows(1);
  auto d = c->clone();
  d->allows(2);
  EXPECT_EQ(c->evaluations(), 3);
  EXPECT_EQ(d->evaluations(), 3);
  c->extend(0);
  EXPECT_EQ(d->text(), "");        // clones do not share text
  EXPECT_EQ(c->evaluations(), 3);  // extend() is not an evaluation
}

TEST(Constraints, StopAndLength) {
  auto model = text_model();
  auto c = make_constraint("stop(text=ll,max_chars=5)", *model);
  EXPECT_FALSE(c->is_complete());
  c->extend(12);                // "nu"
  EXPECT_TRUE(c->allows(13));   // "null" ends with the stop text within 5 chars
  EXPECT_FALSE(c->allows(11));  // "nutrue": 6 chars
  c->extend(13);
  EXPECT_TRUE(c->is_complete());
  EXPECT_FALSE(c->allows(5));  // nothing after the stop text
  EXPECT_TRUE(c->allows(kEos));
}

TEST(Constraints, BadSpecsAreClearErrors) {
  auto model = text_model();
  auto message = [&](const std::string& spec) {
    try {
      make_constraint(spec, *model);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("nosuch").find("unknown constraint 'nosuch'"), std::string::npos);
  EXPECT_NE(message("regex(pattern=a[)").find("does not compile"), std::string::npos);
  EXPECT_NE(message("regex(pattern=)").find("'pattern' is empty"), std::string::npos);
  EXPECT_NE(message("stop").find("give 'text' or 'max_chars'"), std::string::npos);
  EXPECT_NE(message("json(x=1)").find("x"), std::string::npos);
  EXPECT_NE(message("").find("empty constraint spec"), std::string::npos);
}

}  // namespace
}  // namespace decodelab
