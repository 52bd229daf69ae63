#include "decoders/constrained/constrained_loop.hpp"

#include <cmath>
#include <cstdio>

#include "decodelab/error.hpp"
#include "decoders/decode_loop.hpp"

namespace decodelab {

Stats run_constrained(const ModelSet& models, const DecodeOptions& options, TokenStream& stream,
                      const SamplerChain& chain_proto, const std::string& constraint_spec, const PickFn& pick) {
  DecodeLoop loop(models, options, stream);
  LanguageModel& target = loop.target();
  Stats& stats = loop.stats();
  auto chain = chain_proto.clone();
  chain->bind({.model = &target});
  std::unique_ptr<Constraint> constraint = make_constraint(constraint_spec, target);
  // The constraint judges the generated text only; generation may resume on a stream that already
  // holds generated tokens, which must then satisfy it.
  for (std::size_t i = stream.prompt_size(); i < stream.size(); ++i) constraint->extend(stream.token(i));
  const SeqId seq = loop.open(target, stream.tokens());
  double log_weight = 0.0;
  while (loop.running()) {
    const std::span<const float> logits = target.next_logits(seq);
    ConstrainedPick picked;
    {
      PhaseTimer timer(stats, "sample");
      Candidates c = Candidates::from_logits(logits);
      auto step_chain = chain->clone();
      step_chain->apply(c);
      const std::vector<float> p = c.dense_probs(target.vocab_size());
      picked = pick(p, *constraint, stream.size());
    }
    if (picked.token < 0) {
      stats.stop_reason = constraint->is_complete() ? "constraint_complete" : "constraint_dead_end";
      break;
    }
    char key[48];
    std::snprintf(key, sizeof key, "step_log_weight.%06lld", static_cast<long long>(stats.steps));
    stats.metrics[key] = picked.log_weight;
    log_weight += picked.log_weight;
    constraint->extend(picked.token);
    chain->accept(picked.token);
    stats.steps += 1;
    const float logprob = float(double(logits[std::size_t(picked.token)]) - log_sum_exp(logits));
    if (loop.emit({picked.token, logprob, TokenOrigin::sampled, uint32_t(stats.steps)})) break;
    if (loop.room(target, seq) == 0) {
      loop.stop_for_length(target);
      break;
    }
    PhaseTimer timer(stats, "forward");
    target.append(seq, std::span(&picked.token, 1));
  }
  stats.metrics["log_weight"] = log_weight;
  stats.metrics["constraint_evaluations"] = double(constraint->evaluations());
  stats.metrics["evaluations_per_step"] = stats.steps ? double(constraint->evaluations()) / double(stats.steps) : 0.0;
  stats.metrics["constraint_complete"] = constraint->is_complete() ? 1.0 : 0.0;
  return loop.finish();
}

}  // namespace decodelab
