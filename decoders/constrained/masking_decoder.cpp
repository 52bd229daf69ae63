// masking: locally constrained decoding by token masking, the baseline AWRS is measured against.
// Every token with mass under the processed distribution is checked against the constraint; the
// allowed ones are renormalized and one is drawn with the uniform random_stream(seed, sample, i).
// Cost: |support| constraint evaluations per step. The sequence law is prod_t pi(x_t | x_<t), the
// locally constrained (myopically distorted) law, not p(x | constraint satisfied).
#include <vector>

#include "decodelab/builtins.hpp"
#include "decodelab/error.hpp"
#include "decodelab/random.hpp"
#include "decoders/constrained/constrained_loop.hpp"

namespace decodelab {
namespace {

// The masked distribution p(x) 1[x allowed]; returns its mass Z.
double mask(std::span<const float> probs, Constraint& constraint, std::vector<float>& masked) {
  masked.assign(probs.begin(), probs.end());
  double z = 0.0;
  for (std::size_t t = 0; t < masked.size(); ++t) {
    if (masked[t] == 0.0f) continue;
    if (constraint.allows(TokenId(t))) z += masked[t];
    else masked[t] = 0.0f;
  }
  return z;
}

class MaskingDecoder final : public Decoder {
 public:
  MaskingDecoder(std::unique_ptr<SamplerChain> chain, std::string constraint)
      : chain_(std::move(chain)), constraint_(std::move(constraint)) {}

  Stats generate(const ModelSet& models, const DecodeOptions& options, TokenStream& stream) override {
    std::vector<float> masked;
    return run_constrained(models, options, stream, *chain_, constraint_,
                           [&](std::span<const float> probs, Constraint& constraint, std::size_t position) {
                             ConstrainedPick pick;
                             if (mask(probs, constraint, masked) <= 0.0) return pick;
                             const double u =
                                 random_stream(options.seed, RandomStream::sample, position).uniform_double();
                             pick.token = sample_from_weights(masked, u);
                             return pick;
                           });
  }

 private:
  std::unique_ptr<SamplerChain> chain_;
  std::string constraint_;
};

const RegisterDecoder reg_masking({
    .name = "masking",
    .doc = "Locally constrained decoding: check every token with mass against the constraint, renormalize, sample. "
           "Metrics: constraint_evaluations, evaluations_per_step, constraint_complete.",
    .params = with_sampling_params({constraint_param_spec(true)}),
    .roles = {"target"},
    .make = [](const Params& p) -> std::unique_ptr<Decoder> {
      if (p.get_string("constraint").empty())
        fail(ErrorCode::invalid_argument, "decoder 'masking': parameter 'constraint' is required");
      return std::make_unique<MaskingDecoder>(chain_from_params(p), p.get_string("constraint"));
    },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(decoders_constrained_masking_decoder)
