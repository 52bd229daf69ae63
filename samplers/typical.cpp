// typical: locally typical sampling (Meister et al. 2022). Order tokens by how far their surprise
// -log p is from the entropy H, and keep the closest until their mass exceeds p (strictly, as in
// llama.cpp), at least min_keep.
#include <algorithm>
#include <cmath>

#include "decodelab/builtins.hpp"
#include "decodelab/sampler.hpp"

namespace decodelab {
namespace {

class Typical final : public Sampler {
 public:
  Typical(double p, int64_t min_keep) : p_(p), min_keep_(min_keep) {}
  std::string name() const override { return "typical(p=" + std::to_string(p_) + ")"; }
  void apply(Candidates& c) override {
    if (p_ >= 1.0) return;
    c.sort();
    c.softmax();
    double h = 0.0;
    for (const Candidate& x : c.data) {
      if (x.p > 0.0f) h -= double(x.p) * std::log(double(x.p));
    }
    std::vector<std::pair<double, std::size_t>> order(c.data.size());
    for (std::size_t i = 0; i < c.data.size(); ++i) {
      const double surprise = c.data[i].p > 0.0f ? -std::log(double(c.data[i].p)) : INFINITY;
      order[i] = {std::abs(surprise - h), i};  // i breaks ties: higher logit, then lower id
    }
    std::sort(order.begin(), order.end());
    double cum = 0.0;
    std::size_t keep = order.size();
    for (std::size_t i = 0; i < order.size(); ++i) {
      cum += c.data[order[i].second].p;
      if (cum > p_ && int64_t(i + 1) >= min_keep_) {
        keep = i + 1;
        break;
      }
    }
    const TokenId chosen = c.selected >= 0 ? c.data[std::size_t(c.selected)].id : -1;
    std::vector<Candidate> kept;
    kept.reserve(keep);
    for (std::size_t i = 0; i < keep; ++i) kept.push_back(c.data[order[i].second]);
    c.data = std::move(kept);
    c.sorted = false;
    c.sorted_prefix = 0;
    c.selected = -1;
    for (std::size_t i = 0; i < c.data.size(); ++i) {
      if (c.data[i].id == chosen) c.selected = int(i);
    }
  }
  std::unique_ptr<Sampler> clone() const override { return std::make_unique<Typical>(*this); }

 private:
  double p_;
  int64_t min_keep_;
};

const RegisterSampler reg({
    .name = "typical",
    .doc = "Locally typical sampling: keep the tokens whose surprise is closest to the entropy, up to mass p.",
    .params = {ParamSpec::real("p", 0.95, 0.0, 1.0, "mass to keep; 1 = keep all"),
               ParamSpec::integer("min_keep", 1, 1, 1e9, "never keep fewer tokens than this")},
    .roles = {},
    .make = [](const Params& p) -> std::unique_ptr<Sampler> {
      return std::make_unique<Typical>(p.get_real("p"), p.get_int("min_keep"));
    },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(samplers_typical)
