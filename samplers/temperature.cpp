// temperature: divide logits by t. t = 0 keeps only the most likely token (greedy as a
// distribution: p is one-hot), which is what speculative verification needs at temperature 0.
#include "decodelab/builtins.hpp"
#include "decodelab/sampler.hpp"

namespace decodelab {
namespace {

class Temperature final : public Sampler {
 public:
  explicit Temperature(double t) : t_(t) {}
  std::string name() const override { return "temperature(t=" + std::to_string(t_) + ")"; }
  void apply(Candidates& c) override {
    if (t_ == 1.0) return;
    if (t_ <= 0.0) {
      c.sort_top(1);
      c.data.resize(1);
      c.sorted = true;
      if (c.selected > 0) c.selected = -1;
      return;
    }
    const float inv = float(1.0 / t_);
    for (Candidate& x : c.data) x.logit *= inv;
  }
  std::unique_ptr<Sampler> clone() const override { return std::make_unique<Temperature>(*this); }

 private:
  double t_;
};

const RegisterSampler reg({
    .name = "temperature",
    .doc = "Divide the logits by t; t = 0 keeps only the most likely token.",
    .params = {ParamSpec::real("t", 1.0, 0.0, 1e6, "temperature")},
    .roles = {},
    .make = [](const Params& p) -> std::unique_ptr<Sampler> { return std::make_unique<Temperature>(p.get_real("t")); },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(samplers_temperature)
