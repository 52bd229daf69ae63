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

// Spec strings. Values may themselves be specs or lists of specs: a comma inside parentheses
// belongs to the value, and after name=VALUE a part that is not itself name=value continues VALUE
// when either has parentheses. So "chain=top_k(k=3),temperature(t=0.6),seed=4" is two assignments
// and "sample(chain=top_k(k=3),temperature(t=0.6))" one spec. Parentheses must balance everywhere
// (Error bad_format naming the position otherwise); there is no quoting, so a value cannot hold an
// unbalanced parenthesis (regex constraints read their pattern verbatim, see constraint.hpp).

// Throws Error(bad_format) "<what> '<text>': the ')' at position 4 has no matching '('" (or an
// unclosed '(') unless every parenthesis in `text` is matched.
void check_parentheses(std::string_view text, std::string_view what);

// Splits `text` at the separators outside parentheses; parts are trimmed of spaces and empty parts
// dropped. Checks the parentheses first (`what` names the text in errors).
std::vector<std::string_view> split_outside_parentheses(std::string_view text, char separator, std::string_view what);

// Parses "k=3,temperature=0.7,name=x" into string values (resolve_params converts them). Names
// are letters, digits, '_', '.', '-'. Errors name `owner`: a part that is neither name=value nor
// the continuation of a spec list, a parameter given twice.
ParamMap parse_assignments(std::string_view text, std::string_view owner);

// "name(k=3,t=0.7)" or "name" -> (name, assignments). Parentheses are optional when there are no
// parameters; ':' also separates name and assignments ("name:k=3,t=0.7"). The ')' matching the
// first '(' must end the spec: a list such as "a(x=1),b(y=2)" is an error here (see parse_chain).
std::pair<std::string, ParamMap> parse_spec(std::string_view text);

}  // namespace decodelab
