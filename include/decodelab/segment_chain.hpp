#pragma once
// SegmentChain<Run>: a list of items that grows at its end, shrinks from its end, and forks in O(1)
// by sharing its prefix instead of copying it. TokenStream keeps its records in one; the model
// backends keep committed tokens (SequenceTable) and committed keys and values (GgufModel) in one.
//
// The items live in an immutable chain of shared segments (each a Run of items that points at the
// segment holding the items before it) plus a mutable tail that the owner appends to. fork()
// freezes the tail into a new shared segment (moved, not copied), so the chain and its fork share
// every segment and then grow independently. truncate() never edits a shared segment: it drops the
// segments that start at or after the cut, and the view may end inside the last one kept.
//
//   SegmentChain<std::vector<TokenId>> tokens;
//   tokens.tail().push_back(7);
//   SegmentChain<std::vector<TokenId>> branch = tokens.fork();  // both read the same [7]
//   branch.tail().push_back(8);                                  // tokens is still [7]
//
// A Run holds the items of one segment: size(), and resize(n) with n <= size() to shorten it; at()
// and to_vector() also need operator[] / value_type and iterators (std::vector has all of them). A
// Run may hold several parallel arrays per item (GgufModel: one token's keys and values per layer).
// A default-constructed Run is empty.

#include <algorithm>
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

namespace decodelab {

template <class Run>
class SegmentChain {
 public:
  struct Segment {
    std::shared_ptr<const Segment> parent;  // the segment holding the items before this one
    std::size_t start = 0;                  // index of run's first item in the chain
    Run run;
  };

  std::size_t size() const { return shared_size_ + tail_.size(); }
  bool empty() const { return size() == 0; }
  // Items [0, shared_size()) are read from shared segments, items [shared_size(), size()) from tail().
  std::size_t shared_size() const { return shared_size_; }
  Run& tail() { return tail_; }
  const Run& tail() const { return tail_; }

  // The item at `index` (< size(), unchecked): from the tail, or from the segment that holds it.
  decltype(auto) at(std::size_t index) const {
    if (index >= shared_size_) return tail_[index - shared_size_];
    const Segment* seg = base_.get();
    while (seg->start > index) seg = seg->parent.get();
    return seg->run[index - seg->start];
  }

  // Calls f(start, count, run) for every shared stretch, from the newest segment back to the first:
  // the chain's items [start, start + count) are run[0 .. count). The tail is not visited.
  template <class F>
  void for_each_shared(F&& f) const {
    std::size_t limit = shared_size_;
    for (const Segment* seg = base_.get(); seg != nullptr && limit > 0; seg = seg->parent.get()) {
      if (seg->start >= limit) continue;
      const std::size_t count = std::min(seg->run.size(), limit - seg->start);
      f(seg->start, count, seg->run);
      limit = seg->start;
    }
  }

  // All items in order (for a Run that is a container of them).
  auto to_vector() const {
    std::vector<typename Run::value_type> out(size());
    for_each_shared([&](std::size_t start, std::size_t count, const Run& run) {
      std::copy(run.begin(), run.begin() + std::ptrdiff_t(count), out.begin() + std::ptrdiff_t(start));
    });
    std::copy(tail_.begin(), tail_.end(), out.begin() + std::ptrdiff_t(shared_size_));
    return out;
  }

  // Keeps the first `new_size` items (new_size <= size(), unchecked).
  void truncate(std::size_t new_size) {
    if (new_size >= shared_size_) {
      tail_.resize(new_size - shared_size_);
      return;
    }
    tail_ = Run{};
    while (base_ && base_->start >= new_size) base_ = base_->parent;
    shared_size_ = new_size;
  }

  // A chain with the same items that shares them with this one. Freezes this chain's tail into a
  // shared segment first (only when it holds items), so later forks cost O(1) too.
  SegmentChain fork() {
    freeze();
    SegmentChain branch;
    branch.base_ = base_;
    branch.shared_size_ = shared_size_;
    return branch;
  }

 private:
  void freeze() {
    if (tail_.size() == 0) return;
    auto seg = std::make_shared<Segment>();
    seg->parent = std::move(base_);
    seg->start = shared_size_;
    seg->run = std::exchange(tail_, Run{});
    shared_size_ += seg->run.size();
    base_ = std::move(seg);
  }

  std::shared_ptr<const Segment> base_;
  std::size_t shared_size_ = 0;  // items read from base_'s chain (the view may end inside base_)
  Run tail_{};
};

}  // namespace decodelab
