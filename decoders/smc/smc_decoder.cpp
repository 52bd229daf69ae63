// smc: reward-guided sequential Monte Carlo ("Sampling for Quality", docs/smc.md), prefix-only
// or lookahead.
//
// N particles are forked KV sequences of the target. Every token step evaluates the particles'
// newest tokens in ONE evaluate() call (one TreeEval per live particle) and draws each particle's
// next token from the proposal q (the target processed by the sampler chain; q = m by default).
// Every `block` tokens (a block step) the particles are weighted by
//   w <- w * prod_block m(x_t) / q(x_t) * Psi(x_{1:t}) / Psi(x_{1:t-block})
// (Psi: the product of the potentials, potential.hpp), and resampled (systematic, stratified or
// multinomial) when ESS < ess_threshold * N; after resampling every log-weight is set to the log
// mean weight, which keeps the evidence estimate Z-hat = mean_i W_i unbiased for
// sum_x m(x) Psi(x). After a resampling, `mh_steps` Metropolis-Hastings sweeps rejuvenate the
// unfinished particles: cut at a uniform position, regenerate the suffix from q, accept with
//   min(1, [m(x') Psi(x') q(x_suffix)] / [m(x) Psi(x) q(x'_suffix)])
// (suffixes that hit a stop token early are rejected), which leaves the current target invariant.
// The returned sequence is one particle drawn by final weight.
//
// AWRS-SMC (proposal = awrs): each token is drawn by adaptive weighted rejection sampling under the
// constraint (decoders/constrained/awrs.hpp) and the weight gains log Z-hat; with the constraint potential
// checking completion, the particles target m(x) 1[x in L] exactly instead of the myopic LCD law.
//
// Lookahead (lookahead = R > 0): the intermediate targets are twisted by V_t(x) = E_m[Psi(X) /
// Psi(x) | x], estimated by R rollouts from m per particle; the weight gains log V-hat_t -
// log V-hat_{t-1} and V = 1 once a particle is finished. The estimate travels with the particle
// (random-weight SMC) and MH uses it pseudo-marginally, so both stay exact.
//
// Random numbers: particle i's token at position p uses random_stream(seed, sample, p, i + 1);
// resampling at p uses random_stream(seed, resample, p); the final choice random_stream(seed,
// resample, p, 1); AWRS proposals random_stream(seed, proposal, p, i + 1); MH sweeps
// random_stream(seed, user + 1, p, 1 + i + 65536 * sweep); lookahead
// rollouts random_stream(seed, user, p, 1 + (salt << 32) + 4096 i + r), salt 0 for the weights and
// 1 + sweep for MH proposals (independent estimates, as pseudo-marginal MH requires).
//
// Metrics: log_evidence (log Z-hat), resamples, min_ess, mh_proposed, mh_accepted, particles,
// final_ess.
#include <algorithm>
#include <cmath>
#include <limits>

#include "decodelab/builtins.hpp"
#include "decodelab/error.hpp"
#include "decodelab/random.hpp"
#include "decodelab/sampler.hpp"
#include "decoders/constrained/awrs.hpp"
#include "decoders/decode_loop.hpp"
#include "decoders/smc/potential.hpp"
#include "decoders/smc/resampling.hpp"
#include "samplers/constraints/constraint.hpp"

namespace decodelab {
namespace {

constexpr double kMinusInf = -std::numeric_limits<double>::infinity();
// MH moves draw from their own stream: sharing one with the next step's proposal would make the
// move and the next token dependent (and bias the law).
constexpr RandomStream kMoveStream = RandomStream(uint64_t(RandomStream::user) + 1);

struct Particle {
  SeqId seq = -1;
  TokenId pending = -1;  // the newest token: sampled, not yet in the KV cache (prompt's last at first)
  std::vector<TokenId> tokens;
  std::vector<float> log_m;  // raw target log-probability per generated token
  std::vector<float> log_q;  // proposal log-probability per generated token
  std::string text;
  bool stopped = false;  // drew a stop token, or its text reached a stop string
  double log_w = 0.0;
  double log_psi = 0.0;
  double log_v = 0.0;     // lookahead: log of the carried estimate of V_t (0 = prefix-only or finished)
  double log_awrs = 0.0;  // proposal=awrs: log Z-hat of the newest token's draw, not yet in the weight
  std::shared_ptr<Constraint> constraint;  // proposal=awrs: the constraint state of the generated text
};

struct Settings {
  int particles = 8;
  int block = 1;
  double ess_threshold = 0.5;
  ResamplingScheme scheme = ResamplingScheme::systematic;
  int mh_steps = 0;
  int lookahead = 0;
  bool awrs = false;  // proposal: AWRS under the constraint instead of plain sampling from q  // rollouts per particle
                      // for the lookahead twist V_t (0 = prefix-only)
  double alpha = 1.0;
  std::string constraint;
  std::string reward;
  double reward_model_weight = 0.0;
};

class SmcDecoder final : public Decoder, public RewardSettable {
 public:
  SmcDecoder(Settings settings, std::unique_ptr<SamplerChain> chain)
      : s_(std::move(settings)), chain_(std::move(chain)) {}

  void set_reward(RewardFn fn) override { reward_fn_ = std::move(fn); }

  Stats generate(const ModelSet& models, const DecodeOptions& options, TokenStream& stream) override {
    DecodeLoop loop(models, options, stream);
    LanguageModel& target = loop.target();
    Stats& stats = loop.stats();
    const std::vector<TokenId> prompt = stream.tokens();
    if (prompt.empty()) fail(ErrorCode::invalid_argument, "smc: the prompt is empty (the first token needs a context)");
    build_potentials(models, target);
    loop_ = &loop;
    options_ = &options;
    target_ = &target;
    chain_->bind({.model = &target});  // the per-draw clones keep the binding
    prompt_ = prompt;

    // Every particle starts from the prompt minus its last token, which is each one's first pending
    // token, so all steps look alike: one batched evaluate of the pending tokens, then sampling.
    const std::vector<TokenId> head(prompt.begin(), prompt.end() - 1);
    const SeqId root = loop.open(target, head);
    if (loop.prefill_stopped()) return loop.finish();  // cancelled before a particle existed
    // Step k evaluates a particle's token k - 1 on top of the head, so k tokens need k slots.
    const std::size_t room = loop.room(target, root);
    std::vector<Particle> ps(std::size_t(s_.particles));
    fresh_constraint_.reset();
    if (s_.awrs) {
      fresh_constraint_ = make_constraint(s_.constraint, target);
      for (std::size_t i = stream.prompt_size(); i < stream.size(); ++i) fresh_constraint_->extend(stream.token(i));
    }
    for (auto& p : ps) {
      p.seq = loop.adopt(target, target.fork(root));
      p.pending = prompt.back();
      if (s_.awrs) p.constraint = fresh_constraint_->clone();
    }
    loop.release(target, root);

    int max_new = std::max(0, options.max_new_tokens - int(stream.generated_size()));
    // The context's room bounds every particle, rollout and rejuvenation proposal alike.
    const bool length_bound = room < std::size_t(max_new);
    if (length_bound) max_new = int(room);
    int generated = 0;
    double min_ess = s_.particles;
    int64_t resamples = 0, mh_proposed = 0, mh_accepted = 0;
    bool dead = false;
    while (generated < max_new && !all_stopped(ps)) {
      if (options.cancel && options.cancel->load()) {
        stats.stop_reason = "cancelled";
        break;
      }
      std::vector<std::size_t> moved;  // particles that advanced in this block
      for (std::size_t i = 0; i < ps.size(); ++i)
        if (!ps[i].stopped && std::isfinite(ps[i].log_w)) moved.push_back(i);
      std::vector<double> block_log_ratio(ps.size(), 0.0);
      for (int b = 0; b < s_.block && generated < max_new; ++b, ++generated) {
        std::vector<std::size_t> live;
        for (std::size_t i : moved)
          if (!ps[i].stopped) live.push_back(i);
        if (live.empty()) break;
        const std::vector<Matrix> rows = evaluate_pending(ps, live, stats);
        PhaseTimer timer(stats, "sample");
        for (std::size_t k = 0; k < live.size(); ++k) {
          Particle& p = ps[live[k]];
          const double u =
              random_stream(options.seed, RandomStream::sample, prompt.size() + p.tokens.size(), live[k] + 1)
                  .uniform_double();
          if (s_.awrs) {
            PhiloxStream rng =
                random_stream(options.seed, RandomStream::proposal, prompt.size() + p.tokens.size(), live[k] + 1);
            draw_awrs(p, rows[k].row(0), rng);
            if (p.tokens.empty() || !std::isfinite(p.log_awrs)) {
              block_log_ratio[live[k]] = kMinusInf;  // dead end: no allowed token had mass
              continue;
            }
          } else {
            draw(p, rows[k].row(0), u);
          }
          block_log_ratio[live[k]] += double(p.log_m.back()) - double(p.log_q.back()) + p.log_awrs;
        }
      }
      stats.steps += 1;
      const bool last = generated >= max_new;
      // Reweight the particles that moved.
      {
        PhaseTimer timer(stats, "potential");
        const std::vector<double> psi = log_psi(ps, moved, last);
        for (std::size_t k = 0; k < moved.size(); ++k) {
          Particle& p = ps[moved[k]];
          p.log_w += block_log_ratio[moved[k]] + (psi[k] - p.log_psi);
          if (std::isnan(p.log_w)) p.log_w = kMinusInf;  // -inf - -inf: the particle was already dead
          p.log_psi = psi[k];
        }
        if (s_.lookahead > 0) {
          PhaseTimer lookahead_timer(stats, "lookahead");
          const std::vector<double> lv =
              last ? std::vector<double>(moved.size(), 0.0) : log_values(ps, moved, max_new, 0, stats);
          for (std::size_t k = 0; k < moved.size(); ++k) {
            Particle& p = ps[moved[k]];
            if (!std::isfinite(p.log_w)) continue;
            p.log_w += lv[k] - p.log_v;
            p.log_v = lv[k];
          }
        }
      }
      std::vector<double> lw = log_weights(ps);
      if (std::isinf(log_sum_exp(lw))) {
        dead = true;
        break;
      }
      const double ess = effective_sample_size(lw);
      min_ess = std::min(min_ess, ess);
      if (!last && ess < s_.ess_threshold * s_.particles) {
        PhaseTimer timer(stats, "resample");
        resample_particles(ps, prompt.size() + std::size_t(generated));
        resamples += 1;
        for (int sweep = 0; sweep < s_.mh_steps; ++sweep) mh_sweep(ps, sweep, max_new, stats, mh_proposed, mh_accepted);
      }
    }

    std::vector<double> lw = log_weights(ps);
    const double lse = log_sum_exp(lw);
    stats.metrics["log_evidence"] = lse - std::log(double(s_.particles));
    stats.metrics["resamples"] = double(resamples);
    stats.metrics["min_ess"] = min_ess;
    stats.metrics["final_ess"] = effective_sample_size(lw);
    stats.metrics["mh_proposed"] = double(mh_proposed);
    stats.metrics["mh_accepted"] = double(mh_accepted);
    stats.metrics["particles"] = double(s_.particles);
    if (dead || std::isinf(lse)) {
      stats.stop_reason = "all_particles_dead";
    } else if (stats.stop_reason != "cancelled") {
      std::vector<double> w(lw.size());
      for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::exp(lw[i] - lse);
      PhiloxStream rng = random_stream(options.seed, RandomStream::resample, prompt.size() + std::size_t(generated), 1);
      const Particle& chosen =
          ps[std::size_t(sample_from_weights(std::vector<float>(w.begin(), w.end()), rng.uniform_double()))];
      for (std::size_t k = 0; k < chosen.tokens.size(); ++k) {
        if (loop.emit({chosen.tokens[k], chosen.log_m[k], TokenOrigin::sampled, uint32_t(stats.steps)})) break;
      }
      if (stats.stop_reason.empty()) stats.stop_reason = length_bound ? "length" : "max_tokens";
    }
    return loop.finish();
  }

 private:
  static bool all_stopped(const std::vector<Particle>& ps) {
    for (const auto& p : ps)
      if (!p.stopped && std::isfinite(p.log_w)) return false;
    return true;
  }
  static std::vector<double> log_weights(const std::vector<Particle>& ps) {
    std::vector<double> lw;
    for (const auto& p : ps) lw.push_back(p.log_w);
    return lw;
  }

  // Appends t's text; true when the text now contains a stop string (the particle is finished).
  bool append_text(Particle& p, TokenId t) const {
    const std::size_t before = p.text.size();
    p.text += target_->token_text(t);
    bool hit = false;
    for (const std::string& s : options_->stop_strings) {
      const std::size_t from = before >= s.size() ? before - s.size() + 1 : 0;  // only matches the new text can make
      hit = hit || (!s.empty() && p.text.find(s, from) != std::string::npos);
    }
    return hit;
  }

  bool is_stop(TokenId t) const {
    if (options_->stop_at_eos && t == target_->info().eos) return true;
    for (TokenId s : options_->stop_tokens)
      if (s == t) return true;
    return false;
  }

  // One batched forward pass over the pending tokens of `which`; commits them.
  std::vector<Matrix> evaluate_pending(std::vector<Particle>& ps, const std::vector<std::size_t>& which, Stats& stats) {
    PhaseTimer timer(stats, "forward");
    std::vector<TreeEval> batch;
    for (std::size_t i : which) batch.push_back({ps[i].seq, {TreeNode{ps[i].pending, -1}}});
    std::vector<Matrix> rows;
    target_->evaluate(batch, rows);
    const int32_t path[] = {0};
    for (std::size_t i : which) target_->commit(ps[i].seq, path);
    return rows;
  }

  // Draws the next token of `p` from q = chain(logits) (or from m itself: rollouts) with uniform u.
  void draw(Particle& p, std::span<const float> logits, double u, bool from_model = false) {
    std::vector<float> q;
    if (from_model) {
      q = softmax(logits);
    } else {
      Candidates c = Candidates::from_logits(logits);
      auto chain = chain_->clone();
      chain->apply(c);
      q = c.dense_probs(int(logits.size()));
    }
    const TokenId t = sample_from_weights(q, u);
    p.tokens.push_back(t);
    p.log_m.push_back(float(double(logits[std::size_t(t)]) - decodelab::log_sum_exp(logits)));
    p.log_q.push_back(float(std::log(double(q[std::size_t(t)]))));
    const bool hit_stop_string = append_text(p, t);
    p.pending = t;
    p.stopped = is_stop(t) || hit_stop_string;
  }

  // AWRS proposal: draws from q restricted to the tokens the particle's constraint allows; the
  // token's law is q 1[allowed] / Z and log Z-hat (unbiased, properly weighted) goes to log_awrs,
  // so m / q * Z-hat is the incremental weight for m(x) 1[allowed]. A dead end stops the particle.
  void draw_awrs(Particle& p, std::span<const float> logits, PhiloxStream& rng) {
    Candidates c = Candidates::from_logits(logits);
    auto chain = chain_->clone();
    chain->apply(c);
    const std::vector<float> q = c.dense_probs(int(logits.size()));
    const AwrsDraw d = awrs_sample(q, *p.constraint, rng);
    p.log_awrs = d.log_weight;
    if (d.token < 0) {
      p.stopped = true;
      return;
    }
    const TokenId t = d.token;
    p.constraint->extend(t);
    p.tokens.push_back(t);
    p.log_m.push_back(float(double(logits[std::size_t(t)]) - decodelab::log_sum_exp(logits)));
    p.log_q.push_back(float(std::log(double(q[std::size_t(t)]))));
    const bool hit_stop_string = append_text(p, t);
    p.pending = t;
    p.stopped = is_stop(t) || hit_stop_string;
  }

  void build_potentials(const ModelSet& models, LanguageModel& target) {
    potentials_.clear();
    if (s_.alpha != 1.0) potentials_.push_back(tempering_potential(s_.alpha));
    if (!s_.constraint.empty()) potentials_.push_back(constraint_potential(s_.constraint, target));
    if (s_.reward_model_weight != 0.0)
      potentials_.push_back(model_potential(models.get("reward_model"), s_.reward_model_weight));
    if (reward_fn_) potentials_.push_back(reward_potential("set_reward", reward_fn_));
    else if (!s_.reward.empty()) potentials_.push_back(reward_potential(s_.reward, find_reward_provider(s_.reward)));
  }

  // log Psi of the particles `which` (finished: stopped or at the last step).
  std::vector<double> log_psi(const std::vector<Particle>& ps, const std::vector<std::size_t>& which, bool last) {
    std::vector<ParticleView> views;
    for (std::size_t i : which)
      views.push_back({prompt_, ps[i].tokens, ps[i].log_m, &ps[i].text, ps[i].stopped || last});
    std::vector<double> sum(which.size(), 0.0), part(which.size());
    for (auto& pot : potentials_) {
      pot->log_potential(views, part);
      for (std::size_t k = 0; k < sum.size(); ++k) sum[k] += part[k];
    }
    return sum;
  }

  // Lookahead: log V-hat_t for the particles `which`, V_t(x) = E_{X ~ m}[Psi(X) / Psi(x) | prefix x]
  // estimated by `lookahead` rollouts from m to the end (stop token or max length), all particles'
  // rollouts advancing in one batched forward pass per token. Stopped particles get V = 1 (log 0).
  // The estimate is unbiased, so carrying it with the particle keeps SMC exact (random weights).
  std::vector<double> log_values(const std::vector<Particle>& ps, const std::vector<std::size_t>& which, int max_new,
                                 uint64_t salt, Stats& stats) {
    std::vector<Particle> rollouts;
    std::vector<std::size_t> owner;  // index into `which`
    for (std::size_t k = 0; k < which.size(); ++k) {
      const Particle& p = ps[which[k]];
      if (p.stopped || !std::isfinite(p.log_psi)) continue;
      for (int r = 0; r < s_.lookahead; ++r) {
        Particle copy = p;
        copy.seq = loop_->adopt(*target_, target_->fork(p.seq));
        rollouts.push_back(std::move(copy));
        owner.push_back(k);
      }
    }
    std::vector<PhiloxStream> rngs;
    for (std::size_t j = 0; j < rollouts.size(); ++j)
      rngs.push_back(random_stream(options_->seed, RandomStream::user, prompt_.size() + rollouts[j].tokens.size(),
                                   1 + (salt << 32) + which[owner[j]] * 4096 + j % std::size_t(s_.lookahead)));
    for (;;) {
      std::vector<std::size_t> live;
      for (std::size_t j = 0; j < rollouts.size(); ++j)
        if (!rollouts[j].stopped && int(rollouts[j].tokens.size()) < max_new) live.push_back(j);
      if (live.empty()) break;
      const std::vector<Matrix> rows = evaluate_pending(rollouts, live, stats);
      for (std::size_t k = 0; k < live.size(); ++k)
        draw(rollouts[live[k]], rows[k].row(0), rngs[live[k]].uniform_double(), true);
    }
    std::vector<std::size_t> all(rollouts.size());
    for (std::size_t j = 0; j < all.size(); ++j) all[j] = j;
    const std::vector<double> psi = log_psi(rollouts, all, true);
    std::vector<std::vector<double>> per(which.size());
    for (std::size_t j = 0; j < rollouts.size(); ++j) {
      per[owner[j]].push_back(psi[j]);
      loop_->release(*target_, rollouts[j].seq);
    }
    std::vector<double> out(which.size(), 0.0);
    for (std::size_t k = 0; k < which.size(); ++k)
      if (!per[k].empty()) out[k] = log_sum_exp(per[k]) - std::log(double(per[k].size())) - ps[which[k]].log_psi;
    return out;
  }

  void resample_particles(std::vector<Particle>& ps, std::size_t position) {
    std::vector<double> lw = log_weights(ps);
    const double lse = log_sum_exp(lw);
    std::vector<double> w(lw.size());
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::exp(lw[i] - lse);
    PhiloxStream rng = random_stream(options_->seed, RandomStream::resample, position);
    const std::vector<int> ancestors = resample(w, int(ps.size()), s_.scheme, rng);
    const double mean = lse - std::log(double(ps.size()));
    std::vector<Particle> next;
    next.reserve(ps.size());
    for (int a : ancestors) {
      Particle p = ps[std::size_t(a)];
      p.seq = loop_->adopt(*target_, target_->fork(ps[std::size_t(a)].seq));
      if (p.constraint) p.constraint = p.constraint->clone();
      p.log_w = mean;
      next.push_back(std::move(p));
    }
    for (auto& p : ps) loop_->release(*target_, p.seq);
    ps = std::move(next);
  }

  // One MH sweep over the unfinished particles, regenerating suffixes in lockstep (one batched
  // forward pass per regenerated position).
  void mh_sweep(std::vector<Particle>& ps, int sweep, int max_new, Stats& stats, int64_t& proposed, int64_t& accepted) {
    struct Move {
      std::size_t index;
      PhiloxStream rng;
      Particle proposal;
      std::size_t length;  // tokens the proposal must reach
      bool rejected = false;
    };
    std::vector<Move> moves;
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const Particle& p = ps[i];
      if (p.stopped || p.tokens.empty() || !std::isfinite(p.log_w)) continue;
      const std::size_t position = prompt_.size() + p.tokens.size();
      Move m{i,
             random_stream(options_->seed, kMoveStream, position, 1 + i + 65536 * uint64_t(sweep)),
             {},
             p.tokens.size()};
      const std::size_t cut =
          std::min(p.tokens.size() - 1, std::size_t(m.rng.uniform_double() * double(p.tokens.size())));
      Particle& q = m.proposal;
      q = p;
      q.tokens.resize(cut);
      q.log_m.resize(cut);
      q.log_q.resize(cut);
      q.text.clear();
      for (TokenId t : q.tokens) q.text += target_->token_text(t);
      q.seq = loop_->adopt(*target_, target_->fork(p.seq));
      // Committed: prompt + tokens minus the newest; keep prompt + tokens[0, cut) minus its newest.
      target_->rollback(q.seq, prompt_.size() + cut - 1);
      q.pending = cut == 0 ? prompt_.back() : q.tokens[cut - 1];
      moves.push_back(std::move(m));
    }
    for (;;) {
      std::vector<std::size_t> live;
      for (std::size_t k = 0; k < moves.size(); ++k)
        if (!moves[k].rejected && moves[k].proposal.tokens.size() < moves[k].length) live.push_back(k);
      if (live.empty()) break;
      std::vector<Particle> tmp;
      std::vector<std::size_t> idx;
      for (std::size_t k : live) {
        tmp.push_back(moves[k].proposal);
        idx.push_back(tmp.size() - 1);
      }
      const std::vector<Matrix> rows = evaluate_pending(tmp, idx, stats);
      for (std::size_t j = 0; j < live.size(); ++j) {
        Move& m = moves[live[j]];
        m.proposal.pending = tmp[j].pending;
        draw(m.proposal, rows[j].row(0), m.rng.uniform_double());
        if (m.proposal.stopped && m.proposal.tokens.size() < m.length) m.rejected = true;
      }
    }
    std::vector<std::size_t> done;
    for (std::size_t k = 0; k < moves.size(); ++k)
      if (!moves[k].rejected) done.push_back(k);
    std::vector<Particle> proposals;
    std::vector<std::size_t> all;
    for (std::size_t k : done) {
      proposals.push_back(moves[k].proposal);
      all.push_back(proposals.size() - 1);
    }
    std::vector<double> psi = log_psi(proposals, all, false);
    for (std::size_t j = 0; j < proposals.size(); ++j) proposals[j].log_psi = psi[j];
    // Pseudo-marginal lookahead: a fresh V-hat for the proposal, the carried one for the current state.
    const std::vector<double> lv = s_.lookahead > 0 ? log_values(proposals, all, max_new, 1 + uint64_t(sweep), stats)
                                                    : std::vector<double>(all.size(), 0.0);
    for (std::size_t k = 0; k < moves.size(); ++k) {
      Move& m = moves[k];
      proposed += 1;
      Particle& cur = ps[m.index];
      bool accept = false;
      if (!m.rejected) {
        const std::size_t j = std::size_t(std::find(done.begin(), done.end(), k) - done.begin());
        m.proposal.log_psi = psi[j];
        m.proposal.log_v = lv[j];
        double log_a = m.proposal.log_psi - cur.log_psi + m.proposal.log_v - cur.log_v;
        for (std::size_t t = 0; t < cur.tokens.size(); ++t) {
          log_a += double(m.proposal.log_m[t]) - double(cur.log_m[t]);
          log_a += double(cur.log_q[t]) - double(m.proposal.log_q[t]);
        }
        accept = std::log(m.rng.uniform_double()) < log_a;
      }
      if (accept) {
        accepted += 1;
        m.proposal.log_w = cur.log_w;  // moves leave the weights alone
        loop_->release(*target_, cur.seq);
        if (m.proposal.constraint) {  // the new suffix satisfied the constraint potential: replay it
          std::shared_ptr<Constraint> c = fresh_constraint_->clone();
          for (TokenId t : m.proposal.tokens) c->extend(t);
          m.proposal.constraint = std::move(c);
        }
        cur = std::move(m.proposal);
      } else {
        loop_->release(*target_, m.proposal.seq);
      }
    }
  }

  Settings s_;
  std::unique_ptr<SamplerChain> chain_;
  RewardFn reward_fn_;
  std::vector<std::unique_ptr<Potential>> potentials_;
  DecodeLoop* loop_ = nullptr;  // owns every particle's sequence, so an error frees them all
  const DecodeOptions* options_ = nullptr;
  LanguageModel* target_ = nullptr;
  std::vector<TokenId> prompt_;
  std::unique_ptr<Constraint> fresh_constraint_;  // proposal=awrs: the state before any particle token
};

const RegisterDecoder reg_smc({
    .name = "smc",
    .doc = "Reward-guided sequential Monte Carlo (prefix-only): N forked particles, potentials (power tempering, "
           "constraint, "
           "reward model, external reward), ESS-triggered resampling, MH rejuvenation; returns a particle drawn by "
           "weight and "
           "metrics log_evidence, resamples, min_ess, mh_accepted.",
    .params = with_sampling_params({
        ParamSpec::integer("particles", 8, 1, 4096, "number of particles N"),
        ParamSpec::integer("block", 1, 1, 4096, "tokens per SMC step (weights and resampling at block boundaries)"),
        ParamSpec::real("ess_threshold", 0.5, 0.0, 1.0,
                        "resample when ESS < ess_threshold * N (0 = never, 1 = always)"),
        ParamSpec::string("resampling", "systematic", "resampling scheme", {"systematic", "stratified", "multinomial"}),
        ParamSpec::integer("mh_steps", 0, 0, 64, "Metropolis-Hastings rejuvenation sweeps after each resampling"),
        ParamSpec::string("proposal", "model",
                          "model: draw from the processed target; awrs: adaptive weighted rejection sampling under "
                          "`constraint` (AWRS-SMC)",
                          {"model", "awrs"}),
        ParamSpec::integer(
            "lookahead", 0, 0, 1024,
            "lookahead SMC: rollouts per particle estimating the future potential V_t (0 = prefix-only)"),
        ParamSpec::real("alpha", 1.0, 0.0, 64.0, "power-tempering exponent: target m(x)^alpha (1 = off)"),
        ParamSpec::string(
            "constraint", "",
            "constraint potential: a constraint spec (regex(pattern=...), json, stop(...)); empty = none"),
        ParamSpec::string("reward", "",
                          "name of a registered external reward provider (register_reward_provider); empty = none"),
        ParamSpec::real("reward_model_weight", 0.0, -1e6, 1e6,
                        "beta: adds beta * log-likelihood under role 'reward_model' (0 = off)"),
    }),
    .roles = {"target"},
    .make = [](const Params& p) -> std::unique_ptr<Decoder> {
      Settings s;
      s.particles = int(p.get_int("particles"));
      s.block = int(p.get_int("block"));
      s.ess_threshold = p.get_real("ess_threshold");
      s.scheme = parse_resampling_scheme(p.get_string("resampling"));
      s.mh_steps = int(p.get_int("mh_steps"));
      s.lookahead = int(p.get_int("lookahead"));
      s.awrs = p.get_string("proposal") == "awrs";
      s.alpha = p.get_real("alpha");
      s.constraint = p.get_string("constraint");
      if (s.awrs && s.constraint.empty())
        fail(ErrorCode::invalid_argument, "decoder 'smc': proposal=awrs needs a 'constraint'");
      s.reward = p.get_string("reward");
      s.reward_model_weight = p.get_real("reward_model_weight");
      return std::make_unique<SmcDecoder>(std::move(s), chain_from_params(p));
    },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(decoders_smc_smc_decoder)
