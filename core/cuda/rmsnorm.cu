// RMSNorm of fp32 rows, one block per row, the sum of squares reduced in fp32 per thread and
// across the block; the normalized row is stored in the GEMM input type.
#include "core/cuda/device.hpp"
#include "core/cuda/dtype.cuh"
#include "core/cuda/kernels.hpp"

namespace decodelab::cuda {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void rmsnorm_kernel(const float* x, const float* w, T* out, int dim, float eps) {
  const float* row = x + std::size_t(blockIdx.x) * dim;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < dim; i += kThreads) ss += row[i] * row[i];
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  __shared__ float warp_sums[kThreads / 32];
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = ss;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < kThreads / 32; ++i) total += warp_sums[i];
  const float scale = rsqrtf(total / float(dim) + eps);
  T* o = out + std::size_t(blockIdx.x) * dim;
  for (int i = threadIdx.x; i < dim; i += kThreads) o[i] = from_f32<T>(row[i] * scale * w[i]);
}

}  // namespace

void rmsnorm(DType t, const float* x, const float* w, void* out, int n, int dim, float eps, cudaStream_t stream) {
  DECODELAB_DISPATCH_DTYPE(t, T, rmsnorm_kernel<T><<<n, kThreads, 0, stream>>>(x, w, static_cast<T*>(out), dim, eps));
  check_launch("rmsnorm");
}

}  // namespace decodelab::cuda
