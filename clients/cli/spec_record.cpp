#include "clients/cli/spec_record.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "clients/cli/flat_json.hpp"
#include "decodelab/error.hpp"

namespace decodelab::cli {

SpecTotals SpecTotals::of(const Stats& s) {
  SpecTotals t;
  t.runs = 1;
  t.tokens = s.tokens_generated;
  t.steps = s.steps;
  t.target_calls = s.target_calls;
  t.draft_calls = s.draft_calls;
  t.target_nodes = s.target_nodes;
  t.draft_nodes = s.draft_nodes;
  t.proposed = s.tokens_proposed;
  t.accepted = s.tokens_accepted;
  auto sec = [&](const char* phase) { return s.seconds.count(phase) ? s.seconds.at(phase) : 0.0; };
  t.seconds = sec("total");
  t.prefill = sec("prefill");
  t.draft = sec("draft");
  t.verify = sec("verify");
  t.accepted_hist = s.accepted_per_step;
  return t;
}

void SpecTotals::add(const SpecTotals& o) {
  runs += o.runs;
  tokens += o.tokens;
  steps += o.steps;
  target_calls += o.target_calls;
  draft_calls += o.draft_calls;
  target_nodes += o.target_nodes;
  draft_nodes += o.draft_nodes;
  proposed += o.proposed;
  accepted += o.accepted;
  seconds += o.seconds;
  prefill += o.prefill;
  draft += o.draft;
  verify += o.verify;
  if (accepted_hist.size() < o.accepted_hist.size()) accepted_hist.resize(o.accepted_hist.size(), 0);
  for (std::size_t n = 0; n < o.accepted_hist.size(); ++n) accepted_hist[n] += o.accepted_hist[n];
}

std::vector<double> SpecTotals::acceptance_by_depth() const {
  std::vector<double> out;
  for (std::size_t d = 1; d < accepted_hist.size(); ++d) {
    int64_t reached = 0, passed = 0;
    for (std::size_t n = d - 1; n < accepted_hist.size(); ++n) reached += accepted_hist[n];
    for (std::size_t n = d; n < accepted_hist.size(); ++n) passed += accepted_hist[n];
    out.push_back(reached ? double(passed) / double(reached) : std::numeric_limits<double>::quiet_NaN());
  }
  return out;
}

std::string to_json(const SpecRecord& r) {
  std::ostringstream o;
  o.precision(17);  // times and temperatures round-trip exactly
  const SpecTotals& t = r.totals;
  o << "{\"type\":\"spec_run\",\"target\":\"" << json_escape(r.config.target) << "\",\"draft\":\""
    << json_escape(r.config.draft) << "\",\"max_tokens\":" << r.config.max_tokens << ",\"seed\":" << r.config.seed
    << ",\"temperature\":" << r.temperature << ",\"prompt_id\":\"" << json_escape(r.prompt_id)
    << "\",\"prompt_index\":" << r.prompt_index << ",\"decoder\":\"" << json_escape(r.decoder)
    << "\",\"tokens\":" << t.tokens << ",\"steps\":" << t.steps << ",\"target_calls\":" << t.target_calls
    << ",\"draft_calls\":" << t.draft_calls << ",\"target_nodes\":" << t.target_nodes
    << ",\"draft_nodes\":" << t.draft_nodes << ",\"proposed\":" << t.proposed << ",\"accepted\":" << t.accepted
    << ",\"seconds\":" << t.seconds << ",\"prefill_seconds\":" << t.prefill << ",\"draft_seconds\":" << t.draft
    << ",\"verify_seconds\":" << t.verify << ",\"accepted_per_step\":[";
  for (std::size_t n = 0; n < t.accepted_hist.size(); ++n) o << (n ? "," : "") << t.accepted_hist[n];
  o << "],\"generated\":[";
  for (std::size_t n = 0; n < r.generated.size(); ++n) o << (n ? "," : "") << r.generated[n];
  o << "],\"when\":\"" << json_escape(r.when) << "\",\"load\":\"" << json_escape(r.load) << "\",\"build\":\""
    << json_escape(r.build) << "\"}";
  return o.str();
}

namespace {

const FlatValue& field(const FlatObject& obj, const std::string& key, FlatValue::Kind kind, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->second.kind != kind) {
    fail(ErrorCode::bad_format, "bench spec: " + where + ": record lacks the " +
                                    (kind == FlatValue::Kind::string    ? "string"
                                     : kind == FlatValue::Kind::numbers ? "array"
                                                                        : "number") +
                                    " field \"" + key + "\"");
  }
  return it->second;
}

int64_t count(const FlatObject& obj, const std::string& key, const std::string& where) {
  const double v = field(obj, key, FlatValue::Kind::number, where).number;
  if (!(v >= 0) || v != std::floor(v))
    fail(ErrorCode::bad_format, "bench spec: " + where + ": \"" + key + "\" must be a count, got " + std::to_string(v));
  return int64_t(v);
}

double seconds(const FlatObject& obj, const std::string& key, const std::string& where) {
  const double v = field(obj, key, FlatValue::Kind::number, where).number;
  if (!(v >= 0) || !std::isfinite(v))
    fail(ErrorCode::bad_format, "bench spec: " + where + ": \"" + key + "\" must be a nonnegative time");
  return v;
}

std::vector<int64_t> counts(const FlatObject& obj, const std::string& key, const std::string& where) {
  std::vector<int64_t> out;
  for (double v : field(obj, key, FlatValue::Kind::numbers, where).numbers) {
    if (!(v >= 0) || v != std::floor(v))
      fail(ErrorCode::bad_format, "bench spec: " + where + ": \"" + key + "\" must hold counts");
    out.push_back(int64_t(v));
  }
  return out;
}

std::string text(const FlatObject& obj, const std::string& key, const std::string& where) {
  return field(obj, key, FlatValue::Kind::string, where).text;
}

SpecRecord record_from(const FlatObject& obj, const std::string& where) {
  if (text(obj, "type", where) != "spec_run")
    fail(ErrorCode::bad_format, "bench spec: " + where + ": not a spec_run record");
  SpecRecord r;
  r.config.target = text(obj, "target", where);
  r.config.draft = text(obj, "draft", where);
  r.config.max_tokens = count(obj, "max_tokens", where);
  r.config.seed = uint64_t(count(obj, "seed", where));
  r.temperature = field(obj, "temperature", FlatValue::Kind::number, where).number;
  r.prompt_id = text(obj, "prompt_id", where);
  r.prompt_index = count(obj, "prompt_index", where);
  r.decoder = text(obj, "decoder", where);
  SpecTotals& t = r.totals;
  t.runs = 1;
  t.tokens = count(obj, "tokens", where);
  t.steps = count(obj, "steps", where);
  t.target_calls = count(obj, "target_calls", where);
  t.draft_calls = count(obj, "draft_calls", where);
  t.target_nodes = count(obj, "target_nodes", where);
  t.draft_nodes = count(obj, "draft_nodes", where);
  t.proposed = count(obj, "proposed", where);
  t.accepted = count(obj, "accepted", where);
  t.seconds = seconds(obj, "seconds", where);
  t.prefill = seconds(obj, "prefill_seconds", where);
  t.draft = seconds(obj, "draft_seconds", where);
  t.verify = seconds(obj, "verify_seconds", where);
  t.accepted_hist = counts(obj, "accepted_per_step", where);
  for (int64_t id : counts(obj, "generated", where)) r.generated.push_back(TokenId(id));
  r.when = text(obj, "when", where);
  r.load = text(obj, "load", where);
  r.build = text(obj, "build", where);
  return r;
}

}  // namespace

RecordFile read_records(const std::string& path) {
  RecordFile out;
  if (!std::filesystem::exists(path)) return out;
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::not_found, "bench spec: cannot read record file " + path);
  std::stringstream whole;
  whole << in.rdbuf();
  const std::string data = whole.str();
  const std::size_t end = data.rfind('\n');
  out.intact_bytes = end == std::string::npos ? 0 : end + 1;
  out.torn_tail = out.intact_bytes < data.size();
  std::istringstream lines(data.substr(0, out.intact_bytes));
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number);
    out.records.push_back(record_from(parse_flat_json(line, "bench spec: " + where), where));
  }
  return out;
}

}  // namespace decodelab::cli
