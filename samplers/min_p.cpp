// min_p: keep tokens whose probability is at least p times the top token's.
#include <algorithm>

#include "decodelab/builtins.hpp"
#include "decodelab/sampler.hpp"

namespace decodelab {
namespace {

class MinP final : public Sampler {
 public:
  MinP(double p, int64_t min_keep) : p_(p), min_keep_(min_keep) {}
  std::string name() const override { return "min_p(p=" + std::to_string(p_) + ")"; }
  void apply(Candidates& c) override {
    if (p_ <= 0.0) return;
    // No sort: p_i >= p * p_max is a filter on the softmax; order is kept.
    c.softmax();
    float p_max = 0.0f;
    for (const Candidate& x : c.data) p_max = std::max(p_max, x.p);
    const double threshold = p_ * p_max;
    std::size_t passing = 0;
    for (const Candidate& x : c.data) passing += double(x.p) >= threshold;
    if (passing < std::size_t(min_keep_)) {
      // Fewer than min_keep pass: keep the min_keep most likely instead.
      const std::size_t keep = c.sort_top(std::size_t(min_keep_));
      c.data.resize(keep);
      c.sorted = true;
      c.selected = -1;
      return;
    }
    const TokenId chosen = c.selected >= 0 ? c.data[std::size_t(c.selected)].id : -1;
    erase_if(c.data, [&](const Candidate& x) { return double(x.p) < threshold; });
    // Everything removed ranks below everything kept, so a sorted head stays a sorted head.
    c.sorted_prefix = std::min(c.sorted_prefix, c.data.size());
    c.selected = -1;
    for (std::size_t i = 0; i < c.data.size(); ++i) {
      if (c.data[i].id == chosen) c.selected = int(i);
    }
  }
  std::unique_ptr<Sampler> clone() const override { return std::make_unique<MinP>(*this); }

 private:
  double p_;
  int64_t min_keep_;
};

const RegisterSampler reg({
    .name = "min_p",
    .doc = "Keep tokens with probability >= p * (probability of the most likely token).",
    .params = {ParamSpec::real("p", 0.05, 0.0, 1.0, "relative threshold; 0 = keep all"),
               ParamSpec::integer("min_keep", 1, 1, 1e9, "never keep fewer tokens than this")},
    .roles = {},
    .make = [](const Params& p) -> std::unique_ptr<Sampler> {
      return std::make_unique<MinP>(p.get_real("p"), p.get_int("min_keep"));
    },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(samplers_min_p)
