#include "core/batching_model.hpp"

#include <algorithm>
#include <exception>

namespace decodelab {

using Clock = std::chrono::steady_clock;

ForwardGatherer::ForwardGatherer(std::shared_ptr<LanguageModel> model, GatherPolicy policy)
    : model_(std::move(model)), policy_(policy) {}

GatherStats ForwardGatherer::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

int ForwardGatherer::members() const {
  std::lock_guard lock(mutex_);
  return members_;
}

void ForwardGatherer::join() {
  std::lock_guard lock(mutex_);
  members_ += 1;
}

void ForwardGatherer::leave() {
  std::lock_guard lock(mutex_);
  members_ -= 1;
  arrived_.notify_one();  // a leader waiting for this member need not wait any longer
}

void ForwardGatherer::evaluate(Call& call) {
  std::unique_lock lock(mutex_);
  queued_.push_back(&call);
  arrived_.notify_one();
  while (!call.done) {
    if (leading_) {
      served_.wait(lock);
      continue;
    }
    // Lead: wait for the members still busy between steps, but not past the window, then run
    // everything queued (our own call included) as one forward pass.
    leading_ = true;
    const auto window = std::max<Clock::duration>(
        policy_.min_window,
        std::min<Clock::duration>(
            policy_.max_window, std::chrono::duration_cast<Clock::duration>(last_forward_ * policy_.window_fraction)));
    const auto deadline = Clock::now() + window;
    while (int(queued_.size()) < members_) {
      if (arrived_.wait_until(lock, deadline) == std::cv_status::timeout) break;
    }
    std::vector<Call*> calls;
    calls.swap(queued_);
    lock.unlock();
    const auto started = Clock::now();
    run_batch(calls);
    const auto took = Clock::now() - started;
    lock.lock();
    last_forward_ = took;
    for (Call* c : calls) c->done = true;
    leading_ = false;
    served_.notify_all();  // the callers served, and those queued meanwhile (one of them leads next)
  }
  lock.unlock();
  if (call.error) std::rethrow_exception(call.error);
}

void ForwardGatherer::run_batch(std::vector<Call*>& calls) {
  std::lock_guard model_lock(model_mutex_);
  // Each call is checked on its own first, so one generation's bad tree fails only that
  // generation, never the others merged with it.
  std::vector<Call*> valid;
  std::size_t admitted_nodes = 0;
  for (Call* c : calls) {
    try {
      validate_batch(*model_, c->batch);
      std::size_t call_nodes = 0;
      for (const TreeEval& t : c->batch) call_nodes += t.nodes.size();
      check_kv_room(*model_, call_nodes, admitted_nodes);
      admitted_nodes += call_nodes;
      valid.push_back(c);
    } catch (...) {
      c->error = std::current_exception();
    }
  }
  if (valid.empty()) return;
  std::vector<TreeEval> merged;
  int64_t nodes = 0;
  for (Call* c : valid) {
    for (const TreeEval& t : c->batch) {
      merged.push_back(t);
      nodes += int64_t(t.nodes.size());
    }
  }
  std::vector<Matrix> out;
  try {
    model_->evaluate(merged, out);
  } catch (...) {
    for (Call* c : valid) c->error = std::current_exception();
    return;
  }
  std::size_t next = 0;
  for (Call* c : valid) {
    c->out->resize(c->batch.size());
    for (std::size_t i = 0; i < c->batch.size(); ++i) (*c->out)[i] = std::move(out[next++]);
  }
  std::lock_guard lock(mutex_);
  stats_.forward_passes += 1;
  stats_.calls += int64_t(valid.size());
  stats_.nodes += nodes;
  stats_.batch_sizes[int(valid.size())] += 1;
}

GatheringModel::GatheringModel(std::shared_ptr<ForwardGatherer> gatherer) : gatherer_(std::move(gatherer)) {
  gatherer_->join();
}

GatheringModel::~GatheringModel() { gatherer_->leave(); }

template <typename F>
auto GatheringModel::locked(F&& f) const {
  std::lock_guard lock(gatherer_->model_mutex_);
  return f(real());
}

template <typename F>
auto GatheringModel::counted(F&& f) {
  std::lock_guard lock(gatherer_->model_mutex_);
  const ModelCounters before = real().counters();
  struct Count {  // adds the real model's calls made meanwhile, also when f throws
    GatheringModel& self;
    const ModelCounters& before;
    ~Count() {
      self.counters_.evaluate_calls += self.real().counters().evaluate_calls - before.evaluate_calls;
      self.counters_.nodes_evaluated += self.real().counters().nodes_evaluated - before.nodes_evaluated;
    }
  } count{*this, before};
  return f(real());
}

SeqId GatheringModel::new_sequence() {
  return locked([](LanguageModel& m) { return m.new_sequence(); });
}
SeqId GatheringModel::fork(SeqId seq) {
  return locked([&](LanguageModel& m) { return m.fork(seq); });
}
void GatheringModel::free_sequence(SeqId seq) {
  locked([&](LanguageModel& m) { m.free_sequence(seq); });
}
std::size_t GatheringModel::length(SeqId seq) const {
  return locked([&](LanguageModel& m) { return m.length(seq); });
}
std::vector<TokenId> GatheringModel::committed_tokens(SeqId seq) const {
  return locked([&](LanguageModel& m) { return m.committed_tokens(seq); });
}
void GatheringModel::commit(SeqId seq, std::span<const int32_t> path) {
  locked([&](LanguageModel& m) { m.commit(seq, path); });
}
void GatheringModel::rollback(SeqId seq, std::size_t new_length) {
  locked([&](LanguageModel& m) { m.rollback(seq, new_length); });
}
void GatheringModel::set_kv_budget(std::size_t bytes) {
  locked([&](LanguageModel& m) { m.set_kv_budget(bytes); });
}
std::span<const float> GatheringModel::next_logits(SeqId seq) {
  // The span points into the sequence's own entry in the real model, which only calls on this
  // sequence (this generation's) change.
  return counted([&](LanguageModel& m) { return m.next_logits(seq); });
}

void GatheringModel::do_evaluate(std::span<const TreeEval> batch, std::vector<Matrix>& out) {
  if (batch.empty()) {
    out.clear();
    return;
  }
  ForwardGatherer::Call call;
  call.batch = batch;
  call.out = &out;
  gatherer_->evaluate(call);
}

}  // namespace decodelab
