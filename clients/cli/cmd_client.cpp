// decodelab client: talk to a running decodelabd (hello, list, load, generate, status, metrics).
#include <iostream>
#include <sstream>

#include "clients/cli/command.hpp"
#include "clients/cpp/client.hpp"
#include "decodelab/error.hpp"

namespace decodelab::cli {
namespace {

const char* kUsage = R"USAGE(usage: decodelab client [--endpoint E] [--auth SECRET] ACTION [options]
  actions:
    hello                    protocol version, build and backends
    decoders                 decoders with their parameters
    models                   loaded models and model loaders
    status | metrics         daemon state and counters
    load NAME SPEC [--target NAME]
    unload NAME
    generate [options]       generate and stream the text as it comes
      --model NAME           loaded target model (default "t")
      --draft NAME           loaded draft model (role "draft")
      --decoder NAME         decoder (default "sample")
      --param K=V            decoder parameter (repeatable)
      --prompt TEXT | --prompt-ids 1,2,3
      --seed N  --max-tokens N  --stop TEXT (repeatable)  --no-stream
  --endpoint E               default ipc:///tmp/decodelabd.sock
)USAGE";

std::string show(const client::Value& v, int indent = 0) {
  std::ostringstream out;
  const std::string pad(std::size_t(indent), ' ');
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) out << "null";
        else if constexpr (std::is_same_v<T, bool>) out << (x ? "true" : "false");
        else if constexpr (std::is_same_v<T, std::string>) out << '"' << x << '"';
        else if constexpr (std::is_same_v<T, client::Value::Array>) {
          out << "[";
          for (std::size_t i = 0; i < x.size(); ++i) out << (i ? ", " : "") << show(x[i], indent + 2);
          out << "]";
        } else if constexpr (std::is_same_v<T, client::Value::Map>) {
          out << "{\n";
          for (const auto& [k, item] : x) out << pad << "  " << k << ": " << show(item, indent + 2) << "\n";
          out << pad << "}";
        } else out << x;
      },
      v.v);
  return out.str();
}

int run_client(const std::vector<std::string>& args) {
  Options opt(args, {"no-stream"});
  opt.check_known({"endpoint", "auth", "target", "model", "draft", "decoder", "param", "prompt", "prompt-ids", "seed",
                   "max-tokens", "stop", "no-stream"});
  const auto& pos = opt.positional();
  if (pos.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  client::ClientOptions copts;
  copts.auth = opt.get("auth", "");
  client::Client c(opt.get("endpoint", "ipc:///tmp/decodelabd.sock"), copts);
  const std::string& action = pos[0];
  auto need = [&](std::size_t n) {
    if (pos.size() < n + 1)
      fail(ErrorCode::invalid_argument, "client " + action + " needs " + std::to_string(n) + " argument(s)");
  };
  if (action == "hello") std::cout << show(c.hello()) << "\n";
  else if (action == "decoders") std::cout << show(c.list_decoders()) << "\n";
  else if (action == "models") std::cout << show(c.list_models()) << "\n";
  else if (action == "status") std::cout << show(c.status()) << "\n";
  else if (action == "metrics") std::cout << show(c.metrics()) << "\n";
  else if (action == "load") {
    need(2);
    std::cout << show(c.load_model(pos[1], pos[2], opt.get("target", ""))) << "\n";
  } else if (action == "unload") {
    need(1);
    std::cout << show(c.unload_model(pos[1])) << "\n";
  } else if (action == "generate") {
    client::GenerateOptions g;
    g.models["target"] = opt.get("model", "t");
    if (opt.has("draft")) g.models["draft"] = opt.get("draft", "");
    g.decoder = opt.get("decoder", "sample");
    for (const std::string& p : opt.all("param")) {
      for (auto& [k, v] : parse_assignments(p, "--param")) g.params[k] = v;
    }
    if (opt.has("prompt-ids")) {
      std::stringstream in(opt.get("prompt-ids", ""));
      std::string item;
      g.prompt_ids.emplace();
      while (std::getline(in, item, ',')) g.prompt_ids->push_back(TokenId(std::stol(item)));
    } else {
      g.prompt = opt.get("prompt", "a b c");
    }
    g.seed = std::stoull(opt.get("seed", "0"));
    g.max_tokens = std::stoll(opt.get("max-tokens", "32"));
    g.stop = opt.all("stop");
    const bool stream = !opt.flag("no-stream");
    std::function<void(const client::Chunk&)> on_chunk;
    if (stream) on_chunk = [](const client::Chunk& k) { std::cout << k.text << std::flush; };
    const auto r = c.generate(g, on_chunk);
    if (!stream) std::cout << r.text;
    std::cout << "\n\n[" << g.decoder << "] " << r.tokens.size() << " tokens, stop: " << r.stop_reason << ", "
              << r.timings.get("total_s")->as_double() * 1e3 << " ms\n";
  } else {
    fail(ErrorCode::invalid_argument, "unknown client action '" + action + "'\n" + kUsage);
  }
  return 0;
}

const RegisterCommand reg({
    .name = "client",
    .summary = "talk to a running decodelabd (hello, decoders, models, load, generate, status, metrics)",
    .usage = kUsage,
    .run = run_client,
});

}  // namespace
}  // namespace decodelab::cli
