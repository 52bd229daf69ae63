// sample / greedy: plain autoregressive decoding with a sampler chain. One target call per token.
// The uniform for position i is random_stream(seed, sample, i), so two runs that reach the same
// position with the same processed distribution pick the same token.
#include <cmath>

#include "core/decoder.hpp"
#include "core/random.hpp"
#include "samplers/sampler.hpp"

namespace decodelab {
namespace {

class SampleDecoder final : public Decoder {
 public:
  explicit SampleDecoder(std::unique_ptr<SamplerChain> chain) : chain_(std::move(chain)) {}

  Stats generate(const ModelSet& models, const DecodeOptions& options, TokenStream& stream) override {
    Stats stats;
    PhaseTimer total(stats, "total");
    LanguageModel& target = models.get("target");
    auto chain = chain_->clone();
    chain->bind({.model = &target});
    const std::vector<TokenId> prompt = stream.tokens();
    const SeqId seq = prefill(target, prompt, stats, true);
    while (!should_stop(stream, options, stats)) {
      const std::span<const float> logits = target.next_logits(seq);
      TokenId token;
      float logprob;
      {
        PhaseTimer timer(stats, "sample");
        Candidates c = Candidates::from_logits(logits);
        chain->apply(c);
        const std::vector<float> p = c.dense_probs(target.vocab_size());
        const double u = random_stream(options.seed, RandomStream::sample, stream.size()).uniform_double();
        token = sample_from_weights(p, u);
        logprob = float(double(logits[std::size_t(token)]) - log_sum_exp(logits));
      }
      chain->accept(token);
      stats.steps += 1;
      if (emit_token(stream, {token, logprob, TokenOrigin::sampled, uint32_t(stats.steps)}, options, target, stats)) break;
      PhaseTimer timer(stats, "forward");
      const TokenId next[] = {token};
      target.append(seq, next);
      stats.target_calls += 1;
      stats.target_nodes += 1;
    }
    target.free_sequence(seq);
    return stats;
  }

 private:
  std::unique_ptr<SamplerChain> chain_;
};

const RegisterDecoder reg_sample({
    .name = "sample",
    .doc = "Autoregressive sampling from the target through a sampler chain (temperature, top-k, top-p, min-p, typical).",
    .params = sampling_param_specs(),
    .roles = {"target"},
    .make = [](const Params& p) -> std::unique_ptr<Decoder> { return std::make_unique<SampleDecoder>(chain_from_params(p)); },
});

const RegisterDecoder reg_greedy({
    .name = "greedy",
    .doc = "Autoregressive greedy decoding: the most likely token at every step (ties: lowest id).",
    .params = {},
    .roles = {"target"},
    .make = [](const Params&) -> std::unique_ptr<Decoder> { return std::make_unique<SampleDecoder>(parse_chain("temperature(t=0)")); },
});

}  // namespace
}  // namespace decodelab
