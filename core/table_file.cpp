// Explicit next-token tables from JSON: see table_file.hpp.
#include "core/table_file.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>

#include "core/json.hpp"
#include "decodelab/error.hpp"

namespace decodelab {
namespace {

// What the file says, checked field by field; every message names the file and the place.
class TableReader {
 public:
  TableReader(const JsonValue& root, const std::string& name) : root_(root), name_(name) {}

  std::shared_ptr<TableModel> read() {
    if (root_.kind != JsonValue::Kind::object) bad(root_, "the file must hold a JSON object");
    static const char* const kKnown[] = {"vocab", "tokens", "eos", "order", "contexts", "default"};
    for (const auto& [key, value] : root_.members) {
      bool known = false;
      for (const char* k : kKnown) known = known || key == k;
      if (!known) bad(value, "unknown key \"" + key + "\" (known: vocab, tokens, eos, order, contexts, default)");
    }
    vocab_ = int(integer(required("vocab"), "\"vocab\"", 2, 1 << 24));
    if (const JsonValue* tokens = root_.find("tokens")) read_tokens(*tokens);
    TokenId eos = -1;
    if (const JsonValue* e = root_.find("eos")) eos = TokenId(integer(*e, "\"eos\"", 0, vocab_ - 1));

    const JsonValue& contexts = required("contexts");
    if (contexts.kind != JsonValue::Kind::array) bad(contexts, "\"contexts\" must be an array of rows");
    auto rows = std::make_shared<std::map<std::vector<TokenId>, std::vector<float>>>();
    std::size_t longest = 0;
    for (std::size_t i = 0; i < contexts.items.size(); ++i) {
      const JsonValue& row = contexts.items[i];
      const std::string what = "contexts[" + std::to_string(i) + "]";
      if (row.kind != JsonValue::Kind::object)
        bad(row, what + " must be an object {\"context\": [...], \"probs\": [...]}");
      for (const auto& [key, value] : row.members)
        if (key != "context" && key != "probs") bad(value, what + ": unknown key \"" + key + "\" (context, probs)");
      const JsonValue* context = row.find("context");
      const JsonValue* probs = row.find("probs");
      if (!context) bad(row, what + " has no \"context\"");
      if (!probs) bad(row, what + " has no \"probs\"");
      std::vector<TokenId> key = read_context(*context, what + ".context");
      longest = std::max(longest, key.size());
      std::vector<float> logits = read_law(*probs, what + ".probs");
      if (!rows->emplace(std::move(key), std::move(logits)).second)
        bad(*context, what + ": this context has an earlier row already");
    }

    std::size_t order = longest;
    if (const JsonValue* o = root_.find("order")) {
      order = std::size_t(integer(*o, "\"order\"", 0, 16));
      if (order < longest)
        bad(*o, "\"order\" is " + std::to_string(order) + " but a context has " + std::to_string(longest) +
                    " tokens; a row's context may not be longer than the order");
    }

    // The fallback: logits, or none (then a context without a row is an error when it is reached).
    const JsonValue& fallback = required("default");
    std::optional<std::vector<float>> default_logits;
    if (fallback.kind == JsonValue::Kind::string && fallback.string == "uniform") {
      default_logits = std::vector<float>(std::size_t(vocab_), 0.0f);
    } else if (fallback.kind == JsonValue::Kind::string && fallback.string == "error") {
      default_logits.reset();
    } else if (fallback.kind == JsonValue::Kind::array) {
      default_logits = read_law(fallback, "\"default\"");
    } else {
      bad(fallback, "\"default\" must be a probability vector, \"uniform\" or \"error\"");
    }

    // Named after the file, not its directory (the daemon loads through a private link).
    const std::string model_name = "table(file=" + std::filesystem::path(name_).filename().string() + ")";
    auto fn = [rows, default_logits, model_name](std::span<const TokenId> context) -> std::vector<float> {
      auto it = rows->find(std::vector<TokenId>(context.begin(), context.end()));
      if (it != rows->end()) return it->second;
      if (default_logits) return *default_logits;
      std::string tokens;
      for (TokenId t : context) {
        if (!tokens.empty()) tokens += ' ';
        tokens += std::to_string(t);
      }
      fail(ErrorCode::not_found,
           "model '" + model_name + "' has no row for the context [" + tokens + "] and its \"default\" is \"error\"");
    };
    auto model = std::make_shared<TableModel>(model_name, vocab_, int(order), fn, eos);
    if (!texts_.empty()) model->set_token_texts(texts_);
    return model;
  }

 private:
  [[noreturn]] void bad(const JsonValue& at, const std::string& problem) const {
    fail(ErrorCode::invalid_argument, "table file '" + name_ + "': " + at.where() + ": " + problem);
  }

  const JsonValue& required(const char* key) const {
    const JsonValue* v = root_.find(key);
    if (!v) bad(root_, std::string("missing the required key \"") + key + "\"");
    return *v;
  }

  int64_t integer(const JsonValue& v, const std::string& what, int64_t min, int64_t max) const {
    if (v.kind != JsonValue::Kind::number || v.number != std::floor(v.number))
      bad(v, what + " must be an integer, got " + (v.kind == JsonValue::Kind::number ? "a fraction" : v.kind_name()));
    if (v.number < double(min) || v.number > double(max))
      bad(v, what + " is " + std::to_string(int64_t(std::clamp(v.number, -9e18, 9e18))) + ", outside [" +
                 std::to_string(min) + ", " + std::to_string(max) + "]");
    return int64_t(v.number);
  }

  void read_tokens(const JsonValue& tokens) {
    if (tokens.kind != JsonValue::Kind::array) bad(tokens, "\"tokens\" must be an array of strings");
    if (int(tokens.items.size()) != vocab_)
      bad(tokens, "\"tokens\" has " + std::to_string(tokens.items.size()) + " texts for a vocabulary of " +
                      std::to_string(vocab_));
    for (std::size_t i = 0; i < tokens.items.size(); ++i) {
      const JsonValue& t = tokens.items[i];
      if (t.kind != JsonValue::Kind::string || t.string.empty())
        bad(t, "tokens[" + std::to_string(i) + "] must be a non-empty string");
      for (std::size_t j = 0; j < i; ++j)
        if (texts_[j] == t.string)
          bad(t, "tokens[" + std::to_string(i) + "] repeats tokens[" + std::to_string(j) + "]");
      texts_.push_back(t.string);
    }
  }

  // A context: token ids, or token texts when the file has "tokens".
  std::vector<TokenId> read_context(const JsonValue& v, const std::string& what) const {
    if (v.kind != JsonValue::Kind::array) bad(v, what + " must be an array of tokens");
    std::vector<TokenId> out;
    for (std::size_t i = 0; i < v.items.size(); ++i) {
      const JsonValue& t = v.items[i];
      const std::string where = what + "[" + std::to_string(i) + "]";
      if (t.kind == JsonValue::Kind::string) {
        if (texts_.empty()) bad(t, where + " is a string, but the file has no \"tokens\" to look it up in");
        auto it = std::find(texts_.begin(), texts_.end(), t.string);
        if (it == texts_.end()) bad(t, where + ": no token has the text \"" + t.string + "\"");
        out.push_back(TokenId(it - texts_.begin()));
      } else {
        out.push_back(TokenId(integer(t, where, 0, vocab_ - 1)));
      }
    }
    return out;
  }

  // A probability vector -> logits (log p; -inf for p = 0).
  std::vector<float> read_law(const JsonValue& v, const std::string& what) const {
    if (v.kind != JsonValue::Kind::array) bad(v, what + " must be an array of probabilities");
    if (int(v.items.size()) != vocab_)
      bad(v, what + " has " + std::to_string(v.items.size()) + " probabilities for a vocabulary of " +
                 std::to_string(vocab_));
    std::vector<float> logits(v.items.size());
    double sum = 0.0;
    for (std::size_t i = 0; i < v.items.size(); ++i) {
      const JsonValue& p = v.items[i];
      const std::string where = what + "[" + std::to_string(i) + "]";
      if (p.kind != JsonValue::Kind::number) bad(p, where + " must be a number, got " + p.kind_name());
      if (p.number < 0.0) bad(p, where + " is negative (" + std::to_string(p.number) + ")");
      if (p.number > 1.0) bad(p, where + " is greater than 1 (" + std::to_string(p.number) + ")");
      sum += p.number;
      logits[i] = p.number > 0.0 ? float(std::log(p.number)) : -std::numeric_limits<float>::infinity();
    }
    if (std::fabs(sum - 1.0) > kTableSumTolerance) {
      std::ostringstream s;
      s << what << " sums to " << sum << ", not 1 (tolerance " << kTableSumTolerance << ")";
      bad(v, s.str());
    }
    return logits;
  }

  const JsonValue& root_;
  const std::string& name_;
  int vocab_ = 0;
  std::vector<std::string> texts_;
};

}  // namespace

std::shared_ptr<TableModel> parse_table_json(std::string_view text, const std::string& name) {
  const JsonValue root = parse_json(text, "table file '" + name + "'");
  return TableReader(root, name).read();
}

std::shared_ptr<TableModel> load_table_file(const std::string& path) {
  if (path.empty()) fail(ErrorCode::invalid_argument, "table model: file= is empty");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int error = errno;
    fail(error == ENOENT ? ErrorCode::not_found : ErrorCode::invalid_argument,
         "table file '" + path + "': " + std::strerror(error));
  }
  if (!S_ISREG(st.st_mode)) fail(ErrorCode::invalid_argument, "table file '" + path + "' is not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::invalid_argument, "table file '" + path + "': cannot be opened");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail(ErrorCode::invalid_argument, "table file '" + path + "': read error");
  return parse_table_json(text.str(), path);
}

}  // namespace decodelab
