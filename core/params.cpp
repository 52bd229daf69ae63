#include "core/params.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.hpp"

namespace decodelab {

const char* to_string(ParamType type) {
  switch (type) {
    case ParamType::integer: return "integer";
    case ParamType::real: return "real";
    case ParamType::boolean: return "boolean";
    case ParamType::string: return "string";
  }
  return "unknown";
}

std::string to_string(const ParamValue& value) {
  struct Visitor {
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const {
      std::ostringstream s;
      s << v;
      return s.str();
    }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::string& v) const { return "\"" + v + "\""; }
  };
  return std::visit(Visitor{}, value);
}

ParamSpec ParamSpec::integer(std::string name, int64_t def, double min, double max, std::string doc) {
  return ParamSpec{std::move(name), ParamType::integer, def, min, max, std::move(doc), {}};
}
ParamSpec ParamSpec::real(std::string name, double def, double min, double max, std::string doc) {
  return ParamSpec{std::move(name), ParamType::real, def, min, max, std::move(doc), {}};
}
ParamSpec ParamSpec::boolean(std::string name, bool def, std::string doc) {
  return ParamSpec{std::move(name), ParamType::boolean, def, 0, 1, std::move(doc), {}};
}
ParamSpec ParamSpec::string(std::string name, std::string def, std::string doc, std::vector<std::string> choices) {
  return ParamSpec{std::move(name), ParamType::string, std::move(def), 0, 0, std::move(doc), std::move(choices)};
}

namespace {
std::string format_bound(double v) {
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  std::ostringstream s;
  s << v;
  return s.str();
}

// Levenshtein distance, for "did you mean" suggestions.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string value_kind(const ParamValue& v) {
  switch (v.index()) {
    case 0: return "an integer";
    case 1: return "a real";
    case 2: return "a boolean";
    default: return "a string";
  }
}
}  // namespace

std::string ParamSpec::describe() const {
  std::ostringstream s;
  s << name << ": " << to_string(type);
  if (type == ParamType::integer || type == ParamType::real) {
    s << " in [" << format_bound(min) << ", " << format_bound(max) << "]";
  }
  if (!choices.empty()) {
    s << " one of {";
    for (std::size_t i = 0; i < choices.size(); ++i) s << (i ? ", " : "") << choices[i];
    s << "}";
  }
  s << ", default " << to_string(default_value);
  if (!doc.empty()) s << " -- " << doc;
  return s.str();
}

const ParamValue& Params::get(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) fail(ErrorCode::internal, "parameter '" + std::string(name) + "' was not declared");
  return it->second;
}
int64_t Params::get_int(std::string_view name) const { return std::get<int64_t>(get(name)); }
double Params::get_real(std::string_view name) const { return std::get<double>(get(name)); }
bool Params::get_bool(std::string_view name) const { return std::get<bool>(get(name)); }
const std::string& Params::get_string(std::string_view name) const { return std::get<std::string>(get(name)); }

namespace {
ParamValue convert(std::string_view owner, const ParamSpec& spec, const ParamValue& given) {
  const std::string where = std::string(owner) + ": parameter '" + spec.name + "'";
  auto bad_type = [&]() -> ParamValue {
    fail(ErrorCode::invalid_argument, where + " must be " + (spec.type == ParamType::integer ? "an integer" : spec.type == ParamType::real ? "a real number" : spec.type == ParamType::boolean ? "a boolean" : "a string") +
                                          ", got " + value_kind(given) + " " + to_string(given));
  };
  const std::string* text = std::get_if<std::string>(&given);
  switch (spec.type) {
    case ParamType::integer: {
      if (auto* v = std::get_if<int64_t>(&given)) return *v;
      if (auto* v = std::get_if<double>(&given)) {
        if (std::floor(*v) == *v && std::abs(*v) < 9e15) return int64_t(*v);
        return bad_type();
      }
      if (text) {
        try {
          std::size_t used = 0;
          const long long v = std::stoll(*text, &used);
          if (used == text->size()) return int64_t(v);
        } catch (const std::exception&) {
        }
      }
      return bad_type();
    }
    case ParamType::real: {
      if (auto* v = std::get_if<double>(&given)) return *v;
      if (auto* v = std::get_if<int64_t>(&given)) return double(*v);
      if (text) {
        try {
          std::size_t used = 0;
          const double v = std::stod(*text, &used);
          if (used == text->size()) return v;
        } catch (const std::exception&) {
        }
      }
      return bad_type();
    }
    case ParamType::boolean: {
      if (auto* v = std::get_if<bool>(&given)) return *v;
      if (auto* v = std::get_if<int64_t>(&given); v && (*v == 0 || *v == 1)) return *v == 1;
      if (text) {
        if (*text == "true" || *text == "1" || *text == "yes" || *text == "on") return true;
        if (*text == "false" || *text == "0" || *text == "no" || *text == "off") return false;
      }
      return bad_type();
    }
    case ParamType::string:
      if (text) return *text;
      return bad_type();
  }
  return bad_type();
}
}  // namespace

Params resolve_params(std::string_view owner, std::span<const ParamSpec> specs, const ParamMap& given) {
  for (const auto& entry : given) {
    const std::string& name = entry.first;  // not a structured binding: clang 14 cannot capture those
    const bool known = std::any_of(specs.begin(), specs.end(), [&](const ParamSpec& s) { return s.name == name; });
    if (known) continue;
    std::string message = std::string(owner) + ": unknown parameter '" + name + "'";
    const ParamSpec* best = nullptr;
    std::size_t best_distance = 3;
    for (const ParamSpec& s : specs) {
      const std::size_t d = edit_distance(name, s.name);
      if (d < best_distance) {
        best_distance = d;
        best = &s;
      }
    }
    if (best) message += " (did you mean '" + best->name + "'?)";
    message += "; known:";
    for (const ParamSpec& s : specs) message += " " + s.name;
    if (specs.empty()) message += " none";
    fail(ErrorCode::invalid_argument, message);
  }
  ParamMap values;
  for (const ParamSpec& spec : specs) {
    auto it = given.find(spec.name);
    ParamValue v = it == given.end() ? spec.default_value : convert(owner, spec, it->second);
    const std::string where = std::string(owner) + ": parameter '" + spec.name + "'";
    if (spec.type == ParamType::integer || spec.type == ParamType::real) {
      const double x = spec.type == ParamType::integer ? double(std::get<int64_t>(v)) : std::get<double>(v);
      if (std::isnan(x) || x < spec.min || x > spec.max) {
        fail(ErrorCode::invalid_argument, where + " = " + to_string(v) + " is out of range [" + format_bound(spec.min) +
                                              ", " + format_bound(spec.max) + "]");
      }
    }
    if (spec.type == ParamType::string && !spec.choices.empty()) {
      const std::string& s = std::get<std::string>(v);
      if (std::find(spec.choices.begin(), spec.choices.end(), s) == spec.choices.end()) {
        std::string message = where + " = \"" + s + "\" is not one of:";
        for (const auto& c : spec.choices) message += " " + c;
        fail(ErrorCode::invalid_argument, message);
      }
    }
    values.emplace(spec.name, std::move(v));
  }
  return Params(std::move(values));
}

ParamMap parse_assignments(std::string_view text, std::string_view owner) {
  ParamMap out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find(',', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(pos, end - pos);
    pos = end + 1;
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      fail(ErrorCode::invalid_argument, std::string(owner) + ": expected name=value, got '" + std::string(item) + "'");
    }
    std::string name(item.substr(0, eq));
    while (!name.empty() && name.back() == ' ') name.pop_back();
    std::string value(item.substr(eq + 1));
    while (!value.empty() && value.front() == ' ') value.erase(value.begin());
    if (out.count(name)) fail(ErrorCode::invalid_argument, std::string(owner) + ": parameter '" + name + "' given twice");
    out.emplace(std::move(name), std::move(value));
  }
  return out;
}

std::pair<std::string, ParamMap> parse_spec(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  const std::size_t open = text.find_first_of("(:");
  if (open == std::string_view::npos) return {std::string(text), {}};
  std::string name(text.substr(0, open));
  std::string_view rest = text.substr(open + 1);
  if (text[open] == '(') {
    if (rest.empty() || rest.back() != ')') fail(ErrorCode::bad_format, "spec '" + std::string(text) + "': missing ')'");
    rest.remove_suffix(1);
  }
  return {name, parse_assignments(rest, "'" + name + "'")};
}

}  // namespace decodelab
