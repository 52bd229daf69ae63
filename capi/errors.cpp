// Status codes, the thread-local last-error message and the version functions of the C API.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "capi/guard.hpp"

namespace decodelab::capi {
namespace {
// One per thread, so concurrent callers never read each other's messages.
thread_local std::string last_error;
}  // namespace

decodelab_status set_error(decodelab_status status, const char* function, const std::string& message) noexcept {
  try {
    last_error = std::string(function) + ": " + message;
  } catch (...) {
    // Out of memory while building the message: keep the status, with the shortest message that
    // needs no allocation beyond what the string already holds.
    last_error.clear();
  }
  return status;
}

decodelab_status to_status(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_argument: return DECODELAB_ERR_INVALID_ARGUMENT;
    case ErrorCode::not_found: return DECODELAB_ERR_NOT_FOUND;
    case ErrorCode::bad_format: return DECODELAB_ERR_BAD_FORMAT;
    case ErrorCode::unsupported: return DECODELAB_ERR_UNSUPPORTED;
    case ErrorCode::numeric: return DECODELAB_ERR_NUMERIC;
    case ErrorCode::resource_exhausted: return DECODELAB_ERR_OUT_OF_MEMORY;
    // Nothing behind this API can be cancelled; a decoder that reports it would be a bug here.
    case ErrorCode::cancelled:
    case ErrorCode::internal: return DECODELAB_ERR_INTERNAL;
  }
  return DECODELAB_ERR_INTERNAL;
}

void require_vocab(std::size_t n, const char* name) {
  if (n == 0) fail(ErrorCode::invalid_argument, std::string(name) + " is 0; a vocabulary has at least one token");
  if (n > std::size_t(INT32_MAX))
    fail(ErrorCode::invalid_argument,
         std::string(name) + " = " + std::to_string(n) + " exceeds INT32_MAX (token ids are int32)");
}

void require_probabilities(const float* values, std::size_t n, const char* name) {
  // One branch-free pass over the bit patterns, which the compiler vectorizes (a loop of float
  // comparisons it does not): a float is finite and >= 0 exactly when its bits are below +inf's
  // (0x7f800000) or it is -0. The scalar search for the culprit runs only when something is wrong.
  uint32_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, values + i, sizeof bits);
    bad |= uint32_t(bits >= 0x7f800000u) & uint32_t(bits != 0x80000000u);
  }
  const bool valid = bad == 0;
  if (valid) return;
  for (std::size_t i = 0; i < n; ++i) {
    const float v = values[i];
    if (!std::isfinite(v) || v < 0.0f)
      fail(ErrorCode::invalid_argument, std::string(name) + "[" + std::to_string(i) + "] = " + std::to_string(v) +
                                            ": probabilities must be finite and >= 0");
  }
}

}  // namespace decodelab::capi

extern "C" {

const char* decodelab_version(void) {
#define DECODELAB_STR2(x) #x
#define DECODELAB_STR(x) DECODELAB_STR2(x)
  return DECODELAB_STR(DECODELAB_VERSION_MAJOR) "." DECODELAB_STR(DECODELAB_VERSION_MINOR) "." DECODELAB_STR(
      DECODELAB_VERSION_PATCH);
#undef DECODELAB_STR
#undef DECODELAB_STR2
}

uint32_t decodelab_abi_version(void) { return DECODELAB_ABI_VERSION; }

const char* decodelab_status_name(decodelab_status status) {
  switch (status) {
    case DECODELAB_OK: return "ok";
    case DECODELAB_ERR_INVALID_ARGUMENT: return "invalid_argument";
    case DECODELAB_ERR_NOT_FOUND: return "not_found";
    case DECODELAB_ERR_BAD_FORMAT: return "bad_format";
    case DECODELAB_ERR_UNSUPPORTED: return "unsupported";
    case DECODELAB_ERR_NUMERIC: return "numeric";
    case DECODELAB_ERR_OUT_OF_MEMORY: return "out_of_memory";
    case DECODELAB_ERR_INTERNAL: return "internal";
    case DECODELAB_ERR_CALLBACK: return "callback";
    case DECODELAB_STATUS_MAX_ENUM: break;  // not a status
  }
  return "unknown";
}

const char* decodelab_last_error(void) { return decodelab::capi::last_error.c_str(); }

}  // extern "C"
