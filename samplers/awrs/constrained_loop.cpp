#include "samplers/awrs/constrained_loop.hpp"

#include <cmath>
#include <cstdio>

#include "core/error.hpp"

namespace decodelab {

Stats run_constrained(const ModelSet& models, const DecodeOptions& options, TokenStream& stream, const SamplerChain& chain_proto,
                      const std::string& constraint_spec, const PickFn& pick) {
  Stats stats;
  PhaseTimer total(stats, "total");
  LanguageModel& target = models.get("target");
  auto chain = chain_proto.clone();
  chain->bind({.model = &target});
  std::unique_ptr<Constraint> constraint = make_constraint(constraint_spec, target);
  // The constraint judges the generated text only; generation may resume on a stream that already
  // holds generated tokens, which must then satisfy it.
  for (std::size_t i = stream.prompt_size(); i < stream.size(); ++i) constraint->extend(stream.token(i));
  const SeqId seq = prefill(target, stream.tokens(), stats, true);
  double log_weight = 0.0;
  while (!should_stop(stream, options, stats)) {
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
    if (emit_token(stream, {picked.token, logprob, TokenOrigin::sampled, uint32_t(stats.steps)}, options, target, stats)) break;
    PhaseTimer timer(stats, "forward");
    const TokenId next[] = {picked.token};
    target.append(seq, next);
    stats.target_calls += 1;
    stats.target_nodes += 1;
  }
  target.free_sequence(seq);
  stats.metrics["log_weight"] = log_weight;
  stats.metrics["constraint_evaluations"] = double(constraint->evaluations());
  stats.metrics["evaluations_per_step"] = stats.steps ? double(constraint->evaluations()) / double(stats.steps) : 0.0;
  stats.metrics["constraint_complete"] = constraint->is_complete() ? 1.0 : 0.0;
  return stats;
}

}  // namespace decodelab
