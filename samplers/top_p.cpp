// top_p (nucleus): keep the smallest most-likely prefix whose mass reaches p (at least min_keep).
#include "decodelab/builtins.hpp"
#include "decodelab/sampler.hpp"

namespace decodelab {
namespace {

class TopP final : public Sampler {
 public:
  TopP(double p, int64_t min_keep) : p_(p), min_keep_(min_keep) {}
  std::string name() const override { return "top_p(p=" + std::to_string(p_) + ")"; }
  void apply(Candidates& c) override {
    if (p_ >= 1.0) return;
    c.softmax();
    // Sort only as much of the head as the nucleus needs, doubling the sorted prefix until the
    // mass is reached: O(V) for the peaked distributions of real models instead of O(V log V).
    double cum = 0.0;
    std::size_t keep = c.data.size();
    std::size_t scanned = 0;
    for (std::size_t window = 64; scanned < c.data.size(); window *= 2) {
      const std::size_t n = c.sort_top(window);
      bool done = false;
      for (; scanned < n; ++scanned) {
        cum += c.data[scanned].p;
        if (cum >= p_ && int64_t(scanned + 1) >= min_keep_) {
          keep = scanned + 1;
          done = true;
          break;
        }
      }
      if (done) break;
    }
    if (keep < c.data.size()) {
      c.data.resize(keep);
      c.sorted = true;
    }
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

DECODELAB_BUILTIN(samplers_top_p)
