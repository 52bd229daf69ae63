// decodelab generate: load models, build a decoder by name, generate, print tokens as they come
// and the decoder's stats. SIGINT/SIGTERM during generation stop it at the next step or prefill
// chunk (stop reason "cancelled"); what was generated is printed, and the exit status is
// 128 + the signal's number, as for a process the signal ended.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <sstream>

#include "clients/cli/command.hpp"
#include "clients/cli/flat_json.hpp"
#include "clients/cli/stop_signals.hpp"
#include "core/prompt.hpp"
#include "decodelab/decoder.hpp"
#include "decodelab/error.hpp"
#include "decodelab/model_factory.hpp"

namespace decodelab::cli {
namespace {

const char* kUsage = R"USAGE(usage: decodelab generate [options]
  --model SPEC        target model (default "table(vocab=32,order=2,seed=1,sharpness=2)");
                      see `decodelab list models`; a path ending in .gguf loads a GGUF file
  --draft SPEC        draft model for speculative decoders, e.g. "draft(temper=1.5,noise=0.2)"
  --decoder NAME      decoder (default "sample"); see `decodelab list decoders`
  --param K=V         decoder parameter (repeatable; "K=V,K2=V2" also works)
  --prompt TEXT       prompt text (default "a b c")
  --prompt-ids LIST   prompt as comma-separated token ids (instead of --prompt)
  --seed N            random seed (default 0)
  --max-tokens N      tokens to generate (default 32)
  --stop-token ID     stop after this token (repeatable)
  --prefill-chunk N   prompt tokens per prefill model call (default 64); Ctrl-C (SIGINT) or SIGTERM
                      stops generation between steps and between prefill chunks, prints what was
                      generated with stop reason "cancelled" and exits with 128 + the signal number
  --json              print one JSON object instead of text
)USAGE";

int64_t parse_int(const std::string& text, const std::string& option) {
  try {
    std::size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  fail(ErrorCode::invalid_argument, "option --" + option + " expects an integer, got '" + text + "'");
}

int run_generate(const std::vector<std::string>& args) {
  Options opt(args, {"json"});
  opt.check_known({"model", "draft", "decoder", "param", "prompt", "prompt-ids", "seed", "max-tokens", "stop-token",
                   "prefill-chunk", "json"});
  const bool json = opt.flag("json");

  auto target = load_model(opt.get("model", "table(vocab=32,order=2,seed=1,sharpness=2)"));
  std::shared_ptr<LanguageModel> draft;
  ModelSet models{{"target", target.get()}};
  if (opt.has("draft")) {
    draft = load_model(opt.get("draft", ""), target.get());
    models.set("draft", draft.get());
  }

  ParamMap params;
  for (const std::string& p : opt.all("param")) {
    for (auto& [k, v] : parse_assignments(p, "--param")) params[k] = v;
  }
  const std::string decoder_name = opt.get("decoder", "sample");
  auto decoder = make_decoder(decoder_name, params, &models);

  std::vector<TokenId> prompt;
  if (opt.has("prompt-ids")) {
    std::stringstream in(opt.get("prompt-ids", ""));
    std::string item;
    while (std::getline(in, item, ',')) prompt.push_back(TokenId(parse_int(item, "prompt-ids")));
  } else {
    prompt = encode_prompt(*target, opt.get("prompt", "a b c"));
  }

  DecodeOptions options;
  options.seed = uint64_t(parse_int(opt.get("seed", "0"), "seed"));
  options.max_new_tokens = int(parse_int(opt.get("max-tokens", "32"), "max-tokens"));
  if (options.max_new_tokens < 0) fail(ErrorCode::invalid_argument, "--max-tokens must be >= 0");
  for (const std::string& s : opt.all("stop-token")) options.stop_tokens.push_back(TokenId(parse_int(s, "stop-token")));
  const int64_t prefill_chunk =
      parse_int(opt.get("prefill-chunk", std::to_string(DecodeOptions::kDefaultPrefillChunk)), "prefill-chunk");
  if (prefill_chunk < 1 || prefill_chunk > std::numeric_limits<int>::max()) {
    fail(ErrorCode::invalid_argument, "--prefill-chunk must be in [1, " +
                                          std::to_string(std::numeric_limits<int>::max()) + "], got " +
                                          std::to_string(prefill_chunk));
  }
  options.prefill_chunk = int(prefill_chunk);

  TokenStream stream(prompt);
  if (!json) {
    std::cout << target->detokenize(prompt) << std::flush;
    stream.set_sink(std::make_shared<CallbackSink>(
        [&](std::size_t, const TokenRecord& r) { std::cout << target->token_text(r.id) << std::flush; }));
  }
  // From here on a signal stops the generation instead of the process (also while printing, so
  // the result is not cut off).
  const StopOnSignals stop;
  options.cancel = stop.flag();
  const Stats stats = decoder->generate(models, options, stream);
  const double seconds = stats.seconds.count("total") ? stats.seconds.at("total") : 0.0;

  if (json) {
    std::ostringstream out;
    out << "{\"decoder\":\"" << json_escape(decoder_name) << "\",\"model\":\"" << json_escape(target->info().name)
        << "\"";
    out << ",\"tokens\":[";
    const auto generated = stream.generated_tokens();
    for (std::size_t i = 0; i < generated.size(); ++i) out << (i ? "," : "") << generated[i];
    out << "],\"logprobs\":[";
    for (std::size_t i = stream.prompt_size(); i < stream.size(); ++i) {
      out << (i > stream.prompt_size() ? "," : "") << stream.at(i).logprob;
    }
    out << "],\"text\":\"" << json_escape(target->detokenize(generated)) << "\"";
    out << ",\"stop_reason\":\"" << stats.stop_reason << "\",\"target_calls\":" << stats.target_calls
        << ",\"draft_calls\":" << stats.draft_calls << ",\"tokens_proposed\":" << stats.tokens_proposed
        << ",\"tokens_accepted\":" << stats.tokens_accepted << ",\"seconds\":" << seconds << "}";
    std::cout << out.str() << "\n";
  } else {
    std::cout << "\n\n[" << decoder_name << "] " << stats.tokens_generated << " tokens, " << stats.target_calls
              << " target calls, " << stats.draft_calls << " draft calls";
    if (stats.tokens_proposed) std::cout << ", acceptance " << stats.acceptance_rate();
    std::cout << ", " << seconds * 1e3 << " ms";
    if (seconds > 0) std::cout << " (" << double(stats.tokens_generated) / seconds << " tok/s)";
    std::cout << ", stop: " << stats.stop_reason;
    if (stop.signal()) std::cout << " (" << signal_name(stop.signal()) << ")";
    std::cout << "\n";
  }
  std::cout << std::flush;
  return stop.signal() ? 128 + stop.signal() : 0;
}

const RegisterCommand reg({
    .name = "generate",
    .summary = "generate text with a decoder on a model",
    .usage = kUsage,
    .run = run_generate,
});

}  // namespace
}  // namespace decodelab::cli
