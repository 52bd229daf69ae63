// sample / greedy: plain autoregressive decoding with a sampler chain. One target call per token.
// The uniform for position i is random_stream(seed, sample, i), so two runs that reach the same
// position with the same processed distribution pick the same token.
#include <cmath>

#include "decodelab/builtins.hpp"
#include "decodelab/random.hpp"
#include "decodelab/sampler.hpp"
#include "decoders/decode_loop.hpp"

namespace decodelab {
namespace {

class SampleDecoder final : public Decoder {
 public:
  explicit SampleDecoder(std::unique_ptr<SamplerChain> chain) : chain_(std::move(chain)) {}

  Stats generate(const ModelSet& models, const DecodeOptions& options, TokenStream& stream) override {
    DecodeLoop loop(models, options, stream);
    LanguageModel& target = loop.target();
    Stats& stats = loop.stats();
    auto chain = chain_->clone();
    chain->bind({.model = &target});
    const SeqId seq = loop.open(target, stream.tokens());
    while (loop.running()) {
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
      if (loop.emit({token, logprob, TokenOrigin::sampled, uint32_t(stats.steps)})) break;
      if (loop.room(target, seq) == 0) {  // the next token's logits need this one in the context
        loop.stop_for_length(target);
        break;
      }
      PhaseTimer timer(stats, "forward");
      target.append(seq, std::span(&token, 1));
    }
    return loop.finish();
  }

 private:
  std::unique_ptr<SamplerChain> chain_;
};

const RegisterDecoder reg_sample({
    .name = "sample",
    .doc =
        "Autoregressive sampling from the target through a sampler chain (temperature, top-k, top-p, min-p, typical).",
    .params = sampling_param_specs(),
    .roles = {"target"},
    .make = [](const Params& p) -> std::unique_ptr<Decoder> {
      return std::make_unique<SampleDecoder>(chain_from_params(p));
    },
});

const RegisterDecoder reg_greedy({
    .name = "greedy",
    .doc = "Autoregressive greedy decoding: the most likely token at every step (ties: lowest id).",
    .params = {},
    .roles = {"target"},
    .make = [](const Params&) -> std::unique_ptr<Decoder> {
      return std::make_unique<SampleDecoder>(parse_chain("temperature(t=0)"));
    },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(decoders_autoregressive_sample)
