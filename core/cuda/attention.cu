// Tree attention over the paged KV cache, split along the sequence (flash-decoding).
//
// Node n attends to `committed` prefix positions (in pages of `page_tokens` tokens) followed by its
// `n_anc` ancestors-or-self of this evaluation (their rows in node_kv). That virtual sequence of
// committed + n_anc keys is cut into `splits` equal chunks; block (split, head, node) runs an
// online softmax over its chunk with one warp per key (lanes split head_dim, element i*32+lane so
// each warp's loads are contiguous; head_dim need not be a multiple of 32), merges its 4 warps, and writes (max, sum,
// weighted values). A second kernel merges the splits. The chunk size is computed on the device from the metadata, so
// one launch configuration (and one captured graph) serves every context length.
#include <cuda_fp16.h>

#include <cmath>

#include "core/cuda/device.hpp"
#include "core/cuda/dtype.cuh"
#include "core/cuda/kernels.hpp"

namespace decodelab::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxPerLane = 8;  // head_dim <= 256

template <class KvT>
__global__ void attention_partial(AttentionArgs a) {
  const int s = blockIdx.x, h = blockIdx.y, n = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int hd = a.head_dim, kv_dim = a.n_kv_heads * hd;
  const int kvh = h / (a.n_heads / a.n_kv_heads);
  const NodeMeta m = a.meta[n];
  const int total = m.committed + m.n_anc;
  const int chunk = (total + a.splits - 1) / a.splits;
  const int begin = s * chunk, end = min(total, begin + chunk);
  const float scale = rsqrtf(float(hd));

  float q[kMaxPerLane], acc[kMaxPerLane];
  const float* qh = a.q + std::size_t(n) * a.q_stride + std::size_t(h) * hd;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    q[i] = i * 32 + lane < hd ? qh[i * 32 + lane] : 0.0f;
    acc[i] = 0.0f;
  }
  float mx = -INFINITY, sum = 0.0f;
  const std::size_t layer_off = std::size_t(a.layer) * 2;
  for (int j = begin + warp; j < end; j += kWarps) {
    const KvT *kp, *vp;
    if (j < m.committed) {
      const KvT* page = static_cast<const KvT*>(a.pages[m.page_off + j / a.page_tokens]);
      const std::size_t slot = std::size_t(j % a.page_tokens);
      kp = page + ((layer_off + 0) * a.page_tokens + slot) * kv_dim + std::size_t(kvh) * hd;
      vp = page + ((layer_off + 1) * a.page_tokens + slot) * kv_dim + std::size_t(kvh) * hd;
    } else {
      const int node = a.anc[m.anc_off + (j - m.committed)];
      const KvT* row = static_cast<const KvT*>(a.node_kv[node]) + layer_off * kv_dim;
      kp = row + std::size_t(kvh) * hd;
      vp = row + kv_dim + std::size_t(kvh) * hd;
    }
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; ++i) {
      if (i * 32 + lane < hd) dot += q[i] * to_f32(kp[i * 32 + lane]);
    }
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    const float score = dot * scale;
    const float new_mx = fmaxf(mx, score);
    const float corr = __expf(mx - new_mx);  // 0 on the first key (mx = -inf)
    const float p = __expf(score - new_mx);
    sum = sum * corr + p;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; ++i) {
      if (i * 32 + lane < hd) acc[i] = acc[i] * corr + p * to_f32(vp[i * 32 + lane]);
    }
    mx = new_mx;
  }
  // Merge the warps of this block.
  __shared__ float w_mx[kWarps], w_sum[kWarps];
  __shared__ float w_acc[kWarps][kMaxPerLane * 32];
  if (lane == 0) {
    w_mx[warp] = mx;
    w_sum[warp] = sum;
  }
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    if (i * 32 + lane < hd) w_acc[warp][i * 32 + lane] = acc[i];
  }
  __syncthreads();
  float block_mx = -INFINITY;
  for (int w = 0; w < kWarps; ++w) block_mx = fmaxf(block_mx, w_mx[w]);
  float* out = a.partial + ((std::size_t(n) * a.n_heads + h) * a.splits + s) * (hd + 2);
  float weight[kWarps];
  float block_sum = 0.0f;
  for (int w = 0; w < kWarps; ++w) {
    weight[w] = w_mx[w] == -INFINITY ? 0.0f : __expf(w_mx[w] - block_mx);
    block_sum += w_sum[w] * weight[w];
  }
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float v = 0.0f;
    for (int w = 0; w < kWarps; ++w) v += w_acc[w][d] * weight[w];
    out[2 + d] = v;
  }
  if (threadIdx.x == 0) {
    out[0] = block_mx;
    out[1] = block_sum;
  }
}

template <class OutT>
__global__ void attention_merge(const float* partial, OutT* out, int n_heads, int hd, int splits) {
  const int h = blockIdx.x, n = blockIdx.y;
  const float* p = partial + (std::size_t(n) * n_heads + h) * splits * (hd + 2);
  float mx = -INFINITY;
  for (int s = 0; s < splits; ++s) mx = fmaxf(mx, p[s * (hd + 2)]);
  float denom = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float m = p[s * (hd + 2)];
    if (m != -INFINITY) denom += p[s * (hd + 2) + 1] * __expf(m - mx);
  }
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float v = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float m = p[s * (hd + 2)];
      if (m != -INFINITY) v += p[s * (hd + 2) + 2 + d] * __expf(m - mx);
    }
    out[std::size_t(n) * n_heads * hd + std::size_t(h) * hd + d] = from_f32<OutT>(v / denom);
  }
}

}  // namespace

void attention(const AttentionArgs& a, cudaStream_t stream) {
  if (a.head_dim > 32 * kMaxPerLane) check(cudaErrorInvalidValue, "attention: head_dim must be at most 256");
  if (a.n == 0) return;
  const dim3 grid(unsigned(a.splits), unsigned(a.n_heads), unsigned(a.n));
  if (a.kv_f32) {
    attention_partial<float><<<grid, kWarps * 32, 0, stream>>>(a);
  } else {
    attention_partial<__half><<<grid, kWarps * 32, 0, stream>>>(a);
  }
  check_launch("attention_partial");
  const dim3 mgrid(unsigned(a.n_heads), unsigned(a.n));
  const unsigned threads = unsigned(a.head_dim);
  DECODELAB_DISPATCH_DTYPE(a.out_type, T,
                           attention_merge<T><<<mgrid, threads, 0, stream>>>(a.partial, static_cast<T*>(a.out),
                                                                             a.n_heads, a.head_dim, a.splits));
  check_launch("attention_merge");
}

}  // namespace decodelab::cuda
