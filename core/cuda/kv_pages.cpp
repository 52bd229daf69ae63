#include "core/cuda/kv_pages.hpp"

#include "decodelab/error.hpp"

namespace decodelab::cuda {

int KvPages::acquire() {
  if (free_.empty()) {
    DeviceBuffer chunk(
        page_bytes_ * std::size_t(pages_per_chunk_),
        "KV cache pages (" + std::to_string(pages_per_chunk_) + " pages after " + std::to_string(bases_.size()) + ")");
    for (int i = pages_per_chunk_ - 1; i >= 0; --i) {
      free_.push_back(int(bases_.size()) + i);
    }
    for (int i = 0; i < pages_per_chunk_; ++i) {
      bases_.push_back(static_cast<char*>(chunk.get()) + std::size_t(i) * page_bytes_);
      refs_.push_back(0);
    }
    chunks_.push_back(std::move(chunk));
  }
  const int page = free_.back();
  free_.pop_back();
  refs_[std::size_t(page)] = 1;
  in_use_ += 1;
  return page;
}

void KvPages::release(int page) {
  int& r = refs_.at(std::size_t(page));
  if (r <= 0)
    fail(ErrorCode::internal, "cuda KV cache: page " + std::to_string(page) + " released more often than retained");
  if (--r == 0) {
    free_.push_back(page);
    in_use_ -= 1;
  }
}

}  // namespace decodelab::cuda
