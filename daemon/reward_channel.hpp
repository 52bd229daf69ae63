#pragma once
// The daemon side of client-computed rewards. A generation with client_reward = true gets one
// channel: its decoding thread sends {id, type: "reward_request", call, texts} to the client and
// blocks in wait() until the I/O thread deliver()s the client's {op: "reward", id, call, scores},
// the request is cancelled (client gone, deadline, shutdown) or reward_timeout_s passes.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "daemon/generation.hpp"
#include "daemon/protocol.hpp"

namespace decodelab::daemon {

class RewardChannel {
 public:
  // Decoding thread: the number of the next call (1, 2, ...), marking it outstanding.
  uint64_t begin_call();
  // Decoding thread: the scores of `call`, one per text. Throws ProtocolError for a reply with the
  // wrong call number or count (field "call" / "scores"), for a reply that did not decode, and
  // codes::deadline_exceeded after timeout_s; Error(cancelled) when the request is cancelled.
  std::vector<double> wait(uint64_t call, std::size_t texts, const CancelState& cancel, double timeout_s);

  // I/O thread. Returns false when no call is outstanding (a late or unsolicited reply).
  bool deliver(RewardReply reply);
  // I/O thread: a message with this generation's id that failed to decode while a call is
  // outstanding; the generation fails with this error instead of waiting out its timeout.
  bool deliver_error(std::string code, std::string field, std::string message);

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  uint64_t calls_ = 0;
  bool outstanding_ = false;
  std::optional<RewardReply> reply_;
  std::optional<ProtocolError> error_;
};

// The reward_request message of one call.
Value reward_request_message(uint64_t request_id, uint64_t call, std::span<const std::string> texts);

}  // namespace decodelab::daemon
