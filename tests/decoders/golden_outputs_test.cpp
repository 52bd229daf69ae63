// Golden outputs: the seeded tokens, log-probabilities, origins and model-call counts of every
// decoder, on analytic models and (when present) on SmolLM2, compared with a committed dump.
//
// Why: refactors of the decoder loop, the speculative step or the model backends must not change
// what any decoder emits. A difference fails the test and prints the first differing line.
//
// The analytic dump is compared bit for bit: its arithmetic is the same on every machine. The
// SmolLM2 dump compares tokens, origins, steps and counts exactly and log-probabilities to 1e-4:
// the forward pass's float sums are ordered by the CPU's vector width, so its last bits differ by
// machine (by ~1e-5 between the AVX2, AVX-512 and SSE builds). It runs the model in f32 because
// 8-bit activation quantization turns such last-bit differences into rounding flips worth ~0.05
// in a log-probability, enough to change sampled tokens; the draft is the same file cut to its
// first 24 blocks, so drafts are really rejected.
// After an intended change of behaviour, regenerate the dump and review its diff:
//
//   DECODELAB_WRITE_GOLDEN=1 build/tests/test_decoders --gtest_filter='Golden*'
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "decodelab/decoder.hpp"
#include "decodelab/model_factory.hpp"
#include "decodelab/params.hpp"
#include "decodelab/table_model.hpp"
#include "tests/model/model_paths.hpp"

namespace decodelab {
namespace {

struct GoldenCase {
  std::string decoder;  // a decoder spec: "sd(L=4,temperature=0.8)"
  uint64_t seed;
  int max_tokens;
};

// Every decoder, at the settings its tests and users use most: sampling and greedy chains,
// speculative chains and trees, branching, particles, constrained decoding.
const std::vector<GoldenCase> kAnalyticCases = {
    {"sample", 1, 24},
    {"sample(temperature=0.7,top_k=8)", 2, 24},
    {"sample(top_p=0.9,min_p=0.02)", 3, 24},
    {"sample(typical_p=0.8)", 4, 24},
    {"greedy", 0, 24},
    {"sd(L=4)", 5, 24},
    {"sd(L=2,temperature=0.6)", 6, 24},
    {"sd(L=3,temperature=0)", 6, 24},
    {"spectr(k=3,L=3)", 7, 24},
    {"specinfer(k=3,L=3)", 8, 24},
    {"specinfer(k=3,L=3,replacement=false)", 9, 24},
    {"dyspec(budget=12,width=3)", 10, 24},
    {"ngram(L=4,n=2)", 11, 24},
    {"ngram(L=3,n=3,temperature=0)", 12, 24},
    {"cntp", 13, 24},
    {"cntp(max_trials=4,trials=constant)", 14, 24},
    {"smc(particles=4)", 15, 16},
    {"smc(particles=6,block=2,mh_steps=1,alpha=2)", 16, 16},
    {"smc(particles=4,lookahead=2,alpha=3)", 17, 12},
    {"awrs(constraint=regex(pattern=( [abc])+))", 18, 12},
    {"masking(constraint=regex(pattern=( [abc])+))", 19, 12},
    {"smc(particles=4,proposal=awrs,constraint=regex(pattern=( [abcd])+))", 20, 12},
    {"sequoia(budget=10,acceptance=0.5/0.2/0.1)", 21, 24},
    {"delayed(k=3,L=3,delay=1)", 22, 24},
    {"delayed(k=3,L=4,delay=2,verify=traversal)", 23, 24},
};

const std::vector<GoldenCase> kSmolCases = {
    {"greedy", 0, 16},
    {"sample(temperature=0.8,top_p=0.95)", 1, 16},
    {"sd(L=4,temperature=0.8)", 2, 16},
    {"spectr(k=2,L=3)", 3, 16},
    {"specinfer(k=2,L=3,replacement=false)", 4, 16},
    {"dyspec(budget=8)", 5, 16},
    {"ngram(L=4,temperature=0)", 6, 16},
    {"cntp(max_trials=3)", 7, 12},
    {"smc(particles=3)", 8, 8},
};

std::string hex(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

// One line per case: spec, seed, then tokens with origin and logprob, then the counts.
std::string run_case(const GoldenCase& c, const ModelSet& models, std::span<const TokenId> prompt) {
  auto [name, given] = parse_spec(c.decoder);
  auto decoder = make_decoder(name, given, &models);
  DecodeOptions options;
  options.seed = c.seed;
  options.max_new_tokens = c.max_tokens;
  TokenStream stream(prompt);
  const Stats stats = decoder->generate(models, options, stream);
  std::ostringstream line;
  line << c.decoder << " seed=" << c.seed << " |";
  for (std::size_t i = prompt.size(); i < stream.size(); ++i) {
    const TokenRecord& r = stream.at(i);
    line << ' ' << r.id << ':' << int(r.origin) << ':' << hex(r.logprob) << ':' << r.step;
  }
  line << " | steps=" << stats.steps << " target_calls=" << stats.target_calls << " draft_calls=" << stats.draft_calls
       << " target_nodes=" << stats.target_nodes << " draft_nodes=" << stats.draft_nodes
       << " proposed=" << stats.tokens_proposed << " accepted=" << stats.tokens_accepted
       << " stop=" << stats.stop_reason;
  return line.str();
}

std::string golden_path(const std::string& file) {
  return std::string(DECODELAB_SOURCE_DIR) + "/tests/data/golden/" + file;
}

// Where a line of run_case differs from the golden one beyond `logprob_tolerance` ("" if not).
std::string difference(const std::string& expected, const std::string& actual, double logprob_tolerance) {
  if (logprob_tolerance == 0.0) return expected == actual ? "" : "the lines differ";
  auto parts = [](const std::string& line) {
    std::vector<std::string> p;
    std::istringstream in(line);
    for (std::string part; std::getline(in, part, '|');) p.push_back(part);
    return p;
  };
  const auto e = parts(expected), a = parts(actual);
  if (e.size() != 3 || a.size() != 3) return "not three '|'-separated parts";
  if (e[0] != a[0]) return "another case";
  if (e[2] != a[2]) return "counts differ:" + a[2];
  std::istringstream es(e[1]), as(a[1]);
  std::string et, at;
  for (int i = 0; es >> et; ++i) {
    if (!(as >> at)) return "fewer tokens (" + std::to_string(i) + ")";
    const auto ec = et.find(':'), ac = at.find(':');
    const auto el = et.find(':', ec + 3), al = at.find(':', ac + 3);
    if (et.substr(0, ec + 2) != at.substr(0, ac + 2) || et.substr(el) != at.substr(al)) {
      return "token " + std::to_string(i) + " is " + at + ", not " + et;
    }
    const double de = std::strtod(et.substr(ec + 3, el - ec - 3).c_str(), nullptr);
    const double da = std::strtod(at.substr(ac + 3, al - ac - 3).c_str(), nullptr);
    if (!(std::fabs(de - da) <= logprob_tolerance)) {
      return "token " + std::to_string(i) + " has logprob " + std::to_string(da) + ", not " + std::to_string(de);
    }
  }
  if (as >> at) return "more tokens";
  return "";
}

void compare_or_write(const std::string& file, const std::vector<std::string>& lines, double logprob_tolerance = 0.0) {
  const std::string path = golden_path(file);
  if (const char* w = std::getenv("DECODELAB_WRITE_GOLDEN"); w && *w) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream out(path);
    for (const auto& l : lines) out << l << '\n';
    GTEST_SKIP() << "wrote " << path;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in) << "no golden file " << path << " (set DECODELAB_WRITE_GOLDEN=1 to write it)";
  std::vector<std::string> expected;
  for (std::string l; std::getline(in, l);) expected.push_back(l);
  ASSERT_EQ(expected.size(), lines.size()) << "the golden file " << path << " has another number of cases";
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(difference(expected[i], lines[i], logprob_tolerance), "")
        << "case " << i << " of " << path << "\nexpected: " << expected[i] << "\nactual:   " << lines[i];
  }
}

TEST(Golden, EveryDecoderOnAnalyticModels) {
  auto target = TableModel::random(26, 2, 41, 1.5, /*eos=*/-1);
  auto draft = TableModel::derive_draft(*target, 1.3, 0.25, 5);
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const std::vector<TokenId> prompt = {0, 1, 2, 0, 1};
  std::vector<std::string> lines;
  for (const auto& c : kAnalyticCases) lines.push_back(run_case(c, models, prompt));
  compare_or_write("decoders_analytic.txt", lines);
}

TEST(Golden, DecodersOnSmolLM2) {
  const std::string path = testing::model_path(testing::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << "SmolLM2 is not in the models cache (scripts/fetch-models)";
  auto target = load_model("gguf(path=" + path + ",threads=1,precision=f32)");
  auto draft = load_model("gguf(path=" + path + ",threads=1,precision=f32,layers=24)");
  ModelSet models{{"target", target.get()}, {"draft", draft.get()}};
  const std::vector<TokenId> prompt =
      target->tokenize("def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.", false);
  std::vector<std::string> lines;
  for (const auto& c : kSmolCases) lines.push_back(run_case(c, models, prompt));
  compare_or_write("decoders_smollm2.txt", lines, 1e-4);
}

}  // namespace
}  // namespace decodelab
