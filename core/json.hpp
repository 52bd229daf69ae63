#pragma once
// A small JSON reader for the files decodelab reads itself (explicit model tables). It keeps each
// value's line and column, so a loader can say exactly where a wrong value is; parse errors say
// where the text stops being JSON. Numbers are doubles; objects keep their keys in file order
// and reject a key given twice. Not a general JSON library: no writer, no streaming.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace decodelab {

struct JsonMember;  // an object's key and value, below

struct JsonValue {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool boolean = false;
  double number = 0.0;
  std::string string;
  std::vector<JsonValue> items;     // array
  std::vector<JsonMember> members;  // object, in file order
  int line = 1;                     // where the value starts (1-based)
  int column = 1;

  // Defined where JsonMember is complete: a value holds members that hold values, and some
  // compilers (clang with libstdc++) refuse to instantiate the vector's destructor any earlier.
  JsonValue();
  JsonValue(const JsonValue&);
  JsonValue(JsonValue&&) noexcept;
  JsonValue& operator=(const JsonValue&);
  JsonValue& operator=(JsonValue&&) noexcept;
  ~JsonValue();

  // The member called `key` of an object, or nullptr.
  const JsonValue* find(std::string_view key) const;
  // "line 3, column 14"
  std::string where() const;
  // "an array", "a number", ...
  const char* kind_name() const;
};

struct JsonMember {
  std::string key;
  JsonValue value;
};

// Parses a whole document. Throws Error(bad_format) "<what>: line L, column C: <problem>".
JsonValue parse_json(std::string_view text, const std::string& what);

}  // namespace decodelab
