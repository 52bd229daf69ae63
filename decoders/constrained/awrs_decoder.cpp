// awrs: locally constrained decoding by adaptive weighted rejection sampling (see awrs.hpp). The
// token law equals masking's exactly; the cost is the number of tokens tested (about 1/Z per step
// plus one for the weight) instead of the whole support. Gumbel keys for position i come from
// random_stream(seed, proposal, i).
//
// Metrics: log_weight (sum of the steps' log Z-hat: the importance weight of the sequence for the
// global target p(x) 1[x in L]), step_log_weight.NNNNNN (each step's), constraint_evaluations,
// evaluations_per_step, constraint_complete.
#include "decodelab/builtins.hpp"
#include "decodelab/error.hpp"
#include "decodelab/random.hpp"
#include "decoders/constrained/awrs.hpp"
#include "decoders/constrained/constrained_loop.hpp"

namespace decodelab {
namespace {

class AwrsDecoder final : public Decoder {
 public:
  AwrsDecoder(std::unique_ptr<SamplerChain> chain, std::string constraint, bool proper_weights)
      : chain_(std::move(chain)), constraint_(std::move(constraint)), proper_weights_(proper_weights) {}

  Stats generate(const ModelSet& models, const DecodeOptions& options, TokenStream& stream) override {
    return run_constrained(models, options, stream, *chain_, constraint_,
                           [&](std::span<const float> probs, Constraint& constraint, std::size_t position) {
                             PhiloxStream rng = random_stream(options.seed, RandomStream::proposal, position);
                             const AwrsDraw draw = awrs_sample(probs, constraint, rng, proper_weights_);
                             return ConstrainedPick{draw.token, draw.log_weight};
                           });
  }

 private:
  std::unique_ptr<SamplerChain> chain_;
  std::string constraint_;
  bool proper_weights_;
};

const RegisterDecoder reg_awrs({
    .name = "awrs",
    .doc =
        "Locally constrained decoding by adaptive weighted rejection sampling (Lipkin et al. 2025): lazy Gumbel-order "
        "rejection, exact LCD token law, unbiased per-step normalizer estimate in metrics.",
    .params = with_sampling_params(
        {constraint_param_spec(true),
         ParamSpec::boolean("proper_weights", true,
                            "estimate the step normalizer (one extra constraint check per step)")}),
    .roles = {"target"},
    .make = [](const Params& p) -> std::unique_ptr<Decoder> {
      if (p.get_string("constraint").empty())
        fail(ErrorCode::invalid_argument, "decoder 'awrs': parameter 'constraint' is required");
      return std::make_unique<AwrsDecoder>(chain_from_params(p), p.get_string("constraint"),
                                           p.get_bool("proper_weights"));
    },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(decoders_constrained_awrs_decoder)
