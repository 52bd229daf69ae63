// decodelab: the command-line entry point. `decodelab help` lists the subcommands.
#include <iostream>

#include "clients/cli/command.hpp"
#include "decodelab/error.hpp"

namespace decodelab::cli {

std::map<std::string, Command>& commands() {
  static std::map<std::string, Command> registry;
  return registry;
}

Options::Options(const std::vector<std::string>& args, const std::vector<std::string>& flags) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0 || a == "--") {
      positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    const std::size_t eq = name.find('=');
    if (eq != std::string::npos) {
      values_.emplace(name.substr(0, eq), name.substr(eq + 1));
      continue;
    }
    if (std::find(flags.begin(), flags.end(), name) != flags.end()) {
      values_.emplace(name, "true");
      continue;
    }
    if (i + 1 >= args.size()) fail(ErrorCode::invalid_argument, "option --" + name + " needs a value");
    values_.emplace(name, args[++i]);
  }
}

bool Options::flag(const std::string& name) const { return values_.count(name) > 0; }
bool Options::has(const std::string& name) const { return values_.count(name) > 0; }

std::string Options::get(const std::string& name, const std::string& fallback) const {
  auto range = values_.equal_range(name);
  if (range.first == range.second) return fallback;
  return std::prev(range.second)->second;  // the last one wins
}

std::vector<std::string> Options::all(const std::string& name) const {
  std::vector<std::string> out;
  auto range = values_.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
  return out;
}

void Options::check_known(const std::vector<std::string>& known) const {
  for (const auto& [name, value] : values_) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      fail(ErrorCode::invalid_argument, "unknown option --" + name);
    }
  }
}

}  // namespace decodelab::cli

int main(int argc, char** argv) {
  using namespace decodelab::cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::string topic;  // `decodelab help bench runtime` names the command "bench runtime"
    for (std::size_t i = 1; i < args.size(); ++i) topic += (i > 1 ? " " : "") + args[i];
    if (commands().count(topic)) {
      std::cout << commands()[topic].usage;
      return 0;
    }
    std::cout << "usage: decodelab <command> [options]\n\ncommands:\n";
    for (const auto& [name, c] : commands())
      std::cout << "  " << name << std::string(12 - std::min<std::size_t>(11, name.size()), ' ') << c.summary << "\n";
    std::cout << "\n`decodelab help <command>` for a command's options.\n";
    return args.empty() ? 1 : 0;
  }
  auto it = commands().find(args[0]);
  if (it == commands().end()) {
    std::cerr << "decodelab: unknown command '" << args[0] << "' (try `decodelab help`)\n";
    return 2;
  }
  try {
    return it->second.run(std::vector<std::string>(args.begin() + 1, args.end()));
  } catch (const decodelab::Error& e) {
    std::cerr << "decodelab " << args[0] << ": error (" << decodelab::to_string(e.code()) << "): " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "decodelab " << args[0] << ": error: " << e.what() << "\n";
    return 2;
  }
}
