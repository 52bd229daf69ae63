// cntp: cautious next-token prediction (Wang et al., Findings of ACL 2025; docs/cntp.md).
//
// Each step takes the target's logits for the committed prefix, runs them through the sampler
// chain (q) and computes the entropy H of q. N = CntpSchedule::trial_count(H) trials:
//   N == 1: one token drawn from q, exactly as the `sample` decoder draws it (same uniform), so
//           max_trials = 1 (or thresholds that are never reached) IS the sample decoder;
//   N > 1:  N independent trials from the prefix. Their first tokens are drawn from the step's q
//           (no re-evaluation of the prefix); each trial that goes on gets a fork of the main KV
//           sequence (shared prefix, nothing copied), and every following token of every live
//           trial is evaluated in ONE batched evaluate() call per position. A trial ends after a
//           punctuation token (kept), a stop token / eos, or when it reaches the token budget. The
//           trial with the lowest perplexity over the processed log-probabilities is committed to
//           the stream in one go, its fork becomes the main sequence (its sampler-chain clone the
//           main chain), and the other forks are freed.
//
// Forward passes of a branching step: one batched call per position beyond the first of the
// longest trial (sum_n (L_n - 1) nodes), plus the winner's last token when generation goes on;
// the reference re-runs the prefix per trial and runs the trials one after the other.
//
// Random numbers: a non-branching step at position p uses random_stream(seed, sample, p) (the
// `sample` decoder's uniform); trial n of a branching step starting at p draws its tokens one after
// the other from random_stream(seed, proposal, p, n + 1). Keying by the step's start position (not
// by the token's position) keeps a later step from reusing the numbers of a discarded trial.
//
// Metrics: branching_steps, trials (trials run by branching steps), tokens_sampled (every token drawn,
// discarded trials included) vs tokens_committed, mean_trials_per_branch, max_trials_used,
// mean_entropy, mean_committed_per_branch, punctuation_tokens (size of the punctuation set).
// accepted_per_step counts the tokens committed per step.
#include <algorithm>
#include <cmath>

#include "decodelab/builtins.hpp"
#include "decodelab/error.hpp"
#include "decodelab/random.hpp"
#include "decodelab/sampler.hpp"
#include "decoders/branching/cntp.hpp"
#include "decoders/decode_loop.hpp"

namespace decodelab {
namespace {

struct Trial {
  SeqId seq = -1;                  // fork of the main sequence; -1 while the trial needs no forward pass
  std::unique_ptr<Sampler> chain;  // the sampler chain's state along this trial
  PhiloxStream rng{0, 0};
  std::vector<TokenId> tokens;
  std::vector<float> raw_logprob;  // under the raw target distribution, for the stream's records
  TrialScore score;
  bool done = false;
};

class CntpDecoder final : public Decoder {
 public:
  CntpDecoder(CntpSchedule schedule, PunctuationRule rule, std::unique_ptr<SamplerChain> chain)
      : schedule_(schedule), rule_(rule), chain_(std::move(chain)) {}

  Stats generate(const ModelSet& models, const DecodeOptions& options, TokenStream& stream) override {
    DecodeLoop loop(models, options, stream);
    LanguageModel& target = loop.target();
    Stats& stats = loop.stats();
    if (stream.empty())
      fail(ErrorCode::invalid_argument, "cntp: the prompt is empty (the first token needs a context)");
    loop_ = &loop;
    target_ = &target;
    options_ = &options;
    punctuation_ = punctuation_mask(target, rule_);
    chain_state_ = chain_->clone();
    chain_state_->bind({.model = &target});
    const std::vector<TokenId> prompt = stream.tokens();
    seq_ = loop.open(target, prompt);

    int64_t branching = 0, trials_run = 0, sampled = 0, committed_in_branches = 0, max_used = 1;
    double entropy_sum = 0.0;
    while (loop.running()) {
      const std::span<const float> logits = target.next_logits(seq_);
      std::vector<float> q;
      int n_trials;
      {
        PhaseTimer timer(stats, "sample");
        Candidates c = Candidates::from_logits(logits);
        chain_state_->apply(c);
        q = c.dense_probs(target.vocab_size());
        const double h = cntp_entropy(q);
        entropy_sum += h;
        n_trials = schedule_.trials(h);
      }
      stats.steps += 1;
      if (n_trials <= 1) {
        sampled += 1;
        if (step_single(logits, q, stream, stats)) break;
        continue;
      }
      branching += 1;
      trials_run += n_trials;
      max_used = std::max<int64_t>(max_used, n_trials);
      const std::size_t before = stream.size();
      const bool stop = step_branch(logits, q, n_trials, stream, stats, sampled);
      committed_in_branches += int64_t(stream.size() - before);
      if (stop) break;
    }
    seq_ = -1;

    stats.metrics["branching_steps"] = double(branching);
    stats.metrics["trials"] = double(trials_run);
    stats.metrics["tokens_sampled"] = double(sampled);
    stats.metrics["tokens_committed"] = double(stats.tokens_generated);
    stats.metrics["mean_trials_per_branch"] = branching ? double(trials_run) / double(branching) : 0.0;
    stats.metrics["max_trials_used"] = double(max_used);
    stats.metrics["mean_entropy"] = stats.steps ? entropy_sum / double(stats.steps) : 0.0;
    stats.metrics["mean_committed_per_branch"] = branching ? double(committed_in_branches) / double(branching) : 0.0;
    stats.metrics["punctuation_tokens"] = double(std::count(punctuation_.begin(), punctuation_.end(), true));
    return loop.finish();
  }

 private:
  static float raw_logprob(std::span<const float> logits, TokenId t) {
    return float(double(logits[std::size_t(t)]) - log_sum_exp(logits));
  }

  // Whether a trial ends after token t (the token itself is kept).
  bool ends_trial(TokenId t) const {
    if (punctuation_[std::size_t(t)]) return true;
    if (options_->stop_at_eos && t == target_->info().eos) return true;
    return std::find(options_->stop_tokens.begin(), options_->stop_tokens.end(), t) != options_->stop_tokens.end();
  }

  // N = 1: the `sample` decoder's step. Returns whether generation stops.
  bool step_single(std::span<const float> logits, const std::vector<float>& q, TokenStream& stream, Stats& stats) {
    TokenId token;
    float logprob;
    {
      PhaseTimer timer(stats, "sample");
      const double u = random_stream(options_->seed, RandomStream::sample, stream.size()).uniform_double();
      token = sample_from_weights(q, u);
      logprob = raw_logprob(logits, token);
    }
    chain_state_->accept(token);
    stats.record_accepted(1);
    if (loop_->emit({token, logprob, TokenOrigin::sampled, uint32_t(stats.steps)})) return true;
    if (no_room()) return true;
    PhaseTimer timer(stats, "forward");
    target_->append(seq_, std::span(&token, 1));
    return false;
  }

  // Whether the main sequence's context is full, so the last emitted token cannot be evaluated:
  // generation ends with stop reason "length".
  bool no_room() {
    if (loop_->room(*target_, seq_) > 0) return false;
    loop_->stop_for_length(*target_);
    return true;
  }

  // Draws trial `t`'s next token from the processed distribution `q`.
  void draw(Trial& t, std::span<const float> logits, const std::vector<float>& q, std::size_t budget) {
    const TokenId x = sample_from_weights(q, t.rng.uniform_double());
    t.tokens.push_back(x);
    t.raw_logprob.push_back(raw_logprob(logits, x));
    t.score.sum_log_q += std::log(double(q[std::size_t(x)]));
    t.score.length += 1;
    t.chain->accept(x);
    t.done = ends_trial(x) || t.tokens.size() >= budget;
  }

  void free_trials(std::vector<Trial>& trials) {
    for (Trial& t : trials) {
      if (t.seq >= 0) loop_->release(*target_, t.seq);
      t.seq = -1;
    }
  }

  // N > 1: runs the trials in lock-step, commits the lowest-perplexity one. Returns whether
  // generation stops; `sampled` counts every token drawn.
  bool step_branch(std::span<const float> logits, const std::vector<float>& q, int n_trials, TokenStream& stream,
                   Stats& stats, int64_t& sampled) {
    std::vector<Trial> trials(static_cast<std::size_t>(n_trials));  // their forks belong to the loop
    return run_trials(logits, q, trials, stream, stats, sampled);
  }

  bool run_trials(std::span<const float> logits, const std::vector<float>& q, std::vector<Trial>& trials,
                  TokenStream& stream, Stats& stats, int64_t& sampled) {
    const int n_trials = int(trials.size());
    const std::size_t start = stream.size();
    // > 0: should_stop passed. A trial's tokens but its last are evaluated on a fork of the main
    // sequence and the winner's last is appended to it, so a trial fits in the context's room.
    const std::size_t budget = std::max<std::size_t>(
        1, std::min(std::size_t(options_->max_new_tokens) - stream.generated_size(), loop_->room(*target_, seq_)));
    {
      PhaseTimer timer(stats, "sample");
      for (int n = 0; n < n_trials; ++n) {
        Trial& t = trials[std::size_t(n)];
        t.chain = chain_state_->clone();
        t.rng = random_stream(options_->seed, RandomStream::proposal, start, uint64_t(n) + 1);
        draw(t, logits, q, budget);  // the step's logits and q: the prefix is not evaluated again
      }
    }
    sampled += n_trials;
    std::vector<Matrix> rows;
    for (;;) {
      std::vector<std::size_t> live;
      for (std::size_t n = 0; n < trials.size(); ++n)
        if (!trials[n].done) live.push_back(n);
      if (live.empty()) break;
      if (options_->cancel && options_->cancel->load(std::memory_order_relaxed)) {
        free_trials(trials);
        stats.stop_reason = "cancelled";
        return true;
      }
      {
        PhaseTimer timer(stats, "forward");
        std::vector<TreeEval> batch;
        batch.reserve(live.size());
        for (std::size_t n : live) {
          Trial& t = trials[n];
          if (t.seq < 0) t.seq = loop_->adopt(*target_, target_->fork(seq_));
          batch.push_back({t.seq, {TreeNode{t.tokens.back(), -1}}});
        }
        target_->evaluate(batch, rows);
        const int32_t path[] = {0};
        for (std::size_t n : live) target_->commit(trials[n].seq, path);
      }
      PhaseTimer timer(stats, "sample");
      for (std::size_t k = 0; k < live.size(); ++k) {
        Trial& t = trials[live[k]];
        const std::span<const float> row = rows[k].row(0);
        Candidates c = Candidates::from_logits(row);
        t.chain->apply(c);
        draw(t, row, c.dense_probs(target_->vocab_size()), budget);
        sampled += 1;
      }
    }

    std::vector<TrialScore> scores;
    for (const Trial& t : trials) scores.push_back(t.score);
    Trial& best = trials[lowest_perplexity(scores)];
    stats.record_accepted(int64_t(best.tokens.size()));
    // The winner's fork (if it has one) holds the prefix and all its tokens but the last: it becomes
    // the main sequence whether or not generation goes on, so the main cache always matches the stream.
    if (best.seq >= 0) {
      loop_->release(*target_, seq_);
      seq_ = best.seq;
      best.seq = -1;
    }
    free_trials(trials);
    chain_state_ = std::move(best.chain);
    for (std::size_t i = 0; i < best.tokens.size(); ++i) {
      if (loop_->emit({best.tokens[i], best.raw_logprob[i], TokenOrigin::sampled, uint32_t(stats.steps)})) return true;
    }
    if (no_room()) return true;
    PhaseTimer timer(stats, "forward");
    target_->append(seq_, std::span(&best.tokens.back(), 1));
    return false;
  }

  CntpSchedule schedule_;
  PunctuationRule rule_;
  std::unique_ptr<SamplerChain> chain_;
  // Per-generate state.
  DecodeLoop* loop_ = nullptr;            // owns the sequences: the main one and the trials' forks
  std::unique_ptr<Sampler> chain_state_;  // the chain's state along the committed stream
  LanguageModel* target_ = nullptr;
  const DecodeOptions* options_ = nullptr;
  std::vector<bool> punctuation_;
  SeqId seq_ = -1;
};

const RegisterDecoder reg_cntp({
    .name = "cntp",
    .doc =
        "Cautious next-token prediction (Wang et al. 2025): when the processed distribution's entropy is high, run N "
        "trials to the next punctuation as forked sequences in one batch and commit the lowest-perplexity one.",
    .params = with_sampling_params({
        ParamSpec::real("entropy_threshold_low", 0.01, 0.0, 1e6,
                        "H_low (nats): below H_low + (H_high - H_low)/(N_max - 1) a step samples one token"),
        ParamSpec::real("entropy_threshold_high", 1.5, 0.0, 1e6,
                        "H_high (nats): at or above it a step runs max_trials trials; must exceed H_low"),
        ParamSpec::integer("max_trials", 10, 1, 1024, "N_max, trials at the highest entropy (1 = the sample decoder)"),
        ParamSpec::string(
            "punctuation", "token",
            "what ends a trial: token = the first token of each of . , \\n ? ! : ; ) ] } (the reference); "
            "text = any token whose text ends in one of them",
            {"token", "text"}),
        ParamSpec::string("trials", "adaptive",
                          "adaptive = N(H) trials (the method); constant = N_max whenever N(H) > 1 (the reference's "
                          "same_num_trials ablation)",
                          {"adaptive", "constant"}),
    }),
    .roles = {"target"},
    .make = [](const Params& p) -> std::unique_ptr<Decoder> {
      CntpSchedule s;
      s.entropy_low = p.get_real("entropy_threshold_low");
      s.entropy_high = p.get_real("entropy_threshold_high");
      s.max_trials = int(p.get_int("max_trials"));
      s.constant = p.get_string("trials") == "constant";
      s.validate();
      return std::make_unique<CntpDecoder>(s, parse_punctuation_rule(p.get_string("punctuation")),
                                           chain_from_params(p));
    },
});

}  // namespace
}  // namespace decodelab

DECODELAB_BUILTIN(decoders_branching_cntp_decoder)
