// The catalogue behind the C API: the sampler and decoder registries copied once into strings
// that live as long as the library, so the const char* the C caller gets never dangle.
#include <string>
#include <vector>

#include "capi/guard.hpp"
#include "decodelab/decoder.hpp"
#include "decodelab/sampler.hpp"

using namespace decodelab;

namespace decodelab::capi {
namespace {

struct ParamText {
  std::string name, type, default_value, doc, description;
  double min = 0.0, max = 0.0;
};

struct ComponentText {
  std::string name, doc, roles;
  std::vector<ParamText> params;
};

template <class T>
std::vector<ComponentText> snapshot(const Registry<T>& registry) {
  std::vector<ComponentText> out;
  for (const RegistryEntry<T>* e : registry.list()) {  // name order (a std::map)
    ComponentText c{e->name, e->doc, "", {}};
    for (const std::string& role : e->roles) c.roles += (c.roles.empty() ? "" : ",") + role;
    for (const ParamSpec& s : e->params)
      c.params.push_back({s.name, to_string(s.type), to_string(s.default_value), s.doc, s.describe(), s.min, s.max});
    out.push_back(std::move(c));
  }
  return out;
}

// Built on first use (after every component registered itself at load time); C++ guarantees one
// thread builds it while the others wait.
const std::vector<ComponentText>& components(decodelab_kind kind) {
  static const std::vector<ComponentText> samplers = snapshot(SamplerRegistry::instance());
  static const std::vector<ComponentText> decoders = snapshot(DecoderRegistry::instance());
  switch (kind) {
    case DECODELAB_KIND_SAMPLER: return samplers;
    case DECODELAB_KIND_DECODER: return decoders;
    case DECODELAB_KIND_MAX_ENUM: break;  // not a kind
  }
  fail(ErrorCode::invalid_argument, "kind = " + std::to_string(int(kind)) + " is not a decodelab_kind");
}

const ComponentText& component(decodelab_kind kind, std::size_t index) {
  const std::vector<ComponentText>& all = components(kind);
  if (index >= all.size())
    fail(ErrorCode::not_found,
         "index " + std::to_string(index) + " is past the last of the " + std::to_string(all.size()) + " components");
  return all[index];
}

}  // namespace
}  // namespace decodelab::capi

extern "C" {

decodelab_status decodelab_component_count(decodelab_kind kind, size_t* count) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(count, "count");
    *count = capi::components(kind).size();
  });
}

decodelab_status decodelab_component_get(decodelab_kind kind, size_t index, decodelab_component_info* out) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(out, "out");
    const capi::ComponentText& c = capi::component(kind, index);
    *out = {c.name.c_str(), c.doc.c_str(), c.roles.c_str(), c.params.size()};
  });
}

decodelab_status decodelab_component_find(decodelab_kind kind, const char* name, size_t* index) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(name, "name");
    capi::require_ptr(index, "index");
    const std::vector<capi::ComponentText>& all = capi::components(kind);
    std::string known;
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (all[i].name == name) {
        *index = i;
        return;
      }
      known += " " + all[i].name;
    }
    fail(ErrorCode::not_found, std::string("unknown ") + (kind == DECODELAB_KIND_SAMPLER ? "sampler" : "decoder") +
                                   " '" + name + "'; known:" + known);
  });
}

decodelab_status decodelab_component_param(decodelab_kind kind, size_t index, size_t param, decodelab_param_info* out) {
  return capi::guarded(__func__, [&] {
    capi::require_ptr(out, "out");
    const capi::ComponentText& c = capi::component(kind, index);
    if (param >= c.params.size())
      fail(ErrorCode::not_found, "param " + std::to_string(param) + " is past the last of " + c.name + "'s " +
                                     std::to_string(c.params.size()) + " parameters");
    const capi::ParamText& s = c.params[param];
    *out = {s.name.c_str(), s.type.c_str(), s.default_value.c_str(), s.min,
            s.max,          s.doc.c_str(),  s.description.c_str()};
  });
}

}  // extern "C"
