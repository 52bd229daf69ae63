// delayed: delayed tree expansion (Thomas, Kitanovski, Goldblum, Pal, arXiv 2602.16994). The draft
// writes a single path for the first `delay` tokens and only then branches into k i.i.d. rollouts,
// so the tree's width sits deeper, where draft and target disagree more, instead of at the root.
// The paper picks the expansion per context with a small trained network; here the branch point is
// fixed, or chosen by the draft's own confidence at each trunk node (threshold > 0; see
// DelayedSequencesDrafter), which is decided before that node's children are drawn.
// Verification: SpecInfer's recursive rejection sampling with replacement, node by node, or
// Traversal Verification of the merged tree (its distinct children are draws without
// replacement, as for traversal's own i.i.d. trees). Exactly target-distributed either way.
#include "decodelab/builtins.hpp"
#include "decoders/speculative/sequence_drafters.hpp"
#include "decoders/speculative/tree_speculation.hpp"

namespace decodelab::speculative {
namespace {

const RegisterTreeSpeculation reg({
    .name = "delayed",
    .doc = "Delayed tree expansion: one draft path for the first `delay` tokens, then k i.i.d. rollouts to depth L "
           "(branch point fixed, or the first trunk node where the draft is unsure), one target pass, SpecInfer RRS "
           "or Traversal Verification. Exactly target-distributed.",
    .params =
        {
            ParamSpec::integer("k", 4, 1, 64, "i.i.d. rollouts after the branch point"),
            ParamSpec::integer("L", 4, 1, 64, "draft depth (trunk and rollouts together)"),
            ParamSpec::integer("delay", 1, 0, 64,
                               "trunk length: draft tokens before the branch point (its maximum "
                               "when threshold > 0)"),
            ParamSpec::real("threshold", 0.0, 0.0, 1.0,
                            "0: branch after `delay` tokens; > 0: branch at the first trunk node whose draft law "
                            "has collision probability sum q^2 below it"),
            ParamSpec::string("verify", "specinfer",
                              "specinfer: RRS with replacement, node by node; traversal: "
                              "Traversal Verification of the merged tree",
                              {"specinfer", "traversal"}),
            log_optimum_param(),
        },
    .make =
        [](const Params& p) {
          TreeSpeculationMethod method;
          method.drafter = std::make_unique<DelayedSequencesDrafter>(int(p.get_int("k")), int(p.get_int("L")),
                                                                     int(p.get_int("delay")), p.get_real("threshold"));
          if (p.get_string("verify") == "traversal") {
            method.sequence_rule = verify_traversal;
            method.draws = DrawKind::without_replacement;  // distinct children in first-occurrence order
          } else {
            method.rule = verify_rrs_iid;
          }
          return method;
        },
});

}  // namespace
}  // namespace decodelab::speculative

DECODELAB_BUILTIN(decoders_speculative_delayed)
