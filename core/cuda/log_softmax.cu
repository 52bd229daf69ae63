// Row-wise log-softmax of fp32 logits: one 1024-thread block per row (max, then sum of exp in
// fp32 per thread and fp64 across the block, as the CPU's log_sum_exp accumulates in fp64).
#include <cmath>

#include "core/cuda/device.hpp"
#include "core/cuda/kernels.hpp"

namespace decodelab::cuda {
namespace {

constexpr int kThreads = 1024;

__global__ void log_softmax_kernel(const float* in, float* out, int cols) {
  const float* x = in + std::size_t(blockIdx.x) * cols;
  float* y = out + std::size_t(blockIdx.x) * cols;
  __shared__ float s_max[kThreads / 32];
  __shared__ double s_sum[kThreads / 32];
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < cols; i += kThreads) mx = fmaxf(mx, x[i]);
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if (threadIdx.x % 32 == 0) s_max[threadIdx.x / 32] = mx;
  __syncthreads();
  mx = -INFINITY;
  for (int w = 0; w < kThreads / 32; ++w) mx = fmaxf(mx, s_max[w]);
  double sum = 0.0;
  for (int i = threadIdx.x; i < cols; i += kThreads) sum += double(expf(x[i] - mx));
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (threadIdx.x % 32 == 0) s_sum[threadIdx.x / 32] = sum;
  __syncthreads();
  sum = 0.0;
  for (int w = 0; w < kThreads / 32; ++w) sum += s_sum[w];
  const float lse = float(double(mx) + log(sum));
  for (int i = threadIdx.x; i < cols; i += kThreads) y[i] = x[i] - lse;
}

}  // namespace

void log_softmax(const float* in, float* out, int rows, int cols, cudaStream_t stream) {
  if (rows == 0) return;
  log_softmax_kernel<<<rows, kThreads, 0, stream>>>(in, out, cols);
  check_launch("log_softmax");
}

}  // namespace decodelab::cuda
