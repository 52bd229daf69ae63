#pragma once
// The decodelabd wire protocol (docs/protocol.md): one msgpack map per ZeroMQ message. A client
// DEALER sends request maps {id, op, ...}; the daemon's ROUTER answers each with one "result" or
// "error" map carrying the same id, preceded, for streamed generations, by "chunk" maps and
// possibly "heartbeat" maps. This header holds the request structs, the request decoder (the only
// code that touches untrusted bytes; it is fuzzed in fuzz/protocol) and the reply encoder.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "decodelab/distribution.hpp"
#include "decodelab/error.hpp"
#include "decodelab/params.hpp"

namespace decodelab::daemon {

// Bumped on any incompatible change to request or reply fields.
// Version 2 added generate's `n` and `seeds` (several generations of one request, batched); every
// version-1 request still means what it meant and gets the same reply.
inline constexpr int kProtocolVersion = 2;
// The most generations one generate request may ask for (`n`, or the length of `seeds`).
inline constexpr int64_t kMaxSeeds = 65536;
inline constexpr double kMaxKvBudgetMb = 1 << 30;  // a petabyte: any real machine's memory fits

// A reply value: a plain msgpack tree the daemon builds and packs once. Maps keep insertion order.
struct Value {
  using Array = std::vector<Value>;
  using Map = std::vector<std::pair<std::string, Value>>;
  std::variant<std::monostate, bool, int64_t, uint64_t, double, float, std::string, Array, Map> v;

  Value() = default;
  Value(bool b) : v(b) {}
  Value(int i) : v(int64_t(i)) {}
  Value(int64_t i) : v(i) {}
  Value(uint64_t i) : v(i) {}
  Value(double d) : v(d) {}
  Value(float f) : v(f) {}
  Value(const char* s) : v(std::string(s)) {}
  Value(std::string s) : v(std::move(s)) {}
  Value(Array a) : v(std::move(a)) {}
  Value(Map m) : v(std::move(m)) {}

  // Reading (clients, tests): get() returns nullptr for a missing key or a non-map; the as_*
  // accessors throw Error(bad_format) naming `what` on a type mismatch.
  const Value* get(std::string_view key) const;
  bool is_nil() const { return std::holds_alternative<std::monostate>(v); }
  int64_t as_int(std::string_view what = "value") const;
  double as_double(std::string_view what = "value") const;
  bool as_bool(std::string_view what = "value") const;
  const std::string& as_string(std::string_view what = "value") const;
  const Array& as_array(std::string_view what = "value") const;
  const Map& as_map(std::string_view what = "value") const;
};
std::string pack(const Value& value);
// Packs a message of the daemon: every string and map key comes out as valid UTF-8 (invalid bytes
// become U+FFFD), whatever request text it echoes, so no client's decoder can choke on a reply.
std::string pack_reply(const Value& value);
// Parses one msgpack value (a reply, on the client side); throws Error(bad_format).
Value unpack(std::string_view message);

// Error codes on the wire: decodelab::ErrorCode names plus the daemon's own.
namespace codes {
inline constexpr const char* busy = "busy";                  // the queue is full; retry later
inline constexpr const char* too_large = "too_large";        // message over the size limit
inline constexpr const char* unauthorized = "unauthorized";  // missing or wrong shared secret
inline constexpr const char* forbidden = "forbidden";        // op disabled by configuration
inline constexpr const char* shutting_down = "shutting_down";
inline constexpr const char* deadline_exceeded = "deadline_exceeded";
}  // namespace codes

// A request the daemon rejects: `code` (see above or decodelab::ErrorCode), the request field at
// fault ("" when the message as a whole is), and a message naming it.
class ProtocolError : public std::runtime_error {
 public:
  ProtocolError(std::string code, std::string field, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)), field_(std::move(field)) {}
  const std::string& code() const { return code_; }
  const std::string& field() const { return field_; }

 private:
  std::string code_;
  std::string field_;
};
[[noreturn]] void reject(std::string code, std::string field, const std::string& message);

// Requests, one struct per op.
struct HelloRequest {};
struct ListModelsRequest {};
struct ListDecodersRequest {};
struct StatusRequest {};
struct MetricsRequest {};
struct ShutdownRequest {};
struct LoadModelRequest {
  std::string name;  // client-chosen; later requests refer to the model by it
  std::string
      spec;  // as include/decodelab/model_factory.hpp load_model(): "table(vocab=32)", "draft(...)", "gguf(path=...)"
  std::string target;       // for a draft: the loaded model it derives from ("" otherwise)
  double kv_budget_mb = 0;  // the model's KV budget in MiB (0: the daemon's --kv-budget-mb)
};
struct UnloadModelRequest {
  std::string name;
};
struct CancelRequest {
  uint64_t request_id = 0;  // a request of the same client
};
// The client's answer to a "reward_request" of its generation `id` (the message's own id is the
// generation's, so an error about it reaches the client as that generation's error). One-way:
// the daemon sends no result for it.
struct RewardReply {
  uint64_t call = 0;           // the reward_request's call number
  std::vector<double> scores;  // one log-potential per text; -inf allowed, NaN and +inf are not
};
struct GenerateRequest {
  std::map<std::string, std::string> models;  // role -> loaded model name; "target" is required
  std::string decoder = "sample";
  ParamMap params;
  std::optional<std::string> prompt_text;  // exactly one of prompt_text / prompt_ids
  std::optional<std::vector<TokenId>> prompt_ids;
  uint64_t seed = 0;
  // Several generations, one per seed (`n`: seed .. seed + n - 1, or an explicit `seeds` list);
  // unset for a single generation with `seed`, whose reply is version 1's.
  std::optional<std::vector<uint64_t>> seeds;
  int64_t max_tokens = 64;
  std::vector<std::string> stop;  // stop strings: generation ends once the text contains one
  std::vector<TokenId> stop_token_ids;
  bool stop_at_eos = true;
  bool stream = false;
  bool logprobs = false;
  double deadline_s = 0.0;         // 0: none; counted from when the daemon receives the request
  bool client_reward = false;      // the decoder's external reward is computed by the client
  double reward_timeout_s = 60.0;  // how long the daemon waits for one reward reply
};

// ------------------------------------------------------------------------------------------------
// The table of ops
//
// kOps is the one list of the protocol's ops: each row gives an op's wire name, its request struct
// and the `hello` features it brings. Everything op-specific follows from it:
//   * decode_request() finds the op's row by name and decodes its struct (an overload per struct
//     in protocol.cpp; a row without one does not compile);
//   * the service dispatches on the struct (a handler overload per struct; likewise enforced);
//   * `hello` reports op_names() as `ops` and op_features() in `features`;
//   * an unknown op's error lists op_names().
// docs/protocol.md has a heading per op and the clients a method per op; tests check both against
// this table.
template <class Body>
struct OpSpec {
  using Request = Body;
  std::string_view name;      // the request's "op" field
  std::string_view features;  // space-separated `hello` features this op provides ("" for none)
};

inline constexpr std::tuple kOps{
    OpSpec<HelloRequest>{"hello", ""},
    OpSpec<LoadModelRequest>{"load_model", "kv_budget"},
    OpSpec<UnloadModelRequest>{"unload_model", ""},
    OpSpec<ListModelsRequest>{"list_models", ""},
    OpSpec<ListDecodersRequest>{"list_decoders", ""},
    OpSpec<GenerateRequest>{"generate", "stream deadline logprobs stop_strings seeds"},
    OpSpec<CancelRequest>{"cancel", "cancel"},
    OpSpec<RewardReply>{"reward", "client_reward"},
    OpSpec<StatusRequest>{"status", ""},
    OpSpec<MetricsRequest>{"metrics", ""},
    OpSpec<ShutdownRequest>{"shutdown", ""},
};
inline constexpr std::size_t kOpCount = std::tuple_size_v<std::remove_const_t<decltype(kOps)>>;

// Features of the transport rather than of one op.
inline constexpr std::string_view kTransportFeatures = "heartbeat";

// Calls fn(row) for every row of kOps, in order.
template <class Fn>
constexpr void for_each_op(Fn&& fn) {
  std::apply([&](const auto&... row) { (fn(row), ...); }, kOps);
}

// The op names, in table order.
std::vector<std::string> op_names();
// The `hello` features: every op's, then the transport's, without repeats.
std::vector<std::string> op_features();

namespace detail {
template <class Table>
struct BodiesOf;
template <class... Body>
struct BodiesOf<std::tuple<OpSpec<Body>...>> {
  using type = std::variant<Body...>;
};
}  // namespace detail

// One alternative per row of kOps.
using RequestBody = detail::BodiesOf<std::remove_const_t<decltype(kOps)>>::type;

struct Request {
  uint64_t id = 0;
  std::string op;
  std::string auth;  // the shared secret, when the daemon requires one
  RequestBody body;
};

struct DecodeLimits {
  std::size_t max_message_bytes = 1 << 20;
  std::size_t max_items = 1 << 20;  // elements of any one array or map
  std::size_t max_depth = 16;       // nesting
  int64_t max_tokens = 1 << 20;     // upper bound for generate.max_tokens
};

// Checks a request's `auth` field ("" when absent or not a string); throws ProtocolError
// (unauthorized) to refuse it.
using Authorizer = std::function<void(const std::string& auth)>;

// Decodes one request message. Throws ProtocolError for anything malformed; `id_out` receives the
// request id as soon as it is known, so the error reply can carry it. `authorize`, when given, is
// called as soon as the message has been read as msgpack, before any field is checked (an unknown
// op, a bad field or an oversized message is answered `unauthorized` to a client without the
// secret, which so learns nothing about the daemon).
Request decode_request(std::string_view message, const DecodeLimits& limits, uint64_t* id_out = nullptr,
                       const Authorizer& authorize = {});

// The id of a request that is otherwise refused (too large, several frames), 0 when the message
// does not hold a readable one. Never throws.
uint64_t peek_request_id(std::string_view message, const DecodeLimits& limits) noexcept;

// Reply builders.
Value error_reply(uint64_t id, const std::string& code, const std::string& message, const std::string& field);
Value result_reply(uint64_t id, Value::Map fields);

// Text as a valid UTF-8 msgpack str: invalid bytes become U+FFFD.
std::string sanitize_utf8(std::string_view text);
bool is_valid_utf8(std::string_view text);
// Length of the longest prefix of `text` that does not end inside a UTF-8 sequence.
std::size_t complete_utf8_prefix(std::string_view text);

}  // namespace decodelab::daemon
