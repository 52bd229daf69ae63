// dist: select a token by inverse-CDF sampling from the softmax of the kept candidates, with the
// uniform from Philox keyed by (seed, stream, step). `step` starts at 0 and advances on accept(),
// so a clone continues the same sequence of numbers and reset() replays it. Terminal.
#include <algorithm>

#include "decodelab/builtins.hpp"
#include "decodelab/philox.hpp"
#include "decodelab/sampler.hpp"

namespace decodelab {
namespace {

class Dist final : public Sampler {
 public:
  Dist(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}
  std::string name() const override { return "dist(seed=" + std::to_string(seed_) + ")"; }
  void apply(Candidates& c) override {
    // A fixed order (token id) makes the inverse CDF independent of earlier samplers' reordering;
    // candidates straight from logits are already in id order, so this costs a scan.
    if (!std::is_sorted(c.data.begin(), c.data.end(),
                        [](const Candidate& a, const Candidate& b) { return a.id < b.id; })) {
      std::sort(c.data.begin(), c.data.end(), [](const Candidate& a, const Candidate& b) { return a.id < b.id; });
      c.sorted = false;
      c.sorted_prefix = 0;
    }
    c.softmax();
    std::vector<float> w(c.data.size());
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = c.data[i].p;
    const double u = PhiloxStream::at_step(seed_, stream_, step_).uniform_double();
    c.selected = int(sample_from_weights(w, u));
  }
  void accept(TokenId) override { ++step_; }
  void reset() override { step_ = 0; }
  std::unique_ptr<Sampler> clone() const override { return std::make_unique<Dist>(*this); }

 private:
  uint64_t seed_;
  uint64_t stream_;
  uint64_t step_ = 0;
};

const RegisterSampler reg({
    .name = "dist",
    .doc = "Sample from the kept candidates with a counter-based (Philox) uniform; advances on accept().",
    .params = {ParamSpec::integer("seed", 0, 0, 9.007199254740992e15, "random seed"),
               ParamSpec::integer("stream", 0, 0, 9.007199254740992e15, "Philox subsequence")},
    .roles = {},
    .make = [](const Params& p) -> std::unique_ptr<Sampler> {
      return std::make_unique<Dist>(uint64_t(p.get_int("seed")), uint64_t(p.get_int("stream")));
    },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(samplers_dist)
