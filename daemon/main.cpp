// decodelabd: serves every registered decoder over ZeroMQ + msgpack (docs/protocol.md).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <zmq.h>

#include "daemon/protocol.hpp"
#include "daemon/service.hpp"
#include "decodelab/error.hpp"

namespace {

const char* kUsage = R"USAGE(usage: decodelabd [options]
  --bind ENDPOINT         ipc:///path or tcp://127.0.0.1:PORT (repeatable; default ipc:///tmp/decodelabd.sock)
  --secret TEXT           shared secret every request must carry in its "auth" field (visible in the
                          process list: prefer --secret-file)
  --secret-file PATH      read the shared secret from a file (first line)
  --curve-secret-key Z85  enable CURVE encryption with this server secret key (visible in the process
                          list: prefer --curve-secret-file)
  --curve-secret-file PATH  read the CURVE server secret key from a file (first line)
  --curve-clients PATH    admit only CURVE clients whose Z85 public keys are listed in PATH, one a line
  --allow-remote          permit non-loopback tcp endpoints (requires --secret-file or --curve-clients)
  --workers N             generation worker threads (default 8); generations on one model run side by
                          side and share forward passes, so this is also the largest batch (a lone
                          request runs as fast with 8 as with 1: the forward pass has its own threads)
  --max-queue N           queued requests before replies say "busy" (default 64)
  --max-message-bytes N   largest request accepted, 256 .. 1073741824 (default 1048576)
  --max-tokens N          largest max_tokens a request may ask for, up to 2147483647 (default 1048576)
  --stream-interval-ms X  tokens produced within X ms share one chunk (default 2)
  --heartbeat-ms X        heartbeat period for clients with work in flight (default 1000)
  --shutdown-grace-ms X   time in-flight work gets to stop on SIGTERM/SIGINT (default 2000)
  --prefill-chunk N       tokens per prefill model call, 1 .. 1073741824 (default 64); cancels, deadlines
                          and shutdown act between chunks, so smaller chunks stop a long prefill sooner
  --kv-budget-mb X        KV memory each model may hold, in MiB (default: half the memory available when
                          the model loads; load_model's kv_budget_mb overrides it per model). Requests
                          wait for room, and one that can never fit is refused with resource_exhausted
  --allow-shutdown        honor the "shutdown" op
  --load NAME=SPEC        load a model at start (repeatable), e.g. --load t='table(vocab=32)'; any file
  --model-dir DIR         load_model requests read model files only inside DIR, relative paths from it
                          (default $DECODELAB_MODELS or ~/.cache/decodelab/models; --model-dir / allows any)
  --log-level LEVEL       error, warn, info (default), debug
  --curve-keygen          print a new CURVE keypair (public, then secret, Z85) and exit
)USAGE";

// A number in [min, max]; anything else (not a number, out of range, inf, nan) is an error naming
// the option, before it can overflow the integer it is stored in.
double parse_number(const std::string& text, const std::string& option, double min, double max) {
  double v = 0;
  bool ok = false;
  try {
    std::size_t used = 0;
    v = std::stod(text, &used);
    ok = used == text.size();
  } catch (const std::exception&) {
  }
  if (!ok || !(v >= min && v <= max)) {
    char range[96];
    std::snprintf(range, sizeof range, "[%.15g, %.15g]", min, max);
    decodelab::fail(decodelab::ErrorCode::invalid_argument,
                    "option " + option + " expects a number in " + range + ", got '" + text + "'");
  }
  return v;
}

int64_t parse_integer(const std::string& text, const std::string& option, int64_t min, int64_t max) {
  const double v = parse_number(text, option, double(min), double(max));
  if (v != double(int64_t(v))) {
    decodelab::fail(decodelab::ErrorCode::invalid_argument,
                    "option " + option + " expects a whole number, got '" + text + "'");
  }
  return int64_t(v);
}

// A secret kept in a file so that it is not in the process list: the file's first line.
std::string read_first_line(const std::string& path, const std::string& what) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) decodelab::fail(decodelab::ErrorCode::not_found, "cannot read " + what + " '" + path + "'");
  char line[4096] = {};
  if (!std::fgets(line, sizeof line, f)) line[0] = 0;
  std::fclose(f);
  std::string text = line;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) decodelab::fail(decodelab::ErrorCode::invalid_argument, what + " '" + path + "' is empty");
  return text;
}

constexpr double kMaxMilliseconds = 86400e3;  // a day

}  // namespace

int main(int argc, char** argv) {
  using namespace decodelab::daemon;
  try {
    ServiceConfig config;
    std::vector<std::string> args(argv + 1, argv + argc);
    for (std::size_t i = 0; i < args.size(); ++i) {
      std::string name = args[i];
      std::string value;
      const bool is_flag = name == "--allow-remote" || name == "--allow-shutdown" || name == "--help" || name == "-h" ||
                           name == "--curve-keygen";
      if (const auto eq = name.find('='); eq != std::string::npos && name.rfind("--", 0) == 0) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (!is_flag) {
        if (i + 1 >= args.size())
          decodelab::fail(decodelab::ErrorCode::invalid_argument, "option " + name + " needs a value");
        value = args[++i];
      }
      if (name == "--help" || name == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      } else if (name == "--curve-keygen") {
        char public_key[41], secret_key[41];
        if (zmq_curve_keypair(public_key, secret_key) != 0) {
          decodelab::fail(decodelab::ErrorCode::unsupported, "this libzmq has no CURVE support");
        }
        std::printf("public %s\nsecret %s\n", public_key, secret_key);
        return 0;
      } else if (name == "--bind") config.endpoints.push_back(value);
      else if (name == "--secret") config.secret = value;
      else if (name == "--secret-file") config.secret = read_first_line(value, "secret file");
      else if (name == "--curve-secret-key") config.curve_secret_key = value;
      else if (name == "--curve-secret-file") config.curve_secret_key = read_first_line(value, "CURVE secret key file");
      else if (name == "--curve-clients") config.curve_clients = read_curve_clients(value);
      else if (name == "--allow-remote") config.allow_remote = true;
      else if (name == "--allow-shutdown") config.allow_shutdown = true;
      else if (name == "--workers") config.workers = int(parse_integer(value, name, 1, kMaxWorkers));
      else if (name == "--max-queue") config.max_queue = std::size_t(parse_integer(value, name, 1, int64_t(kMaxQueue)));
      else if (name == "--max-message-bytes") {
        config.max_message_bytes =
            std::size_t(parse_integer(value, name, int64_t(kMinMessageBytes), int64_t(kMaxMessageBytes)));
      } else if (name == "--max-tokens") config.max_tokens = parse_integer(value, name, 1, kMaxTokens);
      else if (name == "--stream-interval-ms")
        config.stream_interval_s = parse_number(value, name, 0, kMaxMilliseconds) / 1e3;
      else if (name == "--heartbeat-ms")
        config.heartbeat_interval_s = parse_number(value, name, 1, kMaxMilliseconds) / 1e3;
      else if (name == "--shutdown-grace-ms")
        config.shutdown_grace_s = parse_number(value, name, 0, kMaxMilliseconds) / 1e3;
      else if (name == "--prefill-chunk") config.prefill_chunk = int(parse_integer(value, name, 1, kMaxPrefillChunk));
      else if (name == "--kv-budget-mb") config.kv_budget_mb = parse_number(value, name, 1, kMaxKvBudgetMb);
      else if (name == "--log-level") config.log_level = parse_log_level(value);
      else if (name == "--model-dir") {
        std::error_code ec;
        if (value.empty() || !std::filesystem::is_directory(value, ec)) {
          decodelab::fail(decodelab::ErrorCode::invalid_argument, "--model-dir '" + value + "' is not a directory");
        }
        config.model_dir = value;
      } else if (name == "--load") {
        const auto eq = value.find('=');
        if (eq == std::string::npos || eq == 0)
          decodelab::fail(decodelab::ErrorCode::invalid_argument, "--load expects NAME=SPEC, got '" + value + "'");
        config.preload.emplace_back(value.substr(0, eq), value.substr(eq + 1));
      } else {
        decodelab::fail(decodelab::ErrorCode::invalid_argument, "unknown option '" + name + "'\n" + kUsage);
      }
    }
    if (config.endpoints.empty()) config.endpoints.push_back("ipc:///tmp/decodelabd.sock");
    Service service(std::move(config));
    return service.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "decodelabd: %s\n", e.what());
    return 2;
  }
}
