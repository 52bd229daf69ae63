#include "daemon/reward_channel.hpp"

#include "decodelab/error.hpp"

namespace decodelab::daemon {

uint64_t RewardChannel::begin_call() {
  std::lock_guard lock(mutex_);
  outstanding_ = true;
  reply_.reset();
  error_.reset();
  return ++calls_;
}

std::vector<double> RewardChannel::wait(uint64_t call, std::size_t texts, const CancelState& cancel, double timeout_s) {
  const auto give_up =
      std::chrono::steady_clock::now() +
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(timeout_s));
  std::unique_lock lock(mutex_);
  while (!reply_ && !error_) {
    // Short waits, so a cancellation (which does not notify this channel) is seen promptly.
    ready_.wait_for(lock, std::chrono::milliseconds(20));
    if (reply_ || error_) break;
    if (cancel.cancelled()) {
      outstanding_ = false;
      fail(ErrorCode::cancelled, std::string("request cancelled while waiting for the client's reward (call ") +
                                     std::to_string(call) + "): " + to_string(cancel.reason()));
    }
    if (std::chrono::steady_clock::now() > give_up) {
      outstanding_ = false;
      reject(codes::deadline_exceeded, "reward_timeout_s",
             "no reward reply for call " + std::to_string(call) +
                 " within reward_timeout_s = " + std::to_string(timeout_s) + " s");
    }
  }
  outstanding_ = false;
  if (error_) throw *error_;
  RewardReply r = std::move(*reply_);
  if (r.call != call) {
    reject(to_string(ErrorCode::invalid_argument), "call",
           "reward reply answers call " + std::to_string(r.call) + ", but the daemon waits for call " +
               std::to_string(call));
  }
  if (r.scores.size() != texts) {
    reject(to_string(ErrorCode::invalid_argument), "scores",
           "reward reply for call " + std::to_string(call) + " has " + std::to_string(r.scores.size()) +
               " scores for " + std::to_string(texts) + " texts");
  }
  return std::move(r.scores);
}

bool RewardChannel::deliver(RewardReply reply) {
  {
    std::lock_guard lock(mutex_);
    if (!outstanding_ || reply_ || error_) return false;
    reply_ = std::move(reply);
  }
  ready_.notify_all();
  return true;
}

bool RewardChannel::deliver_error(std::string code, std::string field, std::string message) {
  {
    std::lock_guard lock(mutex_);
    if (!outstanding_ || reply_ || error_) return false;
    error_.emplace(std::move(code), std::move(field), "reward reply: " + message);
  }
  ready_.notify_all();
  return true;
}

Value reward_request_message(uint64_t request_id, uint64_t call, std::span<const std::string> texts) {
  Value::Array out;
  for (const std::string& t : texts) out.emplace_back(sanitize_utf8(t));
  return Value::Map{{"id", request_id}, {"type", "reward_request"}, {"call", call}, {"texts", std::move(out)}};
}

}  // namespace decodelab::daemon
