#pragma once
// KvPages: the device KV cache as reference-counted pages. A page holds `page_tokens` tokens of
// every layer's keys and values ([layer][k|v][page_tokens][kv_dim]); pages are carved from chunks
// allocated on demand, so capacity grows with use and is never copied.

#include <atomic>
#include <cstddef>
#include <string>
#include <vector>

#include "core/cuda/device.hpp"

namespace decodelab::cuda {

class KvPages {
 public:
  KvPages(std::size_t page_bytes, int pages_per_chunk) : page_bytes_(page_bytes), pages_per_chunk_(pages_per_chunk) {}

  int acquire();  // a page with reference count 1 (allocates a chunk when none is free)
  void retain(int page) { ++refs_.at(std::size_t(page)); }
  void release(int page);  // back to the free list at reference count 0
  int refs(int page) const { return refs_.at(std::size_t(page)); }
  void* base(int page) const { return bases_.at(std::size_t(page)); }
  std::size_t page_bytes() const { return page_bytes_; }
  // Readable from any thread (a daemon's status) while another acquires and releases.
  std::size_t pages_in_use() const { return in_use_.load(); }

 private:
  std::size_t page_bytes_;
  int pages_per_chunk_;
  std::vector<DeviceBuffer> chunks_;
  std::vector<void*> bases_;
  std::vector<int> refs_;
  std::vector<int> free_;
  std::atomic<std::size_t> in_use_{0};
};

}  // namespace decodelab::cuda
