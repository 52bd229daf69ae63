// traversal: Traversal Verification (Weng et al., NeurIPS 2025, arXiv 2505.12398) over the trees
// of k draft sequences of length L. The tree is verified leaf to root with sequence-level weights
// (sequence_verify.hpp): a rejected node updates its parent's residual law and weight, the
// parent's remaining children are tried with the updated weights, and a parent whose children are
// all gone is tested itself. The rule sees the prefix tree of the sequences: for i.i.d. sequences
// a node's distinct children, in order of first occurrence, are draws without replacement (the
// next new token given the ones seen is q without them, renormalized, and whether one comes does
// not depend on which), and a child's subtree holds the continuations of every sequence through
// it, so duplicates are not wasted. Exactly target-distributed for i.i.d. sequences, sequences
// whose first tokens are drawn without replacement, and deterministic (most probable) sequences;
// on one chain it is block verification.
#include "decodelab/builtins.hpp"
#include "decoders/speculative/sequence_drafters.hpp"
#include "decoders/speculative/tree_speculation.hpp"

namespace decodelab::speculative {
namespace {

const RegisterTreeSpeculation reg({
    .name = "traversal",
    .doc = "Traversal Verification: k draft sequences of length L as a tree, one target pass, leaf-to-root traversal "
           "with sequence-level acceptance and residual updates. Exactly target-distributed.",
    .params =
        {
            ParamSpec::integer("k", 2, 1, 64, "draft sequences per step"),
            ParamSpec::integer("L", 3, 1, 64, "draft length"),
            ParamSpec::boolean("replacement", true,
                               "true: i.i.d. sequences; false: first tokens drawn without replacement, in draw order"),
            deterministic_param(),
        },
    .make =
        [](const Params& p) {
          const int k = int(p.get_int("k")), length = int(p.get_int("L"));
          TreeSpeculationMethod method;
          if (draft_draw(p) == DraftDraw::most_probable) {
            method.drafter = std::make_unique<WorSequencesDrafter>(k, length, DraftDraw::most_probable);
            method.draws = DrawKind::most_probable;
          } else if (p.get_bool("replacement")) {
            method.drafter = std::make_unique<IidSequencesDrafter>(k, length);
            method.draws = DrawKind::without_replacement;  // distinct children in first-occurrence order
          } else {
            method.drafter = std::make_unique<WorSequencesDrafter>(k, length);
            method.draws = DrawKind::without_replacement;
          }
          method.sequence_rule = verify_traversal;
          return method;
        },
});

}  // namespace
}  // namespace decodelab::speculative

DECODELAB_BUILTIN(decoders_speculative_traversal)
