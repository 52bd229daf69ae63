// spectr: SpecTr (Sun et al., NeurIPS 2023) with k i.i.d. draft sequences of length L sharing
// their prefix. Level by level, the sequences still consistent with the emitted prefix propose
// their next tokens; K-SEQ picks one with the division factor rho chosen for that node and that
// number of sequences (the smallest rho that keeps the residual nonnegative), or draws from the
// K-SEQ residual. Sequences whose token equals the chosen one (rejected duplicates included)
// stay i.i.d. given the prefix and continue. Exactly target-distributed.
#include "decodelab/builtins.hpp"
#include "decoders/speculative/sequence_drafters.hpp"
#include "decoders/speculative/tree_speculation.hpp"

namespace decodelab::speculative {
namespace {

VerifyOutcome kseq_rule(std::span<const float> p, std::span<const float> q, std::span<const TokenId> candidates,
                        std::span<const double> accept_u, double residual_u) {
  const double rho = kseq_rho(p, q, int(candidates.size()));
  return verify_kseq(p, q, candidates, accept_u, residual_u, rho);
}

const RegisterTreeSpeculation reg({
    .name = "spectr",
    .doc = "SpecTr: k i.i.d. draft sequences of length L as a prefix tree, one target pass, K-SEQ selection with "
           "its division factor level by level. Exactly target-distributed.",
    .params =
        {
            ParamSpec::integer("k", 2, 1, 64, "draft sequences per step"),
            ParamSpec::integer("L", 3, 1, 64, "draft length"),
            log_optimum_param(),
        },
    .make =
        [](const Params& p) {
          return TreeSpeculationMethod{std::make_unique<IidSequencesDrafter>(int(p.get_int("k")), int(p.get_int("L"))),
                                       kseq_rule};
        },
});

}  // namespace
}  // namespace decodelab::speculative

DECODELAB_BUILTIN(decoders_speculative_spectr)
