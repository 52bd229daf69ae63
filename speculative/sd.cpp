// sd: chain speculative sampling (Leviathan et al. 2023; Chen et al. 2023).
// The draft samples L tokens autoregressively from q; the target scores them in one pass; token i
// is accepted with probability min(1, p/q), the first rejection is replaced by a sample of
// norm((p - q)_+), and a fully accepted chain earns a bonus token from p. Exactly p-distributed;
// per-position acceptance 1 - TV(p, q).
#include "speculative/tree_decoder.hpp"

namespace decodelab::speculative {
namespace {

class ChainSpeculativeDecoder final : public Decoder {
 public:
  explicit ChainSpeculativeDecoder(const Params& params)
      : chain_(chain_from_params(params)), drafter_(1, int(params.get_int("L"))), research_(speculation_options(params)) {}

  Stats generate(const ModelSet& models, const DecodeOptions& options, TokenStream& stream) override {
    return run_tree_speculation(models, options, stream, *chain_, drafter_, verify_rrs_iid, research_);
  }

 private:
  std::unique_ptr<SamplerChain> chain_;
  IidSequencesDrafter drafter_;  // one sequence: a chain
  SpeculationOptions research_;
};

const RegisterDecoder reg({
    .name = "sd",
    .doc = "Chain speculative sampling: L draft tokens from q, one target pass, accept with min(1, p/q), "
           "residual norm((p - q)_+) on rejection, bonus token when all are accepted. Exactly target-distributed.",
    .params = with_sampling_params({ParamSpec::integer("L", 4, 1, 64, "draft length (tokens drafted per step)"),
                                      log_optimum_param()}),
    .roles = {"target", "draft"},
    .make = [](const Params& p) -> std::unique_ptr<Decoder> { return std::make_unique<ChainSpeculativeDecoder>(p); },
});

}  // namespace
}  // namespace decodelab::speculative
