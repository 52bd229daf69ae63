// block: block verification of one draft chain (Sun et al., "Block Verification Accelerates
// Speculative Decoding", arXiv 2403.10444). The draft samples L tokens as sd does; instead of
// accepting token by token, the chain is judged as a whole from its end backwards (see
// sequence_verify.hpp), which accepts at least as many tokens per step in expectation as sd's
// token-level rule on the same drafts and is exactly target-distributed.
#include "decodelab/builtins.hpp"
#include "decoders/speculative/sequence_drafters.hpp"
#include "decoders/speculative/tree_speculation.hpp"

namespace decodelab::speculative {
namespace {

const RegisterTreeSpeculation reg({
    .name = "block",
    .doc = "Block verification: L draft tokens from q (one chain), one target pass, sequence-level acceptance scanned "
           "from the end of the chain. Exactly target-distributed; at least sd's expected accepted length.",
    .params = {ParamSpec::integer("L", 4, 1, 64, "draft length (tokens drafted per step)"), deterministic_param()},
    .make =
        [](const Params& p) {
          const int length = int(p.get_int("L"));
          TreeSpeculationMethod method;
          if (draft_draw(p) == DraftDraw::most_probable) {
            method.drafter = std::make_unique<WorSequencesDrafter>(1, length, DraftDraw::most_probable);
            method.draws = DrawKind::most_probable;
          } else {
            method.drafter = std::make_unique<IidSequencesDrafter>(1, length);
            method.draws = DrawKind::iid;
          }
          method.sequence_rule = verify_block;
          return method;
        },
});

}  // namespace
}  // namespace decodelab::speculative

DECODELAB_BUILTIN(decoders_speculative_block)
