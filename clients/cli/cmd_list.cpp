// decodelab list [decoders|samplers|models]: the registered components with their parameters.
#include <iostream>

#include "clients/cli/command.hpp"
#include "decodelab/decoder.hpp"
#include "decodelab/model_factory.hpp"
#include "decodelab/sampler.hpp"

namespace decodelab::cli {
namespace {

template <class Entry>
void print_entry(const Entry& e, const std::vector<std::string>& roles) {
  std::cout << "  " << e.name;
  if (!roles.empty()) {
    std::cout << "  [models:";
    for (const auto& r : roles) std::cout << " " << r;
    std::cout << "]";
  }
  std::cout << "\n      " << e.doc << "\n";
  for (const ParamSpec& p : e.params) std::cout << "      - " << p.describe() << "\n";
}

int run_list(const std::vector<std::string>& args) {
  const std::string what = args.empty() ? "all" : args[0];
  if (what != "all" && what != "decoders" && what != "samplers" && what != "models") {
    std::cerr << "decodelab list: expected one of decoders, samplers, models\n";
    return 2;
  }
  if (what == "all" || what == "decoders") {
    std::cout << "decoders:\n";
    for (const auto* e : DecoderRegistry::instance().list()) print_entry(*e, e->roles);
  }
  if (what == "all" || what == "samplers") {
    // A real chain, so that it can be pasted as printed (tests/cli/spec_strings.sh runs it).
    std::cout << "samplers (a decoder's chain parameter applies them in order, e.g.\n"
                 "  --param \"chain=top_k(k=40),temperature(t=0.7)\"):\n";
    for (const auto* e : SamplerRegistry::instance().list()) print_entry(*e, {});
  }
  if (what == "all" || what == "models") {
    std::cout << "models (--model \"name(k=v,...)\"):\n";
    for (const auto* e : ModelLoaderRegistry::instance().list()) print_entry(*e, {});
  }
  return 0;
}

const RegisterCommand reg({
    .name = "list",
    .summary = "list decoders, samplers and model kinds with their parameters",
    .usage = "usage: decodelab list [decoders|samplers|models]\n",
    .run = run_list,
});

}  // namespace
}  // namespace decodelab::cli
