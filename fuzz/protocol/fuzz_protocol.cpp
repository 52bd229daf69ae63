// libFuzzer target for the daemon's request decoder: any byte string must either decode or be
// rejected with a ProtocolError, never crash, hang or leak (build.sh builds it with ASan + UBSan).
// A decoded request must also survive a reply round trip of its fields.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace decodelab::daemon;
  DecodeLimits limits;
  limits.max_message_bytes = 1 << 16;
  limits.max_items = 1 << 12;
  uint64_t id = 0;
  try {
    const Request r = decode_request(std::string_view(reinterpret_cast<const char*>(data), size), limits, &id);
    if (r.id != id) __builtin_trap();
    // Replies echo request text: it must come out as valid UTF-8 msgpack.
    const std::string packed = pack(error_reply(r.id, "x", sanitize_utf8(r.op), r.op.substr(0, 8)));
    (void)unpack(packed);
  } catch (const ProtocolError&) {
  }
  // The UTF-8 helpers see generated text, which can be arbitrary bytes.
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string clean = sanitize_utf8(text);
  if (sanitize_utf8(clean) != clean) __builtin_trap();
  if (complete_utf8_prefix(text) > size) __builtin_trap();
  return 0;
}
