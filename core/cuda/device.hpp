#pragma once
// Small CUDA runtime helpers shared by the CUDA backend: error checks that throw decodelab::Error
// with what was being done, and an owning device buffer whose allocation failure names what it
// was for ("KV pages for 7 sequences: out of device memory asking 96 MiB, 12 MiB free of 80 GiB").
//
// Host-only header (no kernels); compiled by both the host compiler and nvcc.

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

namespace decodelab::cuda {

// Throws Error(internal) "cuda: <what>: <cudaGetErrorString>" when `status` is not cudaSuccess.
void check(cudaError_t status, const char* what);
// After a kernel launch: throws for a launch-configuration error (cudaGetLastError).
void check_launch(const char* kernel);

// Number of visible CUDA devices; 0 when there is no driver or no device (never throws).
int device_count();
// Selects `device`, throwing Error(unsupported) "no CUDA device" / "device 3 of 1" when absent.
void select_device(int device);

// Owning device allocation. alloc() throws Error(unsupported) naming `what`, the size asked and
// the free / total device memory when cudaMalloc fails.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(std::size_t bytes, const std::string& what) { alloc(bytes, what); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }

  void alloc(std::size_t bytes, const std::string& what);
  // Grows to at least `bytes` (contents are not kept); returns true when it reallocated.
  bool reserve(std::size_t bytes, const std::string& what);
  void release();

  void* get() const { return ptr_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  std::size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

// Page-locked host memory (for asynchronous copies and graph-stable upload sources).
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  // Grows to at least `bytes`; returns true when it reallocated.
  bool reserve(std::size_t bytes, const std::string& what);
  void* get() const { return ptr_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  std::size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace decodelab::cuda
