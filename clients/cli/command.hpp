#pragma once
// Subcommands of the `decodelab` CLI register themselves by name, each from its own file.

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace decodelab::cli {

struct Command {
  std::string name;
  std::string summary;  // one line for `decodelab help`
  std::string usage;    // full usage text
  std::function<int(const std::vector<std::string>& args)> run;
};

std::map<std::string, Command>& commands();

struct RegisterCommand {
  explicit RegisterCommand(Command c) { commands()[c.name] = std::move(c); }
};

// A small option parser: "--name value", "--name=value", flags, and repeated options.
class Options {
 public:
  Options(const std::vector<std::string>& args, const std::vector<std::string>& flags);
  bool flag(const std::string& name) const;
  std::string get(const std::string& name, const std::string& fallback) const;
  std::vector<std::string> all(const std::string& name) const;
  bool has(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }
  // Throws decodelab::Error naming the first option not in `known`.
  void check_known(const std::vector<std::string>& known) const;

 private:
  std::multimap<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace decodelab::cli
