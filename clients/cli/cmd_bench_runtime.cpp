// decodelab bench runtime: the model runtime's own speed on a GGUF file, in llama-bench's terms
// (prompt processing pp N, token generation tg N) plus the cost of verifying token trees of T
// nodes, with llama.cpp's llama-bench measured on the same file and thread count in the same run
// when --llama-bench names its binary. The ratio, not the absolute figure, is what carries over
// between (noisy, shared) machines.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>

#include "clients/cli/command.hpp"
#include "core/cpu_features.hpp"
#include "decodelab/error.hpp"
#include "decodelab/model_factory.hpp"
#include "decodelab/philox.hpp"

namespace decodelab::cli {
namespace {

const char* kUsage = R"USAGE(usage: decodelab bench runtime --model FILE.gguf [options]
  --threads N         CPU threads for both runtimes (default 2)
  --precision P       q8 (default) or f32: see `decodelab list models`
  --pp N              prompt tokens evaluated as one chain (default 128)
  --tg N              tokens generated one at a time after a short prompt (default 64)
  --trees LIST        tree sizes to verify (default 1,4,16,64), each over a 64-token prefix
  --reps N            repetitions of each measurement; the mean is reported (default 3)
  --llama-bench PATH  also run llama.cpp's llama-bench on the same file, threads, pp and tg
  --cpu-paths LIST    kernel paths to measure in turn, e.g. avx2,avx512vnni (default: the active
                      one: the best this CPU has, or DECODELAB_CPU_PATH)
  --json              one JSON object per path instead of a table
)USAGE";

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<int64_t> parse_list(const std::string& text, const std::string& what) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      std::size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size() || v < 1) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      fail(ErrorCode::invalid_argument,
           "option --" + what + " expects positive integers separated by commas, got '" + text + "'");
    }
  }
  if (out.empty()) fail(ErrorCode::invalid_argument, "option --" + what + " is empty");
  return out;
}

// Deterministic, vocabulary-wide token ids (what llama-bench feeds too: content does not change the cost).
std::vector<TokenId> bench_tokens(int n, int vocab, uint64_t stream) {
  PhiloxStream rng(0x62656e6368ull, stream);
  std::vector<TokenId> out(static_cast<std::size_t>(n));
  for (TokenId& t : out) t = TokenId(rng.next_u32() % uint32_t(vocab));
  return out;
}

// A tree of `size` nodes shaped like speculative drafts: up to four children per node, breadth first.
std::vector<TreeNode> bench_tree(int size, int vocab) {
  const std::vector<TokenId> tokens = bench_tokens(size, vocab, 2);
  std::vector<TreeNode> nodes;
  for (int i = 0; i < size; ++i) nodes.push_back({tokens[std::size_t(i)], i == 0 ? -1 : (i - 1) / 4});
  return nodes;
}

struct Figures {
  double pp_tps = 0, tg_tps = 0;
  std::vector<std::pair<int64_t, double>> tree_ms;  // (T, ms per evaluation)
};

Figures measure_ours(LanguageModel& m, int pp, int tg, const std::vector<int64_t>& trees, int reps) {
  Figures f;
  const int V = m.vocab_size();
  const std::vector<TokenId> prompt = bench_tokens(pp, V, 1);
  double pp_s = 0, tg_s = 0;
  for (int r = 0; r < reps; ++r) {
    SeqId s = m.new_sequence();
    auto t0 = Clock::now();
    m.append(s, prompt);
    pp_s += seconds_since(t0);
    m.free_sequence(s);

    // Generation after a one-token prompt, like llama-bench's tg: each step evaluates one token.
    s = m.new_sequence();
    m.append(s, std::vector<TokenId>{prompt[0]});
    t0 = Clock::now();
    for (int i = 0; i < tg; ++i) {
      auto logits = m.next_logits(s);
      const TokenId next = TokenId(std::max_element(logits.begin(), logits.end()) - logits.begin());
      m.append(s, std::vector<TokenId>{next});
    }
    tg_s += seconds_since(t0);
    m.free_sequence(s);
  }
  f.pp_tps = pp * reps / pp_s;
  f.tg_tps = tg * reps / tg_s;

  SeqId base = m.new_sequence();
  m.append(base, std::vector<TokenId>(prompt.begin(), prompt.begin() + std::min<std::ptrdiff_t>(64, pp)));
  std::vector<Matrix> out;
  for (int64_t T : trees) {
    const std::vector<TreeNode> tree = bench_tree(int(T), V);
    m.evaluate({{TreeEval{base, tree}}}, out);  // warm-up
    const auto t0 = Clock::now();
    for (int r = 0; r < reps; ++r) m.evaluate({{TreeEval{base, tree}}}, out);
    f.tree_ms.push_back({T, 1e3 * seconds_since(t0) / reps});
  }
  m.free_sequence(base);
  return f;
}

// Runs llama-bench and returns avg_ts for each (n_prompt, n_gen) test it reports.
std::vector<std::pair<std::pair<int64_t, int64_t>, double>> run_llama_bench(const std::string& bin,
                                                                            const std::string& model, int threads,
                                                                            const std::string& prompts, int tg,
                                                                            int reps) {
  const std::string cmd = "'" + bin + "' -m '" + model + "' -t " + std::to_string(threads) + " -p " + prompts + " -n " +
                          std::to_string(tg) + " -r " + std::to_string(reps) + " -o json 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  if (!pipe) fail(ErrorCode::not_found, "bench runtime: cannot run " + bin);
  std::string text;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, pipe.get())) text.append(buf, n);
  // One JSON object per test; only three numeric fields are needed, so a pattern is enough.
  std::vector<std::pair<std::pair<int64_t, int64_t>, double>> out;
  const std::regex object(
      R"(\{[^{}]*"n_prompt"\s*:\s*(\d+)[^{}]*"n_gen"\s*:\s*(\d+)[^{}]*"avg_ts"\s*:\s*([0-9.eE+-]+)[^{}]*\})");
  for (std::sregex_iterator it(text.begin(), text.end(), object), end; it != end; ++it) {
    out.push_back({{std::stoll((*it)[1]), std::stoll((*it)[2])}, std::stod((*it)[3])});
  }
  if (out.empty()) fail(ErrorCode::bad_format, "bench runtime: no results from `" + cmd + "`");
  return out;
}

void print_figures(const LanguageModel& model, int threads, const std::string& precision, int reps, int pp, int tg,
                   CpuPath path, const Figures& ours, double llama_pp, double llama_tg,
                   std::map<int64_t, double>& llama_forward_ms, bool json);

int run_bench_runtime(const std::vector<std::string>& args) {
  Options opt(args, {"json"});
  opt.check_known({"model", "threads", "precision", "pp", "tg", "trees", "reps", "llama-bench", "cpu-paths", "json"});
  const std::string path = opt.get("model", "");
  if (path.empty()) fail(ErrorCode::invalid_argument, "bench runtime: --model FILE.gguf is required");
  const int threads = int(parse_list(opt.get("threads", "2"), "threads")[0]);
  const int pp = int(parse_list(opt.get("pp", "128"), "pp")[0]);
  const int tg = int(parse_list(opt.get("tg", "64"), "tg")[0]);
  const int reps = int(parse_list(opt.get("reps", "3"), "reps")[0]);
  const std::vector<int64_t> trees = parse_list(opt.get("trees", "1,4,16,64"), "trees");
  const std::string precision = opt.get("precision", "q8");
  auto model =
      load_model("gguf(path=" + path + ",threads=" + std::to_string(threads) + ",precision=" + precision + ")");

  std::vector<CpuPath> paths;
  if (opt.has("cpu-paths")) {
    std::stringstream in(opt.get("cpu-paths", ""));
    for (std::string name; std::getline(in, name, ',');) paths.push_back(parse_cpu_path(name, "--cpu-paths"));
  } else {
    paths.push_back(active_cpu_path());
  }
  std::vector<Figures> ours_by_path;
  for (CpuPath p : paths) {
    set_cpu_path(p);  // an error names a path this CPU lacks
    ours_by_path.push_back(measure_ours(*model, pp, tg, trees, reps));
  }
  double llama_pp = 0, llama_tg = 0;
  std::map<int64_t, double> llama_forward_ms;  // T -> ms for one forward over T tokens
  if (opt.has("llama-bench")) {
    std::string prompts = std::to_string(pp);
    for (int64_t T : trees) {
      prompts += ',';  // two appends: GCC 12 warns falsely (-Wrestrict) on "," + std::string
      prompts += std::to_string(T);
    }
    for (const auto& [test, ts] : run_llama_bench(opt.get("llama-bench", ""), path, threads, prompts, tg, reps)) {
      const auto [n_prompt, n_gen] = test;
      if (n_gen == tg && n_prompt == 0) llama_tg = ts;
      if (n_gen == 0 && n_prompt == pp) llama_pp = ts;
      if (n_gen == 0) llama_forward_ms[n_prompt] = 1e3 * double(n_prompt) / ts;
    }
  }

  for (std::size_t i = 0; i < paths.size(); ++i) {
    print_figures(*model, threads, precision, reps, pp, tg, paths[i], ours_by_path[i], llama_pp, llama_tg,
                  llama_forward_ms, opt.flag("json"));
  }
  return 0;
}

void print_figures(const LanguageModel& model, int threads, const std::string& precision, int reps, int pp, int tg,
                   CpuPath path, const Figures& ours, double llama_pp, double llama_tg,
                   std::map<int64_t, double>& llama_forward_ms, bool json) {
  if (json) {
    std::cout << "{\"model\":\"" << model.info().name << "\",\"cpu\":\"" << cpu_description() << "\",\"cpu_path\":\""
              << cpu_path_name(path) << "\",\"threads\":" << threads << ",\"precision\":\"" << precision
              << "\",\"pp\":" << pp << ",\"pp_tok_per_s\":" << ours.pp_tps << ",\"tg\":" << tg
              << ",\"tg_tok_per_s\":" << ours.tg_tps << ",\"llama_pp_tok_per_s\":" << llama_pp
              << ",\"llama_tg_tok_per_s\":" << llama_tg << ",\"tree_ms\":{";
    for (std::size_t i = 0; i < ours.tree_ms.size(); ++i)
      std::cout << (i ? "," : "") << "\"" << ours.tree_ms[i].first << "\":" << ours.tree_ms[i].second;
    std::cout << "}}\n";
    return;
  }
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  std::cout << std::fixed << "model " << model.info().name << ", " << threads << " threads, precision " << precision
            << ", " << reps << " reps\ncpu " << cpu_description() << "; kernel path " << cpu_path_name(path) << "\n";
  std::cout << std::left << std::setw(24) << "test" << std::right << std::setw(14) << "decodelab" << std::setw(14)
            << "llama.cpp" << std::setw(9) << "ratio"
            << "\n";
  auto line = [&](const std::string& name, double a, double b, const char* unit) {
    std::cout << std::left << std::setw(24) << name << std::right << std::setprecision(1) << std::setw(10) << a << " "
              << unit;
    if (b > 0) {
      std::cout << std::setw(10) << b << " " << unit << std::setprecision(2) << std::setw(9) << ratio(a, b);
    }
    std::cout << "\n";
  };
  line("pp" + std::to_string(pp) + " (tok/s)", ours.pp_tps, llama_pp, "   ");
  line("tg" + std::to_string(tg) + " (tok/s)", ours.tg_tps, llama_tg, "   ");
  for (const auto& [T, ms] : ours.tree_ms) {
    // llama.cpp has no tree batches; its forward over a T-token chain costs the same weight reads
    // and matmuls. Its ratio is time, so < 1 means we are faster.
    const double theirs = llama_forward_ms.count(T) ? llama_forward_ms[T] : 0.0;
    line("tree T=" + std::to_string(T) + " (ms)", ms, theirs, "ms ");
  }
}

const RegisterCommand reg({
    .name = "bench runtime",
    .summary = "the GGUF runtime's prompt, generation and tree-verification speed, beside llama.cpp's llama-bench",
    .usage = kUsage,
    .run = run_bench_runtime,
});

}  // namespace
}  // namespace decodelab::cli
