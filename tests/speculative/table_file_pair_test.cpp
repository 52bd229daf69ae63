// The example pair of explicit tables (examples/tables/target.json, draft.json): the draft gives
// zero probability to tokens the target allows (" dog" after "the", " ran" after " cat") and mass
// to tokens the target forbids ("the" after "the"). Speculative decoders over the pair must still
// produce the target's exact law: the residual draws what the draft never proposes, and every
// proposal the target forbids is rejected. The first two generated tokens are fitted against the
// exact law (chi-square + TV at false-alarm rate 1e-3, fixed seeds); the negative control fits the
// same counts against the draft's law, which the check must reject.
#include <gtest/gtest.h>

#include "core/table_file.hpp"
#include "decodelab/decoder.hpp"
#include "tests/speculative/first_tokens_fit.hpp"

namespace decodelab {
namespace {

const std::string kDir = std::string(DECODELAB_SOURCE_DIR) + "/examples/tables/";

struct Pair {
  std::shared_ptr<TableModel> target = load_table_file(kDir + "target.json");
  std::shared_ptr<TableModel> draft = load_table_file(kDir + "draft.json");
};

TEST(TableFilePair, TheDraftMissesTargetSupportAndProposesForbiddenTokens) {
  Pair m;
  const std::vector<TokenId> the{0};
  const std::vector<float> p = m.target->exact_probs(the), q = m.draft->exact_probs(the);
  EXPECT_GT(p[2], 0.0f);  // " dog": the target allows it
  EXPECT_EQ(q[2], 0.0f);  // the draft never proposes it
  EXPECT_EQ(p[0], 0.0f);  // "the": the target forbids it
  EXPECT_GT(q[0], 0.0f);  // the draft proposes it
}

TEST(TableFilePair, SpeculativeDecodersStayExactOnThePair) {
  Pair m;
  ModelSet models{{"target", m.target.get()}, {"draft", m.draft.get()}};
  const std::vector<TokenId> prompt{0};  // "the"
  const std::vector<ParamMap> configs = {
      {{"L", int64_t(2)}, {"temperature", 1.0}},
      {{"L", int64_t(3)}, {"temperature", 0.7}},
  };
  const std::vector<std::pair<std::string, ParamMap>> runs = {
      {"sd", configs[0]},
      {"sd", configs[1]},
      {"spectr", {{"k", int64_t(2)}, {"L", int64_t(2)}, {"temperature", 1.0}}},
      {"spectr", {{"k", int64_t(4)}, {"L", int64_t(1)}, {"temperature", 0.7}}},
      {"specinfer", {{"k", int64_t(3)}, {"L", int64_t(2)}, {"temperature", 1.0}}},
  };
  for (const auto& [name, params] : runs) {
    SCOPED_TRACE(name + " " + to_string(params.at("temperature")));
    auto decoder = make_decoder(name, params, &models);
    const testing::FitResult fit = testing::first_two_fit(*decoder, models, *m.target, params, prompt, 20000);
    EXPECT_TRUE(testing::fits(fit)) << fit.describe();
  }
}

TEST(TableFilePair, NegativeControlTheCheckRejectsTheDraftsLaw) {
  // The same fit with the roles swapped in the reference law: counts from the target's exact
  // decoder checked against the draft's law must fail, so the check can tell the two apart.
  Pair m;
  ModelSet models{{"target", m.target.get()}, {"draft", m.draft.get()}};
  const std::vector<TokenId> prompt{0};
  const ParamMap params{{"L", int64_t(2)}, {"temperature", 1.0}};
  auto decoder = make_decoder("sd", params, &models);
  const testing::FitResult fit = testing::first_two_fit(*decoder, models, *m.draft, params, prompt, 20000);
  EXPECT_FALSE(testing::fits(fit)) << fit.describe();
}

}  // namespace
}  // namespace decodelab
