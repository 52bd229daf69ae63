// ngram: model-free speculative decoding by n-gram lookup ("prompt lookup decoding").
// The draft is the continuation of the most recent earlier occurrence of the stream's last n
// tokens (n from `n` down to 1), up to L tokens, so repetitive text (code, quoting the prompt) is
// proposed for free. The proposals carry no draft law, so verification is the target-only rule:
// accept a token with probability p(token), otherwise remove it from p and sample the next token
// from what remains. Exactly target-distributed; needs only the "target" role.
#include "decodelab/builtins.hpp"
#include "decoders/speculative/tree_speculation.hpp"

namespace decodelab::speculative {
namespace {

class NgramDrafter final : public TreeDrafter {
 public:
  NgramDrafter(int length, int max_ngram) : length_(length), max_ngram_(max_ngram) {}
  bool needs_draft_model() const override { return false; }

  void build(DraftContext& context, DraftTree& tree) override {
    const std::span<const TokenId> h = context.history;
    const std::size_t size = h.size();
    for (std::size_t n = std::min<std::size_t>(std::size_t(max_ngram_), size - 1); n >= 1; --n) {
      // Latest start s < size - n with h[s, s + n) == the last n tokens.
      for (std::size_t s = size - n; s-- > 0;) {
        if (!std::equal(h.begin() + std::ptrdiff_t(s), h.begin() + std::ptrdiff_t(s + n), h.end() - std::ptrdiff_t(n)))
          continue;
        int parent = -1;
        for (std::size_t i = s + n; i < size && i < s + n + std::size_t(std::min(length_, context.max_nodes)); ++i) {
          parent = tree.add_node(parent, h[i]);
          tree.propose(parent);
        }
        return;
      }
    }
  }

 private:
  int length_;
  int max_ngram_;
};

const RegisterTreeSpeculation reg({
    .name = "ngram",
    .doc = "Model-free speculative decoding: draft the continuation of the latest earlier match of the last n tokens "
           "(prompt lookup), verify with the target-only rule. Exactly target-distributed; no draft model.",
    .params =
        {
            ParamSpec::integer("L", 4, 1, 64, "longest draft (tokens copied after the match)"),
            ParamSpec::integer("n", 3, 1, 16, "longest n-gram matched (tries n, n - 1, ..., 1)"),
        },
    .needs_draft_model = false,
    .make =
        [](const Params& p) {
          return TreeSpeculationMethod{std::make_unique<NgramDrafter>(int(p.get_int("L")), int(p.get_int("n"))),
                                       verify_target_only};
        },
});

}  // namespace
}  // namespace decodelab::speculative

DECODELAB_BUILTIN(decoders_speculative_ngram)
