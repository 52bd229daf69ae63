// specinfer: multi-draft speculative sampling with recursive rejection sampling (SpecInfer's MSS).
// k draft sequences of length L form a token tree verified in one target pass. At each node the
// proposals are tried in order; a rejection replaces the target law P by norm((P - Q)_+) before
// the next proposal, so the emitted token is exactly p-distributed.
//   replacement = true:  the k sequences are i.i.d. from q (duplicates possible); Q = q throughout.
//   replacement = false: sequences through a node draw distinct children without replacement and
//                        are verified in draw order, with Q renormalized after removing each
//                        rejected child (Sequoia's verifier).
#include "speculative/tree_decoder.hpp"

namespace decodelab::speculative {
namespace {

class SpecInferDecoder final : public Decoder {
 public:
  explicit SpecInferDecoder(const Params& params)
      : chain_(chain_from_params(params)), research_(speculation_options(params)) {
    const int k = int(params.get_int("k")), length = int(params.get_int("L"));
    if (params.get_bool("replacement")) {
      drafter_ = std::make_unique<IidSequencesDrafter>(k, length);
      rule_ = verify_rrs_iid;
    } else {
      drafter_ = std::make_unique<WorSequencesDrafter>(k, length);
      rule_ = verify_rrs_wor;
    }
  }

  Stats generate(const ModelSet& models, const DecodeOptions& options, TokenStream& stream) override {
    return run_tree_speculation(models, options, stream, *chain_, *drafter_, rule_, research_);
  }

 private:
  std::unique_ptr<SamplerChain> chain_;
  std::unique_ptr<TreeDrafter> drafter_;
  VerifyRule rule_;
  SpeculationOptions research_;
};

const RegisterDecoder reg({
    .name = "specinfer",
    .doc = "SpecInfer multi-draft speculative sampling: k draft sequences of length L as a token tree, one target "
           "pass, recursive rejection sampling across siblings with residual updates. Exactly target-distributed.",
    .params = with_sampling_params({
        ParamSpec::integer("k", 2, 1, 64, "draft sequences per step"),
        ParamSpec::integer("L", 3, 1, 64, "draft length"),
        ParamSpec::boolean("replacement", true,
                           "true: i.i.d. drafts; false: siblings drawn without replacement and verified in draw order"),
        log_optimum_param(),
    }),
    .roles = {"target", "draft"},
    .make = [](const Params& p) -> std::unique_ptr<Decoder> { return std::make_unique<SpecInferDecoder>(p); },
});

}  // namespace
}  // namespace decodelab::speculative
