#include "decodelab/params.hpp"

#include <gtest/gtest.h>

#include <functional>

#include "decodelab/error.hpp"

namespace decodelab {
namespace {

const std::vector<ParamSpec> kSpecs{
    ParamSpec::integer("k", 4, 1, 16, "drafts"),
    ParamSpec::real("temperature", 1.0, 0.0, 10.0, "temperature"),
    ParamSpec::boolean("replace", true, "with replacement"),
    ParamSpec::string("mode", "a", "mode", {"a", "b"}),
};

std::string error_of(const ParamMap& given) {
  try {
    resolve_params("decoder 'x'", kSpecs, given);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Params, DefaultsAndConversions) {
  const Params p = resolve_params("decoder 'x'", kSpecs, {{"k", std::string("8")}, {"temperature", int64_t(2)}});
  EXPECT_EQ(p.get_int("k"), 8);
  EXPECT_EQ(p.get_real("temperature"), 2.0);
  EXPECT_TRUE(p.get_bool("replace"));
  EXPECT_EQ(p.get_string("mode"), "a");
  EXPECT_FALSE(resolve_params("x", kSpecs, {{"replace", std::string("false")}}).get_bool("replace"));
}

TEST(Params, ErrorsNameTheParameter) {
  EXPECT_NE(error_of({{"k", int64_t(0)}}).find("parameter 'k' = 0 is out of range [1, 16]"), std::string::npos);
  EXPECT_NE(error_of({{"kk", int64_t(2)}}).find("unknown parameter 'kk' (did you mean 'k'?)"), std::string::npos);
  EXPECT_NE(error_of({{"k", std::string("two")}}).find("'k' must be an integer"), std::string::npos);
  EXPECT_NE(error_of({{"k", 2.5}}).find("'k' must be an integer"), std::string::npos);
  EXPECT_NE(error_of({{"temperature", std::string("nan")}}).find("out of range"), std::string::npos);
  EXPECT_NE(error_of({{"mode", std::string("c")}}).find("is not one of: a b"), std::string::npos);
  EXPECT_NE(error_of({{"replace", std::string("maybe")}}).find("must be a boolean"), std::string::npos);
}

TEST(Params, ParsingSpecs) {
  auto [name, given] = parse_spec("top_k(k=40, min_keep=2)");
  EXPECT_EQ(name, "top_k");
  EXPECT_EQ(std::get<std::string>(given.at("k")), "40");
  EXPECT_EQ(std::get<std::string>(given.at("min_keep")), "2");
  EXPECT_EQ(parse_spec("greedy").first, "greedy");
  EXPECT_EQ(parse_spec("table:vocab=3").second.size(), 1u);
  EXPECT_THROW(parse_spec("top_k(k=40"), Error);
  EXPECT_THROW(parse_assignments("k", "x"), Error);
  EXPECT_THROW(parse_assignments("k=1,k=2", "x"), Error);
}

std::string parse_error(const std::function<void()>& parse) {
  try {
    parse();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A value may be a spec or a list of specs: commas and parentheses inside balanced parentheses
// belong to the value (sampler chains given to the CLI's --param and --decoder).
TEST(Params, ValuesHoldNestedSpecs) {
  const ParamMap a = parse_assignments("chain=top_k(k=3),temperature(t=0.6), seed = 4", "--param");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(std::get<std::string>(a.at("chain")), "top_k(k=3),temperature(t=0.6)");
  EXPECT_EQ(std::get<std::string>(a.at("seed")), "4");

  auto [name, given] = parse_spec(" sample(chain=top_k(k=3),temperature(t=0.6), top_k=2) ");
  EXPECT_EQ(name, "sample");
  ASSERT_EQ(given.size(), 2u);
  EXPECT_EQ(std::get<std::string>(given.at("chain")), "top_k(k=3),temperature(t=0.6)");
  EXPECT_EQ(std::get<std::string>(given.at("top_k")), "2");

  // Nested two deep, and after ':'.
  auto deep = parse_spec("awrs(constraint=stop(text=ab,max_chars=4),chain=top_k(k=2))").second;
  EXPECT_EQ(std::get<std::string>(deep.at("constraint")), "stop(text=ab,max_chars=4)");
  EXPECT_EQ(std::get<std::string>(parse_spec("sample:chain=a(x=1),b(y=2)").second.at("chain")), "a(x=1),b(y=2)");
  EXPECT_TRUE(parse_spec("greedy()").second.empty());
  // List items without parameters continue the list too, once either side has parentheses.
  EXPECT_EQ(std::get<std::string>(parse_assignments("chain=top_k(k=40),dist", "x").at("chain")), "top_k(k=40),dist");
  EXPECT_EQ(std::get<std::string>(parse_assignments("chain=greedy,top_k(k=3)", "x").at("chain")), "greedy,top_k(k=3)");

  EXPECT_EQ(split_outside_parentheses(" a(x=1,y=2) ,, b ,c(z=(3)) ", ',', "list"),
            (std::vector<std::string_view>{"a(x=1,y=2)", "b", "c(z=(3))"}));
}

TEST(Params, UnbalancedParenthesesAreClearErrors) {
  const std::string unclosed = parse_error([] { parse_assignments("chain=top_k(k=3,temperature(t=0.6)", "--param"); });
  EXPECT_NE(unclosed.find("--param 'chain=top_k(k=3,temperature(t=0.6)': the '(' at position 11 is never closed"),
            std::string::npos)
      << unclosed;
  const std::string stray = parse_error([] { parse_assignments("chain=top_k(k=3)),t=1", "--param"); });
  EXPECT_NE(stray.find("the ')' at position 16 has no matching '('"), std::string::npos) << stray;
  EXPECT_NE(parse_error([] { parse_spec("top_k(k=40"); }).find("missing ')'"), std::string::npos);
  EXPECT_NE(parse_error([] { parse_spec("top_k)k=40("); }).find("has no matching '('"), std::string::npos);
  EXPECT_NE(parse_error([] { parse_spec("sample(chain=top_k(k=3)"); }).find("is never closed"), std::string::npos);
  try {
    parse_spec("a)(");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::bad_format);
  }
}

TEST(Params, OneSpecNotAList) {
  EXPECT_NE(parse_error([] {
              parse_spec("top_k(k=3),temperature(t=0.6)");
            }).find("unexpected ',temperature(t=0.6)' after the ')'"),
            std::string::npos);
  EXPECT_NE(parse_error([] { parse_spec("top_k(k=3)x"); }).find("unexpected 'x'"), std::string::npos);
  EXPECT_NE(parse_error([] { parse_spec("greedy,sample"); }).find("one spec, not a list"), std::string::npos);
  EXPECT_NE(parse_error([] { parse_spec("(k=3)"); }).find("no name"), std::string::npos);
  // A part that is neither name=value nor the continuation of a spec list.
  EXPECT_NE(
      parse_error([] { parse_assignments("k=1,oops", "--param"); }).find("--param: expected name=value, got 'oops'"),
      std::string::npos);
  EXPECT_NE(parse_error([] { parse_assignments("k=1, =2", "--param"); }).find("expected name=value, got '=2'"),
            std::string::npos);
  // A spec where an assignment belongs.
  EXPECT_NE(parse_error([] {
              parse_assignments("top_k(k=3)", "--param");
            }).find("--param: expected name=value, got 'top_k(k=3)'"),
            std::string::npos);
}

}  // namespace
}  // namespace decodelab
