#pragma once
// An incremental recognizer of JSON text (RFC 8259: one value, optional surrounding whitespace),
// fed one byte at a time. A plain copyable struct, so a constraint state can try a token's bytes on
// a copy and keep the original. Strings accept any byte >= 0x20 (UTF-8 is not validated).

#include <cstdint>
#include <string_view>
#include <vector>

namespace decodelab {

class JsonRecognizer {
 public:
  // Consumes one byte; false (and the recognizer is dead) when no JSON text has this prefix.
  bool feed(char c);
  bool feed(std::string_view bytes);
  // The bytes so far form a complete JSON text (trailing whitespace allowed).
  bool complete() const;
  bool dead() const { return state_ == State::dead; }

 private:
  enum class State : uint8_t {
    value,        // a value must start (whitespace allowed)
    first_item,   // after '[': a value or ']'
    first_key,    // after '{': a key or '}'
    key,          // after ',' in an object: a key
    colon,        // after a key
    after_value,  // ',' or a closing bracket (or the end, at top level)
    string,
    string_escape,
    string_unicode,   // inside \uXXXX; `pending_` hex digits left
    literal,          // inside true/false/null; `literal_` points at the rest
    number_minus,     // after '-'
    number_zero,      // after a leading 0
    number_int,       // in integer digits
    number_dot,       // after '.'
    number_frac,      // in fraction digits
    number_exp,       // after e/E
    number_exp_sign,  // after e+ / e-
    number_exp_int,   // in exponent digits
    dead,
  };
  bool start_value(char c);
  bool close_value();            // a value just ended
  bool end_number_then(char c);  // a number ended at byte c (which is not part of it)

  State state_ = State::value;
  bool string_is_key_ = false;
  uint8_t pending_ = 0;
  const char* literal_ = nullptr;
  std::vector<bool> in_object_;  // the open containers, innermost last: true = object, false = array
};

}  // namespace decodelab
