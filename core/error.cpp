#include "decodelab/error.hpp"

namespace decodelab {

const char* to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::bad_format: return "bad_format";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::numeric: return "numeric";
    case ErrorCode::cancelled: return "cancelled";
    case ErrorCode::resource_exhausted: return "resource_exhausted";
    case ErrorCode::internal: return "internal";
  }
  return "unknown";
}

}  // namespace decodelab
