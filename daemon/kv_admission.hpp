#pragma once
// Admission control against a model's KV budget.
//
// Every loaded model has a KV budget: bytes of keys and values its sequences may hold (decodelabd
// --kv-budget-mb, or load_model's kv_budget_mb; by default half the memory available when the
// model loads). Two things keep a daemon inside it:
//
//   * Admission. Before a generation runs it reserves what it will need on each model it uses:
//     (prompt tokens + max_tokens + a tree's worth of pending nodes) x the model's bytes per
//     token. A reservation that fits starts at once; one that does not fit yet waits (in its
//     worker, while the request queue holds the rest, which answers `busy` when full) until
//     running generations hand theirs back; one larger than the whole budget is refused at once
//     with resource_exhausted, naming the figures. Waiting is first come, first served, so a large
//     request is not overtaken forever by small ones, and it ends at once on cancel, deadline,
//     disconnect or shutdown.
//   * A ceiling. The model itself refuses any evaluation that would take its real KV memory past
//     the budget (LanguageModel::set_kv_budget). A decoder that holds more than one sequence per
//     generation (SMC particles, CNTP trials, wide trees) can need more than its reservation; it
//     then fails with resource_exhausted instead of exhausting the machine, and only it fails
//     (ForwardGatherer checks each merged call on its own).
//
// A model that keeps no KV (a table model: 0 bytes per token) admits everything.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "daemon/generation.hpp"

namespace decodelab::daemon {

// Tree nodes a generation may hold pending beyond its committed tokens (a verification tree).
inline constexpr std::size_t kKvTreeSlack = 64;

// Half the memory available now (/proc/meminfo's MemAvailable; physical memory when unreadable).
std::size_t default_kv_budget_bytes();

class KvAdmission {
 public:
  KvAdmission(std::string model_name, std::size_t budget_bytes, std::size_t bytes_per_token)
      : name_(std::move(model_name)), budget_(budget_bytes), per_token_(bytes_per_token) {}

  // Handed back when destroyed.
  class Reservation {
   public:
    Reservation() = default;
    Reservation(KvAdmission* owner, std::size_t bytes) : owner_(owner), bytes_(bytes) {}
    Reservation(Reservation&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)), bytes_(o.bytes_) {}
    Reservation& operator=(Reservation&&) = delete;
    bool admitted() const { return owner_ != nullptr; }
    ~Reservation() {
      if (owner_) owner_->release(bytes_);
    }

   private:
    KvAdmission* owner_ = nullptr;
    std::size_t bytes_ = 0;
  };

  // Reserves room for `tokens` tokens of one generation, waiting while the budget is taken by
  // others. Throws ProtocolError resource_exhausted when `tokens` can never fit; returns an empty
  // reservation (admitted() false) when `cancel` is set while waiting.
  Reservation reserve(std::size_t tokens, const CancelState& cancel);

  std::size_t budget_bytes() const { return budget_; }
  std::size_t bytes_per_token() const { return per_token_; }
  struct Figures {
    std::size_t reserved_bytes = 0;
    int running = 0;  // reservations held
    int waiting = 0;  // generations waiting for room
    int64_t admitted_after_wait = 0;
    int64_t refused = 0;  // larger than the whole budget
  };
  Figures figures() const;

 private:
  void release(std::size_t bytes);

  const std::string name_;
  const std::size_t budget_, per_token_;
  mutable std::mutex mutex_;
  std::condition_variable freed_;
  std::deque<uint64_t> queue_;  // tickets of waiting generations, first come first served
  uint64_t next_ticket_ = 0;
  Figures figures_;
};

}  // namespace decodelab::daemon
