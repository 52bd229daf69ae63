#include "decoders/branching/cntp.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "decodelab/error.hpp"

namespace decodelab {

void CntpSchedule::validate() const {
  const std::string owner = "decoder 'cntp': ";
  if (max_trials < 1)
    fail(ErrorCode::invalid_argument, owner + "max_trials must be >= 1, got " + std::to_string(max_trials));
  if (!std::isfinite(entropy_low)) fail(ErrorCode::invalid_argument, owner + "entropy_threshold_low must be finite");
  if (!std::isfinite(entropy_high)) fail(ErrorCode::invalid_argument, owner + "entropy_threshold_high must be finite");
  if (!(entropy_high > entropy_low)) {
    fail(ErrorCode::invalid_argument, owner + "entropy_threshold_high (" + std::to_string(entropy_high) +
                                          ") must be greater than entropy_threshold_low (" +
                                          std::to_string(entropy_low) + ")");
  }
}

double CntpSchedule::threshold(int k) const {
  if (k < 1 || k > max_trials) {
    fail(ErrorCode::invalid_argument,
         "cntp: no threshold for " + std::to_string(k) + " trials (max_trials " + std::to_string(max_trials) + ")");
  }
  if (k == 1) return -std::numeric_limits<double>::infinity();
  if (k == max_trials) return entropy_high;
  return entropy_low + double(k - 1) * (entropy_high - entropy_low) / double(max_trials - 1);
}

int CntpSchedule::trial_count(double entropy) const {
  if (max_trials <= 1 || std::isnan(entropy)) return 1;
  const double x = std::clamp((entropy - entropy_low) / (entropy_high - entropy_low), 0.0, 1.0);
  int n = int(1.0 + double(max_trials - 1) * x);  // int() truncates, as Python's int() does
  n = std::clamp(n, 1, max_trials);
  // The quotient above may round across a threshold; settle on the exact comparison.
  while (n < max_trials && entropy >= threshold(n + 1)) ++n;
  while (n > 1 && entropy < threshold(n)) --n;
  return n;
}

double cntp_entropy(std::span<const float> q) {
  double h = 0.0;
  for (float p : q) {
    if (p > 0.0f) h -= double(p) * std::log(double(p) + 1e-10);
  }
  return h;
}

PunctuationRule parse_punctuation_rule(std::string_view name) {
  if (name == "token") return PunctuationRule::first_token;
  if (name == "text") return PunctuationRule::text_suffix;
  fail(ErrorCode::invalid_argument,
       "decoder 'cntp': punctuation must be 'token' or 'text', got '" + std::string(name) + "'");
}

std::vector<bool> punctuation_mask(const LanguageModel& model, PunctuationRule rule) {
  const int vocab = model.vocab_size();
  std::vector<bool> mask(std::size_t(vocab), false);
  if (rule == PunctuationRule::text_suffix) {
    for (TokenId t = 0; t < vocab; ++t) {
      const TokenId one[] = {t};
      const std::string text = model.detokenize(one);
      mask[std::size_t(t)] = !text.empty() && kCntpPunctuation.find(text.back()) != std::string_view::npos;
    }
    return mask;
  }
  for (char ch : kCntpPunctuation) {
    const std::string s(1, ch);
    if (model.has_tokenizer()) {
      std::vector<TokenId> ids;
      try {
        ids = model.tokenize(s, false);
      } catch (const Error&) {
        continue;  // this vocabulary cannot spell the character: it has no punctuation token for it
      }
      if (!ids.empty() && ids[0] >= 0 && ids[0] < vocab) mask[std::size_t(ids[0])] = true;
    } else {
      for (TokenId t = 0; t < vocab; ++t)
        if (model.token_text(t) == s) mask[std::size_t(t)] = true;
    }
  }
  return mask;
}

double TrialScore::mean_nll() const {
  if (length == 0) return std::numeric_limits<double>::infinity();
  return -sum_log_q / double(length);
}

double TrialScore::perplexity() const { return std::exp(mean_nll()); }

std::size_t lowest_perplexity(std::span<const TrialScore> trials) {
  if (trials.empty()) fail(ErrorCode::internal, "cntp: selection over no trials");
  std::size_t best = 0;
  for (std::size_t i = 1; i < trials.size(); ++i)
    if (trials[i].mean_nll() < trials[best].mean_nll()) best = i;  // strict: the first index wins ties
  return best;
}

}  // namespace decodelab
