// sd: chain speculative sampling (Leviathan et al. 2023; Chen et al. 2023).
// The draft samples L tokens autoregressively from q; the target scores them in one pass; token i
// is accepted with probability min(1, p/q), the first rejection is replaced by a sample of
// norm((p - q)_+), and a fully accepted chain earns a bonus token from p. Exactly p-distributed;
// per-position acceptance 1 - TV(p, q). With deterministic=true the chain follows the draft's
// argmax instead; those tokens carry no draft law, so they are verified with the target-only rule.
#include "decodelab/builtins.hpp"
#include "decoders/speculative/sequence_drafters.hpp"
#include "decoders/speculative/tree_speculation.hpp"

namespace decodelab::speculative {
namespace {

const RegisterTreeSpeculation reg({
    .name = "sd",
    .doc = "Chain speculative sampling: L draft tokens from q, one target pass, accept with min(1, p/q), "
           "residual norm((p - q)_+) on rejection, bonus token when all are accepted. Exactly target-distributed.",
    .params = {ParamSpec::integer("L", 4, 1, 64, "draft length (tokens drafted per step)"), deterministic_param(),
               log_optimum_param()},
    .make =
        [](const Params& p) {
          // One sequence: a chain.
          const int length = int(p.get_int("L"));
          if (draft_draw(p) == DraftDraw::most_probable)
            return TreeSpeculationMethod{std::make_unique<WorSequencesDrafter>(1, length, DraftDraw::most_probable),
                                         verify_target_only};
          return TreeSpeculationMethod{std::make_unique<IidSequencesDrafter>(1, length), verify_rrs_iid};
        },
});

}  // namespace
}  // namespace decodelab::speculative

DECODELAB_BUILTIN(decoders_speculative_sd)
