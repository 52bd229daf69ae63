// Commit: gathers the accepted path's K/V rows from the pending rows into their cache pages. One
// block per (row, layer, k|v) copy; the pointer pairs are built on the host.
#include "core/cuda/device.hpp"
#include "core/cuda/kernels.hpp"

namespace decodelab::cuda {
namespace {

__global__ void copy_rows_kernel(void* const* dst, void* const* src, int row_words) {
  const uint32_t* s = static_cast<const uint32_t*>(src[blockIdx.x]);
  uint32_t* d = static_cast<uint32_t*>(dst[blockIdx.x]);
  for (int i = threadIdx.x; i < row_words; i += blockDim.x) d[i] = s[i];
}

}  // namespace

void copy_rows(void* const* dst, void* const* src, int count, int row_bytes, cudaStream_t stream) {
  if (count == 0) return;
  // Rows are kv_dim elements of 2 or 4 bytes with kv_dim a multiple of 32: whole 32-bit words.
  copy_rows_kernel<<<count, 128, 0, stream>>>(dst, src, row_bytes / 4);
  check_launch("copy_rows");
}

}  // namespace decodelab::cuda
