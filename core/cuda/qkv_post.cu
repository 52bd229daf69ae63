// After the fused Q/K/V GEMM: bias (Qwen2), RoPE at each node's position, and the K/V store into
// the node's cache row. One block per node; the steps are separated by barriers because RoPE reads
// pairs that other threads biased.
#include <cuda_fp16.h>

#include "core/cuda/device.hpp"
#include "core/cuda/dtype.cuh"
#include "core/cuda/kernels.hpp"

namespace decodelab::cuda {
namespace {

__device__ void rotate(float* v, int pair, int n_rot, const float* freq, int pos, bool neox) {
  const int half = n_rot / 2;
  const float angle = float(pos) * freq[pair];
  float s, c;
  sincosf(angle, &s, &c);
  const int a = neox ? pair : 2 * pair;
  const int b = neox ? pair + half : 2 * pair + 1;
  const float x0 = v[a], x1 = v[b];
  v[a] = x0 * c - x1 * s;
  v[b] = x0 * s + x1 * c;
}

template <class KvT>
__global__ void qkv_post_kernel(float* qkv, const float* bias, const float* freq, const NodeMeta* meta,
                                void* const* node_kv, QkvShape s) {
  const int n = blockIdx.x;
  const int hd = s.head_dim, q_dim = s.n_heads * hd, kv_dim = s.n_kv_heads * hd, width = q_dim + 2 * kv_dim;
  float* row = qkv + std::size_t(n) * width;
  if (bias) {
    for (int i = threadIdx.x; i < width; i += blockDim.x) row[i] += bias[i];
    __syncthreads();
  }
  // q heads then k heads are contiguous: head j starts at j * hd.
  const int pairs = s.n_rot / 2, pos = meta[n].pos;
  for (int j = threadIdx.x; j < (s.n_heads + s.n_kv_heads) * pairs; j += blockDim.x) {
    rotate(row + (j / pairs) * hd, j % pairs, s.n_rot, freq, pos, s.neox);
  }
  __syncthreads();
  KvT* kv = static_cast<KvT*>(node_kv[n]) + std::size_t(s.layer) * 2 * kv_dim;
  for (int i = threadIdx.x; i < 2 * kv_dim; i += blockDim.x) kv[i] = from_f32<KvT>(row[q_dim + i]);
}

}  // namespace

void qkv_post(float* qkv, const float* bias, const float* rope_freq, const NodeMeta* meta, void* const* node_kv,
              bool kv_f32, QkvShape s, int n, cudaStream_t stream) {
  if (n == 0) return;
  if (kv_f32) {
    qkv_post_kernel<float><<<n, 256, 0, stream>>>(qkv, bias, rope_freq, meta, node_kv, s);
  } else {
    qkv_post_kernel<__half><<<n, 256, 0, stream>>>(qkv, bias, rope_freq, meta, node_kv, s);
  }
  check_launch("qkv_post");
}

}  // namespace decodelab::cuda
