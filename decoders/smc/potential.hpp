#pragma once
// Potentials for reward-guided SMC. The target over generated sequences x is
//   pi(x) ∝ m(x) * Psi(x),   Psi(x_{1:t}) = prod_{s<=t} psi_s(x_{1:s}),
// and a Potential returns log Psi of a whole prefix (cumulative, not per step): the decoder uses
// the difference between consecutive steps as the incremental factor, and whole-prefix values for
// Metropolis-Hastings moves. Several potentials multiply (their logs add).
//
// Built in (decoder parameters of "smc"):
//   alpha            power tempering, log Psi = (alpha - 1) sum_t log m(x_t | x_<t)  =>  pi ∝ m^alpha
//   constraint       0 while the text can still satisfy a constraint spec (and, once finished, does), else -inf
//   reward_model_weight  beta * sum_t log m_reward(x_t | x_<t) under the model with role "reward_model"
//   reward           an external reward: a named RewardFn (register_reward_provider) or one set with
//                    set_reward() on the decoder; it returns log Psi for every particle's text at once
//                    (telescoping rewards: return alpha * r(text) - alpha * r("")).
//
// External rewards: the daemon (or a test, or an experiment script embedding the library) registers
//   register_reward_provider("unit_tests", [](std::span<const std::string> texts) { ... });
// and requests "smc" with reward=unit_tests. The function is called from the decoding thread, once
// per SMC step with every live particle's generated text, and must return one log-potential each
// (-inf kills a particle).

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/reward.hpp"  // RewardFn, RewardSettable, set_reward
#include "decodelab/decoder.hpp"

namespace decodelab {

// What a potential sees of one particle.
struct ParticleView {
  std::span<const TokenId> prompt;
  std::span<const TokenId> generated;
  std::span<const float> log_m;  // log m(x_t | x_<t) under the target's raw distribution, per generated token
  const std::string* text;       // decoded generated text
  bool finished = false;         // ended with a stop token (or at max tokens): the potential may demand completion
};

class Potential {
 public:
  virtual ~Potential() = default;
  virtual std::string name() const = 0;
  // out[i] = log Psi(particles[i]).
  virtual void log_potential(std::span<const ParticleView> particles, std::span<double> out) = 0;
};

// A named, process-wide reward provider for "smc(reward=NAME)". Re-registering a name replaces it.
void register_reward_provider(const std::string& name, RewardFn fn);
void unregister_reward_provider(const std::string& name);
// Throws Error(not_found) naming the provider.
RewardFn find_reward_provider(const std::string& name);

std::unique_ptr<Potential> tempering_potential(double alpha);
std::unique_ptr<Potential> constraint_potential(const std::string& spec, const LanguageModel& target);
// beta * log-likelihood of the generated tokens under `reward_model`, given the prompt.
std::unique_ptr<Potential> model_potential(LanguageModel& reward_model, double beta);
std::unique_ptr<Potential> reward_potential(std::string name, RewardFn fn);

}  // namespace decodelab
