// decodelab bench spec: the speculative decoders on a real draft/target pair over a prompt set,
// beside plain autoregressive decoding measured in the same run (docs/benchmarks.md).
//
// For every temperature, every decoder runs on every prompt with the same seed (the prompt's index
// plus --seed). Runs are interleaved prompt by prompt (prompt 1: all decoders, prompt 2: all
// decoders, ...) so that the load drift of a shared machine falls on every decoder alike. Reported
// per decoder and temperature:
//   tok/step   block efficiency: tokens per verification step (the papers' figure)
//   tok/call   tokens per target forward pass, the prefill pass included (Stats' own figure)
//   calls      target forward passes over the whole prompt set
//   nodes      draft tokens offered to verification per step (the tree size)
//   acc@d      acceptance at tree depth d: P(accepted >= d | accepted >= d - 1), from the
//              accepted-per-step histogram (a step with n accepted tokens reached depths 1..n+1)
//   tok/s      generated tokens per second of the decoder's wall time, prefill included
//   speedup    tok/s over the baseline's (sample at T > 0, greedy at T = 0); dec.x excludes prefill
//
// --gaps adds the rule-gap study: at positions drawn from the baseline's own continuations, the
// target's p and the draft's q (after the temperature) restricted to the union of their top N
// tokens and renormalized; each rule's exact acceptance vs the optimum for its draft law
// (speculative::rule_gaps), averaged over positions. Temperature 0 is skipped there: p and q are
// point masses, every rule accepts iff the argmaxes agree, and the gap is 0. --acceptance-vector K
// measures sequoia's acceptance vector at the same positions and kept sets.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>

#include "clients/cli/command.hpp"
#include "clients/cli/flat_json.hpp"
#include "clients/cli/spec_record.hpp"
#include "core/prompt.hpp"
#include "core/text/tokenizer.hpp"
#include "decodelab/decoder.hpp"
#include "decodelab/error.hpp"
#include "decodelab/model_factory.hpp"
#include "decodelab/philox.hpp"
#include "decodelab/sampler.hpp"
#include "decoders/speculative/oracle.hpp"
#include "decoders/speculative/static_tree.hpp"

namespace decodelab::cli {
namespace {

const char* kUsage = R"USAGE(usage: decodelab bench spec [options]
Speculative decoders on a real draft/target pair over a prompt set, beside plain decoding.
  --target SPEC        target model (default gguf(path=$MODELS/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf);
                       $MODELS may be written literally (quote it from the shell),
                       $MODELS = $DECODELAB_MODELS or ~/.cache/decodelab/models; scripts/fetch-models all)
  --draft SPEC         draft model (default gguf(path=$MODELS/qwen2.5-coder-0.5b-instruct.gguf))
  --prompts FILE       JSON lines with a "prompt" field (and "id", "category"); '#' lines are comments
                       (default experiments/prompts/spec_prompts.jsonl: 52 code, chat and math prompts)
  --limit N            only the first N prompts (the default set interleaves the three categories)
  --category NAME      only the prompts of this category (code, chat, math); seeds stay per prompt
  --temperatures LIST  comma-separated (default 0,0.6,1.0)
  --decoders LIST      decoder specs separated by commas outside parentheses; the temperature is
                       added to each. `sample` (or `greedy`) is the baseline, prepended when absent.
                       Default: sample, sd(L=2) .. sd(L=8), spectr(k=2), spectr(k=4), spectr(k=8),
                       specinfer, dyspec(budget=16), dyspec(budget=32), dyspec(budget=64)
  --max-tokens N       tokens per prompt (default 64; generation also stops at eos)
  --seed N             seed of prompt i is N + i (default 0)
  --no-warmup          skip the unmeasured warm-up runs (one short run per decoder on prompt 1)
  --gaps               also the rule-gap study (see below); --gaps-only skips the decoder tables
  --gap-positions N    positions per temperature (default 8), drawn from the baseline's continuations
  --gap-tokens N       top N tokens of p and of q kept (their union; default 300)
  --gap-k LIST         draft counts k for the gap study (default 2,4,8)
  --acceptance-vector K  with the gap study, also measure sequoia's acceptance vector at the same
                       positions: P(RRS without replacement accepts the b-th of K children drawn
                       without replacement), b = 1..K, 2000 draws per position on the kept set;
                       printed as a sequoia(acceptance=...) spec per temperature
  --json               JSON lines (one per decoder and temperature, one per gap row) instead of tables
  --record FILE        append each run to FILE (JSON lines; spec_record.hpp) and skip the runs FILE
                       already holds for this configuration: a long run can stop and resume. Tables
                       pool every prompt that all decoders ran on, recorded or new.
  --report-only        with --record: print the tables from FILE without running anything
  --records-from FILE  also read (never write) the records of FILE; repeatable. With --shard, the
                       other shards' files: the tables then pool every shard's prompts.
  --shard I/N          run only prompts whose index is I modulo N (0 <= I < N), so N processes with
                       their own --record files can share a long run
)USAGE";

const std::vector<std::string> kDefaultDecoders = {
    "sample",      "sd(L=2)",   "sd(L=3)",           "sd(L=4)",           "sd(L=5)",
    "sd(L=6)",     "sd(L=7)",   "sd(L=8)",           "spectr(k=2)",       "spectr(k=4)",
    "spectr(k=8)", "specinfer", "dyspec(budget=16)", "dyspec(budget=32)", "dyspec(budget=64)"};

using Clock = std::chrono::steady_clock;

int64_t to_int(const std::string& s, const std::string& what, int64_t min) {
  try {
    std::size_t used = 0;
    const long long v = std::stoll(s, &used);
    if (used == s.size() && v >= min) return v;
  } catch (const std::exception&) {
  }
  fail(ErrorCode::invalid_argument,
       "bench spec: option --" + what + " expects an integer >= " + std::to_string(min) + ", got '" + s + "'");
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// "sd(L=2),spectr(k=4,L=3),specinfer" -> three specs: commas inside parentheses stay.
std::vector<std::string> split_specs(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : text) {
    if (c == '(') depth += 1;
    if (c == ')') depth -= 1;
    if (c == ',' && depth == 0) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ' || depth > 0) {
      cur += c;
    }
  }
  if (depth != 0) fail(ErrorCode::invalid_argument, "bench spec: unbalanced parentheses in --decoders '" + text + "'");
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::vector<double> parse_temperatures(const std::string& text) {
  std::vector<double> out;
  for (const std::string& item : split(text, ',')) {
    try {
      std::size_t used = 0;
      const double t = std::stod(item, &used);
      if (used != item.size() || !(t >= 0.0) || !std::isfinite(t)) throw std::invalid_argument(item);
      out.push_back(t);
    } catch (const std::exception&) {
      fail(ErrorCode::invalid_argument, "bench spec: --temperatures expects nonnegative numbers, got '" + text + "'");
    }
  }
  if (out.empty()) fail(ErrorCode::invalid_argument, "bench spec: --temperatures is empty");
  return out;
}

std::string format_number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// --- prompts ------------------------------------------------------------------------------------

struct Prompt {
  std::string id, category, text;
  std::size_t index = 0;  // position in the prompt file: its seed is --seed + index
};

std::vector<Prompt> load_prompts(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(ErrorCode::not_found, "bench spec: cannot open prompt file " + path);
  std::vector<Prompt> out;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    const std::string where = path + ":" + std::to_string(number);
    const FlatObject fields = parse_flat_json(line, "bench spec: " + where);
    auto text = [&](const char* key) -> std::string {
      auto it = fields.find(key);
      if (it == fields.end()) return "";
      if (it->second.kind != FlatValue::Kind::string)
        fail(ErrorCode::bad_format, "bench spec: " + where + ": \"" + key + "\" must be a string");
      return it->second.text;
    };
    const std::string prompt = text("prompt"), id = text("id");
    if (prompt.empty()) fail(ErrorCode::bad_format, "bench spec: " + where + ": no \"prompt\" field");
    out.push_back({id.empty() ? "line" + std::to_string(number) : id, text("category"), prompt, out.size()});
    for (std::size_t j = 0; j + 1 < out.size(); ++j) {
      if (out[j].id == out.back().id)
        fail(ErrorCode::bad_format,
             "bench spec: " + where + ": prompt id '" + out.back().id + "' repeats an earlier one");
    }
  }
  if (out.empty()) fail(ErrorCode::bad_format, "bench spec: " + path + " holds no prompts");
  return out;
}

// The default prompt set: relative to the working directory, else to this source tree.
std::string default_prompt_file() {
  const std::string rel = "experiments/prompts/spec_prompts.jsonl";
  if (std::filesystem::exists(rel)) return rel;
  const std::filesystem::path here(__FILE__);  // <root>/clients/cli/cmd_bench_spec.cpp
  const std::filesystem::path root = here.parent_path().parent_path().parent_path();
  if (std::filesystem::exists(root / rel)) return (root / rel).string();
  return rel;  // load_prompts names it in its error
}

std::string models_dir() {
  if (const char* d = std::getenv("DECODELAB_MODELS"); d && *d) return d;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/decodelab/models";
}

// A model spec with the models folder written as $MODELS (how records store it), and back.
std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}
std::string portable_spec(const std::string& spec) { return replace_all(spec, models_dir() + "/", "$MODELS/"); }
std::string local_spec(const std::string& spec) { return replace_all(spec, "$MODELS/", models_dir() + "/"); }

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  if (in >> a >> b >> c) return a + " " + b + " " + c;
  return "unknown";
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return buf;
}

// --- decoder runs -------------------------------------------------------------------------------

struct Arm {
  std::string spec;  // as given (without temperature)
  std::string name;
  ParamMap params;
  bool baseline = false;
};

// The decoder for `arm` at temperature t: the baseline is greedy at 0 and sample otherwise.
std::unique_ptr<Decoder> make_arm(const Arm& arm, double t, const ModelSet& models) {
  if (arm.baseline) {
    if (t == 0.0) return make_decoder("greedy", {}, &models);
    return make_decoder("sample", {{"temperature", format_number(t)}}, &models);
  }
  ParamMap params = arm.params;
  params["temperature"] = format_number(t);
  return make_decoder(arm.name, params, &models);
}

std::vector<TokenId> prompt_tokens(const LanguageModel& target, const std::string& text) {
  std::vector<TokenId> out = encode_prompt(target, text);
  if (out.empty()) fail(ErrorCode::invalid_argument, "bench spec: a prompt tokenizes to nothing");
  return out;
}

// --- rule-gap study -----------------------------------------------------------------------------

struct GapAccumulator {
  std::string rule, drafts, method;
  int k = 0;
  int64_t n = 0, computed = 0;
  double acceptance = 0, optimum = 0, gap = 0, max_gap = 0;
};

// Restricts p and q to the union of their top `n` tokens and renormalizes both (in double, then
// back to the fp32 laws the rules see). Returns the mass of the union under p and q.
std::pair<double, double> restrict_top(std::span<const float> p, std::span<const float> q, int n,
                                       std::vector<float>& ps, std::vector<float>& qs) {
  const std::size_t V = p.size(), top = std::min<std::size_t>(V, std::size_t(n));
  std::vector<char> keep(V, 0);
  for (std::span<const float> law : {p, q}) {
    std::vector<std::size_t> order(V);
    for (std::size_t x = 0; x < V; ++x) order[x] = x;
    std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(top), order.end(),
                      [&](std::size_t a, std::size_t b) { return law[a] != law[b] ? law[a] > law[b] : a < b; });
    for (std::size_t i = 0; i < top; ++i) keep[order[i]] = 1;
  }
  double pm = 0, qm = 0;
  for (std::size_t x = 0; x < V; ++x) {
    if (keep[x]) {
      pm += p[x];
      qm += q[x];
    }
  }
  ps.clear();
  qs.clear();
  for (std::size_t x = 0; x < V; ++x) {
    if (!keep[x]) continue;
    ps.push_back(float(double(p[x]) / pm));
    qs.push_back(qm > 0 ? float(double(q[x]) / qm) : 0.0f);
  }
  return {pm, qm};
}

struct GapReport {
  double temperature = 0;
  int positions = 0;
  std::size_t support = 0;  // mean size of the kept set
  double p_mass = 0, q_mass = 0, full_sd = 0, kept_sd = 0;
  std::vector<GapAccumulator> rows;
  std::vector<double> acceptance_vector;  // --acceptance-vector: mean over positions, rank 1 first
};

GapReport gap_study(LanguageModel& target, LanguageModel& draft, double t,
                    const std::vector<std::vector<TokenId>>& prefixes,
                    const std::vector<std::vector<TokenId>>& continuations, int positions, int top_n,
                    const std::vector<int64_t>& ks, uint64_t seed, int vector_ranks) {
  GapReport report;
  report.acceptance_vector.assign(std::size_t(std::max(vector_ranks, 0)), 0.0);
  report.temperature = t;
  // The chain the decoders build from temperature=t (chain_from_params), one per model.
  const std::string chain_spec = "temperature(t=" + format_number(t) + ")";
  auto target_chain = parse_chain(chain_spec), draft_chain = parse_chain(chain_spec);
  target_chain->bind({.model = &target});
  draft_chain->bind({.model = &draft});
  std::map<std::string, GapAccumulator> acc;  // keyed by k, rule family, drafts
  std::vector<std::string> order;
  std::size_t support_total = 0;
  for (int n = 0; n < positions; ++n) {
    const std::size_t i = std::size_t(n) % prefixes.size();
    const std::vector<TokenId>& cont = continuations[i];
    PhiloxStream rng(seed + 0x6761707300ull, uint64_t(n));
    const std::size_t j = std::size_t(rng.next_u32() % uint32_t(cont.size() + 1));  // tokens of the continuation kept
    std::vector<TokenId> context = prefixes[i];
    context.insert(context.end(), cont.begin(), cont.begin() + std::ptrdiff_t(j));
    auto law = [&](LanguageModel& m, SamplerChain& c) {
      const SeqId s = m.new_sequence();
      m.append(s, context);
      std::vector<float> out = c.probs(m.next_logits(s));
      m.free_sequence(s);
      return out;
    };
    const std::vector<float> p = law(target, *target_chain), q = law(draft, *draft_chain);
    std::vector<float> ps, qs;
    const auto [pm, qm] = restrict_top(p, q, top_n, ps, qs);
    report.p_mass += pm;
    report.q_mass += qm;
    report.full_sd += 1.0 - total_variation(p, q);
    report.kept_sd += 1.0 - total_variation(ps, qs);
    support_total += ps.size();
    if (vector_ranks > 0) {
      const std::vector<double> by_rank =
          speculative::sampled_acceptance_by_rank(ps, qs, vector_ranks, 2000, seed + 0x7365710000ull + uint64_t(n));
      for (std::size_t b = 0; b < by_rank.size(); ++b) report.acceptance_vector[b] += by_rank[b] / positions;
    }
    for (int64_t k : ks) {
      for (const speculative::RuleGap& g : speculative::rule_gaps(ps, qs, int(k))) {
        // kseq's name carries its rho, which differs per position: group by family.
        const std::string family = g.rule.rfind("kseq", 0) == 0 ? "kseq(rho*)" : g.rule;
        if (family == "sd" && k != ks.front()) continue;  // sd is k = 1 whatever k is
        const std::string key = std::to_string(k) + "|" + family + "|" + g.drafts;
        auto [it, fresh] = acc.try_emplace(key);
        GapAccumulator& a = it->second;
        if (fresh) {
          order.push_back(key);
          a.rule = family;
          a.drafts = g.drafts;
          a.method = g.method;
          a.k = family == "sd" ? 1 : int(k);
        }
        a.n += 1;
        if (std::isnan(g.acceptance) || std::isnan(g.optimum)) continue;
        a.computed += 1;
        a.acceptance += g.acceptance;
        a.optimum += g.optimum;
        a.gap += g.gap;
        a.max_gap = std::max(a.max_gap, g.gap);
      }
    }
  }
  report.positions = positions;
  if (positions > 0) {
    report.p_mass /= positions;
    report.q_mass /= positions;
    report.full_sd /= positions;
    report.kept_sd /= positions;
    report.support = support_total / std::size_t(positions);
  }
  for (const std::string& key : order) {
    GapAccumulator a = acc[key];
    if (a.computed > 0) {
      a.acceptance /= double(a.computed);
      a.optimum /= double(a.computed);
      a.gap /= double(a.computed);
    }
    report.rows.push_back(a);
  }
  return report;
}

// --- output -------------------------------------------------------------------------------------

struct Row {
  std::string decoder;
  double temperature = 0;
  SpecTotals totals;
};

void print_json_row(const Row& r, double base_tps, double base_decode_tps) {
  const SpecTotals& t = r.totals;
  std::cout << "{\"type\":\"decoder\",\"decoder\":\"" << json_escape(r.decoder)
            << "\",\"temperature\":" << r.temperature << ",\"prompts\":" << t.runs << ",\"tokens\":" << t.tokens
            << ",\"steps\":" << t.steps << ",\"target_calls\":" << t.target_calls
            << ",\"draft_calls\":" << t.draft_calls << ",\"target_nodes\":" << t.target_nodes
            << ",\"draft_nodes\":" << t.draft_nodes
            << ",\"tokens_per_step\":" << (t.steps ? double(t.tokens) / t.steps : 0.0)
            << ",\"tree_nodes_per_step\":" << (t.steps ? double(t.proposed) / t.steps : 0.0)
            << ",\"tokens_per_target_call\":" << (t.target_calls ? double(t.tokens) / t.target_calls : 0.0)
            << ",\"acceptance\":" << (t.proposed ? double(t.accepted) / t.proposed : 0.0)
            << ",\"acceptance_by_depth\":[";
  const auto depth = t.acceptance_by_depth();
  for (std::size_t d = 0; d < depth.size(); ++d) {
    std::cout << (d ? "," : "");
    if (std::isnan(depth[d])) std::cout << "null";
    else std::cout << depth[d];
  }
  std::cout << "],\"accepted_per_step\":[";
  for (std::size_t n = 0; n < t.accepted_hist.size(); ++n) std::cout << (n ? "," : "") << t.accepted_hist[n];
  std::cout << "],\"seconds\":" << t.seconds << ",\"prefill_seconds\":" << t.prefill << ",\"draft_seconds\":" << t.draft
            << ",\"verify_seconds\":" << t.verify << ",\"tok_per_s\":" << t.tok_per_s()
            << ",\"speedup\":" << (base_tps > 0 ? t.tok_per_s() / base_tps : 0.0)
            << ",\"decode_speedup\":" << (base_decode_tps > 0 ? t.decode_tok_per_s() / base_decode_tps : 0.0) << "}\n";
}

void print_table(const std::vector<Row>& rows, double t, int max_depth_cols) {
  const SpecTotals& base = rows.front().totals;
  std::cout << "\ntemperature " << t << " (baseline " << rows.front().decoder << "; " << base.runs << " prompts)\n";
  std::cout << std::left << std::setw(22) << "decoder" << std::right << std::setw(9) << "tok/step" << std::setw(9)
            << "tok/call" << std::setw(7) << "calls" << std::setw(7) << "nodes";
  for (int d = 1; d <= max_depth_cols; ++d) std::cout << std::setw(6) << ("acc@" + std::to_string(d));
  std::cout << std::setw(8) << "tok/s" << std::setw(8) << "speedup" << std::setw(7) << "dec.x"
            << "\n";
  for (const Row& r : rows) {
    const SpecTotals& s = r.totals;
    std::cout << std::left << std::setw(22) << r.decoder << std::right << std::fixed << std::setprecision(2)
              << std::setw(9) << (s.steps ? double(s.tokens) / s.steps : 0.0) << std::setw(9)
              << (s.target_calls ? double(s.tokens) / s.target_calls : 0.0) << std::setw(7) << s.target_calls
              << std::setprecision(1) << std::setw(7) << (s.steps ? double(s.proposed) / s.steps : 0.0);
    const auto depth = s.acceptance_by_depth();
    for (int d = 1; d <= max_depth_cols; ++d) {
      std::cout << std::setw(6);
      if (r.totals.draft_calls == 0 || std::size_t(d) > depth.size() || std::isnan(depth[std::size_t(d - 1)]))
        std::cout << "-";
      else std::cout << std::setprecision(2) << depth[std::size_t(d - 1)];
    }
    std::cout << std::setprecision(2) << std::setw(8) << s.tok_per_s() << std::setw(8)
              << (base.tok_per_s() > 0 ? s.tok_per_s() / base.tok_per_s() : 0.0) << std::setw(7)
              << (base.decode_tok_per_s() > 0 ? s.decode_tok_per_s() / base.decode_tok_per_s() : 0.0) << "\n";
    std::cout.unsetf(std::ios::floatfield);
  }
}

// The papers' two wall-clock claims, as far as this run's decoders allow: SpecTr ~1.37x over SD
// (best of each family), DySpec above fixed trees of the same size (nodes per step).
void print_claims(const std::vector<Row>& rows) {
  auto best = [&](const std::string& prefix) -> const Row* {
    const Row* b = nullptr;
    for (const Row& r : rows) {
      if (r.decoder.rfind(prefix, 0) == 0 && (!b || r.totals.tok_per_s() > b->totals.tok_per_s())) b = &r;
    }
    return b;
  };
  const Row* sd = best("sd");
  const Row* spectr = best("spectr");
  std::cout << std::fixed << std::setprecision(2);
  if (sd && spectr) {
    std::cout << "claim SpecTr ~1.37x SD (wall clock): best " << spectr->decoder << " / best " << sd->decoder << " = "
              << spectr->totals.tok_per_s() / sd->totals.tok_per_s() << "x\n";
  }
  for (const Row& r : rows) {
    if (r.decoder.rfind("dyspec", 0) != 0 || !r.totals.steps) continue;
    const double nodes = double(r.totals.proposed) / double(r.totals.steps);
    const Row* fixed = nullptr;  // the fixed tree (specinfer/spectr/sd) closest in draft nodes per step
    double fixed_nodes = 0;
    for (const Row& f : rows) {
      if (f.decoder.rfind("dyspec", 0) == 0 || f.totals.draft_calls == 0 || !f.totals.steps) continue;
      const double n = double(f.totals.proposed) / double(f.totals.steps);
      if (!fixed || std::abs(n - nodes) < std::abs(fixed_nodes - nodes)) fixed = &f, fixed_nodes = n;
    }
    if (!fixed) continue;
    std::cout << "claim DySpec > fixed tree of its size: " << r.decoder << " (" << std::setprecision(1) << nodes
              << " nodes/step) " << std::setprecision(2) << double(r.totals.tokens) / r.totals.steps << " tok/step, "
              << r.totals.tok_per_s() << " tok/s vs " << fixed->decoder << " (" << std::setprecision(1) << fixed_nodes
              << " nodes/step) " << std::setprecision(2) << double(fixed->totals.tokens) / fixed->totals.steps
              << " tok/step, " << fixed->totals.tok_per_s() << " tok/s\n";
  }
  std::cout.unsetf(std::ios::floatfield);
}

void print_gaps(const GapReport& g, bool json) {
  std::string vector;
  for (double a : g.acceptance_vector) {
    if (!vector.empty()) vector += '/';
    vector += format_number(a);
  }
  if (json && !vector.empty())
    std::cout << "{\"type\":\"acceptance_vector\",\"temperature\":" << g.temperature << ",\"positions\":" << g.positions
              << ",\"acceptance\":\"" << vector << "\"}\n";
  if (!json && !vector.empty())
    std::cout << "\nacceptance vector at temperature " << g.temperature << " (" << g.positions
              << " positions, RRS without replacement on the kept set): sequoia(acceptance=" << vector << ")\n";
  if (json) {
    for (const GapAccumulator& a : g.rows) {
      std::cout << "{\"type\":\"gap\",\"temperature\":" << g.temperature << ",\"positions\":" << g.positions
                << ",\"support\":" << g.support << ",\"p_mass\":" << g.p_mass << ",\"q_mass\":" << g.q_mass
                << ",\"rule\":\"" << json_escape(a.rule) << "\",\"drafts\":\"" << json_escape(a.drafts)
                << "\",\"k\":" << a.k << ",\"computed\":" << a.computed;
      if (a.computed)
        std::cout << ",\"acceptance\":" << a.acceptance << ",\"optimum\":" << a.optimum << ",\"gap\":" << a.gap
                  << ",\"max_gap\":" << a.max_gap;
      std::cout << ",\"method\":\"" << json_escape(a.method) << "\"}\n";
    }
    return;
  }
  std::cout << "\nrule gaps at temperature " << g.temperature << ": " << g.positions
            << " positions, union of top tokens of p and q (" << g.support << " tokens on average) holding p "
            << std::fixed << std::setprecision(4) << g.p_mass << ", q " << g.q_mass
            << " of the mass; 1 - TV full vocabulary " << g.full_sd << ", kept set " << g.kept_sd << "\n";
  std::cout << std::left << std::setw(14) << "rule" << std::setw(14) << "drafts" << std::right << std::setw(10)
            << "accept" << std::setw(10) << "optimum" << std::setw(10) << "gap" << std::setw(10) << "max gap"
            << "  method\n";
  for (const GapAccumulator& a : g.rows) {
    std::cout << std::left << std::setw(14) << a.rule << std::setw(14) << a.drafts << std::right;
    if (a.computed) {
      std::cout << std::setw(10) << a.acceptance << std::setw(10) << a.optimum << std::setw(10) << a.gap
                << std::setw(10) << a.max_gap;
    } else {
      std::cout << std::setw(10) << "-" << std::setw(10) << "-" << std::setw(10) << "-" << std::setw(10) << "-";
    }
    std::cout << "  " << a.method << "\n";
  }
  std::cout.unsetf(std::ios::floatfield);
}

std::string build_id() {
  const char* id = std::getenv("DECODELAB_BUILD_ID");
  return id && *id ? id : "unknown";
}

// What a run is asked to do: everything the options say, validated before anything is loaded.
struct BenchConfig {
  bool json = false, gaps = false, gaps_only = false, report_only = false, warmup = true;
  std::string record_path;
  std::vector<std::string> records_from;
  std::size_t shard = 0, shards = 1;
  SpecConfig spec;  // target, draft, max tokens, seed: what a record must match
  std::string prompt_file;
  std::vector<Prompt> prompts;
  std::vector<double> temperatures;
  std::vector<Arm> arms;  // the baseline first
  int gap_positions = 8, gap_tokens = 300, acceptance_ranks = 0;
  std::vector<int64_t> gap_ks;
};

// Earlier runs, from --record and --records-from, keyed by (temperature, prompt id, decoder).
struct RecordedRuns {
  RecordFile file;  // the --record file as read (its torn tail is dropped before appending)
  std::map<std::tuple<double, std::string, std::string>, SpecRecord> done;

  const SpecRecord* find(double t, const Prompt& p, const Arm& a) const {
    auto it = done.find({t, p.id, a.spec});
    return it == done.end() ? nullptr : &it->second;
  }
};

// What the run produced: per temperature, one row per arm, and the baseline outputs the gap
// study continues from.
struct BenchResults {
  std::shared_ptr<LanguageModel> target, draft;  // loaded when decoders ran or the gap study runs
  std::vector<std::vector<TokenId>> prefixes;    // tokenized prompts (with models loaded)
  std::vector<std::vector<Row>> rows;
  std::vector<std::vector<std::size_t>> gap_prompts;             // prompt indices with a baseline run
  std::vector<std::vector<std::vector<TokenId>>> continuations;  // their baseline outputs
};

// --- configuration ---

BenchConfig parse_config(const std::vector<std::string>& args,
                         std::vector<std::pair<std::string, SpecRecord>>& all_records, RecordedRuns& recorded) {
  Options opt(args, {"json", "gaps", "gaps-only", "no-warmup", "report-only"});
  opt.check_known(
      {"target", "draft",     "prompts",     "limit",        "temperatures",  "decoders",   "max-tokens",
       "seed",   "no-warmup", "gaps",        "gaps-only",    "gap-positions", "gap-tokens", "gap-k",
       "json",   "record",    "report-only", "records-from", "shard",         "category",   "acceptance-vector"});
  BenchConfig c;
  c.json = opt.flag("json");
  c.gaps_only = opt.flag("gaps-only");
  c.gaps = opt.flag("gaps") || c.gaps_only;
  c.report_only = opt.flag("report-only");
  c.warmup = !opt.flag("no-warmup");
  c.record_path = opt.get("record", "");
  c.records_from = opt.all("records-from");
  if (c.report_only && c.record_path.empty())
    fail(ErrorCode::invalid_argument, "bench spec: --report-only needs --record FILE");
  if (opt.has("shard")) {
    const std::string text = opt.get("shard", "");
    const auto slash = text.find('/');
    if (slash == std::string::npos)
      fail(ErrorCode::invalid_argument, "bench spec: --shard expects I/N, got '" + text + "'");
    c.shard = std::size_t(to_int(text.substr(0, slash), "shard", 0));
    c.shards = std::size_t(to_int(text.substr(slash + 1), "shard", 1));
    if (c.shard >= c.shards) fail(ErrorCode::invalid_argument, "bench spec: --shard " + text + ": I must be below N");
  }
  // Records name models relative to $MODELS, so a record file is valid on any machine that
  // fetched the models; --report-only takes models, max tokens and seed from the records when the
  // options are not given.
  recorded.file = c.record_path.empty() ? RecordFile{} : read_records(c.record_path);
  for (SpecRecord& r : recorded.file.records) all_records.emplace_back(c.record_path, std::move(r));
  for (const std::string& path : c.records_from) {
    for (SpecRecord& r : read_records(path).records) all_records.emplace_back(path, std::move(r));
  }
  const SpecConfig defaults = c.report_only && !all_records.empty()
                                  ? all_records.front().second.config
                                  : SpecConfig{"gguf(path=$MODELS/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf)",
                                               "gguf(path=$MODELS/qwen2.5-coder-0.5b-instruct.gguf)", 64, 0};
  c.spec.target = portable_spec(opt.get("target", defaults.target));
  c.spec.draft = portable_spec(opt.get("draft", defaults.draft));
  c.spec.max_tokens = int(to_int(opt.get("max-tokens", std::to_string(defaults.max_tokens)), "max-tokens", 1));
  c.spec.seed = uint64_t(to_int(opt.get("seed", std::to_string(defaults.seed)), "seed", 0));
  c.prompt_file = opt.get("prompts", default_prompt_file());
  c.temperatures = parse_temperatures(opt.get("temperatures", "0,0.6,1.0"));
  c.gap_positions = int(to_int(opt.get("gap-positions", "8"), "gap-positions", 1));
  c.gap_tokens = int(to_int(opt.get("gap-tokens", "300"), "gap-tokens", 1));
  for (const std::string& k : split(opt.get("gap-k", "2,4,8"), ',')) c.gap_ks.push_back(to_int(k, "gap-k", 1));
  if (c.gap_ks.empty()) fail(ErrorCode::invalid_argument, "bench spec: --gap-k is empty");
  c.acceptance_ranks = int(to_int(opt.get("acceptance-vector", "0"), "acceptance-vector", 0));
  if (c.acceptance_ranks > 64)
    fail(ErrorCode::invalid_argument,
         "bench spec: --acceptance-vector expects at most 64 ranks, got " + std::to_string(c.acceptance_ranks));
  if (c.acceptance_ranks > 0 && !c.gaps)
    fail(ErrorCode::invalid_argument,
         "bench spec: --acceptance-vector measures at the gap study's positions: "
         "give --gaps or --gaps-only too");

  c.prompts = load_prompts(c.prompt_file);
  if (opt.has("category")) {
    // Filtered after loading, so prompt indices (and seeds) stay those of the whole file.
    const std::string category = opt.get("category", "");
    std::erase_if(c.prompts, [&](const Prompt& p) { return p.category != category; });
    if (c.prompts.empty())
      fail(ErrorCode::invalid_argument,
           "bench spec: no prompt of " + c.prompt_file + " has category '" + category + "'");
  }
  if (opt.has("limit"))
    c.prompts.resize(std::min(c.prompts.size(), std::size_t(to_int(opt.get("limit", ""), "limit", 1))));

  const std::vector<std::string> specs = opt.has("decoders") ? split_specs(opt.get("decoders", "")) : kDefaultDecoders;
  for (const std::string& spec : specs) {
    auto [name, params] = parse_spec(spec);
    Arm arm{spec, name, params, name == "sample" || name == "greedy"};
    if (arm.baseline && !params.empty())
      fail(ErrorCode::invalid_argument,
           "bench spec: the baseline '" + spec + "' takes its temperature from --temperatures only");
    if (params.count("temperature"))
      fail(ErrorCode::invalid_argument, "bench spec: '" + spec + "': the temperature comes from --temperatures");
    if (arm.baseline && std::any_of(c.arms.begin(), c.arms.end(), [](const Arm& a) { return a.baseline; })) continue;
    if (arm.baseline) arm.spec = "sample";  // one record name for the baseline, greedy or not
    c.arms.push_back(arm);
  }
  if (!std::any_of(c.arms.begin(), c.arms.end(), [](const Arm& a) { return a.baseline; }))
    c.arms.insert(c.arms.begin(), Arm{"sample", "sample", {}, true});
  std::stable_partition(c.arms.begin(), c.arms.end(), [](const Arm& a) { return a.baseline; });  // baseline first
  return c;
}

// Indexes earlier runs; a run of another configuration, or one run twice, is an error.
void index_records(const BenchConfig& c, std::vector<std::pair<std::string, SpecRecord>>& all_records,
                   RecordedRuns& recorded) {
  for (auto& [path, r] : all_records) {
    if (!(r.config == c.spec)) {
      fail(ErrorCode::invalid_argument,
           "bench spec: " + path + " holds runs of another configuration (target " + r.config.target + ", draft " +
               r.config.draft + ", max tokens " + std::to_string(r.config.max_tokens) + ", seed " +
               std::to_string(r.config.seed) + "); this run asks for target " + c.spec.target + ", draft " +
               c.spec.draft + ", max tokens " + std::to_string(c.spec.max_tokens) + ", seed " +
               std::to_string(c.spec.seed) + ". Use another --record file.");
    }
    const auto [it, fresh] = recorded.done.try_emplace({r.temperature, r.prompt_id, r.decoder}, std::move(r));
    if (!fresh) {
      fail(ErrorCode::invalid_argument, "bench spec: " + path + " repeats the run of " + it->second.decoder +
                                            " on prompt " + it->second.prompt_id + " at temperature " +
                                            format_number(it->second.temperature) + " (two files of one shard?)");
    }
  }
}

// Runs this shard has left to do.
std::size_t runs_to_do(const BenchConfig& c, const RecordedRuns& recorded) {
  std::size_t n = 0;
  for (std::size_t i = c.shard; i < c.prompts.size(); i += c.shards) {
    for (double t : c.temperatures) {
      for (const Arm& a : c.arms) n += (!c.gaps_only || a.baseline) && !recorded.find(t, c.prompts[i], a);
    }
  }
  return n;
}

// --- run ---

// Opens the --record file for appending, dropping a torn last line first.
std::ofstream open_record_file(const BenchConfig& c, const RecordedRuns& recorded) {
  std::ofstream out;
  if (recorded.file.torn_tail) {
    std::cerr << "bench spec: " << c.record_path << ": dropping a torn last line (a run stopped while writing it)\n";
    std::filesystem::resize_file(c.record_path, recorded.file.intact_bytes);
  }
  out.open(c.record_path, std::ios::app);
  if (!out) fail(ErrorCode::invalid_argument, "bench spec: cannot append to record file " + c.record_path);
  return out;
}

// Prompt by prompt, every temperature, every decoder: a partial run (or record file) covers all
// configurations on its first prompts. Only prompts every decoder ran on enter the tables.
BenchResults run_protocol(const BenchConfig& c, const RecordedRuns& recorded, std::size_t to_run) {
  const bool run_models = !c.report_only && to_run > 0;
  const std::size_t n_t = c.temperatures.size();
  BenchResults res;
  res.rows.resize(n_t);
  res.gap_prompts.resize(n_t);
  res.continuations.resize(n_t);
  ModelSet models;
  if (run_models || c.gaps) {
    res.target = load_model(local_spec(c.spec.target));
    res.draft = load_model(local_spec(c.spec.draft), res.target.get());
    models = {{"target", res.target.get()}, {"draft", res.draft.get()}};
    // Validate every decoder and temperature before the long run starts.
    for (const Arm& arm : c.arms) {
      for (double t : c.temperatures) make_arm(arm, t, models);
    }
    for (const Prompt& p : c.prompts) res.prefixes.push_back(prompt_tokens(*res.target, p.text));
  }
  std::ofstream record_out;
  if (!c.record_path.empty() && run_models) record_out = open_record_file(c, recorded);

  DecodeOptions options;
  options.max_new_tokens = int(c.spec.max_tokens);
  if (run_models && !c.gaps_only && c.warmup) {
    // Touches both models' weights (mmap) and each decoder's code paths before anything is timed.
    DecodeOptions warm = options;
    warm.max_new_tokens = int(std::min<int64_t>(c.spec.max_tokens, 4));
    for (const Arm& arm : c.arms) {
      TokenStream stream(res.prefixes.front());
      make_arm(arm, c.temperatures.front(), models)->generate(models, warm, stream);
    }
  }

  std::vector<std::vector<std::unique_ptr<Decoder>>> decoders(n_t);
  for (std::size_t ti = 0; ti < n_t; ++ti) {
    const double t = c.temperatures[ti];
    for (const Arm& arm : c.arms) {
      res.rows[ti].push_back({arm.baseline ? (t == 0.0 ? "greedy" : "sample") : arm.spec, t, {}});
      if (run_models) decoders[ti].push_back(make_arm(arm, t, models));
    }
  }
  std::size_t ran = 0;
  for (std::size_t i = 0; i < c.prompts.size(); ++i) {
    const Prompt& prompt = c.prompts[i];
    for (std::size_t ti = 0; ti < n_t; ++ti) {
      const double t = c.temperatures[ti];
      options.seed = c.spec.seed + prompt.index;
      const auto t0 = Clock::now();
      std::vector<SpecRecord> unit;
      std::string fresh;
      for (std::size_t a = 0; a < c.arms.size(); ++a) {
        if (c.gaps_only && !c.arms[a].baseline) continue;
        if (const SpecRecord* r = recorded.find(t, prompt, c.arms[a])) {
          unit.push_back(*r);
          continue;
        }
        if (!run_models || i % c.shards != c.shard) continue;
        TokenStream stream(res.prefixes[i]);
        const Stats stats = decoders[ti][a]->generate(models, options, stream);
        SpecRecord r{c.spec,
                     t,
                     prompt.id,
                     int64_t(prompt.index),
                     c.arms[a].spec,
                     SpecTotals::of(stats),
                     {},
                     now_utc(),
                     load_average(),
                     build_id()};
        if (c.arms[a].baseline) r.generated = stream.generated_tokens();
        fresh += to_json(r) + "\n";
        unit.push_back(std::move(r));
        ran += 1;
      }
      if (record_out.is_open() && !fresh.empty()) {
        record_out << fresh;  // one write per prompt and temperature; a torn one is dropped on resume
        record_out.flush();
        if (!record_out)
          fail(ErrorCode::invalid_argument, "bench spec: writing record file " + c.record_path + " failed");
      }
      if (!fresh.empty()) {
        std::cerr << "bench spec: T=" << t << " prompt " << i + 1 << "/" << c.prompts.size() << " (" << prompt.id
                  << ") " << std::fixed << std::setprecision(1)
                  << std::chrono::duration<double>(Clock::now() - t0).count() << " s; " << ran << "/" << to_run
                  << " runs\n";
        std::cerr.unsetf(std::ios::floatfield);
      }
      for (const SpecRecord& r : unit) {
        if (r.decoder != "sample") continue;
        res.gap_prompts[ti].push_back(i);
        res.continuations[ti].push_back(r.generated);
      }
      // unit holds the arms in order; an incomplete one (--report-only over a partial file) is left out.
      if (c.gaps_only || unit.size() != c.arms.size()) continue;
      for (std::size_t a = 0; a < c.arms.size(); ++a) res.rows[ti][a].totals.add(unit[a].totals);
    }
  }
  return res;
}

// --- report ---

void print_header(const BenchConfig& c, const RecordedRuns& recorded, std::size_t to_run,
                  const std::string& load_start) {
  std::cout << "bench spec: target " << c.spec.target << ", draft " << c.spec.draft << "\n"
            << "  " << c.prompts.size() << " prompts from " << c.prompt_file << ", up to " << c.spec.max_tokens
            << " tokens each (stop at eos), seed " << c.spec.seed << " + the prompt's line index; " << now_utc()
            << "; load average " << load_start << "\n";
  if (!c.record_path.empty()) {
    std::cout << "  record file " << c.record_path << ": " << recorded.done.size() << " runs recorded, " << to_run
              << " to run"
              << (c.shards > 1 ? " in shard " + std::to_string(c.shard) + "/" + std::to_string(c.shards) : "")
              << (c.report_only ? " (not run: --report-only)" : "") << "\n";
  }
}

void print_report(const BenchConfig& c, const BenchResults& res) {
  if (!c.gaps_only) {
    for (std::size_t ti = 0; ti < c.temperatures.size(); ++ti) {
      const std::vector<Row>& r = res.rows[ti];
      if (r.front().totals.runs == 0) continue;
      const double base_tps = r.front().totals.tok_per_s(), base_dec = r.front().totals.decode_tok_per_s();
      if (c.json) {
        for (const Row& row : r) print_json_row(row, base_tps, base_dec);
      } else {
        print_table(r, c.temperatures[ti], 8);
        print_claims(r);
      }
    }
  }
  if (c.gaps) {
    for (std::size_t ti = 0; ti < c.temperatures.size(); ++ti) {
      if (c.temperatures[ti] == 0.0 || res.gap_prompts[ti].empty()) continue;
      std::vector<std::vector<TokenId>> gap_prefixes;
      for (std::size_t i : res.gap_prompts[ti]) gap_prefixes.push_back(res.prefixes[i]);
      print_gaps(gap_study(*res.target, *res.draft, c.temperatures[ti], gap_prefixes, res.continuations[ti],
                           c.gap_positions, c.gap_tokens, c.gap_ks, c.spec.seed, c.acceptance_ranks),
                 c.json);
    }
  }
}

int run_bench_spec(const std::vector<std::string>& args) {
  std::vector<std::pair<std::string, SpecRecord>> all_records;
  RecordedRuns recorded;
  const BenchConfig config = parse_config(args, all_records, recorded);
  index_records(config, all_records, recorded);
  const std::size_t to_run = runs_to_do(config, recorded);

  const std::string load_start = load_average();
  const auto wall0 = Clock::now();
  if (!config.json) print_header(config, recorded, to_run, load_start);
  const BenchResults results = run_protocol(config, recorded, to_run);
  print_report(config, results);
  if (!config.json) {
    std::cout << "\nwall time " << std::fixed << std::setprecision(0)
              << std::chrono::duration<double>(Clock::now() - wall0).count() << " s; load average at start "
              << load_start << ", at end " << load_average() << "\n";
  }
  return 0;
}

const RegisterCommand reg({
    .name = "bench spec",
    .summary = "speculative decoders on the real draft/target pair over a prompt set, beside plain decoding",
    .usage = kUsage,
    .run = run_bench_spec,
});

}  // namespace
}  // namespace decodelab::cli
