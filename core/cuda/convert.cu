// Weight conversion at load (fp32 rows from dequantize_row -> the device type) and random weights
// generated on the device (benchmarks of 7B shapes never move 15 GB over PCIe).
#include <curand_kernel.h>

#include "core/cuda/device.hpp"
#include "core/cuda/dtype.cuh"
#include "core/cuda/kernels.hpp"

namespace decodelab::cuda {

std::size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 2; }
const char* dtype_name(DType t) { return t == DType::f32 ? "f32" : t == DType::f16 ? "f16" : "bf16"; }

namespace {

template <class T>
__global__ void convert_kernel(const float* src, T* dst, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    dst[i] = from_f32<T>(src[i]);
  }
}

template <class T>
__global__ void fill_random_kernel(T* dst, std::size_t n, uint64_t seed, float scale, float shift) {
  // Thread i owns elements 4i .. 4i+3: one Philox block (subsequence i) each.
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; 4 * i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    curandStatePhilox4_32_10_t s;
    curand_init(seed, i, 0, &s);
    const float4 u = curand_uniform4(&s);
    const float r[4] = {u.x, u.y, u.z, u.w};
    for (int j = 0; j < 4 && 4 * i + j < n; ++j) dst[4 * i + j] = from_f32<T>((2.0f * r[j] - 1.0f) * scale + shift);
  }
}

}  // namespace

void convert_f32(DType t, const float* src, void* dst, std::size_t n, cudaStream_t stream) {
  DECODELAB_DISPATCH_DTYPE(t, T, convert_kernel<T><<<grid_for(n, 256), 256, 0, stream>>>(src, static_cast<T*>(dst), n));
  check_launch("convert_f32");
}

void fill_random(DType t, void* dst, std::size_t n, uint64_t seed, float scale, float shift, cudaStream_t stream) {
  DECODELAB_DISPATCH_DTYPE(t, T,
                           fill_random_kernel<T><<<grid_for((n + 3) / 4, 256), 256, 0, stream>>>(
                               static_cast<T*>(dst), n, seed, scale, shift));
  check_launch("fill_random");
}

}  // namespace decodelab::cuda
