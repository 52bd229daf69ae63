#include "core/params.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

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

}  // namespace
}  // namespace decodelab
