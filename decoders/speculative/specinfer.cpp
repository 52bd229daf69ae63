// specinfer: multi-draft speculative sampling with recursive rejection sampling (SpecInfer's MSS).
// k draft sequences of length L form a token tree verified in one target pass. At each node the
// proposals are tried in order; a rejection replaces the target law P by norm((P - Q)_+) before
// the next proposal, so the emitted token is exactly p-distributed.
//   replacement = true:  the k sequences are i.i.d. from q (duplicates possible); Q = q throughout.
//   replacement = false: sequences through a node draw distinct children without replacement and
//                        are verified in draw order, with Q renormalized after removing each
//                        rejected child (Sequoia's verifier).
//   deterministic = true: the k most probable draft tokens as children, argmax below (the usual
//                        tree at temperature 0). These candidates were not drawn from q, so the
//                        q-based rules would be biased (a rule that treated them as draws without
//                        replacement would use laws they were never drawn from); they are verified
//                        with the target-only rule, exact for any candidates chosen without the
//                        verification uniforms.
#include "decodelab/builtins.hpp"
#include "decoders/speculative/sequence_drafters.hpp"
#include "decoders/speculative/tree_speculation.hpp"

namespace decodelab::speculative {
namespace {

const RegisterTreeSpeculation reg({
    .name = "specinfer",
    .doc = "SpecInfer multi-draft speculative sampling: k draft sequences of length L as a token tree, one target "
           "pass, recursive rejection sampling across siblings with residual updates. Exactly target-distributed.",
    .params =
        {
            ParamSpec::integer("k", 2, 1, 64, "draft sequences per step"),
            ParamSpec::integer("L", 3, 1, 64, "draft length"),
            ParamSpec::boolean(
                "replacement", true,
                "true: i.i.d. drafts; false: siblings drawn without replacement and verified in draw order"),
            deterministic_param(),
            log_optimum_param(),
        },
    .make =
        [](const Params& p) {
          const int k = int(p.get_int("k")), length = int(p.get_int("L"));
          if (draft_draw(p) == DraftDraw::most_probable)
            return TreeSpeculationMethod{std::make_unique<WorSequencesDrafter>(k, length, DraftDraw::most_probable),
                                         verify_target_only};
          if (p.get_bool("replacement"))
            return TreeSpeculationMethod{std::make_unique<IidSequencesDrafter>(k, length), verify_rrs_iid};
          return TreeSpeculationMethod{std::make_unique<WorSequencesDrafter>(k, length), verify_rrs_wor};
        },
});

}  // namespace
}  // namespace decodelab::speculative

DECODELAB_BUILTIN(decoders_speculative_specinfer)
