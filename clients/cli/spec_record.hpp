#pragma once
// bench spec's totals per decoder, and the record file that makes a long run resumable.
//
// A record is one JSON line per (temperature, prompt, decoder): that run's counts and phase times,
// the run's configuration (models, max tokens, seed), and for the baseline its generated tokens
// (the rule-gap study draws its positions from them). `decodelab bench spec --record FILE` appends
// a prompt's records once every decoder has run on it, and skips what FILE already holds, so the
// full protocol can be run in pieces (across sessions or machines) and the tables printed from the
// union. Records of different configurations in one file are refused, not mixed.
#include <cstdint>
#include <string>
#include <vector>

#include "decodelab/decoder.hpp"
#include "decodelab/language_model.hpp"

namespace decodelab::cli {

struct SpecTotals {
  int64_t runs = 0, tokens = 0, steps = 0, target_calls = 0, draft_calls = 0, target_nodes = 0, draft_nodes = 0;
  int64_t proposed = 0, accepted = 0;
  double seconds = 0.0, prefill = 0.0, draft = 0.0, verify = 0.0;
  std::vector<int64_t> accepted_hist;  // index = tokens accepted in a step

  static SpecTotals of(const Stats& s);  // one run
  void add(const SpecTotals& o);

  double tok_per_s() const { return seconds > 0 ? double(tokens) / seconds : 0.0; }
  double decode_tok_per_s() const { return seconds - prefill > 0 ? double(tokens) / (seconds - prefill) : 0.0; }
  // Acceptance at depth d (1-based): steps that accepted >= d tokens over steps that accepted >= d - 1.
  // NaN when no step reached depth d - 1 with a draft to offer there.
  std::vector<double> acceptance_by_depth() const;
};

// What must agree for two records to be pooled.
struct SpecConfig {
  std::string target, draft;  // model specs as given
  int64_t max_tokens = 0;
  uint64_t seed = 0;  // base seed; prompt i runs with seed + i
  bool operator==(const SpecConfig&) const = default;
};

struct SpecRecord {
  SpecConfig config;
  double temperature = 0;
  std::string prompt_id;
  int64_t prompt_index = 0;
  std::string decoder;  // the arm's spec as given ("sample" for the baseline)
  SpecTotals totals;
  std::vector<TokenId> generated;  // the baseline's tokens; empty for other decoders
  std::string when, load, build;   // UTC time, load average, commit (provenance only)
};

std::string to_json(const SpecRecord& r);

struct RecordFile {
  std::vector<SpecRecord> records;
  // Bytes of whole lines. A run killed while appending can leave a torn last line (no newline);
  // it is not a record, and an appending run cuts the file back to `intact_bytes` first.
  std::uintmax_t intact_bytes = 0;
  bool torn_tail = false;
};
// Every record in `path` (an absent file holds none). Errors name the file and line.
RecordFile read_records(const std::string& path);

}  // namespace decodelab::cli
