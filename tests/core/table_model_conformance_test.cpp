// The LanguageModel conformance suite (tests/support/language_model_conformance.hpp) on analytic
// table models. Their logits are a pure function of the last `order` tokens, computed the same way
// whatever the batch, tree or cache state, so every comparison is bit for bit.
#include <memory>

#include "decodelab/table_model.hpp"
#include "tests/support/language_model_conformance.hpp"

namespace decodelab::testing {
namespace {

ConformanceCase table_case(std::string name, std::function<std::shared_ptr<LanguageModel>()> make) {
  return ConformanceCase{std::move(name), std::move(make), Agreement{}, Agreement{}, Agreement{}};
}

INSTANTIATE_TEST_SUITE_P(
    Table, LanguageModelConformance,
    ::testing::Values(table_case("random_order3", [] { return TableModel::random(40, 3, 7, 1.5); }),
                      // Order 0: every context gives the same logits.
                      table_case("random_order0", [] { return TableModel::random(12, 0, 8, 2.0); }),
                      // Order 9: longer than most contexts in the suite, so they are never cut.
                      table_case("random_order9", [] { return TableModel::random(16, 9, 9, 1.0); }),
                      table_case("derived_draft",
                                 [] {
                                   return TableModel::derive_draft(*TableModel::random(24, 2, 10, 2.0), 1.3, 0.2, 11);
                                 }),
                      // Zero probabilities: -inf logits must compare equal too.
                      table_case("explicit_with_zeros",
                                 [] {
                                   return TableModel::from_table(8, 1, {{{3}, {0.5f, 0.5f, 0, 0, 0, 0, 0, 0}}},
                                                                 {0.1f, 0.2f, 0.3f, 0.4f, 0, 0, 0.5f, 0.5f});
                                 })),
    conformance_case_name);

}  // namespace
}  // namespace decodelab::testing
