#pragma once
// One flat JSON object per line, as the CLI's JSON Lines files hold them (prompt sets, bench
// records): string, number, true/false/null and arrays of numbers. Nested objects are an error.
// Not a general JSON library; the daemon speaks msgpack, and these files are ours.
#include <map>
#include <string>
#include <vector>

namespace decodelab::cli {

struct FlatValue {
  enum class Kind { string, number, boolean, null, numbers } kind = Kind::null;
  std::string text;             // Kind::string
  double number = 0;            // Kind::number; Kind::boolean as 0 / 1
  std::vector<double> numbers;  // Kind::numbers (a null element reads as NaN)
};

using FlatObject = std::map<std::string, FlatValue>;

// Parses `line`; errors name `where` (file:line) and the column.
FlatObject parse_flat_json(const std::string& line, const std::string& where);

std::string json_escape(const std::string& s);

}  // namespace decodelab::cli
