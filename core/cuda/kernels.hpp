#pragma once
// Launchers for the CUDA backend's kernels (one small .cu file each). Host code calls these; every
// launcher is asynchronous on `stream` and checks the launch (not the completion).
//
// Conventions: the residual stream and every GEMM output are fp32; GEMM inputs (normalized
// activations, attention output, SwiGLU output) and weights are `DType`; the KV cache is fp32 when
// the weights are fp32 and fp16 otherwise. A token's K/V row is laid out [layer][k|v][kv_dim].

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace decodelab::cuda {

enum class DType { f32, f16, bf16 };
std::size_t dtype_size(DType t);
const char* dtype_name(DType t);

// Per tree node metadata for attention, uploaded once per evaluation (see attention.cu).
struct NodeMeta {
  int32_t committed;  // committed prefix length of the node's sequence
  int32_t pos;        // committed + depth: the RoPE position
  int32_t n_anc;      // ancestors-or-self count (= depth + 1)
  int32_t anc_off;    // offset of its ancestor list (global node indices, root first)
  int32_t page_off;   // offset of its sequence's page-pointer list
  int32_t pad;
};

// dst[i] = src[i] converted to `t` (weights at load).
void convert_f32(DType t, const float* src, void* dst, std::size_t n, cudaStream_t stream);
// dst[i] = uniform(-scale, scale) + shift from Philox keyed (seed, i / 4): random weights on device.
void fill_random(DType t, void* dst, std::size_t n, uint64_t seed, float scale, float shift, cudaStream_t stream);

// x[n] = fp32 row `tokens[n]` of the [vocab x dim] table.
void embed(DType t, const void* table, const int32_t* tokens, float* x, int n, int dim, cudaStream_t stream);
// out[n] = x[n] / rms(x[n]) * w, stored as `t`.
void rmsnorm(DType t, const float* x, const float* w, void* out, int n, int dim, float eps, cudaStream_t stream);
// x += y (n elements).
void add_inplace(float* x, const float* y, std::size_t n, cudaStream_t stream);
// gate_up: [n][2 * hidden] (the fused gate and up GEMM); out[n][i] = silu(gate) * up as `t`.
void swiglu(DType t, const float* gate_up, void* out, int n, int hidden, cudaStream_t stream);

struct QkvShape {
  int n_heads, n_kv_heads, head_dim, n_rot, layer, n_layers;
  bool neox;
};
// qkv: [n][q_dim + 2 kv_dim] (the fused Q/K/V GEMM). Adds `bias` ([q|k|v], may be null), rotates
// q and k at meta[n].pos, and stores k and v into node n's K/V row (node_kv[n], layer `s.layer`)
// as the KV type (fp32 when kv_f32, else fp16).
void qkv_post(float* qkv, const float* bias, const float* rope_freq, const NodeMeta* meta, void* const* node_kv,
              bool kv_f32, QkvShape s, int n, cudaStream_t stream);

struct AttentionArgs {
  const float* q;  // row r's query at q + r * q_stride: [n_heads * head_dim], rotated
  int q_stride;
  const NodeMeta* meta;  // [n]
  const int32_t* anc;    // ancestor lists
  void* const* node_kv;  // [n] K/V rows of this evaluation's nodes
  void* const* pages;    // page base pointers ([layer][k|v][page_tokens][kv_dim] each)
  float* partial;        // [n][n_heads][splits][head_dim + 2] scratch
  void* out;             // [n][n_heads * head_dim] as `out_type`
  int n, n_heads, n_kv_heads, head_dim, layer, n_layers, page_tokens, splits;
  bool kv_f32;
  DType out_type;
};
// Softmax attention of every node over its committed prefix and its ancestors-or-self, the
// prefix + ancestors split into `splits` chunks (flash-decoding), then merged.
void attention(const AttentionArgs& a, cudaStream_t stream);

// Copies `count` K/V rows of `row_elems` elements: dst[i] = src[i] (pointer pairs on device).
void copy_rows(void* const* dst, void* const* src, int count, int row_bytes, cudaStream_t stream);

// out[r] = log_softmax(in[r]) for `rows` rows of `cols` floats.
void log_softmax(const float* in, float* out, int rows, int cols, cudaStream_t stream);

}  // namespace decodelab::cuda
