#include "decodelab/params.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

#include "decodelab/error.hpp"

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
    fail(ErrorCode::invalid_argument, where + " must be " +
                                          (spec.type == ParamType::integer   ? "an integer"
                                           : spec.type == ParamType::real    ? "a real number"
                                           : spec.type == ParamType::boolean ? "a boolean"
                                                                             : "a string") +
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

namespace {
std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// Index of the ')' that closes the '(' at `open`; the caller has checked that `text` balances.
std::size_t matching_close(std::string_view text, std::size_t open) {
  int depth = 0;
  for (std::size_t i = open; i < text.size(); ++i) {
    if (text[i] == '(') ++depth;
    if (text[i] == ')' && --depth == 0) return i;
  }
  fail(ErrorCode::internal, "matching_close: '" + std::string(text) + "' does not balance");
}
}  // namespace

void check_parentheses(std::string_view text, std::string_view what) {
  std::vector<std::size_t> opens;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '(') opens.push_back(i);
    if (text[i] != ')') continue;
    if (opens.empty()) {
      fail(ErrorCode::bad_format, std::string(what) + " '" + std::string(text) + "': the ')' at position " +
                                      std::to_string(i) + " has no matching '('");
    }
    opens.pop_back();
  }
  if (!opens.empty()) {
    fail(ErrorCode::bad_format, std::string(what) + " '" + std::string(text) + "': the '(' at position " +
                                    std::to_string(opens.back()) + " is never closed (missing ')')");
  }
}

std::vector<std::string_view> split_outside_parentheses(std::string_view text, char separator, std::string_view what) {
  check_parentheses(text, what);
  std::vector<std::string_view> parts;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size()) {
      if (text[i] == '(') ++depth;
      if (text[i] == ')') --depth;
      if (text[i] != separator || depth > 0) continue;
    }
    const std::string_view part = trim_spaces(text.substr(start, i - start));
    if (!part.empty()) parts.push_back(part);
    start = i + 1;
  }
  return parts;
}

namespace {
bool is_parameter_name(std::string_view name) {
  if (name.empty() || !(std::isalpha((unsigned char)name[0]) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-'; });
}
}  // namespace

ParamMap parse_assignments(std::string_view text, std::string_view owner) {
  ParamMap out;
  std::string* last_value = nullptr;  // the value that a part without "name=" may continue
  for (std::string_view part : split_outside_parentheses(text, ',', owner)) {
    const std::size_t eq = part.find('=');
    const std::string_view name = trim_spaces(part.substr(0, eq == std::string_view::npos ? 0 : eq));
    if (eq != std::string_view::npos && is_parameter_name(name)) {
      if (out.count(name))
        fail(ErrorCode::invalid_argument, std::string(owner) + ": parameter '" + std::string(name) + "' given twice");
      auto [it, added] = out.emplace(std::string(name), std::string(trim_spaces(part.substr(eq + 1))));
      last_value = &std::get<std::string>(it->second);
      continue;
    }
    // "chain=top_k(k=3),temperature(t=0.6)": the value is a list of specs, and the comma after
    // "top_k(k=3)" is outside its parentheses. A part that is not name=value continues the value
    // before it when either has parentheses; anything else is a mistake ("k=1,oops", "top_k(k=3)").
    const bool continues_spec_list =
        last_value && (last_value->find('(') != std::string::npos || part.find('(') != std::string_view::npos);
    if (!continues_spec_list) {
      fail(ErrorCode::invalid_argument, std::string(owner) + ": expected name=value, got '" + std::string(part) + "'");
    }
    last_value->append(",").append(part);
  }
  return out;
}

std::pair<std::string, ParamMap> parse_spec(std::string_view text) {
  const std::string_view spec = trim_spaces(text);
  check_parentheses(spec, "spec");
  const std::string where = "spec '" + std::string(spec) + "'";
  const std::size_t open = spec.find_first_of("(:");
  const std::string name(trim_spaces(spec.substr(0, open)));
  if (name.empty()) fail(ErrorCode::bad_format, where + ": no name before its parameters");
  if (name.find_first_of("),=") != std::string::npos) {
    fail(ErrorCode::bad_format, where + ": expected name(k=v,...) or name:k=v,... (one spec, not a list)");
  }
  if (open == std::string_view::npos) return {name, {}};
  std::string_view body = spec.substr(open + 1);
  if (spec[open] == '(') {
    const std::size_t close = matching_close(spec, open);
    if (close + 1 != spec.size()) {
      fail(ErrorCode::bad_format, where + ": unexpected '" + std::string(spec.substr(close + 1)) +
                                      "' after the ')' that closes " + name + "(...) (one spec, not a list)");
    }
    body = spec.substr(open + 1, close - open - 1);
  }
  return {name, parse_assignments(body, "'" + name + "'")};
}

}  // namespace decodelab
