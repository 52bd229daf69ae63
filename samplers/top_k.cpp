// top_k: keep the k candidates with the largest logits (exactly k; ties by lowest token id).
#include "decodelab/builtins.hpp"
#include "decodelab/sampler.hpp"

namespace decodelab {
namespace {

class TopK final : public Sampler {
 public:
  explicit TopK(int64_t k) : k_(k) {}
  std::string name() const override { return "top_k(k=" + std::to_string(k_) + ")"; }
  void apply(Candidates& c) override {
    if (k_ <= 0 || std::size_t(k_) >= c.data.size()) return;
    const TokenId chosen = c.selected >= 0 ? c.data[std::size_t(c.selected)].id : -1;
    c.sort_top(std::size_t(k_));
    c.data.resize(std::size_t(k_));
    c.sorted = true;  // the kept prefix is in order
    c.selected = -1;
    for (std::size_t i = 0; i < c.data.size(); ++i) {
      if (c.data[i].id == chosen) c.selected = int(i);
    }
    return;
  }
  std::unique_ptr<Sampler> clone() const override { return std::make_unique<TopK>(*this); }

 private:
  int64_t k_;
};

const RegisterSampler reg({
    .name = "top_k",
    .doc = "Keep the k most likely tokens (exactly k; equal logits ordered by token id).",
    .params = {ParamSpec::integer("k", 40, 0, 1e9, "tokens to keep; 0 = keep all")},
    .roles = {},
    .make = [](const Params& p) -> std::unique_ptr<Sampler> { return std::make_unique<TopK>(p.get_int("k")); },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(samplers_top_k)
