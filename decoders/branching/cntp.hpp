#pragma once
// The pure parts of CNTP, cautious next-token prediction (Wang et al., Findings of ACL 2025;
// docs/cntp.md), kept apart from the decoder so that tests can
// check them exactly:
//
//   H = -sum_i q_i log(q_i + 1e-10)                      entropy of the processed distribution q
//   N = floor(1 + (N_max - 1) * clamp((H - H_low) / (H_high - H_low), 0, 1))   trials at this step
//   a trial samples from q until a punctuation token (kept) or the end (eos, stop token, budget)
//   the committed trial is the one with the lowest perplexity exp(-(1/L) sum_t log q_t(x_t)),
//   the first one on ties.
//
// The decoder itself (decoders/branching/cntp_decoder.cpp) batches the trials as forked KV sequences.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "decodelab/language_model.hpp"

namespace decodelab {

// How many trials a step runs, from the entropy of its processed distribution.
struct CntpSchedule {
  double entropy_low = 0.01;  // H_low: at or below it a step never branches
  double entropy_high = 1.5;  // H_high: at or above it a step runs max_trials trials
  int max_trials = 10;        // N_max (N_min is 1, as in the reference)
  // The reference's "same_num_trials" ablation: a step that branches at all (N(H) > 1) runs
  // N_max trials, so the entropy decides only whether to branch, not how wide.
  bool constant = false;

  // Throws Error(invalid_argument) naming the parameter: max_trials >= 1, finite thresholds,
  // entropy_high > entropy_low (the reference divides by their difference).
  void validate() const;

  // The smallest entropy at which at least k trials run (k in [1, max_trials]):
  //   t_1 = -inf, t_k = H_low + (k - 1)(H_high - H_low) / (N_max - 1), t_{N_max} = H_high.
  double threshold(int k) const;

  // N(H), the reference's formula. Floating-point rounding of the quotient could put H exactly at
  // t_k on the wrong side; the result is corrected so that N(H) >= k iff H >= threshold(k) holds
  // exactly (what the formula means in real arithmetic). A NaN entropy gives 1.
  int trial_count(double entropy) const;
  // What a step runs: trial_count, or N_max for every branching step when `constant`.
  int trials(double entropy) const {
    const int n = trial_count(entropy);
    return constant && n > 1 ? max_trials : n;
  }
};

// The reference's entropy, in nats, with its 1e-10 inside the logarithm (accumulated in double).
double cntp_entropy(std::span<const float> q);

// The characters whose tokens end a trial (the reference's list).
inline constexpr std::string_view kCntpPunctuation = ".,\n?!:;)]}";

enum class PunctuationRule {
  // Faithful: for each character, the FIRST token id of tokenize(ch, add_special = false). A merged
  // token such as ".\n", " ." or ")," does not end a trial, and a tokenizer that encodes a character
  // as several tokens contributes only the first (e.g. SentencePiece's "\n" -> "▁", "<0x0A>").
  // Characters the tokenizer cannot encode are skipped; a model without a tokenizer uses the
  // tokens whose text is exactly the character.
  first_token,
  // Variant: every token whose decoded text ends in one of the characters.
  text_suffix,
};
// "token" -> first_token, "text" -> text_suffix; throws Error(invalid_argument) otherwise.
PunctuationRule parse_punctuation_rule(std::string_view name);

// mask[t] says whether token t ends a trial under `rule`.
std::vector<bool> punctuation_mask(const LanguageModel& model, PunctuationRule rule);

// One finished trial's score: the sum of log q_t(x_t) (processed log-probabilities) and its length.
struct TrialScore {
  double sum_log_q = 0.0;
  std::size_t length = 0;

  // exp(-(1/L) sum log q); +inf for an empty trial.
  double perplexity() const;
  // -(1/L) sum log q, the log of the perplexity: what selection compares (monotone in it, and not
  // rounded through exp).
  double mean_nll() const;
};

// Index of the trial with the lowest perplexity, the first one on ties. Throws Error(internal)
// for an empty list.
std::size_t lowest_perplexity(std::span<const TrialScore> trials);

}  // namespace decodelab
