// sequoia: Sequoia (Chen et al., NeurIPS 2024) static draft trees. At construction, the dynamic
// program of static_tree.hpp picks the shape with at most `budget` nodes (and depth at most
// `max_depth`) that maximizes the expected accepted length under an acceptance vector: the
// probability that a node's b-th child, drawn without replacement, is the one accepted. Every step
// fills that shape with draft tokens, each node's children drawn from its draft law without
// replacement, and verifies it in one target pass with RRS without replacement, children in draw
// order (Sequoia's verifier), or with Traversal Verification of the whole tree (verify=traversal):
// exactly target-distributed either way. The vector comes from the draft/target
// pair and the temperature; `decodelab bench spec --acceptance-vector K` measures it.
#include "decodelab/builtins.hpp"
#include "decoders/speculative/static_tree.hpp"
#include "decoders/speculative/tree_speculation.hpp"

namespace decodelab::speculative {
namespace {

const RegisterTreeSpeculation reg({
    .name = "sequoia",
    .doc = "Sequoia static draft tree: the shape maximizing expected accepted length for a node budget under an "
           "acceptance vector (dynamic program), children drawn without replacement, one target pass, RRS without "
           "replacement. Exactly target-distributed.",
    .params =
        {
            ParamSpec::integer("budget", 16, 1, 256, "draft tree size (nodes) per step"),
            ParamSpec::integer("max_depth", 0, 0, 1024, "deepest draft token per step (0: no cap)"),
            ParamSpec::string(
                "acceptance", "0.6/0.15/0.06/0.03/0.02",
                "acceptance vector, entries separated by '/': P(the b-th child drawn is the accepted one), "
                "b = 1, 2, ...; measure it for a pair with decodelab bench spec --acceptance-vector"),
            ParamSpec::string("verify", "rrs",
                              "rrs: RRS without replacement, node by node (Sequoia's verifier); traversal: Traversal "
                              "Verification of the whole tree",
                              {"rrs", "traversal"}),
            deterministic_param(),
        },
    .make =
        [](const Params& p) {
          const std::vector<double> acceptance = parse_acceptance_vector(p.get_string("acceptance"));
          OptimalTree best = optimal_static_tree(acceptance, int(p.get_int("budget")), int(p.get_int("max_depth")));
          // Deterministic children (Sequoia's greedy tree: the most probable remaining tokens) carry
          // no draft law: the target-only rule, exact for any candidates.
          const DraftDraw draw = draft_draw(p);
          TreeSpeculationMethod method{
              std::make_unique<StaticTreeDrafter>(std::move(best.shape), draw),
              draw == DraftDraw::sample ? VerifyRule(verify_rrs_wor) : VerifyRule(verify_target_only)};
          // A child's subtree has a fixed shape, so it tells nothing about its later siblings beyond
          // its own token: Traversal Verification's condition (sequence_verify.hpp) holds.
          if (p.get_string("verify") == "traversal") {
            method.sequence_rule = verify_traversal;
            method.draws = draw == DraftDraw::sample ? DrawKind::without_replacement : DrawKind::most_probable;
          }
          return method;
        },
});

}  // namespace
}  // namespace decodelab::speculative

DECODELAB_BUILTIN(decoders_speculative_sequoia)
