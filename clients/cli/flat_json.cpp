#include "clients/cli/flat_json.hpp"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "core/utf8.hpp"
#include "decodelab/error.hpp"

namespace decodelab::cli {
namespace {

class Parser {
 public:
  Parser(const std::string& line, const std::string& where) : line_(line), where_(where) {}

  FlatObject object() {
    FlatObject fields;
    skip_ws();
    expect('{');
    skip_ws();
    if (peek() == '}') return fields;
    while (true) {
      skip_ws();
      const std::string key = string();
      skip_ws();
      expect(':');
      skip_ws();
      fields[key] = value();
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect('}');
      skip_ws();
      if (i_ != line_.size()) bad("text after the object");
      return fields;
    }
  }

 private:
  [[noreturn]] void bad(const std::string& why) {
    fail(ErrorCode::bad_format, where_ + ": " + why + " at column " + std::to_string(i_ + 1));
  }
  char peek() const { return i_ < line_.size() ? line_[i_] : '\0'; }
  void skip_ws() {
    while (i_ < line_.size() && std::isspace(static_cast<unsigned char>(line_[i_]))) ++i_;
  }
  void expect(char c) {
    if (peek() != c) bad(std::string("expected '") + c + "'");
    ++i_;
  }
  bool word(const char* w) {
    const std::string s(w);
    if (line_.compare(i_, s.size(), s) != 0) return false;
    i_ += s.size();
    return true;
  }

  FlatValue value() {
    FlatValue v;
    const char c = peek();
    if (c == '"') {
      v.kind = FlatValue::Kind::string;
      v.text = string();
    } else if (c == '[') {
      v.kind = FlatValue::Kind::numbers;
      ++i_;
      skip_ws();
      if (peek() == ']') {
        ++i_;
        return v;
      }
      while (true) {
        skip_ws();
        v.numbers.push_back(word("null") ? std::numeric_limits<double>::quiet_NaN() : number());
        skip_ws();
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect(']');
        return v;
      }
    } else if (c == '{') {
      bad("nested objects are not supported");
    } else if (word("true")) {
      v.kind = FlatValue::Kind::boolean;
      v.number = 1;
    } else if (word("false")) {
      v.kind = FlatValue::Kind::boolean;
    } else if (word("null")) {
      v.kind = FlatValue::Kind::null;
    } else {
      v.kind = FlatValue::Kind::number;
      v.number = number();
    }
    return v;
  }

  double number() {
    const char* begin = line_.c_str() + i_;
    char* end = nullptr;
    const double v = std::strtod(begin, &end);
    if (end == begin) bad("expected a number");
    i_ += std::size_t(end - begin);
    return v;
  }

  uint32_t hex4() {
    if (i_ + 4 > line_.size()) bad("truncated \\u escape");
    uint32_t v = 0;
    for (int n = 0; n < 4; ++n) {
      const char c = line_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= uint32_t(c - 'A' + 10);
      else bad("bad \\u escape");
    }
    return v;
  }

  std::string string() {
    if (peek() != '"') bad("expected a string");
    ++i_;
    std::string out;
    while (true) {
      if (i_ >= line_.size()) bad("unterminated string");
      const char c = line_[i_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= line_.size()) bad("unterminated escape");
      const char e = line_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {  // surrogate pair
            if (i_ + 2 > line_.size() || line_[i_] != '\\' || line_[i_ + 1] != 'u') bad("lone surrogate");
            i_ += 2;
            const uint32_t lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) bad("bad low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: bad(std::string("unknown escape \\") + e);
      }
    }
  }

  const std::string& line_;
  const std::string& where_;
  std::size_t i_ = 0;
};

}  // namespace

FlatObject parse_flat_json(const std::string& line, const std::string& where) { return Parser(line, where).object(); }

std::string json_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  return out;
}

}  // namespace decodelab::cli
