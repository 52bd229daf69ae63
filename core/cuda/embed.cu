// Token-embedding gather: one block per node, fp32 out (the residual stream).
#include "core/cuda/device.hpp"
#include "core/cuda/dtype.cuh"
#include "core/cuda/kernels.hpp"

namespace decodelab::cuda {
namespace {

template <class T>
__global__ void embed_kernel(const T* table, const int32_t* tokens, float* x, int dim) {
  const T* row = table + std::size_t(tokens[blockIdx.x]) * dim;
  float* out = x + std::size_t(blockIdx.x) * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) out[i] = to_f32(row[i]);
}

}  // namespace

void embed(DType t, const void* table, const int32_t* tokens, float* x, int n, int dim, cudaStream_t stream) {
  DECODELAB_DISPATCH_DTYPE(t, T, embed_kernel<T><<<n, 256, 0, stream>>>(static_cast<const T*>(table), tokens, x, dim));
  check_launch("embed");
}

}  // namespace decodelab::cuda
