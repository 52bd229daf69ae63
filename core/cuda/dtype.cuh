#pragma once
// Device-side loads and stores of the backend's element types, as fp32.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace decodelab::cuda {

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

template <class T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_f32<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Calls f.template operator()<T>() with T the C++ type of `t`.
#define DECODELAB_DISPATCH_DTYPE(t, T, ...) \
  switch (t) {                              \
    case DType::f32: {                      \
      using T = float;                      \
      __VA_ARGS__;                          \
      break;                                \
    }                                       \
    case DType::f16: {                      \
      using T = __half;                     \
      __VA_ARGS__;                          \
      break;                                \
    }                                       \
    case DType::bf16: {                     \
      using T = __nv_bfloat16;              \
      __VA_ARGS__;                          \
      break;                                \
    }                                       \
  }

inline unsigned grid_for(std::size_t n, unsigned block) {
  std::size_t g = (n + block - 1) / block;
  return unsigned(g < 65535u * 16u ? g : 65535u * 16u);
}

}  // namespace decodelab::cuda
