// greedy: select the most likely candidate (ties: lowest token id). Terminal.
#include "decodelab/builtins.hpp"
#include "decodelab/sampler.hpp"

namespace decodelab {
namespace {

class Greedy final : public Sampler {
 public:
  std::string name() const override { return "greedy"; }
  void apply(Candidates& c) override {
    std::size_t best = 0;
    for (std::size_t i = 1; i < c.data.size(); ++i) {
      const Candidate& x = c.data[i];
      const Candidate& b = c.data[best];
      if (x.logit > b.logit || (x.logit == b.logit && x.id < b.id)) best = i;
    }
    c.selected = int(best);
  }
  std::unique_ptr<Sampler> clone() const override { return std::make_unique<Greedy>(*this); }
};

const RegisterSampler reg({
    .name = "greedy",
    .doc = "Select the most likely token (equal logits: the lowest token id).",
    .params = {},
    .roles = {},
    .make = [](const Params&) -> std::unique_ptr<Sampler> { return std::make_unique<Greedy>(); },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(samplers_greedy)
