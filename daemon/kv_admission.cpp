#include "daemon/kv_admission.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "daemon/protocol.hpp"
#include "decodelab/error.hpp"

namespace decodelab::daemon {

namespace {

std::string mib(std::size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", double(bytes) / (1024.0 * 1024.0));
  return text;
}

// How often a waiting generation looks at its cancel flag (cancel, deadline and disconnect set it
// from other threads without notifying us).
constexpr auto kCancelPoll = std::chrono::milliseconds(20);

}  // namespace

std::size_t default_kv_budget_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    std::istringstream fields(line);
    std::string key;
    std::size_t kib = 0;
    if (fields >> key >> kib && key == "MemAvailable:") return kib * 1024 / 2;
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? std::size_t(pages) * std::size_t(page) / 2 : std::size_t(1) << 30;
}

KvAdmission::Reservation KvAdmission::reserve(std::size_t tokens, const CancelState& cancel) {
  const std::size_t bytes = tokens * per_token_;
  std::unique_lock lock(mutex_);
  if (bytes > budget_) {
    figures_.refused += 1;
    reject(to_string(ErrorCode::resource_exhausted), "max_tokens",
           "model '" + name_ + "': this generation needs up to " + std::to_string(tokens) + " tokens of KV memory (" +
               mib(bytes) + ": prompt + max_tokens + " + std::to_string(kKvTreeSlack) +
               " tree nodes), more than the model's whole KV budget of " + mib(budget_) +
               "; lower max_tokens or shorten the prompt, or load the model with a larger kv_budget_mb");
  }
  const uint64_t ticket = next_ticket_++;
  queue_.push_back(ticket);
  bool waited = false;
  // First come, first served: only the oldest waiting generation may take room.
  while (queue_.front() != ticket || figures_.reserved_bytes + bytes > budget_) {
    if (cancel.cancelled()) {
      queue_.erase(std::find(queue_.begin(), queue_.end(), ticket));
      if (waited) figures_.waiting -= 1;
      freed_.notify_all();  // the next in line may fit
      return {};
    }
    if (!waited) figures_.waiting += 1;
    waited = true;
    freed_.wait_for(lock, kCancelPoll);
  }
  queue_.pop_front();
  if (waited) {
    figures_.waiting -= 1;
    figures_.admitted_after_wait += 1;
  }
  figures_.reserved_bytes += bytes;
  figures_.running += 1;
  freed_.notify_all();  // the next in line may fit too
  return Reservation(this, bytes);
}

void KvAdmission::release(std::size_t bytes) {
  std::lock_guard lock(mutex_);
  figures_.reserved_bytes -= bytes;
  figures_.running -= 1;
  freed_.notify_all();
}

KvAdmission::Figures KvAdmission::figures() const {
  std::lock_guard lock(mutex_);
  return figures_;
}

}  // namespace decodelab::daemon
