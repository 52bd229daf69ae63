#pragma once
// Typed, documented parameters for decoders, samplers and models. Every registered component
// declares its ParamSpecs; resolve_params() checks what a user gave against them (unknown names,
// wrong types, out-of-range values) and fills in defaults, so a component's constructor only ever
// sees valid values.

#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace decodelab {

enum class ParamType { integer, real, boolean, string };
const char* to_string(ParamType type);

using ParamValue = std::variant<int64_t, double, bool, std::string>;
std::string to_string(const ParamValue& value);

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::real;
  ParamValue default_value = 0.0;
  double min = -std::numeric_limits<double>::infinity();  // inclusive bounds for integer and real
  double max = std::numeric_limits<double>::infinity();
  std::string doc;
  std::vector<std::string> choices;  // for strings: the allowed values (empty = any)

  static ParamSpec integer(std::string name, int64_t def, double min, double max, std::string doc);
  static ParamSpec real(std::string name, double def, double min, double max, std::string doc);
  static ParamSpec boolean(std::string name, bool def, std::string doc);
  static ParamSpec string(std::string name, std::string def, std::string doc, std::vector<std::string> choices = {});
  // "k: integer in [1, 1000000], default 40 -- doc"
  std::string describe() const;
};

using ParamMap = std::map<std::string, ParamValue, std::less<>>;

// Resolved, validated values; get_* throw Error(internal) for a name the spec did not declare.
class Params {
 public:
  Params() = default;
  explicit Params(ParamMap values) : values_(std::move(values)) {}
  int64_t get_int(std::string_view name) const;
  double get_real(std::string_view name) const;
  bool get_bool(std::string_view name) const;
  const std::string& get_string(std::string_view name) const;
  bool has(std::string_view name) const { return values_.find(name) != values_.end(); }
  const ParamMap& values() const { return values_; }

 private:
  const ParamValue& get(std::string_view name) const;
  ParamMap values_;
};

// `owner` names the component in errors ("decoder 'sd'"). Integers are accepted for reals; strings
// are parsed when the spec wants a number or a boolean (values from a command line).
Params resolve_params(std::string_view owner, std::span<const ParamSpec> specs, const ParamMap& given);

// Parses "k=3,temperature=0.7,name=x" into string values (resolve_params converts them).
ParamMap parse_assignments(std::string_view text, std::string_view owner);

// "name(k=3,t=0.7)" or "name" -> (name, assignments). Parentheses are optional when there are no
// parameters; ':' also separates name and assignments ("name:k=3,t=0.7").
std::pair<std::string, ParamMap> parse_spec(std::string_view text);

}  // namespace decodelab
