// Residual add and the SwiGLU gate, grid-stride over fp32 activations.
#include "core/cuda/device.hpp"
#include "core/cuda/dtype.cuh"
#include "core/cuda/kernels.hpp"

namespace decodelab::cuda {
namespace {

__global__ void add_kernel(float* x, const float* y, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    x[i] += y[i];
}

template <class T>
__global__ void swiglu_kernel(const float* gate_up, T* out, std::size_t n, int hidden) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t row = i / hidden, col = i % hidden;
    const float g = gate_up[row * 2 * hidden + col];
    const float u = gate_up[row * 2 * hidden + hidden + col];
    out[i] = from_f32<T>(g / (1.0f + expf(-g)) * u);
  }
}

}  // namespace

void add_inplace(float* x, const float* y, std::size_t n, cudaStream_t stream) {
  add_kernel<<<grid_for(n, 256), 256, 0, stream>>>(x, y, n);
  check_launch("add_inplace");
}

void swiglu(DType t, const float* gate_up, void* out, int n, int hidden, cudaStream_t stream) {
  const std::size_t total = std::size_t(n) * hidden;
  DECODELAB_DISPATCH_DTYPE(
      t, T, swiglu_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(gate_up, static_cast<T*>(out), total, hidden));
  check_launch("swiglu");
}

}  // namespace decodelab::cuda
