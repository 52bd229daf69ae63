// decodelab bench: decode speed of one or more decoders on the same models, prompts and seeds.
// Reports tokens/s, target calls per token, acceptance and mean time per phase, one line per
// decoder (or JSON lines), so speculative decoders can be compared with plain decoding in one run.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "clients/cli/command.hpp"
#include "core/prompt.hpp"
#include "decodelab/decoder.hpp"
#include "decodelab/error.hpp"
#include "decodelab/model_factory.hpp"

namespace decodelab::cli {
namespace {

const char* kUsage = R"USAGE(usage: decodelab bench [options]
       decodelab bench runtime ...   (the GGUF runtime beside llama.cpp: decodelab help bench runtime)
  --model SPEC        target model (default "table(vocab=32000,order=2,seed=1,sharpness=2)")
  --draft SPEC        draft model, for speculative decoders
  --decoder SPEC      decoder with parameters, e.g. "sd(L=4,temperature=0)" (repeatable: each is
                      measured on the same prompts and seeds; default "greedy")
  --prompt TEXT       prompt (default "a b c"); --prompt-ids LIST for token ids
  --max-tokens N      tokens per run (default 64)
  --runs N            runs per decoder, seeds 0..N-1 (default 3)
  --warmup N          unmeasured runs first (default 1)
  --json              JSON lines instead of a table
)USAGE";

int64_t to_int(const std::string& s, const std::string& what) {
  try {
    std::size_t used = 0;
    const long long v = std::stoll(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  fail(ErrorCode::invalid_argument, "option --" + what + " expects an integer, got '" + s + "'");
}

struct Row {
  std::string decoder;
  int64_t tokens = 0, target_calls = 0, draft_calls = 0, proposed = 0, accepted = 0;
  double seconds = 0.0;
  std::map<std::string, double> phases;
};

int run_bench(const std::vector<std::string>& args) {
  // `decodelab bench NAME ...` runs the command registered as "bench NAME" (bench runtime, ...).
  if (!args.empty() && args[0].rfind("--", 0) != 0) {
    auto it = commands().find("bench " + args[0]);
    if (it == commands().end()) fail(ErrorCode::invalid_argument, "bench: unknown benchmark '" + args[0] + "'");
    return it->second.run(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  Options opt(args, {"json"});
  opt.check_known({"model", "draft", "decoder", "prompt", "prompt-ids", "max-tokens", "runs", "warmup", "json"});
  auto target = load_model(opt.get("model", "table(vocab=32000,order=2,seed=1,sharpness=2)"));
  std::shared_ptr<LanguageModel> draft;
  ModelSet models{{"target", target.get()}};
  if (opt.has("draft")) {
    draft = load_model(opt.get("draft", ""), target.get());
    models.set("draft", draft.get());
  }
  std::vector<TokenId> prompt;
  if (opt.has("prompt-ids")) {
    std::stringstream in(opt.get("prompt-ids", ""));
    std::string item;
    while (std::getline(in, item, ',')) prompt.push_back(TokenId(to_int(item, "prompt-ids")));
  } else {
    prompt = encode_prompt(*target, opt.get("prompt", "a b c"));
  }
  const int runs = int(to_int(opt.get("runs", "3"), "runs"));
  const int warmup = int(to_int(opt.get("warmup", "1"), "warmup"));
  DecodeOptions options;
  options.max_new_tokens = int(to_int(opt.get("max-tokens", "64"), "max-tokens"));
  options.stop_at_eos = false;  // equal lengths make runs comparable
  if (runs < 1 || warmup < 0 || options.max_new_tokens < 1)
    fail(ErrorCode::invalid_argument, "--runs and --max-tokens must be >= 1");
  std::vector<std::string> specs = opt.all("decoder");
  if (specs.empty()) specs.push_back("greedy");

  std::vector<Row> rows;
  for (const std::string& spec : specs) {
    auto [name, params] = parse_spec(spec);
    auto decoder = make_decoder(name, params, &models);
    Row row;
    row.decoder = spec;
    for (int r = -warmup; r < runs; ++r) {
      options.seed = uint64_t(std::max(r, 0));
      TokenStream stream(prompt);
      const Stats s = decoder->generate(models, options, stream);
      if (r < 0) continue;
      row.tokens += s.tokens_generated;
      row.target_calls += s.target_calls;
      row.draft_calls += s.draft_calls;
      row.proposed += s.tokens_proposed;
      row.accepted += s.tokens_accepted;
      for (const auto& [phase, sec] : s.seconds) row.phases[phase] += sec;
      row.seconds += s.seconds.count("total") ? s.seconds.at("total") : 0.0;
    }
    rows.push_back(row);
  }

  const double base = rows.front().seconds > 0 ? double(rows.front().tokens) / rows.front().seconds : 0.0;
  if (opt.flag("json")) {
    for (const Row& r : rows) {
      std::cout << "{\"decoder\":\"" << r.decoder << "\",\"model\":\"" << target->info().name
                << "\",\"tokens\":" << r.tokens << ",\"seconds\":" << r.seconds
                << ",\"tok_per_s\":" << (r.seconds > 0 ? r.tokens / r.seconds : 0)
                << ",\"target_calls\":" << r.target_calls << ",\"draft_calls\":" << r.draft_calls
                << ",\"tokens_proposed\":" << r.proposed << ",\"tokens_accepted\":" << r.accepted
                << ",\"acceptance\":" << (r.proposed ? double(r.accepted) / r.proposed : 0) << "}\n";
    }
    return 0;
  }
  std::cout << "model " << target->info().name << (draft ? ", draft " + draft->info().name : "") << "; " << runs
            << " runs x " << options.max_new_tokens << " tokens\n";
  std::cout << std::left << std::setw(36) << "decoder" << std::right << std::setw(10) << "tok/s" << std::setw(9)
            << "speedup" << std::setw(12) << "tok/call" << std::setw(11) << "accept" << std::setw(12) << "prefill ms"
            << "\n";
  for (const Row& r : rows) {
    const double tps = r.seconds > 0 ? r.tokens / r.seconds : 0.0;
    std::cout << std::left << std::setw(36) << r.decoder << std::right << std::fixed << std::setprecision(1)
              << std::setw(10) << tps << std::setprecision(2) << std::setw(9) << (base > 0 ? tps / base : 0.0)
              << std::setw(12) << (r.target_calls ? double(r.tokens) / r.target_calls : 0.0) << std::setw(11)
              << (r.proposed ? double(r.accepted) / r.proposed : 0.0) << std::setprecision(1) << std::setw(12)
              << (r.phases.count("prefill") ? 1e3 * r.phases.at("prefill") / runs : 0.0) << "\n";
  }
  return 0;
}

const RegisterCommand reg({
    .name = "bench",
    .summary = "measure decoders' speed side by side on the same models, prompts and seeds",
    .usage = kUsage,
    .run = run_bench,
});

}  // namespace
}  // namespace decodelab::cli
