// min_p: keep tokens whose probability is at least p times the top token's.
#include <algorithm>

#include "samplers/sampler.hpp"

namespace decodelab {
namespace {

class MinP final : public Sampler {
 public:
  MinP(double p, int64_t min_keep) : p_(p), min_keep_(min_keep) {}
  std::string name() const override { return "min_p(p=" + std::to_string(p_) + ")"; }
  void apply(Candidates& c) override {
    if (p_ <= 0.0) return;
    c.sort();
    c.softmax();
    const double threshold = p_ * c.data.front().p;
    std::size_t keep = 0;
    while (keep < c.data.size() && double(c.data[keep].p) >= threshold) ++keep;
    keep = std::max(keep, std::min(c.data.size(), std::size_t(min_keep_)));
    c.data.resize(keep);
    if (c.selected >= int(keep)) c.selected = -1;
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
