// Request decoding and reply encoding for decodelabd. Decoding never trusts the input: sizes and
// nesting are bounded before msgpack allocates, every field is type-checked, unknown fields are
// errors (a typo such as "max_token" must not silently fall back to a default).
#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST  // msgpack-cxx without its Boost-based adaptors
#endif
#include "daemon/protocol.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <set>

#include <msgpack.hpp>

namespace decodelab::daemon {

void reject(std::string code, std::string field, const std::string& message) {
  throw ProtocolError(std::move(code), std::move(field), message);
}

// ------------------------------------------------------------------------------------------------
// Encoding

namespace {

// Strings pass through unchanged unless `valid_utf8` is set; then invalid UTF-8 becomes U+FFFD.
void pack_string(msgpack::packer<msgpack::sbuffer>& out, const std::string& text, bool valid_utf8) {
  if (valid_utf8 && !is_valid_utf8(text)) out.pack(sanitize_utf8(text));
  else out.pack(text);
}

void pack_value(msgpack::packer<msgpack::sbuffer>& out, const Value& value, bool valid_utf8) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          out.pack_nil();
        } else if constexpr (std::is_same_v<T, std::string>) {
          pack_string(out, x, valid_utf8);
        } else if constexpr (std::is_same_v<T, Value::Array>) {
          out.pack_array(uint32_t(x.size()));
          for (const Value& item : x) pack_value(out, item, valid_utf8);
        } else if constexpr (std::is_same_v<T, Value::Map>) {
          out.pack_map(uint32_t(x.size()));
          for (const auto& [key, item] : x) {
            pack_string(out, key, valid_utf8);
            pack_value(out, item, valid_utf8);
          }
        } else {
          out.pack(x);
        }
      },
      value.v);
}

std::string pack_with(const Value& value, bool valid_utf8) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> out(buffer);
  pack_value(out, value, valid_utf8);
  return std::string(buffer.data(), buffer.size());
}

}  // namespace

std::string pack(const Value& value) { return pack_with(value, false); }
std::string pack_reply(const Value& value) { return pack_with(value, true); }

namespace {

Value to_value(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL: return Value();
    case msgpack::type::BOOLEAN: return Value(o.via.boolean);
    case msgpack::type::POSITIVE_INTEGER: return Value(o.via.u64);
    case msgpack::type::NEGATIVE_INTEGER: return Value(o.via.i64);
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return Value(o.via.f64);
    case msgpack::type::STR: return Value(std::string(o.via.str.ptr, o.via.str.size));
    case msgpack::type::BIN: return Value(std::string(o.via.bin.ptr, o.via.bin.size));
    case msgpack::type::ARRAY: {
      Value::Array a;
      for (uint32_t i = 0; i < o.via.array.size; ++i) a.push_back(to_value(o.via.array.ptr[i]));
      return a;
    }
    case msgpack::type::MAP: {
      Value::Map m;
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        if (kv.key.type != msgpack::type::STR) fail(ErrorCode::bad_format, "reply map has a non-string key");
        m.emplace_back(std::string(kv.key.via.str.ptr, kv.key.via.str.size), to_value(kv.val));
      }
      return m;
    }
    default: fail(ErrorCode::bad_format, "reply holds a msgpack extension");
  }
}

[[noreturn]] void mismatch(std::string_view what, const char* want) {
  fail(ErrorCode::bad_format, std::string(what) + " is not " + want);
}

}  // namespace

Value unpack(std::string_view message) {
  try {
    std::size_t offset = 0;
    msgpack::object_handle h = msgpack::unpack(message.data(), message.size(), offset, nullptr, nullptr,
                                               msgpack::unpack_limit(1 << 24, 1 << 24, 1 << 30, 1 << 30, 1 << 30, 64));
    return to_value(h.get());
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(ErrorCode::bad_format, std::string("message is not valid msgpack: ") + e.what());
  }
}

const Value* Value::get(std::string_view key) const {
  const Map* m = std::get_if<Map>(&v);
  if (!m) return nullptr;
  for (const auto& [k, value] : *m) {
    if (k == key) return &value;
  }
  return nullptr;
}
int64_t Value::as_int(std::string_view what) const {
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&v); u && *u <= uint64_t(std::numeric_limits<int64_t>::max()))
    return int64_t(*u);
  mismatch(what, "an integer");
}
double Value::as_double(std::string_view what) const {
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* f = std::get_if<float>(&v)) return *f;
  if (const auto* i = std::get_if<int64_t>(&v)) return double(*i);
  if (const auto* u = std::get_if<uint64_t>(&v)) return double(*u);
  mismatch(what, "a number");
}
bool Value::as_bool(std::string_view what) const {
  if (const auto* b = std::get_if<bool>(&v)) return *b;
  mismatch(what, "a boolean");
}
const std::string& Value::as_string(std::string_view what) const {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  mismatch(what, "a string");
}
const Value::Array& Value::as_array(std::string_view what) const {
  if (const auto* a = std::get_if<Array>(&v)) return *a;
  mismatch(what, "an array");
}
const Value::Map& Value::as_map(std::string_view what) const {
  if (const auto* m = std::get_if<Map>(&v)) return *m;
  mismatch(what, "a map");
}

Value error_reply(uint64_t id, const std::string& code, const std::string& message, const std::string& field) {
  return Value::Map{
      {"id", id}, {"type", "error"}, {"code", code}, {"message", sanitize_utf8(message)}, {"field", field}};
}

Value result_reply(uint64_t id, Value::Map fields) {
  Value::Map out{{"id", id}, {"type", "result"}};
  for (auto& f : fields) out.push_back(std::move(f));
  return out;
}

std::size_t complete_utf8_prefix(std::string_view text) {
  // Walk back over at most 3 continuation bytes to the last lead byte; drop it when its sequence
  // is not complete yet.
  const std::size_t n = text.size();
  std::size_t i = n;
  int continuation = 0;
  while (i > 0 && continuation < 4 && (static_cast<unsigned char>(text[i - 1]) & 0xC0) == 0x80) {
    --i;
    ++continuation;
  }
  if (i == 0) return n;
  const unsigned char lead = static_cast<unsigned char>(text[i - 1]);
  int need = 0;
  if (lead >= 0xF0) need = 3;
  else if (lead >= 0xE0) need = 2;
  else if (lead >= 0xC0) need = 1;
  return continuation < need ? i - 1 : n;
}

namespace {

// The length of the valid UTF-8 sequence at text[i], or 0 when the bytes there are not one
// (truncated, a stray continuation byte, overlong, a surrogate, past U+10FFFF).
std::size_t utf8_sequence(std::string_view text, std::size_t i) {
  const unsigned char c = static_cast<unsigned char>(text[i]);
  std::size_t len = 0;
  uint32_t cp = 0;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else return 0;
  if (i + len > text.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const unsigned char cc = static_cast<unsigned char>(text[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
    return 0;
  }
  return len;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = utf8_sequence(text, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string sanitize_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = utf8_sequence(text, i);
    if (len > 0) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      i += 1;
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Decoding

namespace {

const char* type_name(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL: return "nil";
    case msgpack::type::BOOLEAN: return "boolean";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER: return "integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return "float";
    case msgpack::type::STR: return "string";
    case msgpack::type::BIN: return "binary";
    case msgpack::type::ARRAY: return "array";
    case msgpack::type::MAP: return "map";
    default: return "extension";
  }
}

[[noreturn]] void wrong_type(const std::string& field, const char* want, const msgpack::object& o) {
  reject(to_string(ErrorCode::invalid_argument), field,
         "field '" + field + "' must be " + want + ", got " + type_name(o));
}

std::string as_string(const msgpack::object& o, const std::string& field) {
  if (o.type != msgpack::type::STR) wrong_type(field, "a string", o);
  return std::string(o.via.str.ptr, o.via.str.size);
}

int64_t as_int(const msgpack::object& o, const std::string& field) {
  if (o.type == msgpack::type::POSITIVE_INTEGER) {
    if (o.via.u64 > uint64_t(std::numeric_limits<int64_t>::max())) {
      reject(to_string(ErrorCode::invalid_argument), field, "field '" + field + "' is out of range");
    }
    return int64_t(o.via.u64);
  }
  if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
  wrong_type(field, "an integer", o);
}

uint64_t as_uint(const msgpack::object& o, const std::string& field) {
  if (o.type == msgpack::type::POSITIVE_INTEGER) return o.via.u64;
  if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    reject(to_string(ErrorCode::invalid_argument), field, "field '" + field + "' must be non-negative");
  }
  wrong_type(field, "a non-negative integer", o);
}

double as_number(const msgpack::object& o, const std::string& field) {
  if (o.type == msgpack::type::FLOAT32 || o.type == msgpack::type::FLOAT64) {
    if (!std::isfinite(o.via.f64)) {
      reject(to_string(ErrorCode::invalid_argument), field, "field '" + field + "' must be finite");
    }
    return o.via.f64;
  }
  return double(as_int(o, field));
}

bool as_bool(const msgpack::object& o, const std::string& field) {
  if (o.type != msgpack::type::BOOLEAN) wrong_type(field, "a boolean", o);
  return o.via.boolean;
}

TokenId as_token(const msgpack::object& o, const std::string& field) {
  const int64_t v = as_int(o, field);
  if (v < 0 || v > std::numeric_limits<TokenId>::max()) {
    reject(to_string(ErrorCode::invalid_argument), field,
           "field '" + field + "' holds token id " + std::to_string(v) + ", not a valid token id");
  }
  return TokenId(v);
}

const msgpack::object_array& as_array(const msgpack::object& o, const std::string& field) {
  if (o.type != msgpack::type::ARRAY) wrong_type(field, "an array", o);
  return o.via.array;
}

// The fields of one map, with the keys already checked to be strings and unique; every lookup
// marks its key as used, and finish() rejects the keys nobody asked for.
class Fields {
 public:
  Fields(const msgpack::object& o, std::string where) : where_(std::move(where)) {
    if (o.type != msgpack::type::MAP) wrong_type(where_.empty() ? "request" : where_, "a map", o);
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      const msgpack::object_kv& kv = o.via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR) {
        reject(to_string(ErrorCode::invalid_argument), where_, "map '" + label() + "' has a non-string key");
      }
      std::string key(kv.key.via.str.ptr, kv.key.via.str.size);
      if (!entries_.emplace(key, &kv.val).second) {
        reject(to_string(ErrorCode::invalid_argument), path(key), "field '" + path(key) + "' appears twice");
      }
    }
  }
  const msgpack::object* find(const std::string& key) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return nullptr;
    used_.insert(key);
    // nil means "not given", so clients can send optional fields uniformly.
    return it->second->type == msgpack::type::NIL ? nullptr : it->second;
  }
  const msgpack::object& require(const std::string& key) {
    const msgpack::object* o = find(key);
    if (!o) reject(to_string(ErrorCode::invalid_argument), path(key), "missing field '" + path(key) + "'");
    return *o;
  }
  std::string path(const std::string& key) const { return where_.empty() ? key : where_ + "." + key; }
  void finish() const {
    for (const auto& [key, value] : entries_) {
      if (!used_.count(key)) {
        reject(to_string(ErrorCode::invalid_argument), path(key), "unknown field '" + path(key) + "'");
      }
    }
  }
  const std::map<std::string, const msgpack::object*>& entries() const { return entries_; }

 private:
  std::string label() const { return where_.empty() ? "request" : where_; }
  std::string where_;
  std::map<std::string, const msgpack::object*> entries_;
  std::set<std::string> used_;
};

ParamValue as_param(const msgpack::object& o, const std::string& field) {
  switch (o.type) {
    case msgpack::type::BOOLEAN: return o.via.boolean;
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER: return as_int(o, field);
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return as_number(o, field);
    case msgpack::type::STR: return as_string(o, field);
    default: wrong_type(field, "a number, boolean or string", o);
  }
}

GenerateRequest decode_generate(Fields& f, const DecodeLimits& limits) {
  GenerateRequest g;
  {
    Fields models(f.require("models"), "models");
    for (const auto& [role, value] : models.entries()) {
      if (const msgpack::object* o = models.find(role)) g.models[role] = as_string(*o, models.path(role));
    }
    if (!g.models.count("target")) {
      reject(to_string(ErrorCode::invalid_argument), "models.target",
             "field 'models.target' (the target model's name) is required");
    }
  }
  if (const auto* o = f.find("decoder")) g.decoder = as_string(*o, "decoder");
  if (const auto* o = f.find("params")) {
    Fields params(*o, "params");
    for (const auto& [name, value] : params.entries()) {
      if (const msgpack::object* p = params.find(name)) g.params[name] = as_param(*p, params.path(name));
    }
  }
  const auto* text = f.find("prompt");
  const auto* ids = f.find("prompt_ids");
  if (text && ids)
    reject(to_string(ErrorCode::invalid_argument), "prompt", "give either 'prompt' or 'prompt_ids', not both");
  if (!text && !ids)
    reject(to_string(ErrorCode::invalid_argument), "prompt",
           "missing field 'prompt' (text) or 'prompt_ids' (token ids)");
  if (text) g.prompt_text = as_string(*text, "prompt");
  if (ids) {
    const auto& a = as_array(*ids, "prompt_ids");
    g.prompt_ids.emplace();
    for (uint32_t i = 0; i < a.size; ++i)
      g.prompt_ids->push_back(as_token(a.ptr[i], "prompt_ids[" + std::to_string(i) + "]"));
  }
  if (const auto* o = f.find("seed")) g.seed = as_uint(*o, "seed");
  const auto* n = f.find("n");
  const auto* seeds = f.find("seeds");
  if (n && seeds) reject(to_string(ErrorCode::invalid_argument), "seeds", "give either 'n' or 'seeds', not both");
  if (seeds && f.find("seed")) {
    reject(to_string(ErrorCode::invalid_argument), "seed", "give either 'seed' (with 'n') or a 'seeds' list, not both");
  }
  if (n) {
    const int64_t count = as_int(*n, "n");
    if (count < 1 || count > kMaxSeeds) {
      reject(to_string(ErrorCode::invalid_argument), "n",
             "field 'n' must be in [1, " + std::to_string(kMaxSeeds) + "], got " + std::to_string(count));
    }
    if (g.seed > std::numeric_limits<uint64_t>::max() - uint64_t(count - 1)) {
      reject(to_string(ErrorCode::invalid_argument), "n",
             "seeds seed .. seed + n - 1 run past the largest seed (2^64 - 1)");
    }
    g.seeds.emplace();
    for (int64_t i = 0; i < count; ++i) g.seeds->push_back(g.seed + uint64_t(i));
  }
  if (seeds) {
    const auto& a = as_array(*seeds, "seeds");
    if (a.size < 1 || int64_t(a.size) > kMaxSeeds) {
      reject(to_string(ErrorCode::invalid_argument), "seeds",
             "field 'seeds' must hold 1 to " + std::to_string(kMaxSeeds) + " seeds, got " + std::to_string(a.size));
    }
    g.seeds.emplace();
    for (uint32_t i = 0; i < a.size; ++i) g.seeds->push_back(as_uint(a.ptr[i], "seeds[" + std::to_string(i) + "]"));
  }
  if (const auto* o = f.find("max_tokens")) {
    g.max_tokens = as_int(*o, "max_tokens");
    if (g.max_tokens < 0 || g.max_tokens > limits.max_tokens) {
      reject(to_string(ErrorCode::invalid_argument), "max_tokens",
             "field 'max_tokens' must be in [0, " + std::to_string(limits.max_tokens) + "], got " +
                 std::to_string(g.max_tokens));
    }
  }
  if (const auto* o = f.find("stop")) {
    const auto& a = as_array(*o, "stop");
    for (uint32_t i = 0; i < a.size; ++i) {
      std::string s = as_string(a.ptr[i], "stop[" + std::to_string(i) + "]");
      if (s.empty())
        reject(to_string(ErrorCode::invalid_argument), "stop[" + std::to_string(i) + "]",
               "stop strings must not be empty");
      g.stop.push_back(std::move(s));
    }
  }
  if (const auto* o = f.find("stop_token_ids")) {
    const auto& a = as_array(*o, "stop_token_ids");
    for (uint32_t i = 0; i < a.size; ++i)
      g.stop_token_ids.push_back(as_token(a.ptr[i], "stop_token_ids[" + std::to_string(i) + "]"));
  }
  if (const auto* o = f.find("stop_at_eos")) g.stop_at_eos = as_bool(*o, "stop_at_eos");
  if (const auto* o = f.find("stream")) g.stream = as_bool(*o, "stream");
  if (const auto* o = f.find("logprobs")) g.logprobs = as_bool(*o, "logprobs");
  if (const auto* o = f.find("deadline_s")) {
    g.deadline_s = as_number(*o, "deadline_s");
    if (g.deadline_s < 0 || g.deadline_s > 1e6) {
      reject(to_string(ErrorCode::invalid_argument), "deadline_s",
             "field 'deadline_s' must be in [0, 1e6] seconds (0 = none)");
    }
  }
  if (const auto* o = f.find("client_reward")) g.client_reward = as_bool(*o, "client_reward");
  if (const auto* o = f.find("reward_timeout_s")) {
    g.reward_timeout_s = as_number(*o, "reward_timeout_s");
    if (g.reward_timeout_s <= 0 || g.reward_timeout_s > 86400) {
      reject(to_string(ErrorCode::invalid_argument), "reward_timeout_s",
             "field 'reward_timeout_s' must be in (0, 86400] seconds");
    }
  }
  return g;
}

RewardReply decode_reward(Fields& f) {
  RewardReply r;
  r.call = as_uint(f.require("call"), "call");
  const auto& a = as_array(f.require("scores"), "scores");
  for (uint32_t i = 0; i < a.size; ++i) {
    const msgpack::object& o = a.ptr[i];
    const std::string field = "scores[" + std::to_string(i) + "]";
    const bool is_float = o.type == msgpack::type::FLOAT32 || o.type == msgpack::type::FLOAT64;
    const double v = is_float ? o.via.f64 : double(as_int(o, field));
    // -inf rules a text out; NaN or +inf would poison every weight.
    if (std::isnan(v) || v == std::numeric_limits<double>::infinity()) {
      reject(to_string(ErrorCode::invalid_argument), field,
             "field '" + field + "' must be a number or -inf, got " + std::to_string(v));
    }
    r.scores.push_back(v);
  }
  return r;
}

std::string require_name(Fields& f, const std::string& key) {
  std::string name = as_string(f.require(key), key);
  if (name.empty() || name.size() > 256) {
    reject(to_string(ErrorCode::invalid_argument), key, "field '" + key + "' must be a name of 1 to 256 bytes");
  }
  return name;
}

// One decode_body() per request struct of kOps (ops without fields share the first).
template <class Body>
requires std::is_empty_v<Body>
void decode_body(Fields&, const DecodeLimits&, Body&) {}

void decode_body(Fields& f, const DecodeLimits&, LoadModelRequest& m) {
  m.name = require_name(f, "name");
  m.spec = as_string(f.require("spec"), "spec");
  if (const auto* o = f.find("target")) m.target = as_string(*o, "target");
  if (const auto* o = f.find("kv_budget_mb")) {
    m.kv_budget_mb = as_number(*o, "kv_budget_mb");
    if (!(m.kv_budget_mb > 0 && m.kv_budget_mb <= kMaxKvBudgetMb)) {
      reject(to_string(ErrorCode::invalid_argument), "kv_budget_mb",
             "field 'kv_budget_mb' must be a number of MiB in (0, " + std::to_string(int64_t(kMaxKvBudgetMb)) +
                 "], got " + std::to_string(m.kv_budget_mb));
    }
  }
}

void decode_body(Fields& f, const DecodeLimits&, UnloadModelRequest& m) { m.name = require_name(f, "name"); }

void decode_body(Fields& f, const DecodeLimits&, CancelRequest& c) {
  c.request_id = as_uint(f.require("request_id"), "request_id");
}

void decode_body(Fields& f, const DecodeLimits& limits, GenerateRequest& g) { g = decode_generate(f, limits); }

void decode_body(Fields& f, const DecodeLimits&, RewardReply& r) { r = decode_reward(f); }

std::string joined_op_names() {
  std::string out;
  for (const auto& name : op_names()) out += (out.empty() ? "" : " ") + name;
  return out;
}

}  // namespace

std::vector<std::string> op_names() {
  std::vector<std::string> names;
  for_each_op([&](const auto& row) { names.emplace_back(row.name); });
  return names;
}

std::vector<std::string> op_features() {
  std::vector<std::string> out;
  auto add = [&](std::string_view list) {
    std::size_t start = 0;
    while (start < list.size()) {
      std::size_t end = list.find(' ', start);
      if (end == std::string_view::npos) end = list.size();
      std::string feature(list.substr(start, end - start));
      if (!feature.empty() && std::find(out.begin(), out.end(), feature) == out.end())
        out.push_back(std::move(feature));
      start = end + 1;
    }
  };
  for_each_op([&](const auto& row) { add(row.features); });
  add(kTransportFeatures);
  return out;
}

namespace {

// The id and auth of a request map, read leniently: 0 and "" when absent or of the wrong type.
struct Envelope {
  uint64_t id = 0;
  std::string auth;
};

Envelope read_envelope(const msgpack::object& o) {
  Envelope e;
  if (o.type != msgpack::type::MAP) return e;
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    const msgpack::object_kv& kv = o.via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR) continue;
    const std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
    if (key == "id" && kv.val.type == msgpack::type::POSITIVE_INTEGER) e.id = kv.val.via.u64;
    if (key == "auth" && kv.val.type == msgpack::type::STR) e.auth.assign(kv.val.via.str.ptr, kv.val.via.str.size);
  }
  return e;
}

// Reads a message bounded by the transport (ZeroMQ drops more than twice the limit) as a whole,
// for the envelope of a message too large to decode; nothing when it is not msgpack.
std::optional<Envelope> peek_envelope(std::string_view message, const DecodeLimits& limits) noexcept {
  try {
    const msgpack::unpack_limit bound(limits.max_items, limits.max_items, message.size(), message.size(),
                                      message.size(), limits.max_depth);
    std::size_t offset = 0;
    const msgpack::object_handle handle =
        msgpack::unpack(message.data(), message.size(), offset, nullptr, nullptr, bound);
    return read_envelope(handle.get());
  } catch (...) {
    return std::nullopt;
  }
}

}  // namespace

uint64_t peek_request_id(std::string_view message, const DecodeLimits& limits) noexcept {
  const auto envelope = peek_envelope(message, limits);
  return envelope ? envelope->id : 0;
}

Request decode_request(std::string_view message, const DecodeLimits& limits, uint64_t* id_out,
                       const Authorizer& authorize) {
  if (message.size() > limits.max_message_bytes) {
    const auto envelope = peek_envelope(message, limits);
    if (envelope) {
      if (id_out) *id_out = envelope->id;  // so the client can match the error
      if (authorize) authorize(envelope->auth);
    } else if (authorize) {
      authorize("");
    }
    reject(codes::too_large, "",
           "message of " + std::to_string(message.size()) + " bytes exceeds the limit of " +
               std::to_string(limits.max_message_bytes) + " bytes");
  }
  msgpack::object_handle handle;
  std::size_t offset = 0;
  try {
    const msgpack::unpack_limit bound(limits.max_items, limits.max_items, limits.max_message_bytes,
                                      limits.max_message_bytes, limits.max_message_bytes, limits.max_depth);
    handle = msgpack::unpack(message.data(), message.size(), offset, nullptr, nullptr, bound);
  } catch (const std::exception& e) {
    reject(to_string(ErrorCode::bad_format), "", std::string("message is not valid msgpack: ") + e.what());
  }
  if (offset != message.size()) {
    reject(to_string(ErrorCode::bad_format), "",
           "message has " + std::to_string(message.size() - offset) + " trailing bytes after one msgpack value");
  }
  // The id as early as possible, so that even an error about the map itself (a key given twice, a
  // key that is not a string) reaches the request it answers.
  const Envelope envelope = read_envelope(handle.get());
  if (id_out) *id_out = envelope.id;
  if (authorize) authorize(envelope.auth);
  Fields f(handle.get(), "");
  Request r;
  r.id = as_uint(f.require("id"), "id");
  if (id_out) *id_out = r.id;
  r.op = as_string(f.require("op"), "op");
  if (const auto* o = f.find("auth")) r.auth = as_string(*o, "auth");

  bool known = false;
  for_each_op([&](const auto& row) {
    using Body = typename std::decay_t<decltype(row)>::Request;
    if (known || row.name != r.op) return;
    known = true;
    Body body{};
    decode_body(f, limits, body);
    r.body = std::move(body);
  });
  if (!known) {
    reject(to_string(ErrorCode::not_found), "op",
           "unknown op '" + sanitize_utf8(r.op) + "'; known: " + joined_op_names());
  }
  f.finish();
  return r;
}

}  // namespace decodelab::daemon
