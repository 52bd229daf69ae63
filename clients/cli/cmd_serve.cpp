// decodelab serve: run the daemon in the foreground (same service as the decodelabd binary).
#include <iostream>

#include "clients/cli/command.hpp"
#include "daemon/service.hpp"
#include "decodelab/error.hpp"

namespace decodelab::cli {
namespace {

const char* kUsage =
    R"USAGE(usage: decodelab serve [--bind E] [--load NAME=SPEC] [--workers N] [--secret S] [--allow-shutdown]
  Serves decodelab over ZeroMQ until SIGINT/SIGTERM. `decodelabd --help` lists every option.
)USAGE";

int run_serve(const std::vector<std::string>& args) {
  Options opt(args, {"allow-shutdown"});
  opt.check_known({"bind", "load", "workers", "secret", "allow-shutdown", "log-level"});
  daemon::ServiceConfig config;
  config.endpoints = opt.all("bind");
  if (config.endpoints.empty()) config.endpoints.push_back("ipc:///tmp/decodelabd.sock");
  for (const std::string& l : opt.all("load")) {
    const auto eq = l.find('=');
    if (eq == std::string::npos || eq == 0)
      fail(ErrorCode::invalid_argument, "--load expects NAME=SPEC, got '" + l + "'");
    config.preload.emplace_back(l.substr(0, eq), l.substr(eq + 1));
  }
  config.workers = std::stoi(opt.get("workers", "2"));
  config.secret = opt.get("secret", "");
  config.allow_shutdown = opt.flag("allow-shutdown");
  config.log_level = daemon::parse_log_level(opt.get("log-level", "info"));
  daemon::Service service(std::move(config));
  return service.run();
}

const RegisterCommand reg({
    .name = "serve",
    .summary = "run the decodelabd service in the foreground",
    .usage = kUsage,
    .run = run_serve,
});

}  // namespace
}  // namespace decodelab::cli
