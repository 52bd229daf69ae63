#pragma once
// A registry of named, documented, parameterized components (decoders, samplers). Components
// register themselves at static-initialization time from their own .cpp file:
//
//   namespace { const decodelab::RegisterDecoder reg({
//       .name = "sd", .doc = "...", .params = {...}, .roles = {"target", "draft"},
//       .make = [](const decodelab::Params& p) { return std::make_unique<SpeculativeDecoder>(p); }}); }
//
// (Executables link the component libraries whole so those objects are kept.)

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "decodelab/error.hpp"
#include "decodelab/params.hpp"

namespace decodelab {

template <class T>
struct RegistryEntry {
  std::string name;
  std::string doc;
  std::vector<ParamSpec> params;
  std::vector<std::string> roles;  // decoders: the model roles they need ("target", "draft", ...)
  std::function<std::unique_ptr<T>(const Params&)> make;
};

template <class T>
class Registry {
 public:
  using Entry = RegistryEntry<T>;

  // `kind` names the component family in errors ("decoder", "sampler").
  static Registry& instance();

  void add(Entry entry) {
    if (entries_.count(entry.name)) fail(ErrorCode::internal, kind_ + " '" + entry.name + "' registered twice");
    std::string name = entry.name;
    entries_.emplace(std::move(name), std::move(entry));
  }

  const Entry& get(const std::string& name) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) {
      std::string message = "unknown " + kind_ + " '" + name + "'; known:";
      for (const auto& [n, e] : entries_) message += " " + n;
      fail(ErrorCode::not_found, message);
    }
    return it->second;
  }
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }

  std::vector<const Entry*> list() const {
    std::vector<const Entry*> out;
    for (const auto& [n, e] : entries_) out.push_back(&e);
    return out;
  }

  // Validates `given` against the entry's specs and constructs the component.
  std::unique_ptr<T> create(const std::string& name, const ParamMap& given) const {
    const Entry& e = get(name);
    return e.make(resolve_params(kind_ + " '" + name + "'", e.params, given));
  }

  explicit Registry(std::string kind) : kind_(std::move(kind)) {}

 private:
  std::string kind_;
  std::map<std::string, Entry> entries_;
};

}  // namespace decodelab
