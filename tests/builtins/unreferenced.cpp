// The negative control of plain_link.cpp: linked the same way but never naming
// register_builtins(), the registering files are not pulled out of the static libraries and
// their components are missing. (Only the registries' own files are linked, through the
// lookups below.)
#include <gtest/gtest.h>

#include "decodelab/decoder.hpp"
#include "decodelab/sampler.hpp"

namespace decodelab {
namespace {

TEST(WithoutRegisterBuiltins, PlainLinkingLosesTheRegistrations) {
  EXPECT_FALSE(DecoderRegistry::instance().contains("spectr"));
  EXPECT_FALSE(DecoderRegistry::instance().contains("smc"));
  EXPECT_FALSE(SamplerRegistry::instance().contains("top_w"));
}

}  // namespace
}  // namespace decodelab
