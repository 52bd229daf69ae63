#include "samplers/constraints/json_recognizer.hpp"

namespace decodelab {
namespace {
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
}  // namespace

bool JsonRecognizer::feed(std::string_view bytes) {
  for (char c : bytes)
    if (!feed(c)) return false;
  return true;
}

bool JsonRecognizer::start_value(char c) {
  switch (c) {
    case '{':
      in_object_.push_back(true);
      state_ = State::first_key;
      return true;
    case '[':
      in_object_.push_back(false);
      state_ = State::first_item;
      return true;
    case '"':
      string_is_key_ = false;
      state_ = State::string;
      return true;
    case 't':
      literal_ = "rue";
      state_ = State::literal;
      return true;
    case 'f':
      literal_ = "alse";
      state_ = State::literal;
      return true;
    case 'n':
      literal_ = "ull";
      state_ = State::literal;
      return true;
    case '-': state_ = State::number_minus; return true;
    case '0': state_ = State::number_zero; return true;
    default:
      if (c >= '1' && c <= '9') {
        state_ = State::number_int;
        return true;
      }
      state_ = State::dead;
      return false;
  }
}

bool JsonRecognizer::close_value() {
  state_ = State::after_value;
  return true;
}

bool JsonRecognizer::end_number_then(char c) {
  state_ = State::after_value;
  return feed(c);
}

bool JsonRecognizer::feed(char c) {
  switch (state_) {
    case State::dead: return false;
    case State::value:
      if (is_space(c)) return true;
      return start_value(c);
    case State::first_item:
      if (is_space(c)) return true;
      if (c == ']') {
        in_object_.pop_back();
        return close_value();
      }
      return start_value(c);
    case State::first_key:
      if (is_space(c)) return true;
      if (c == '}') {
        in_object_.pop_back();
        return close_value();
      }
      [[fallthrough]];
    case State::key:
      if (is_space(c)) return true;
      if (c == '"') {
        string_is_key_ = true;
        state_ = State::string;
        return true;
      }
      break;
    case State::colon:
      if (is_space(c)) return true;
      if (c == ':') {
        state_ = State::value;
        return true;
      }
      break;
    case State::after_value:
      if (is_space(c)) return true;
      if (in_object_.empty()) break;  // top-level value done: only whitespace may follow
      if (c == ',') {
        state_ = in_object_.back() ? State::key : State::value;
        return true;
      }
      if (c == (in_object_.back() ? '}' : ']')) {
        in_object_.pop_back();
        return close_value();
      }
      break;
    case State::string:
      if (c == '"') {
        if (string_is_key_) {
          state_ = State::colon;
          return true;
        }
        return close_value();
      }
      if (c == '\\') {
        state_ = State::string_escape;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) break;
      return true;
    case State::string_escape:
      if (c == 'u') {
        pending_ = 4;
        state_ = State::string_unicode;
        return true;
      }
      if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
        state_ = State::string;
        return true;
      }
      break;
    case State::string_unicode:
      if (!is_hex(c)) break;
      if (--pending_ == 0) state_ = State::string;
      return true;
    case State::literal:
      if (c != *literal_) break;
      ++literal_;
      if (*literal_ == '\0') return close_value();
      return true;
    case State::number_minus:
      if (c == '0') {
        state_ = State::number_zero;
        return true;
      }
      if (is_digit(c)) {
        state_ = State::number_int;
        return true;
      }
      break;
    case State::number_zero:
      if (c == '.') {
        state_ = State::number_dot;
        return true;
      }
      if (c == 'e' || c == 'E') {
        state_ = State::number_exp;
        return true;
      }
      return end_number_then(c);
    case State::number_int:
      if (is_digit(c)) return true;
      if (c == '.') {
        state_ = State::number_dot;
        return true;
      }
      if (c == 'e' || c == 'E') {
        state_ = State::number_exp;
        return true;
      }
      return end_number_then(c);
    case State::number_dot:
      if (is_digit(c)) {
        state_ = State::number_frac;
        return true;
      }
      break;
    case State::number_frac:
      if (is_digit(c)) return true;
      if (c == 'e' || c == 'E') {
        state_ = State::number_exp;
        return true;
      }
      return end_number_then(c);
    case State::number_exp:
      if (c == '+' || c == '-') {
        state_ = State::number_exp_sign;
        return true;
      }
      [[fallthrough]];
    case State::number_exp_sign:
      if (is_digit(c)) {
        state_ = State::number_exp_int;
        return true;
      }
      break;
    case State::number_exp_int:
      if (is_digit(c)) return true;
      return end_number_then(c);
  }
  state_ = State::dead;
  return false;
}

bool JsonRecognizer::complete() const {
  if (!in_object_.empty()) return false;
  switch (state_) {
    case State::after_value:
    case State::number_zero:
    case State::number_int:
    case State::number_frac:
    case State::number_exp_int: return true;
    default: return false;
  }
}

}  // namespace decodelab
