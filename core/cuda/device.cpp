#include "core/cuda/device.hpp"

#include "decodelab/error.hpp"

namespace decodelab::cuda {

namespace {

std::string mib(std::size_t bytes) { return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB"; }

}  // namespace

void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();  // clear a sticky-free error so the next call starts clean
  fail(ErrorCode::internal, std::string("cuda: ") + what + ": " + cudaGetErrorString(status));
}

void check_launch(const char* kernel) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    fail(ErrorCode::internal, std::string("cuda: launching ") + kernel + ": " + cudaGetErrorString(status));
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

void select_device(int device) {
  const int n = device_count();
  if (n == 0) fail(ErrorCode::unsupported, "cuda backend: no CUDA device is available (no driver or no GPU)");
  if (device < 0 || device >= n) {
    fail(ErrorCode::unsupported,
         "cuda backend: device " + std::to_string(device) + " requested, " + std::to_string(n) + " present");
  }
  check(cudaSetDevice(device), "cudaSetDevice");
}

void DeviceBuffer::alloc(std::size_t bytes, const std::string& what) {
  release();
  if (bytes == 0) return;
  const cudaError_t status = cudaMalloc(&ptr_, bytes);
  if (status != cudaSuccess) {
    ptr_ = nullptr;
    (void)cudaGetLastError();
    std::size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    fail(ErrorCode::unsupported, "cuda: allocating " + what + ": " + cudaGetErrorString(status) + " asking " +
                                     mib(bytes) + " (" + mib(free_b) + " free of " + mib(total_b) + ")");
  }
  bytes_ = bytes;
}

bool DeviceBuffer::reserve(std::size_t bytes, const std::string& what) {
  if (bytes <= bytes_) return false;
  alloc(bytes, what);
  return true;
}

void DeviceBuffer::release() {
  if (ptr_) (void)cudaFree(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

PinnedBuffer::~PinnedBuffer() {
  if (ptr_) (void)cudaFreeHost(ptr_);
}

bool PinnedBuffer::reserve(std::size_t bytes, const std::string& what) {
  if (bytes <= bytes_) return false;
  if (ptr_) (void)cudaFreeHost(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
  const cudaError_t status = cudaMallocHost(&ptr_, bytes);
  if (status != cudaSuccess) {
    ptr_ = nullptr;
    (void)cudaGetLastError();
    fail(ErrorCode::unsupported, "cuda: allocating pinned host memory for " + what + ": " + cudaGetErrorString(status) +
                                     " asking " + mib(bytes));
  }
  bytes_ = bytes;
  return true;
}

}  // namespace decodelab::cuda
