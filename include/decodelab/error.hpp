#pragma once
// Errors carry context: what was wrong and where (file, tensor, parameter, field).
// Library code throws decodelab::Error at API and file-format boundaries; the daemon
// turns them into structured error replies.

#include <stdexcept>
#include <string>

namespace decodelab {

enum class ErrorCode {
  invalid_argument,    // a parameter, option or request field is out of range or malformed
  not_found,           // an unknown decoder, sampler, model, role or token
  bad_format,          // a file or message that does not parse (GGUF, msgpack, spec strings)
  unsupported,         // valid input we do not implement (an architecture, a tensor type)
  numeric,             // NaN logits, a distribution with no mass
  cancelled,           // the caller asked to stop
  resource_exhausted,  // a memory budget (a model's KV budget) would be exceeded
  internal,            // a broken invariant: a bug in decodelab
};

const char* to_string(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& message) { throw Error(code, message); }

}  // namespace decodelab
