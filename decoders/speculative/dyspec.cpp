// dyspec: DySpec (Xiong et al. 2024) dynamic draft trees, in the lossless reconstruction of
// docs/speculative.md ("How dyspec stays lossless").
//
// The tree grows greedily at run time. A node's value is the product of draft probabilities on
// its path (DySpec's estimate of the chance it is reached and accepted). Each round repeatedly
// picks the node whose next child has the highest expected value, value(u) * E_{x ~ norm(R_u)}
// [q_u(x)] with R_u the draft law minus the children already drawn, and draws that child without
// replacement. A round ends when the budget is spent, when every evaluated node has `width` new
// children this round, or when a node drawn this round (not evaluated yet, its key guessed as
// value(c) * E_{x ~ q_u}[q_u(x)]) promises more than the best evaluated node; then one batched draft
// pass over the new nodes (on forks, see NodeForks) gives their laws. Which node grows next depends
// only on tokens already drawn, each child is drawn from exactly the law the verifier assumes, and
// verification is RRS without replacement in draw order: exactly target-distributed.
#include <algorithm>
#include <map>

#include "decodelab/builtins.hpp"
#include "decoders/speculative/tree_speculation.hpp"

namespace decodelab::speculative {
namespace {

class DynamicTreeDrafter final : public TreeDrafter {
 public:
  DynamicTreeDrafter(int budget, int max_depth, int width, DraftDraw draw)
      : budget_(budget), max_depth_(max_depth), width_(width), draw_(draw) {}

  void build(DraftContext& context, DraftTree& tree) override {
    const int budget = std::min(budget_, context.max_nodes);
    std::map<int, Expandable> open;  // evaluated nodes that may still get children
    std::map<int, double> value{{-1, 1.0}};
    const auto open_node = [&](int node) {
      if (tree.depth(node) >= max_depth_) return;
      Expandable e{std::vector<float>(tree.q(node).begin(), tree.q(node).end()), 0.0};
      e.key = value[node] * expected_next(e.remaining, tree.q(node));
      open.emplace(node, std::move(e));
    };
    open_node(-1);
    NodeForks forks(context);
    while (tree.size() < budget) {
      std::map<int, int> drawn_this_round;
      const int before = tree.size();
      double best_unevaluated = 0.0;  // estimated key of the best node drawn this round
      while (tree.size() < budget) {
        int best = -2;
        for (const auto& [node, e] : open)
          if (e.key > 0.0 && drawn_this_round[node] < width_ && (best == -2 || e.key > open.at(best).key)) best = node;
        // A node drawn this round that promises more than every evaluated one: evaluate first.
        if (best == -2 || open.at(best).key < best_unevaluated) break;
        Expandable& e = open.at(best);
        const int index = tree.size();
        const TokenId x =
            draw_child(e.remaining, draw_, context.rng(tree.depth(best) + 1, uint64_t(index)).uniform_double());
        const int child = tree.add_node(best, x);
        tree.propose(child);
        value[child] = value[best] * double(tree.q(best)[std::size_t(x)]);
        if (tree.depth(child) < max_depth_)  // its own key, guessed from its parent's confidence
          best_unevaluated = std::max(best_unevaluated, value[child] * confidence(tree.q(best)));
        e.remaining[std::size_t(x)] = 0.0f;
        e.key = value[best] * expected_next(e.remaining, tree.q(best));
        drawn_this_round[best] += 1;
      }
      if (tree.size() == before || tree.size() >= budget) break;
      std::vector<int> expandable;  // nodes at max_depth never need their draft law
      for (int node = before; node < tree.size(); ++node)
        if (tree.depth(node) < max_depth_) expandable.push_back(node);
      forks.evaluate(tree, expandable);
      for (int node : expandable) open_node(node);
    }
  }

 private:
  struct Expandable {
    std::vector<float> remaining;  // draft law with drawn children zeroed (unnormalized)
    double key;
  };

  // E_{x ~ q} q(x): how peaked the draft is at a node.
  static double confidence(std::span<const float> q) { return expected_next(q, q); }

  // E_{x ~ norm(remaining)} q(x): the draft probability of the next child, in expectation.
  static double expected_next(std::span<const float> remaining, std::span<const float> q) {
    double mass = 0.0, dot = 0.0;
    for (std::size_t x = 0; x < q.size(); ++x) {
      mass += remaining[x];
      dot += double(remaining[x]) * double(q[x]);
    }
    return mass > 0.0 ? dot / mass : 0.0;
  }

  int budget_;
  int max_depth_;
  int width_;
  DraftDraw draw_;
};

const RegisterTreeSpeculation reg({
    .name = "dyspec",
    .doc = "DySpec dynamic draft tree: grow greedily by estimated acceptance (path product of draft probabilities), "
           "children drawn without replacement, one target pass, RRS without replacement. Exactly target-distributed.",
    .params =
        {
            ParamSpec::integer("budget", 16, 1, 4096, "draft tree size (nodes) per step"),
            ParamSpec::integer("max_depth", 0, 0, 4096,
                               "deepest draft token per step (0: no cap; the budget bounds it)"),
            ParamSpec::integer("width", 4, 1, 64, "children one node may get per round (one draft pass per round)"),
            deterministic_param(),
            log_optimum_param(),
        },
    .make =
        [](const Params& p) {
          // Deterministic children (EAGLE-2's choice: the most probable remaining token) carry no
          // draft law: the target-only rule, exact for any candidates.
          const DraftDraw draw = draft_draw(p);
          // The paper caps nothing: growth follows the values alone. A cap is a knob for studies.
          const int budget = int(p.get_int("budget")), max_depth = int(p.get_int("max_depth"));
          return TreeSpeculationMethod{
              std::make_unique<DynamicTreeDrafter>(budget, max_depth == 0 ? budget : max_depth, int(p.get_int("width")),
                                                   draw),
              draw == DraftDraw::sample ? VerifyRule(verify_rrs_wor) : VerifyRule(verify_target_only)};
        },
});

}  // namespace
}  // namespace decodelab::speculative

DECODELAB_BUILTIN(decoders_speculative_dyspec)
