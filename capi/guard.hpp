#pragma once
// Internal to libdecodelab.so: how every C entry point turns C++ failures into a status and a
// thread-local message, so that no exception crosses the ABI.
//
//   decodelab_status decodelab_chain_length(const decodelab_chain* chain, size_t* out) {
//     return capi::guarded(__func__, [&] {
//       capi::require_ptr(chain, "chain");
//       capi::require_ptr(out, "out");
//       *out = chain->chain->size();
//     });
//   }
//
// Messages are "<function>: <what was wrong>"; decodelab's own Error messages already name the
// parameter, sampler or index at fault.
#include <cstddef>
#include <new>
#include <string>
#include <utility>

#include "capi/callback_model.hpp"
#include "decodelab/decodelab.h"
#include "decodelab/error.hpp"

namespace decodelab::capi {

// Records `message` as this thread's last error and returns `status`.
decodelab_status set_error(decodelab_status status, const char* function, const std::string& message) noexcept;

decodelab_status to_status(ErrorCode code) noexcept;

template <class F>
decodelab_status guarded(const char* function, F&& body) noexcept {
  try {
    body();
    return DECODELAB_OK;
  } catch (const CallbackFailure& e) {
    return set_error(DECODELAB_ERR_CALLBACK, function, e.what());
  } catch (const Error& e) {
    return set_error(to_status(e.code()), function, e.what());
  } catch (const std::bad_alloc&) {
    return set_error(DECODELAB_ERR_OUT_OF_MEMORY, function, "out of memory");
  } catch (const std::exception& e) {
    return set_error(DECODELAB_ERR_INTERNAL, function, std::string("unexpected error: ") + e.what());
  } catch (...) {
    return set_error(DECODELAB_ERR_INTERNAL, function, "unexpected error of unknown type");
  }
}

// Throws Error(invalid_argument) "<name> is NULL" for a null pointer.
inline void require_ptr(const void* pointer, const char* name) {
  if (pointer == nullptr) fail(ErrorCode::invalid_argument, std::string(name) + " is NULL");
}

// The vocabulary size of an array argument: n in [1, INT32_MAX], since token ids are int32.
void require_vocab(std::size_t n, const char* name);

// Throws Error(invalid_argument) naming the entry unless every one of the n values is finite and
// >= 0 (the laws given to the verification rules).
void require_probabilities(const float* values, std::size_t n, const char* name);

}  // namespace decodelab::capi
