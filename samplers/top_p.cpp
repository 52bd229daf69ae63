// top_p (nucleus): keep the smallest most-likely prefix whose mass reaches p (at least min_keep).
#include "samplers/sampler.hpp"

namespace decodelab {
namespace {

class TopP final : public Sampler {
 public:
  TopP(double p, int64_t min_keep) : p_(p), min_keep_(min_keep) {}
  std::string name() const override { return "top_p(p=" + std::to_string(p_) + ")"; }
  void apply(Candidates& c) override {
    if (p_ >= 1.0) return;
    c.sort();
    c.softmax();
    double cum = 0.0;
    std::size_t keep = c.data.size();
    for (std::size_t i = 0; i < c.data.size(); ++i) {
      cum += c.data[i].p;
      if (cum >= p_ && int64_t(i + 1) >= min_keep_) {
        keep = i + 1;
        break;
      }
    }
    c.data.resize(keep);
    if (c.selected >= int(keep)) c.selected = -1;
  }
  std::unique_ptr<Sampler> clone() const override { return std::make_unique<TopP>(*this); }

 private:
  double p_;
  int64_t min_keep_;
};

const RegisterSampler reg({
    .name = "top_p",
    .doc = "Nucleus sampling: keep the smallest set of most likely tokens whose probability mass is >= p.",
    .params = {ParamSpec::real("p", 0.95, 0.0, 1.0, "mass to keep; 1 = keep all"),
               ParamSpec::integer("min_keep", 1, 1, 1e9, "never keep fewer tokens than this")},
    .roles = {},
    .make = [](const Params& p) -> std::unique_ptr<Sampler> {
      return std::make_unique<TopP>(p.get_real("p"), p.get_int("min_keep"));
    },
});

}  // namespace
}  // namespace decodelab
