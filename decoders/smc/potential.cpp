#include "decoders/smc/potential.hpp"

#include <cmath>
#include <limits>
#include <map>
#include <mutex>

#include "decodelab/error.hpp"
#include "samplers/constraints/constraint.hpp"

namespace decodelab {
namespace {

constexpr double kMinusInf = -std::numeric_limits<double>::infinity();

std::mutex& providers_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, RewardFn>& providers() {
  static std::map<std::string, RewardFn> p;
  return p;
}

class TemperingPotential final : public Potential {
 public:
  explicit TemperingPotential(double alpha) : alpha_(alpha) {}
  std::string name() const override { return "tempering(alpha=" + std::to_string(alpha_) + ")"; }
  void log_potential(std::span<const ParticleView> particles, std::span<double> out) override {
    for (std::size_t i = 0; i < particles.size(); ++i) {
      double s = 0.0;
      for (float l : particles[i].log_m) s += l;
      out[i] = (alpha_ - 1.0) * s;
    }
  }

 private:
  double alpha_;
};

// Re-checks each prefix from scratch (a fresh state extended token by token): the decoder's
// particles are copied and rejuvenated freely, and a stateless potential cannot go stale.
class ConstraintPotential final : public Potential {
 public:
  ConstraintPotential(const std::string& spec, const LanguageModel& target) : fresh_(make_constraint(spec, target)) {}
  std::string name() const override { return "constraint(" + fresh_->name() + ")"; }
  void log_potential(std::span<const ParticleView> particles, std::span<double> out) override {
    for (std::size_t i = 0; i < particles.size(); ++i) {
      auto c = fresh_->clone();
      double v = 0.0;
      for (TokenId t : particles[i].generated) {
        if (!c->allows(t)) {
          v = kMinusInf;
          break;
        }
        c->extend(t);
      }
      if (v == 0.0 && particles[i].finished && !particles[i].generated.empty() &&
          particles[i].generated.back() != c->vocabulary().eos && !c->is_complete())
        v = kMinusInf;
      out[i] = v;
    }
  }

 private:
  std::unique_ptr<Constraint> fresh_;
};

// Scores each prefix on a fresh reward-model sequence: simple and always consistent; its cost
// grows with the square of the length (fine for reranking-size runs, see docs/smc.md).
class ModelPotential final : public Potential {
 public:
  ModelPotential(LanguageModel& model, double beta) : model_(model), beta_(beta) {}
  std::string name() const override { return "reward_model(" + model_.info().name + ")"; }
  void log_potential(std::span<const ParticleView> particles, std::span<double> out) override {
    for (std::size_t i = 0; i < particles.size(); ++i) {
      const ParticleView& v = particles[i];
      if (v.prompt.empty()) fail(ErrorCode::invalid_argument, "smc: the reward model needs a non-empty prompt");
      const SeqId s = model_.new_sequence();
      const std::span<const float> after_prompt = model_.append(s, v.prompt);
      const std::vector<float> prev(after_prompt.begin(), after_prompt.end());
      double ll = 0.0;
      if (!v.generated.empty()) {
        TreeEval tree{s, chain_nodes(v.generated)};
        std::vector<Matrix> rows;
        model_.evaluate(std::span<const TreeEval>(&tree, 1), rows);
        for (std::size_t k = 0; k < v.generated.size(); ++k) {
          const std::span<const float> logits = k == 0 ? std::span<const float>(prev) : rows[0].row(int(k - 1));
          ll += double(logits[std::size_t(v.generated[k])]) - log_sum_exp(logits);
        }
      }
      model_.free_sequence(s);
      out[i] = beta_ * ll;
    }
  }

 private:
  LanguageModel& model_;
  double beta_;
};

class RewardPotential final : public Potential {
 public:
  RewardPotential(std::string name, RewardFn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string name() const override { return "reward(" + name_ + ")"; }
  void log_potential(std::span<const ParticleView> particles, std::span<double> out) override {
    std::vector<std::string> texts;
    texts.reserve(particles.size());
    for (const auto& p : particles) texts.push_back(*p.text);
    const std::vector<double> r = fn_(texts);
    if (r.size() != particles.size())
      fail(ErrorCode::invalid_argument, "smc: reward '" + name_ + "' returned " + std::to_string(r.size()) +
                                            " values for " + std::to_string(particles.size()) + " particles");
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (std::isnan(r[i]) || r[i] == std::numeric_limits<double>::infinity())
        fail(ErrorCode::numeric,
             "smc: reward '" + name_ + "' returned " + std::to_string(r[i]) + " for particle " + std::to_string(i));
      out[i] = r[i];
    }
  }

 private:
  std::string name_;
  RewardFn fn_;
};

}  // namespace

void register_reward_provider(const std::string& name, RewardFn fn) {
  if (name.empty() || !fn) fail(ErrorCode::invalid_argument, "register_reward_provider: empty name or function");
  std::lock_guard lock(providers_mutex());
  providers()[name] = std::move(fn);
}

void unregister_reward_provider(const std::string& name) {
  std::lock_guard lock(providers_mutex());
  providers().erase(name);
}

RewardFn find_reward_provider(const std::string& name) {
  std::lock_guard lock(providers_mutex());
  auto it = providers().find(name);
  if (it == providers().end()) {
    std::string known;
    for (const auto& [n, f] : providers()) known += " " + n;
    fail(ErrorCode::not_found,
         "smc: unknown reward provider '" + name + "'; registered:" + (known.empty() ? " none" : known));
  }
  return it->second;
}

std::unique_ptr<Potential> tempering_potential(double alpha) { return std::make_unique<TemperingPotential>(alpha); }
std::unique_ptr<Potential> constraint_potential(const std::string& spec, const LanguageModel& target) {
  return std::make_unique<ConstraintPotential>(spec, target);
}
std::unique_ptr<Potential> model_potential(LanguageModel& reward_model, double beta) {
  return std::make_unique<ModelPotential>(reward_model, beta);
}
std::unique_ptr<Potential> reward_potential(std::string name, RewardFn fn) {
  return std::make_unique<RewardPotential>(std::move(name), std::move(fn));
}

}  // namespace decodelab
